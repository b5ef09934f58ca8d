//! Iterating the batches of a fetch response's `records` field, whatever
//! their format, and flattening them into records.

use bytes::Bytes;

use super::batch::{MAGIC_OFFSET, RecordBatch, Records};
use super::legacy::{LegacyBatch, LegacyRecords};
use super::record::Record;
use super::{DecodeOptions, LOG_OVERHEAD, NO_PRODUCER_ID, TimestampType};
use crate::compression::Compression;
use crate::error::DecodeError;

/// The `records` bytes of one partition in a fetch response (or a produce
/// request): a sequence of batches, possibly cut short at the end.
#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    data: Bytes,
    opts: DecodeOptions,
}

impl RecordSet {
    /// Wraps `data` with the default [`DecodeOptions`].
    pub fn new(data: Bytes) -> Self {
        RecordSet {
            data,
            opts: DecodeOptions::default(),
        }
    }

    /// Wraps `data` with explicit options.
    pub fn with_options(data: Bytes, opts: DecodeOptions) -> Self {
        RecordSet { data, opts }
    }

    /// The raw bytes.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.data
    }

    /// True when there are no bytes at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Iterates the batches.
    pub fn batches(&self) -> Batches {
        Batches::with_options(self.data.clone(), self.opts)
    }

    /// Iterates the records of every data batch in order, skipping control
    /// batches. Consumers that filter aborted transactions need the batch
    /// context and should use [`batches`](Self::batches) instead.
    pub fn records(&self) -> SetRecords {
        SetRecords {
            batches: self.batches(),
            current: None,
            include_control: false,
        }
    }
}

/// One batch of either format.
#[derive(Debug, Clone)]
pub enum Batch {
    /// A magic-2 record batch.
    V2(RecordBatch),
    /// A magic 0 or 1 message (possibly a compressed wrapper).
    Legacy(LegacyBatch),
}

impl Batch {
    /// 0, 1 or 2.
    #[inline]
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(b) => b.magic(),
            Batch::Legacy(b) => b.magic(),
        }
    }

    /// The offset of the last record.
    #[inline]
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.last_offset(),
            Batch::Legacy(b) => b.last_offset(),
        }
    }

    /// The offset to fetch after this batch.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The codec.
    #[inline]
    pub fn compression(&self) -> Compression {
        match self {
            Batch::V2(b) => b.compression(),
            Batch::Legacy(b) => b.compression(),
        }
    }

    /// The timestamp type.
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        match self {
            Batch::V2(b) => b.timestamp_type(),
            Batch::Legacy(b) => b.timestamp_type(),
        }
    }

    /// True for a transactional magic-2 batch.
    #[inline]
    pub fn is_transactional(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_transactional())
    }

    /// True for a magic-2 control batch.
    #[inline]
    pub fn is_control(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_control())
    }

    /// The producer id (-1 for legacy messages).
    #[inline]
    pub fn producer_id(&self) -> i64 {
        match self {
            Batch::V2(b) => b.producer_id(),
            Batch::Legacy(_) => NO_PRODUCER_ID,
        }
    }

    /// The encoded size in bytes.
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        match self {
            Batch::V2(b) => b.size_in_bytes(),
            Batch::Legacy(b) => b.size_in_bytes(),
        }
    }

    /// Iterates the batch's records.
    pub fn records(&self) -> BatchRecords {
        BatchRecords(match self {
            Batch::V2(b) => Inner::V2(b.records()),
            Batch::Legacy(b) => Inner::Legacy(b.records()),
        })
    }
}

/// Iterator over the batches in a record set.
///
/// Ends cleanly at a batch cut short by the end of the data (see
/// [`truncated_tail`](Self::truncated_tail)); ends with an error at a
/// corrupt batch.
#[derive(Debug, Clone)]
pub struct Batches {
    data: Bytes,
    opts: DecodeOptions,
    truncated: usize,
    done: bool,
}

