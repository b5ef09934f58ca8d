//! One magic-2 record batch: header decode, CRC check, and the record
//! iterator.

use bytes::{Buf, Bytes};

use super::cursor::Cursor;
use super::record::{Record, RecordBase, parse_record};
use super::{BATCH_HEADER_SIZE, DecodeOptions, LOG_OVERHEAD, TimestampType};
use crate::compression::{self, Compression};
use crate::error::DecodeError;

pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
pub(crate) const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
pub(crate) const TRANSACTIONAL_FLAG: i16 = 0x10;
pub(crate) const CONTROL_FLAG: i16 = 0x20;
pub(crate) const DELETE_HORIZON_FLAG: i16 = 0x40;

/// The smallest record: length, attributes, timestampDelta, offsetDelta,
/// key length, value length and header count, one byte each.
const MIN_RECORD_SIZE: usize = 7;

/// A decoded magic-2 record batch.
///
/// The header is parsed and the CRC verified on decode; records are parsed
/// (and decompressed) only by [`RecordBatch::records`]. Cloning is cheap:
/// the batch holds a reference-counted slice of the input.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    raw: Bytes,
    base_offset: i64,
    partition_leader_epoch: i32,
    crc: u32,
    attributes: i16,
    compression: Compression,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    decompressed_limit: usize,
}

impl RecordBatch {
    /// Decodes the batch at the front of `buf` with default options,
    /// advancing `buf` past it.
    pub fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Self::decode_with(buf, &DecodeOptions::default())
    }

    /// Decodes the batch at the front of `buf`, advancing `buf` past it.
    ///
    /// A `buf` shorter than the batch is [`DecodeError::Truncated`] and is
    /// left untouched, as is `buf` on any other error.
    pub fn decode_with(buf: &mut Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(buf, 8);
        let batch_length = c.i32("record batch length")?;
        if batch_length < 0 {
            return Err(DecodeError::NegativeLength {
                what: "record batch length",
                len: i64::from(batch_length),
            });
        }
        let batch_length = batch_length as usize;
        if batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD {
            return Err(DecodeError::Invalid {
                what: "record batch",
                reason: format!("batchLength {batch_length} is shorter than the batch header"),
            });
        }
        if batch_length > opts.max_batch_size() {
            return Err(DecodeError::TooLarge {
                what: "record batch",
                len: batch_length as u64,
                limit: opts.max_batch_size() as u64,
            });
        }
        let total = LOG_OVERHEAD + batch_length;
        if buf.len() < total {
            return Err(DecodeError::Truncated {
                what: "record batch",
                needed: total,
                remaining: buf.len(),
            });
        }
        let batch = Self::parse_exact(buf.slice(..total), opts)?;
        buf.advance(total);
        Ok(batch)
    }

    /// Parses `raw`, which must hold exactly one batch.
    fn parse_exact(raw: Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(&raw, 0);
        let base_offset = c.i64("baseOffset")?;
        let _length = c.i32("batchLength")?;
        let partition_leader_epoch = c.i32("partitionLeaderEpoch")?;
        let magic = c.u8("magic")? as i8;
        if magic != 2 {
            return Err(DecodeError::UnsupportedMagic(magic));
        }
        let crc = c.u32("crc")?;
        if opts.verify_crc() {
            let computed = crc32c::crc32c(raw.get(ATTRIBUTES_OFFSET..).unwrap_or_default());
            if computed != crc {
                return Err(DecodeError::CrcMismatch {
                    what: "record batch CRC32C",
                    stored: crc,
                    computed,
                });
            }
        }
        let attributes = c.i16("attributes")?;
        let compression = Compression::from_id((attributes & COMPRESSION_MASK) as u8)?;
        let last_offset_delta = c.i32("lastOffsetDelta")?;
        let base_timestamp = c.i64("baseTimestamp")?;
        let max_timestamp = c.i64("maxTimestamp")?;
        let producer_id = c.i64("producerId")?;
        let producer_epoch = c.i16("producerEpoch")?;
        let base_sequence = c.i32("baseSequence")?;
        let record_count = c.i32("recordsCount")?;
        if record_count < 0 {
            return Err(DecodeError::NegativeLength {
                what: "recordsCount",
                len: i64::from(record_count),
            });
        }
        if matches!(compression, Compression::None)
            && record_count as usize > c.remaining() / MIN_RECORD_SIZE
        {
            return Err(DecodeError::Invalid {
                what: "record batch",
                reason: format!(
                    "{record_count} records cannot fit in {} bytes",
                    c.remaining()
                ),
            });
        }
        Ok(RecordBatch {
            raw,
            base_offset,
            partition_leader_epoch,
            crc,
            attributes,
            compression,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
            decompressed_limit: opts.decompressed_limit(),
        })
    }

    /// The whole encoded batch, header included.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The encoded size in bytes (`batchLength + 12`).
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        self.raw.len()
    }

    /// The offset of the first record.
    #[inline]
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The offset of the last record (`baseOffset + lastOffsetDelta`).
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset to fetch after this batch.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// `lastOffsetDelta` as written.
    #[inline]
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }

    /// The leader epoch the broker stamped on the batch.
    #[inline]
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch
    }

    /// Always 2.
    #[inline]
    pub fn magic(&self) -> i8 {
        2
    }

    /// The stored CRC32C.
    #[inline]
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The raw attributes field.
    #[inline]
    pub fn attributes(&self) -> i16 {
        self.attributes
    }

    /// The codec the records are compressed with.
    #[inline]
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Create time or log-append time.
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attribute_bit(self.attributes & TIMESTAMP_TYPE_FLAG != 0)
    }

    /// True for a batch written inside a transaction.
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// True for a batch of control records (transaction markers).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// True when `baseTimestamp` holds the compaction delete horizon.
    #[inline]
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG != 0
    }

    /// The delete horizon (`baseTimestamp`) when the batch carries one.
    #[inline]
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon().then_some(self.base_timestamp)
    }

    /// `baseTimestamp` (the first record's timestamp, normally).
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// `maxTimestamp`; for log-append time, the broker's append time.
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The producer id, -1 without an idempotent producer.
    #[inline]
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// The producer epoch, -1 without an idempotent producer.
    #[inline]
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// The sequence number of the first record, -1 without one.
    #[inline]
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }

    /// The sequence number of the last record (wrapping as Kafka does).
    #[inline]
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// `recordsCount` as written (checked against the data while iterating).
    #[inline]
    pub fn record_count(&self) -> usize {
        self.record_count as usize
    }

    /// The records section after `recordsCount`, compressed if the batch is.
    #[inline]
    pub fn records_bytes(&self) -> Bytes {
        self.raw.slice(BATCH_HEADER_SIZE..)
    }

    /// Changes the decompression cap used by [`RecordBatch::records`].
    pub fn set_decompressed_limit(&mut self, limit: usize) {
        self.decompressed_limit = limit;
    }

    /// Iterates the records, decompressing them first if needed.
    ///
    /// A decompression failure is the iterator's only item; after any error
    /// the iterator ends.
    pub fn records(&self) -> Records {
        let data = self.records_bytes();
        // Compaction can leave an empty batch that keeps its codec bits but
        // has no records section at all: nothing to decompress.
        let data = if matches!(self.compression, Compression::None)
            || (self.record_count == 0 && data.is_empty())
        {
            Ok(data)
        } else {
            compression::decompress(self.compression, &data, self.decompressed_limit)
        };
        let base = RecordBase {
            offset: self.base_offset,
            timestamp: self.base_timestamp,
            log_append_time: (self.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(self.max_timestamp),
        };
        match data {
            Ok(data) => Records::new(data, self.record_count as u32, base),
            Err(e) => Records {
                data: Bytes::new(),
                pos: 0,
                left: 0,
                base,
                error: Some(e),
                done: false,
            },
        }
    }
}

