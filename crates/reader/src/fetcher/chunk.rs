//! One partition's records from one fetch response, and the path that turns
//! them into [`Message`]s: batch by batch, record by record, skipping
//! control batches, records before the fetch offset, and (under
//! read_committed) the batches of aborted transactions.
//!
//! Nothing on this path allocates per record: keys, values and headers are
//! slices of the response buffer (or of a batch's one decompression
//! buffer), and the topic is an `Arc<str>` shared by every message of the
//! partition. `tests/no_alloc.rs` counts allocations to prove it.

use bytes::Bytes;
use kafkit_protocol::messages::fetch_response::AbortedTransaction;
use kafkit_protocol::records::{
    Batch, BatchRecords, Batches, ControlRecord, ControlRecordType, TimestampType,
};

use crate::{Error, Message, TopicPartition};

/// Where the complete batches of a `records` field end, found from the
/// batch headers alone (no CRC, no decompression), so the next fetch can be
/// sent before the caller has read this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The offset after the last complete batch, `None` if there is none.
    pub(crate) next_offset: Option<i64>,
    /// True when the data ends in a partial batch (cut at `max_bytes`).
    pub(crate) truncated: bool,
    /// The partition leader epoch of the last complete magic-2 batch, if
    /// it has one: what a position after it is validated against when the
    /// leader changes (KIP-320).
    pub(crate) last_epoch: Option<i32>,
}

/// Size of a batch's offset and length fields (Kafka's `LOG_OVERHEAD`).
const LOG_OVERHEAD: usize = 12;
/// Where a magic-2 batch's `lastOffsetDelta` sits.
const LAST_OFFSET_DELTA: usize = 23;
/// Where every format's magic byte sits.
const MAGIC: usize = 16;
/// Where a magic-2 batch's `partitionLeaderEpoch` sits.
const PARTITION_LEADER_EPOCH: usize = 12;

/// Walks the batch headers of `records`. Stops at anything odd (a negative
/// length, a short header); decoding reports what is wrong with it.
pub(crate) fn scan(records: &[u8]) -> Scan {
    let mut pos = 0;
    let mut next_offset = None;
    let mut last_epoch = None;
    let mut truncated = false;
    while pos < records.len() {
        let rest = &records[pos..];
        let Some(header) = rest.get(..LOG_OVERHEAD) else {
            truncated = true;
            break;
        };
        let offset = i64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let Some(batch) = rest.get(..LOG_OVERHEAD + length) else {
            truncated = true;
            break;
        };
        let (last, epoch) = match batch.get(MAGIC) {
            Some(2) => match (
                batch.get(LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4),
                batch.get(PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4),
            ) {
                (Some(d), Some(e)) => (
                    offset + i64::from(i32::from_be_bytes(d.try_into().expect("4 bytes"))),
                    i32::from_be_bytes(e.try_into().expect("4 bytes")),
                ),
                _ => break,
            },
            // Magic 0 and 1: a message's offset is its last record's, and
            // there is no leader epoch.
            Some(0 | 1) => (offset, -1),
            _ => break,
        };
        next_offset = Some(last.saturating_add(1));
        last_epoch = (epoch >= 0).then_some(epoch);
        pos += LOG_OVERHEAD + length;
    }
    Scan {
        next_offset,
        truncated,
        last_epoch,
    }
}

/// The read_committed filter (KIP-98). The fetch response lists, for the
/// range it covers, the aborted transactions as (producer id, first
/// offset). A transactional batch is dropped when its producer has an
/// aborted transaction that started at or before the batch's last offset
/// and whose abort marker has not been passed yet; the abort marker (a
/// control batch of that producer) ends it.
#[derive(Debug, Default)]
pub(crate) struct TxnFilter {
    /// Aborted transactions not reached yet, by first offset, descending
    /// (the next one is at the end).
    pending: Vec<(i64, i64)>,
    /// Producers whose aborted transaction is open at this point.
    open: Vec<i64>,
}

impl TxnFilter {
    /// A filter for the aborted transactions of one partition's answer.
    pub(crate) fn new(aborted: &[AbortedTransaction]) -> TxnFilter {
        let mut pending: Vec<(i64, i64)> = aborted
            .iter()
            .map(|t| (t.first_offset, t.producer_id))
            .collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        TxnFilter {
            pending,
            open: Vec::new(),
        }
    }

