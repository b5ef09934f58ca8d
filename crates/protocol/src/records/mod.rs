//! Kafka's record formats: record batches (magic 2) and the legacy message
//! sets (magic 0 and 1), decoded without copying and encoded in place.
//!
//! # The formats
//!
//! A fetch response's `records` field, and a produce request's, is a
//! concatenation of *batches*. Every batch, whatever its format, starts with
//! the same 17 bytes: an `int64` offset, an `int32` size counting the bytes
//! that follow it, four more bytes and then the `int8` *magic* at byte 16,
//! which tells the format apart.
//!
//! **Magic 2** (Kafka 0.11+, KIP-98) is the record batch:
//!
//! ```text
//! baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (2)
//! crc uint32 (CRC32C of everything from attributes to the end)
//! attributes int16  (bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                    5 control, 6 hasDeleteHorizonMs)
//! lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
//! producerId int64 | producerEpoch int16 | baseSequence int32
//! recordsCount int32 | records (compressed as one block when a codec is set)
//! ```
//!
//! Each record is `length varint | attributes int8 | timestampDelta varlong |
//! offsetDelta varint | key (varint length, -1 null) | value (same) |
//! headers (varint count, then key varint length + UTF-8, value varint length
//! or -1)`. Offsets and timestamps are deltas from the batch's base; a batch
//! whose timestamp type is log-append time gives every record the batch's
//! `maxTimestamp`. Control batches (transaction markers) hold
//! [`ControlRecord`]s.
//!
//! **Magic 0 and 1** (KIP-32 added the timestamp of magic 1) are single
//! messages: `offset int64 | size int32 | crc uint32 (IEEE CRC32 of the rest) |
//! magic int8 | attributes int8 | [timestamp int64] | key bytes | value bytes`.
//! A compressed message is a *wrapper*: its value is a whole compressed
//! message set. In magic 1 the inner offsets are relative, the wrapper
//! carrying the absolute offset of the last inner message; wrappers may be
//! nested, which this crate follows up to [`DecodeOptions::max_nesting`]
//! levels. Both legacy formats are decode-only.
//!
//! # Zero-copy design
//!
//! Decoding works on [`bytes::Bytes`]. A batch keeps a handle to the fetch
//! response buffer (or, for a compressed batch, to the one buffer it
//! decompresses into), and each [`Record`] is a small view: its key, value
//! and headers are [`Bytes::slice`](bytes::Bytes::slice)s of that buffer,
//! and [`Headers`] is parsed lazily when iterated. Iterating the records of
//! an uncompressed batch therefore allocates nothing at all — a record costs
//! a few reference-count increments. Every length is checked against the
//! bytes that remain before it is used, decompression is capped by
//! [`DecodeOptions::decompressed_limit`], nesting by
//! [`DecodeOptions::max_nesting`], and no input can make the decoder panic.
//!
//! Encoding ([`RecordBatchBuilder`]) appends records straight into a
//! [`BytesMut`](bytes::BytesMut) after a placeholder header, and on
//! [`finish`](RecordBatchBuilder::finish) patches the header and CRC in
//! place; with a codec the records are staged in a reused scratch buffer and
//! compressed into the output once.
//!
//! # Entry points
//!
//! - [`RecordSet`] over a fetch response's `records` bytes: [`RecordSet::batches`]
//!   yields [`Batch`]es of either format, [`RecordSet::records`] flattens them.
//!   A batch cut short at the end (brokers cut at `max_bytes`) ends the
//!   iteration cleanly and is reported by [`Batches::truncated_tail`].
//! - [`RecordBatch`] for one magic-2 batch, [`LegacyBatch`] for one legacy
//!   message (possibly a wrapper).
//! - [`RecordBatchBuilder`] and [`control_batch`] to encode.

mod batch;
mod builder;
mod control;
mod cursor;
mod encode;
mod legacy;
mod record;
mod set;
#[cfg(test)]
mod tests;

