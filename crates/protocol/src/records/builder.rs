//! Encoding magic-2 record batches straight into a [`BytesMut`].

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{
    ATTRIBUTES_OFFSET, CONTROL_FLAG, CRC_OFFSET, TIMESTAMP_TYPE_FLAG, TRANSACTIONAL_FLAG,
};
use super::encode::{record_body_len, too_many, write_record};
use super::{
    BATCH_HEADER_SIZE, LOG_OVERHEAD, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, NO_TIMESTAMP, TimestampType,
};
use crate::codec::varint_len;
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

impl std::fmt::Debug for RecordBatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatchBuilder")
            .field("base_offset", &self.base_offset)
            .field("records", &self.count)
            .field("size_in_bytes", &self.size_in_bytes())
            .field("compression", &self.compression)
            .field("transactional", &self.transactional)
            .field("control", &self.control)
            .field("producer_id", &self.producer_id)
            .finish_non_exhaustive()
    }
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
            self.scratch
                .extend_from_slice(&self.buf[BATCH_HEADER_SIZE..]);
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
    pub fn with_producer(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Self {
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
        let offset_delta = if self.count == 0 {
            0
        } else {
            self.last_offset_delta.saturating_add(1)
        };
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
            self.last_offset_delta
                .checked_add(1)
                .ok_or_else(|| too_many("offset delta overflows int32"))?
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
        let out = if matches!(self.compression, Compression::None) {
            &mut self.buf
        } else {
            &mut self.scratch
        };
        write_record(out, offset_delta, ts_delta, key, value, headers.into_iter())?;
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.max_timestamp = if self.count == 1 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
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
            if let Err(e) =
                compression::compress(self.compression, self.level, &self.scratch, &mut self.buf)
            {
                self.buf.truncate(BATCH_HEADER_SIZE);
                return Err(e);
            }
        }
        let batch_length = self.buf.len() - LOG_OVERHEAD;
        let Ok(batch_length) = i32::try_from(batch_length) else {
            if !matches!(self.compression, Compression::None) {
                self.buf.truncate(BATCH_HEADER_SIZE);
            }
            return Err(EncodeError::TooLong {
                what: "record batch",
                len: batch_length,
                max: i32::MAX as usize,
            });
        };
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
        h[35..43].copy_from_slice(
            &self
                .log_append_time
                .unwrap_or(self.max_timestamp)
                .to_be_bytes(),
        );
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
        self.base_offset = self
            .base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
            .wrapping_add(1);
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

#[cfg(test)]
mod tests;