    /// True when `batch` (a data batch) belongs to an aborted transaction.
    fn drops(&mut self, batch: &Batch) -> bool {
        if !batch.is_transactional() {
            return false;
        }
        while let Some(&(first, producer)) = self.pending.last() {
            if first > batch.last_offset() {
                break;
            }
            self.pending.pop();
            if !self.open.contains(&producer) {
                self.open.push(producer);
            }
        }
        self.open.contains(&batch.producer_id())
    }

    /// Notes a control batch: an abort marker closes its producer's aborted
    /// transaction.
    fn control(&mut self, batch: &Batch) {
        let is_abort = batch
            .records()
            .next()
            .and_then(Result::ok)
            .and_then(|r| ControlRecord::parse(&r).ok())
            .is_some_and(|c| c.kind == ControlRecordType::Abort);
        if is_abort {
            let producer = batch.producer_id();
            self.open.retain(|&p| p != producer);
        }
    }
}

/// The batch being read.
#[derive(Debug)]
struct Current {
    records: BatchRecords,
    timestamp_type: TimestampType,
    leader_epoch: Option<i32>,
    next_offset: i64,
}

/// One partition's records from one fetch, read lazily by the caller.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) tp: TopicPartition,
    /// The partition's generation when the fetch was sent; a seek or
    /// unassign since makes the chunk stale.
    pub(crate) generation: u64,
    /// The bytes the chunk holds (counted against `max_buffered_bytes`).
    pub(crate) bytes: usize,
    /// The next offset to hand out.
    pub(crate) position: i64,
    /// Where the chunk ends: the offset the next fetch started at.
    end: i64,
    batches: Batches,
    current: Option<Current>,
    filter: Option<TxnFilter>,
    done: bool,
}

impl Chunk {
    /// A chunk of `records` fetched from `start`, ending at `end` (see
    /// [`scan`]); `filter` for read_committed.
    pub(crate) fn new(
        tp: TopicPartition,
        generation: u64,
        start: i64,
        end: i64,
        records: Bytes,
        filter: Option<TxnFilter>,
    ) -> Chunk {
        Chunk {
            tp,
            generation,
            bytes: records.len(),
            position: start,
            end,
            batches: Batches::new(records),
            current: None,
            filter,
            done: false,
        }
    }

    /// Applies the read_committed filter (before reading starts).
    pub(crate) fn set_filter(&mut self, filter: TxnFilter) {
        self.filter = Some(filter);
    }

    /// The next message; `None` once the chunk is read (the position is
    /// then its end). A corrupt batch is one error, after which the chunk
    /// is done and the position stays at that batch.
    #[inline]
    pub(crate) fn next_message(&mut self) -> Option<Result<Message, Error>> {
        loop {
            if let Some(current) = &mut self.current {
                match current.records.next() {
                    Some(Ok(record)) => {
                        if record.offset < self.position {
                            continue;
                        }
                        self.position = record.offset + 1;
                        return Some(Ok(Message {
                            topic: self.tp.topic.clone(),
                            partition: self.tp.partition,
                            offset: record.offset,
                            key: record.key,
                            value: record.value,
                            headers: record.headers,
                            timestamp: record.timestamp,
                            timestamp_type: current.timestamp_type,
                            leader_epoch: current.leader_epoch,
                        }));
                    }
                    Some(Err(e)) => return self.fail(e),
                    None => {
                        self.position = self.position.max(current.next_offset);
                        self.current = None;
                    }
                }
            }
            if self.done {
                return None;
            }
            match self.batches.next() {
                None => {
                    self.done = true;
                    self.position = self.position.max(self.end);
                    return None;
                }
                Some(Err(e)) => return self.fail(e),
                Some(Ok(batch)) => self.enter(batch),
            }
        }
    }

