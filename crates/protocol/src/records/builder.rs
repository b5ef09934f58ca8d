//! Encoding magic-2 record batches straight into a [`BytesMut`].

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{ATTRIBUTES_OFFSET, CONTROL_FLAG, CRC_OFFSET, TIMESTAMP_TYPE_FLAG, TRANSACTIONAL_FLAG};
use super::{
    BATCH_HEADER_SIZE, LOG_OVERHEAD, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    NO_TIMESTAMP, TimestampType,
};
use crate::codec::{varint_len, varlong_len, write_varint, write_varlong};
use crate::compression::{self, Compression};
use crate::error::EncodeError;

/// Builds one magic-2 record batch at a time.
///
/// The builder writes a placeholder header, then appends each record in its
/// final encoding: straight after the header when uncompressed, or into a
/// scratch buffer that [`finish`](Self::finish) compresses behind the header.
/// `finish` patches `batchLength`, `recordsCount`, `lastOffsetDelta`, the
/// timestamps and the CRC32C, returns the batch, and resets the builder for
/// the next batch, keeping its settings and both buffers' capacity.
///
/// ```
/// use kafkit_protocol::records::{RecordBatchBuilder, RecordSet};
///
/// let mut b = RecordBatchBuilder::new(42);
/// b.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[("trace", Some(b"1"))]).unwrap();
/// let batch = b.finish().unwrap();
/// let set = RecordSet::new(batch);
/// let rec = set.records().next().unwrap().unwrap();
/// assert_eq!(rec.offset, 42);
/// assert_eq!(rec.value.as_deref(), Some(&b"value"[..]));
/// ```
#[derive(Debug)]
pub struct RecordBatchBuilder {
    buf: BytesMut,
    scratch: BytesMut,
    compression: Compression,
    level: Option<i32>,
    base_offset: i64,
    partition_leader_epoch: i32,
    log_append_time: Option<i64>,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: u32,
    last_offset_delta: i32,
    first_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl RecordBatchBuilder {
    /// An uncompressed, non-transactional builder whose first record gets
    /// `base_offset` (producers use 0; the broker assigns real offsets).
    pub fn new(base_offset: i64) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_SIZE + 256);
        buf.put_bytes(0, BATCH_HEADER_SIZE);
        RecordBatchBuilder {
            buf,
            scratch: BytesMut::new(),
            compression: Compression::None,
            level: None,
            base_offset,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            log_append_time: None,
            transactional: false,
            control: false,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            count: 0,
            last_offset_delta: 0,
            first_timestamp: None,
            max_timestamp: NO_TIMESTAMP,
        }
    }

    /// Compresses the records with `codec` at `level` (codec default for `None`).
    ///
    /// May be called after records were appended; they are moved over.
    pub fn with_compression(mut self, codec: Compression, level: Option<i32>) -> Self {
        let was_compressed = !matches!(self.compression, Compression::None);
        let compressed = !matches!(codec, Compression::None);
        if !was_compressed && compressed {
            self.scratch.extend_from_slice(&self.buf[BATCH_HEADER_SIZE..]);
            self.buf.truncate(BATCH_HEADER_SIZE);
        } else if was_compressed && !compressed {
            self.buf.extend_from_slice(&self.scratch);
            self.scratch.clear();
        }
        self.compression = codec;
        self.level = level;
        self
    }

    /// Sets the idempotent producer's id, epoch and the first record's sequence.
    pub fn with_producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn with_transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (see
    /// [`append_control`](Self::append_control)).
    pub fn with_control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets `partitionLeaderEpoch` (brokers stamp it; producers send -1).
    pub fn with_partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Writes a log-append-time batch whose `maxTimestamp` is `append_time`,
    /// as a broker does; `None` goes back to create time.
    pub fn with_log_append_time(mut self, append_time: Option<i64>) -> Self {
        self.log_append_time = append_time;
        self
    }

    /// Sets the offset of the next batch's first record; only valid while
    /// the builder is empty (returns an error otherwise).
    pub fn set_base_offset(&mut self, base_offset: i64) -> Result<(), EncodeError> {
        if self.count != 0 {
            return Err(EncodeError::Invalid {
                what: "record batch",
                reason: "cannot change the base offset after records were appended".into(),
            });
        }
        self.base_offset = base_offset;
        Ok(())
    }

    /// The timestamp type the batch will carry.
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attribute_bit(self.log_append_time.is_some())
    }

    /// The offset of the first record.
    #[inline]
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Records appended so far.
    #[inline]
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// True before the first record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The largest timestamp appended so far (-1 before any).
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The offset delta of the last record appended.
    #[inline]
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }

    /// The batch size so far with the records uncompressed: exact for an
    /// uncompressed batch, an upper bound (in practice) for a compressed one.
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len() + self.scratch.len()
    }

    /// The exact number of bytes [`append`](Self::append) would add for
    /// this record, so that a caller can seal a batch before it overflows.
    pub fn next_record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let offset_delta = if self.count == 0 { 0 } else { self.last_offset_delta.saturating_add(1) };
        let ts_delta = timestamp.wrapping_sub(self.first_timestamp.unwrap_or(timestamp));
        match record_body_len(offset_delta, ts_delta, key, value, headers.iter().copied()) {
            Ok((body, _)) => varint_len(body as i32) + body,
            Err(_) => usize::MAX,
        }
    }

    /// Appends a record at the next offset; returns that offset.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<i64, EncodeError> {
        self.append_with_headers(timestamp, key, value, headers.iter().copied())
    }

    /// [`append`](Self::append) with headers from any cloneable iterator
    /// (it is walked twice: once to size the record, once to write it).
    pub fn append_with_headers<'h, I>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: I,
    ) -> Result<i64, EncodeError>
    where
        I: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        I::IntoIter: Clone,
    {
        let delta = if self.count == 0 {
            0
        } else {
            self.last_offset_delta.checked_add(1).ok_or_else(|| too_many("offset delta overflows int32"))?
        };
        self.append_at_delta(delta, timestamp, key, value, headers)
    }

    /// Appends a record at an explicit `offset`, leaving a gap as compaction
    /// does; offsets must increase and stay within `int32` of the base.
    pub fn append_at_offset(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<i64, EncodeError> {
        let delta = offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|&d| d >= 0 && (self.count == 0 || d > self.last_offset_delta))
            .ok_or_else(|| EncodeError::Invalid {
                what: "record offset",
                reason: format!("offset {offset} does not follow the batch's previous offset"),
            })?;
        self.append_at_delta(delta, timestamp, key, value, headers.iter().copied())
    }

    fn append_at_delta<'h, I>(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: I,
    ) -> Result<i64, EncodeError>
    where
        I: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        I::IntoIter: Clone,
    {
        if self.count == i32::MAX as u32 {
            return Err(too_many("record count overflows int32"));
        }
        let first = *self.first_timestamp.get_or_insert(timestamp);
        let ts_delta = timestamp.wrapping_sub(first);
        let out = if matches!(self.compression, Compression::None) { &mut self.buf } else { &mut self.scratch };
        write_record(out, offset_delta, ts_delta, key, value, headers.into_iter())?;
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(self.base_offset.wrapping_add(i64::from(offset_delta)))
    }

    /// Seals the batch: compresses the records if a codec is set, patches
    /// the header and CRC, and returns the encoded batch.
    ///
    /// The builder is then empty again with the same settings, its base
    /// offset moved past this batch and, for an idempotent producer, its
    /// base sequence advanced by the record count. An empty batch is an
    /// error.
    pub fn finish(&mut self) -> Result<Bytes, EncodeError> {
        if self.count == 0 {
            return Err(EncodeError::Invalid {
                what: "record batch",
                reason: "a batch needs at least one record".into(),
            });
        }
        if !matches!(self.compression, Compression::None) {
            if let Err(e) = compression::compress(self.compression, self.level, &self.scratch, &mut self.buf) {
                self.buf.truncate(BATCH_HEADER_SIZE);
                return Err(e);
            }
        }
        let batch_length = self.buf.len() - LOG_OVERHEAD;
        let batch_length = i32::try_from(batch_length).map_err(|_| EncodeError::TooLong {
            what: "record batch",
            len: batch_length,
            max: i32::MAX as usize,
        })?;
        let mut attributes = self.compression.id() as i16;
        if self.log_append_time.is_some() {
            attributes |= TIMESTAMP_TYPE_FLAG;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG;
        }
        if self.control {
            attributes |= CONTROL_FLAG;
        }
        let h = &mut self.buf[..BATCH_HEADER_SIZE];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        h[16] = 2;
        h[21..23].copy_from_slice(&attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.first_timestamp.unwrap_or(NO_TIMESTAMP).to_be_bytes());
        h[35..43].copy_from_slice(&self.log_append_time.unwrap_or(self.max_timestamp).to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&(self.count as i32).to_be_bytes());
        let crc = crc32c::crc32c(&self.buf[ATTRIBUTES_OFFSET..]);
        self.buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let batch = self.buf.split().freeze();
        self.reset_after(batch.len());
        Ok(batch)
    }

    fn reset_after(&mut self, last_len: usize) {
        self.base_offset = self.base_offset.wrapping_add(i64::from(self.last_offset_delta)).wrapping_add(1);
        if self.base_sequence >= 0 {
            let next = i64::from(self.base_sequence) + i64::from(self.last_offset_delta) + 1;
            self.base_sequence = (next % (i64::from(i32::MAX) + 1)) as i32;
        }
        self.count = 0;
        self.last_offset_delta = 0;
        self.first_timestamp = None;
        self.max_timestamp = NO_TIMESTAMP;
        self.scratch.clear();
        // Reclaims the old allocation if the caller already dropped the
        // previous batch; otherwise allocates about the same again.
        self.buf.reserve(last_len.max(BATCH_HEADER_SIZE + 256));
        self.buf.put_bytes(0, BATCH_HEADER_SIZE);
    }
}