/// Iterator over the records of a [`RecordBatch`].
///
/// Yields zero-copy [`Record`] views; allocates nothing per record. Checks
/// `recordsCount` against the data: too few records for the bytes, or too
/// many for them, ends the iteration with an error.
#[derive(Debug, Clone)]
pub struct Records {
    data: Bytes,
    pos: usize,
    left: u32,
    base: RecordBase,
    error: Option<DecodeError>,
    done: bool,
}

impl Records {
    fn new(data: Bytes, count: u32, base: RecordBase) -> Self {
        let error = (count as usize > data.len() / MIN_RECORD_SIZE).then(|| DecodeError::Invalid {
            what: "record batch",
            reason: format!("{count} records cannot fit in {} bytes", data.len()),
        });
        Records {
            data,
            pos: 0,
            left: count,
            base,
            error,
            done: false,
        }
    }

    /// How many records the batch header says are still to come.
    #[inline]
    pub fn remaining_count(&self) -> usize {
        self.left as usize
    }

    #[inline]
    fn fail(&mut self, e: DecodeError) -> Option<Result<Record, DecodeError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            return self.fail(e);
        }
        if self.left == 0 {
            self.done = true;
            let extra = self.data.len().saturating_sub(self.pos);
            if extra > 0 {
                return Some(Err(DecodeError::TrailingBytes {
                    what: "record batch records",
                    remaining: extra,
                }));
            }
            return None;
        }
        match parse_record(&self.data, self.pos, &self.base) {
            Ok((record, end)) => {
                self.pos = end;
                self.left -= 1;
                Some(Ok(record))
            }
            Err(e) => self.fail(e),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.left as usize + 1))
        }
    }
}

impl std::iter::FusedIterator for Records {}