    /// Starts reading `batch`, or passes over it (control batches, aborted
    /// transactions, batches wholly before the position).
    #[inline]
    fn enter(&mut self, batch: Batch) {
        let next_offset = batch.next_offset();
        let skip = if batch.is_control() {
            if let Some(filter) = &mut self.filter {
                filter.control(&batch);
            }
            true
        } else if next_offset <= self.position {
            // Wholly before the position (a fetch may start inside a batch).
            true
        } else {
            self.filter.as_mut().is_some_and(|f| f.drops(&batch))
        };
        if skip {
            self.position = self.position.max(next_offset);
            return;
        }
        let leader_epoch = match &batch {
            Batch::V2(b) if b.partition_leader_epoch() >= 0 => Some(b.partition_leader_epoch()),
            _ => None,
        };
        self.current = Some(Current {
            records: batch.records(),
            timestamp_type: batch.timestamp_type(),
            leader_epoch,
            next_offset,
        });
    }

    fn fail(&mut self, e: kafkit_protocol::DecodeError) -> Option<Result<Message, Error>> {
        self.done = true;
        self.current = None;
        // Nothing after a corrupt batch can be trusted: stop short of it.
        self.end = self.position;
        Some(Err(Error::from(e)
            .with_partition(self.tp.topic.clone(), self.tp.partition)
            .with_offset(self.position)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafkit_protocol::compression::Compression;
    use kafkit_protocol::records::{RecordBatchBuilder, control_batch};

    fn data_batch(base: i64, values: &[&str]) -> Bytes {
        let mut b = RecordBatchBuilder::new(base).with_partition_leader_epoch(4);
        for v in values {
            b.append(1_000, None, Some(v.as_bytes()), &[]).unwrap();
        }
        b.finish().unwrap()
    }

    fn txn_batch(base: i64, producer: i64, values: &[&str]) -> Bytes {
        let mut b = RecordBatchBuilder::new(base)
            .with_producer(producer, 0, 0)
            .with_transactional(true);
        for v in values {
            b.append(1_000, None, Some(v.as_bytes()), &[]).unwrap();
        }
        b.finish().unwrap()
    }

    fn marker(offset: i64, producer: i64, commit: bool) -> Bytes {
        let m = if commit {
            ControlRecord::commit(0)
        } else {
            ControlRecord::abort(0)
        };
        control_batch(offset, producer, 0, &m, 1_000).unwrap()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut out = BytesMut::new();
        for p in parts {
            out.extend_from_slice(p);
        }
        out.freeze()
    }

    fn read(
        records: Bytes,
        start: i64,
        filter: Option<TxnFilter>,
    ) -> (Vec<(i64, String)>, i64, Option<Error>) {
        let end = scan(&records).next_offset.unwrap_or(start).max(start);
        let mut chunk = Chunk::new(TopicPartition::new("t", 0), 0, start, end, records, filter);
        let mut out = Vec::new();
        let mut error = None;
        while let Some(m) = chunk.next_message() {
            match m {
                Ok(m) => out.push((
                    m.offset,
                    String::from_utf8(m.value_bytes().to_vec()).unwrap(),
                )),
                Err(e) => error = Some(e),
            }
        }
        (out, chunk.position, error)
    }

    fn aborted(producer: i64, first: i64) -> AbortedTransaction {
        AbortedTransaction {
            producer_id: producer,
            first_offset: first,
            ..Default::default()
        }
    }

    #[test]
    fn scan_finds_the_end_of_complete_batches() {
        let two = concat(&[data_batch(5, &["a", "b"]), data_batch(7, &["c"])]);
        let scan_all = scan(&two);
        assert_eq!(scan_all.next_offset, Some(8));
        assert_eq!(scan_all.last_epoch, Some(4));
        assert!(!scan_all.truncated);
        let cut = two.slice(..two.len() - 3);
        assert_eq!(
            scan(&cut),
            Scan {
                next_offset: Some(7),
                truncated: true,
                last_epoch: Some(4),
            }
        );
        assert_eq!(scan(&cut[..20]).next_offset, None);
        assert_eq!(scan(&[]).next_offset, None);
    }

    #[test]
    fn hands_out_records_from_the_start_offset_with_their_batch_context() {
        let data = concat(&[data_batch(0, &["a", "b", "c"]), data_batch(3, &["d"])]);
        let mut chunk = Chunk::new(TopicPartition::new("t", 2), 0, 1, 4, data, None);
        let m = chunk.next_message().unwrap().unwrap();
        assert_eq!((m.offset, m.value_bytes()), (1, &b"b"[..]));
        assert_eq!((&*m.topic, m.partition), ("t", 2));
        assert_eq!(m.leader_epoch, Some(4));
        assert_eq!(m.timestamp_type, TimestampType::CreateTime);
        assert_eq!(chunk.position, 2);
        let rest: Vec<i64> = std::iter::from_fn(|| chunk.next_message())
            .map(|m| m.unwrap().offset)
            .collect();
        assert_eq!(rest, [2, 3]);
        assert_eq!(chunk.position, 4);
    }

    #[test]
    fn compressed_batches_decode_like_plain_ones() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = RecordBatchBuilder::new(10).with_compression(codec, None);
            for v in ["x", "y", "z"] {
                b.append(1_000, Some(b"k"), Some(v.as_bytes()), &[])
                    .unwrap();
            }
            let (out, position, error) = read(b.finish().unwrap(), 11, None);
            assert!(error.is_none(), "{codec:?}: {error:?}");
            assert_eq!(out, [(11, "y".into()), (12, "z".into())], "{codec:?}");
            assert_eq!(position, 13);
        }
    }

    #[test]
    fn control_batches_are_skipped_but_advance_the_position() {
        let data = concat(&[txn_batch(0, 9, &["a", "b"]), marker(2, 9, true)]);
        let (out, position, _) = read(data, 0, None);
        assert_eq!(out, [(0, "a".into()), (1, "b".into())]);
        assert_eq!(position, 3, "past the commit marker");
    }

    /// tansu's read_committed is broken (BROKERS.md: "read_committed
    /// consumers still see aborted records"), so the KIP-98 filter is tested
    /// here against hand-built fetch answers.
    #[test]
    fn read_committed_drops_aborted_transactions_until_their_marker() {
        // Producer 7 aborts offsets 0-1; producer 8 commits 2-3 interleaved;
        // then producer 7 writes a new transaction (6) that commits.
        let data = concat(&[
            txn_batch(0, 7, &["p7-aborted-1", "p7-aborted-2"]),
            txn_batch(2, 8, &["p8-a", "p8-b"]),
            marker(4, 7, false),
            marker(5, 8, true),
            txn_batch(6, 7, &["p7-committed"]),
            data_batch(7, &["plain"]),
            marker(8, 7, true),
        ]);
        let filter = TxnFilter::new(&[aborted(7, 0)]);
        let (out, position, error) = read(data.clone(), 0, Some(filter));
        assert!(error.is_none());
        let values: Vec<&str> = out.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["p8-a", "p8-b", "p7-committed", "plain"]);
        assert_eq!(position, 9);
        // read_uncommitted sees everything but the markers.
        let (out, _, _) = read(data, 0, None);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn read_committed_starts_an_aborted_transaction_at_its_first_offset() {
        // Producer 7's batch at 0 is committed; its later transaction (from
        // offset 3) is aborted. Only offsets >= 3 are dropped.
        let data = concat(&[
            txn_batch(0, 7, &["kept"]),
            marker(1, 7, true),
            data_batch(2, &["plain"]),
            txn_batch(3, 7, &["dropped"]),
            marker(4, 7, false),
            txn_batch(5, 7, &["kept-again"]),
        ]);
        let filter = TxnFilter::new(&[aborted(7, 3)]);
        let (out, position, _) = read(data, 0, Some(filter));
        let values: Vec<&str> = out.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["kept", "plain", "kept-again"]);
        assert_eq!(position, 6);
    }

    #[test]
    fn a_corrupt_batch_is_one_error_and_the_position_stays_before_it() {
        let good = data_batch(0, &["a"]);
        let mut bad = BytesMut::from(&data_batch(1, &["b"])[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let (out, position, error) = read(concat(&[good, bad.freeze()]), 0, None);
        assert_eq!(out, [(0, "a".into())]);
        assert_eq!(position, 1);
        let error = error.expect("the CRC mismatch is reported");
        assert!(matches!(error.kind(), crate::ErrorKind::Corrupt(_)));
        assert_eq!((error.partition(), error.offset()), (Some(0), Some(1)));
    }

    #[test]
    fn a_truncated_tail_ends_the_chunk_at_the_last_whole_batch() {
        let data = concat(&[data_batch(0, &["a"]), data_batch(1, &["b", "c"])]);
        let (out, position, error) = read(data.slice(..data.len() - 5), 0, None);
        assert!(error.is_none());
        assert_eq!(out, [(0, "a".into())]);
        assert_eq!(position, 1);
    }
}