fn too_many(reason: &str) -> EncodeError {
    EncodeError::Invalid { what: "record batch", reason: reason.into() }
}

fn checked_len(len: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong { what, len, max: i32::MAX as usize })
}

#[inline]
fn nullable_len(v: Option<&[u8]>, what: &'static str) -> Result<usize, EncodeError> {
    match v {
        None => Ok(1),
        Some(b) => Ok(varint_len(checked_len(b.len(), what)?) + b.len()),
    }
}

/// The size of a record without its length prefix.
#[inline]
fn record_body_len<'h>(
    offset_delta: i32,
    ts_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> Result<(usize, i32), EncodeError> {
    let mut count = 0usize;
    let mut len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
    len += nullable_len(key, "record key")? + nullable_len(value, "record value")?;
    for (k, v) in headers {
        count += 1;
        let h = nullable_len(Some(k.as_bytes()), "header key")? + nullable_len(v, "header value")?;
        len = len.checked_add(h).ok_or_else(|| too_many("record too large"))?;
    }
    let count = checked_len(count, "record headers")?;
    len += varint_len(count);
    checked_len(len, "record")?;
    Ok((len, count))
}

#[inline]
fn put_nullable(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.put_slice(b);
        }
    }
}

/// Appends one encoded record to `out`.
#[inline]
pub(crate) fn write_record<'h, I>(
    out: &mut BytesMut,
    offset_delta: i32,
    ts_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: I,
) -> Result<(), EncodeError>
where
    I: Iterator<Item = (&'h str, Option<&'h [u8]>)> + Clone,
{
    let (body, header_count) = record_body_len(offset_delta, ts_delta, key, value, headers.clone())?;
    let body_i32 = body as i32; // checked by record_body_len
    out.reserve(varint_len(body_i32) + body);
    write_varint(out, body_i32);
    out.put_u8(0);
    write_varlong(out, ts_delta);
    write_varint(out, offset_delta);
    put_nullable(out, key);
    put_nullable(out, value);
    write_varint(out, header_count);
    for (k, v) in headers {
        put_nullable(out, Some(k.as_bytes()));
        put_nullable(out, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::crc32c_bitwise;
    use crate::records::{RecordBatch, RecordSet};

    #[test]
    fn byte_for_byte_layout() {
        let mut b = RecordBatchBuilder::new(0);
        b.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.append(1005, None, Some(b"vv"), &[("h", Some(b"x"))]).unwrap();
        let batch = b.finish().unwrap();
        #[rustfmt::skip]
        let mut expected: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 0,         // baseOffset
            0, 0, 0, 71,                    // batchLength = 83 - 12
            0xff, 0xff, 0xff, 0xff,         // partitionLeaderEpoch
            2,                              // magic
            0, 0, 0, 0,                     // crc, patched below
            0, 0,                           // attributes
            0, 0, 0, 1,                     // lastOffsetDelta
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,   // baseTimestamp 1000
            0, 0, 0, 0, 0, 0, 0x03, 0xed,   // maxTimestamp 1005
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId
            0xff, 0xff,                     // producerEpoch
            0xff, 0xff, 0xff, 0xff,         // baseSequence
            0, 0, 0, 2,                     // recordsCount
            // record 0: length 8, attrs, tsDelta 0, offDelta 0, key "k", value "v", 0 headers
            0x10, 0, 0, 0, 0x02, b'k', 0x02, b'v', 0,
            // record 1: length 12, attrs, tsDelta 5, offDelta 1, null key, value "vv", header h=x
            0x18, 0, 0x0a, 0x02, 0x01, 0x04, b'v', b'v', 0x02, 0x02, b'h', 0x02, b'x',
        ];
        let crc = crc32c_bitwise(&expected[21..]);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(&batch[..], &expected[..]);
        let decoded = RecordBatch::decode(&mut batch.clone()).unwrap();
        assert_eq!(decoded.crc(), crc);
    }

    #[test]
    fn header_fields_and_flags() {
        let mut b = RecordBatchBuilder::new(500)
            .with_producer(9, 4, 2_147_483_000)
            .with_transactional(true)
            .with_partition_leader_epoch(12)
            .with_log_append_time(Some(5555))
            .with_compression(Compression::Lz4, None);
        for i in 0..1000 {
            b.append(100 + i, None, Some(b"payload"), &[]).unwrap();
        }
        let batch = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
        assert_eq!((batch.base_offset(), batch.last_offset(), batch.next_offset()), (500, 1499, 1500));
        assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_sequence()), (9, 4, 2_147_483_000));
        assert_eq!(batch.last_sequence(), 351);
        assert_eq!(batch.partition_leader_epoch(), 12);
        assert!(batch.is_transactional() && !batch.is_control() && !batch.has_delete_horizon());
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!((batch.base_timestamp(), batch.max_timestamp()), (100, 5555));
        assert_eq!(batch.compression(), Compression::Lz4);
        assert!(batch.records().all(|r| r.unwrap().timestamp == 5555));
        // The builder moved on: next batch starts at 1500, sequence wrapped.
        assert_eq!(b.base_offset(), 1500);
        b.append(1, None, None, &[]).unwrap();
        let next = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
        assert_eq!((next.base_offset(), next.base_sequence()), (1500, 352));
    }

    #[test]
    fn sizes_gaps_and_errors() {
        let mut b = RecordBatchBuilder::new(10);
        assert!(b.finish().is_err());
        let headers: &[(&str, Option<&[u8]>)] = &[("a", None), ("bb", Some(b"123"))];
        let predicted = b.next_record_size(7, Some(b"key"), None, headers);
        let before = b.size_in_bytes();
        assert_eq!(b.append(7, Some(b"key"), None, headers).unwrap(), 10);
        assert_eq!(b.size_in_bytes() - before, predicted);
        assert_eq!(b.append_at_offset(15, 9, None, None, &[]).unwrap(), 15);
        assert!(b.append_at_offset(15, 9, None, None, &[]).is_err());
        assert!(b.append_at_offset(9, 9, None, None, &[]).is_err());
        assert!(b.set_base_offset(0).is_err());
        assert_eq!(b.append(3, None, None, &[]).unwrap(), 16);
        assert_eq!((b.record_count(), b.last_offset_delta(), b.max_timestamp()), (3, 6, 9));
        let raw = b.finish().unwrap();
        assert_eq!(raw.len(), before + predicted + 2 * 7);
        let offsets: Vec<i64> = RecordSet::new(raw).records().map(|r| r.unwrap().offset).collect();
        assert_eq!(offsets, [10, 15, 16]);
    }

    #[test]
    fn switching_codecs_keeps_records() {
        let mut b = RecordBatchBuilder::new(0);
        b.append(1, Some(b"a"), None, &[]).unwrap();
        let mut b = b.with_compression(Compression::Gzip, Some(1));
        b.append(2, Some(b"b"), None, &[]).unwrap();
        let mut b = b.with_compression(Compression::None, None);
        b.append(3, Some(b"c"), None, &[]).unwrap();
        let keys: Vec<_> = RecordSet::new(b.finish().unwrap()).records().map(|r| r.unwrap().key.unwrap()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }
}