pub use batch::{RecordBatch, Records};
pub use builder::RecordBatchBuilder;
pub use control::{ControlRecord, ControlRecordType, EndTxnMarker, control_batch};
pub use legacy::{LegacyBatch, LegacyRecords};
pub use record::{Header, HeaderIter, Headers, Record};
pub use set::{Batch, BatchRecords, Batches, RecordSet, SetRecords};

use crate::compression::DEFAULT_DECOMPRESSED_LIMIT;

/// Bytes before every batch's size field is counted: `offset int64` and
/// `size int32`. A batch occupies `LOG_OVERHEAD + size` bytes.
pub const LOG_OVERHEAD: usize = 12;

/// The size of a magic-2 batch header, up to and including `recordsCount`.
pub const BATCH_HEADER_SIZE: usize = 61;

/// The `producerId` of a batch written without an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// The `producerEpoch` of a batch written without an idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The `baseSequence` of a batch written without an idempotent producer.
pub const NO_SEQUENCE: i32 = -1;
/// The `partitionLeaderEpoch` a producer writes; the broker fills it in.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// The timestamp of records that have none (magic 0).
pub const NO_TIMESTAMP: i64 = -1;

/// Default for [`DecodeOptions::max_nesting`].
pub const DEFAULT_MAX_NESTING: usize = 4;
/// Default for [`DecodeOptions::max_batch_size`]: 1 GiB.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 1 << 30;

/// How a batch's timestamps were assigned (attribute bit 3, magic 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's timestamp (`CreateTime`).
    #[default]
    CreateTime,
    /// The broker's timestamp when it appended the batch (`LogAppendTime`).
    LogAppendTime,
    /// No timestamps at all (magic 0 messages).
    NoTimestamp,
}

impl TimestampType {
    /// The type that attribute bit 3 selects (for magic 1 and 2).
    #[inline]
    pub fn from_attribute_bit(log_append: bool) -> Self {
        if log_append {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Limits and checks applied while decoding record batches and message sets.
///
/// Every limit exists so that hostile input costs an error, never memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    verify_crc: bool,
    decompressed_limit: usize,
    max_nesting: usize,
    max_batch_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verify_crc: true,
            decompressed_limit: DEFAULT_DECOMPRESSED_LIMIT,
            max_nesting: DEFAULT_MAX_NESTING,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
        }
    }
}

impl DecodeOptions {
    /// The defaults: CRCs verified, [`DEFAULT_DECOMPRESSED_LIMIT`],
    /// [`DEFAULT_MAX_NESTING`], [`DEFAULT_MAX_BATCH_SIZE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether CRCs are verified (the Java client's `check.crcs`); default true.
    pub fn with_verify_crc(mut self, verify: bool) -> Self {
        self.verify_crc = verify;
        self
    }

    /// The most bytes one batch may decompress to (for a legacy wrapper:
    /// all its nested levels together).
    pub fn with_decompressed_limit(mut self, limit: usize) -> Self {
        self.decompressed_limit = limit;
        self
    }

    /// How many levels of compressed legacy wrappers may nest.
    pub fn with_max_nesting(mut self, levels: usize) -> Self {
        self.max_nesting = levels;
        self
    }

    /// The largest size field a batch may declare before it is rejected as
    /// [`TooLarge`](crate::DecodeError::TooLarge) rather than treated as a
    /// truncated tail.
    pub fn with_max_batch_size(mut self, bytes: usize) -> Self {
        self.max_batch_size = bytes;
        self
    }

    /// Whether CRCs are verified.
    #[inline]
    pub fn verify_crc(&self) -> bool {
        self.verify_crc
    }

    /// The decompression cap in bytes.
    #[inline]
    pub fn decompressed_limit(&self) -> usize {
        self.decompressed_limit
    }

    /// The legacy wrapper nesting limit.
    #[inline]
    pub fn max_nesting(&self) -> usize {
        self.max_nesting
    }

    /// The largest accepted batch size field.
    #[inline]
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }
}