impl Batches {
    /// Iterates the batches in `data` with default options.
    pub fn new(data: Bytes) -> Self {
        Self::with_options(data, DecodeOptions::default())
    }

    /// Iterates the batches in `data`.
    pub fn with_options(data: Bytes, opts: DecodeOptions) -> Self {
        Batches {
            data,
            opts,
            truncated: 0,
            done: false,
        }
    }

    /// True once iteration has stopped at a partial batch at the end of the
    /// data, as brokers send when a fetch hits `max_bytes`.
    ///
    /// If that partial batch was the first one, the batch does not fit in
    /// the fetch size at all: fetch again with a larger `max_bytes`.
    #[inline]
    pub fn truncated_tail(&self) -> bool {
        self.truncated > 0
    }

    /// How many bytes the partial tail batch had (0 if none).
    #[inline]
    pub fn truncated_bytes(&self) -> usize {
        self.truncated
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, DecodeError> {
        let rem = self.data.len();
        if rem == 0 {
            return Ok(None);
        }
        if rem < LOG_OVERHEAD {
            self.truncated = rem;
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.data[8], self.data[9], self.data[10], self.data[11]]);
        if size < 0 {
            return Err(DecodeError::NegativeLength {
                what: "record batch length",
                len: i64::from(size),
            });
        }
        let size = size as usize;
        if size > self.opts.max_batch_size() {
            return Err(DecodeError::TooLarge {
                what: "record batch",
                len: size as u64,
                limit: self.opts.max_batch_size() as u64,
            });
        }
        if LOG_OVERHEAD + size > rem {
            self.truncated = rem;
            return Ok(None);
        }
        let Some(&magic) = self
            .data
            .get(MAGIC_OFFSET)
            .filter(|_| size > MAGIC_OFFSET - LOG_OVERHEAD)
        else {
            return Err(DecodeError::Invalid {
                what: "record batch",
                reason: format!("size {size} is too small"),
            });
        };
        match magic as i8 {
            2 => RecordBatch::decode_with(&mut self.data, &self.opts).map(|b| Some(Batch::V2(b))),
            0 | 1 => {
                LegacyBatch::decode_with(&mut self.data, &self.opts).map(|b| Some(Batch::Legacy(b)))
            }
            m => Err(DecodeError::UnsupportedMagic(m)),
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Batches {}

#[derive(Debug, Clone)]
enum Inner {
    V2(Records),
    Legacy(LegacyRecords),
}

/// Iterator over one [`Batch`]'s records, whatever its format.
#[derive(Debug, Clone)]
pub struct BatchRecords(Inner);

impl Iterator for BatchRecords {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::V2(r) => r.next(),
            Inner::Legacy(r) => r.next(),
        }
    }
}

impl std::iter::FusedIterator for BatchRecords {}

/// Iterator over the records of all batches in a [`RecordSet`].
///
/// Ends after the first error, and cleanly at a truncated tail.
#[derive(Debug, Clone)]
pub struct SetRecords {
    batches: Batches,
    current: Option<BatchRecords>,
    include_control: bool,
}

impl SetRecords {
    /// Also yields the records of control batches (skipped by default).
    pub fn include_control(mut self, include: bool) -> Self {
        self.include_control = include;
        self
    }

    /// See [`Batches::truncated_tail`]; meaningful once iteration ended.
    #[inline]
    pub fn truncated_tail(&self) -> bool {
        self.batches.truncated_tail()
    }
}

impl Iterator for SetRecords {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(records) = &mut self.current {
                match records.next() {
                    Some(Ok(r)) => return Some(Ok(r)),
                    Some(Err(e)) => {
                        self.current = None;
                        self.batches.done = true;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            match self.batches.next()? {
                Ok(batch) if batch.is_control() && !self.include_control => {}
                Ok(batch) => self.current = Some(batch.records()),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::iter::FusedIterator for SetRecords {}
