//! [`PartitionConn::read_batch`] and the [`Batch`] it returns: one Fetch,
//! iterated record by record without copying.

use kafkit_protocol::ApiKey;
use kafkit_protocol::messages::FetchRequest;
use kafkit_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_protocol::records::{Record, RecordSet, SetRecords};

use crate::ops_partition::missing;
use crate::{Error, PartitionConn};

/// The records of one fetch, from [`PartitionConn::read_batch`].
///
/// An iterator of records in offset order, starting at the offset that was
/// asked for (a fetch may start inside a batch; earlier records are
/// skipped). Keys, values and headers are slices of the response buffer.
/// Control records (transaction markers) are skipped. A corrupt batch ends
/// iteration with one `Err`.
#[derive(Debug)]
pub struct Batch {
    records: SetRecords,
    start: i64,
    next_offset: i64,
    high_watermark: i64,
    topic: String,
    partition: i32,
    failed: bool,
}

impl Batch {
    /// The partition's high watermark when the broker answered.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The offset after the last complete batch in this fetch: where the
    /// connection reads next.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The offset this fetch started at.
    pub fn start_offset(&self) -> i64 {
        self.start
    }
}

impl Iterator for Batch {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.records.next()? {
                Ok(record) if record.offset < self.start => continue,
                Ok(record) => return Some(Ok(record)),
                Err(e) => {
                    self.failed = true;
                    let e = Error::from(e).with_topic(&self.topic, Some(self.partition));
                    return Some(Err(e));
                }
            }
        }
    }
}

impl PartitionConn {
    /// Fetches from the current offset (the first offset if none was set),
    /// waiting up to the max wait (see
    /// [`set_max_wait`](PartitionConn::set_max_wait)) for `min_bytes`, and
    /// returns at most about `max_bytes` of records (the broker always
    /// returns at least one whole batch, KIP-74).
    ///
    /// The offset advances past every complete batch in the answer, so the
    /// next call continues where this one ends. A batch cut short by
    /// `max_bytes` is not part of this answer and is fetched again next
    /// time. Broker errors (such as `OFFSET_OUT_OF_RANGE`) are typed and
    /// name the topic and partition; the offset is then unchanged.
    ///
    /// Cancel safety: safe. The offset only moves when the future completes.
    pub async fn read_batch(&mut self, min_bytes: i32, max_bytes: i32) -> Result<Batch, Error> {
        let start = match self.offset {
            Some(offset) => offset,
            None => self.read_first_offset().await?,
        };
        let context = |e: Error| e.with_topic(&self.topic, Some(self.partition));
        let version = self.conn.version_for(ApiKey::Fetch)?;
        let request = FetchRequest {
            max_wait_ms: i32::try_from(self.max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes,
            max_bytes,
            topics: vec![FetchTopic {
                topic: self.topic.clone(),
                // Fetch v13+ names topics by id (KIP-516); both fields are
                // ignorable, so each version takes the one it knows.
                topic_id: self.topic_id,
                partitions: vec![FetchPartition {
                    partition: self.partition,
                    fetch_offset: start,
                    partition_max_bytes: max_bytes,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self
            .conn
            .send(version, &request, self.max_wait)
            .await
            .map_err(context)?;
        let with_api = |e: Error| context(e.with_api(ApiKey::Fetch).with_broker(self.conn.addr()));
        Error::check(response.error_code, None).map_err(with_api)?;
        let data = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == self.partition)
            .ok_or_else(|| context(Error::from(missing("fetch"))))?;
        Error::check(data.error_code, None).map_err(with_api)?;
        let set = RecordSet::new(data.records.unwrap_or_default());
        let next_offset = next_offset(&set, start);
        self.offset = Some(next_offset);
        Ok(Batch {
            records: set.records(),
            start,
            next_offset,
            high_watermark: data.high_watermark,
            topic: self.topic.clone(),
            partition: self.partition,
            failed: false,
        })
    }
}

/// The offset after the last complete batch of `set`, or `start` if it has
/// none. Walking batch headers is cheap: records are decoded lazily. A
/// corrupt batch stops the walk; iteration reports it.
fn next_offset(set: &RecordSet, start: i64) -> i64 {
    set.batches()
        .map_while(Result::ok)
        .fold(start, |next, batch| next.max(batch.next_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafkit_protocol::records::RecordBatchBuilder;

    fn batch_at(base: i64, values: &[&str]) -> Bytes {
        let mut b = RecordBatchBuilder::new(base);
        for v in values {
            b.append(0, None, Some(v.as_bytes()), &[]).unwrap();
        }
        b.finish().unwrap()
    }

    fn batch_of(data: Bytes, start: i64) -> Batch {
        let set = RecordSet::new(data);
        Batch {
            next_offset: next_offset(&set, start),
            records: set.records(),
            start,
            high_watermark: 0,
            topic: "t".into(),
            partition: 0,
            failed: false,
        }
    }

    #[test]
    fn skips_records_before_the_start_and_advances_past_whole_batches() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch_at(0, &["a", "b", "c"]));
        data.extend_from_slice(&batch_at(3, &["d"]));
        let batch = batch_of(data.freeze(), 1);
        assert_eq!(batch.next_offset(), 4);
        let offsets: Vec<i64> = batch.map(|r| r.unwrap().offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
    }

    #[test]
    fn a_truncated_tail_is_left_for_the_next_fetch() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch_at(0, &["a", "b"]));
        let second = batch_at(2, &["c", "d"]);
        data.extend_from_slice(&second[..second.len() - 3]);
        let batch = batch_of(data.freeze(), 0);
        assert_eq!(batch.next_offset(), 2);
        assert_eq!(batch.count(), 2);
    }

    #[test]
    fn an_empty_answer_keeps_the_offset() {
        let batch = batch_of(Bytes::new(), 42);
        assert_eq!(batch.next_offset(), 42);
        assert_eq!(batch.count(), 0);
    }

    #[test]
    fn a_corrupt_batch_is_one_error_with_context() {
        let mut raw = BytesMut::from(&batch_at(0, &["a"])[..]);
        let last = raw.len() - 1;
        raw[last] ^= 0xff; // breaks the CRC
        let mut batch = batch_of(raw.freeze(), 0);
        let e = batch.next().unwrap().unwrap_err();
        assert_eq!(e.topic(), Some("t"));
        assert!(batch.next().is_none());
    }
}
