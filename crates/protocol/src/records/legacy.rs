//! Legacy message sets (magic 0 and 1): decode only.
//!
//! A legacy "batch" is one top-level message. If it is compressed, it is a
//! wrapper whose value decompresses to another message set, which may hold
//! further wrappers. The iterator walks them with an explicit stack bounded
//! by [`DecodeOptions::max_nesting`], and caps all their decompressed bytes
//! together by [`DecodeOptions::decompressed_limit`].

use bytes::{Buf, Bytes};

use super::cursor::Cursor;
use super::record::{Headers, Record};
use super::{DecodeOptions, LOG_OVERHEAD, NO_TIMESTAMP, TimestampType};
use crate::compression::{self, Compression};
use crate::error::DecodeError;

const COMPRESSION_MASK: i8 = 0x07;
const TIMESTAMP_TYPE_FLAG: i8 = 0x08;

/// One legacy message, its fields sliced from the buffer it was read from.
#[derive(Debug, Clone)]
struct Message {
    offset: i64,
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

impl Message {
    fn compression(&self) -> Result<Compression, DecodeError> {
        let codec = Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)?;
        if matches!(codec, Compression::Zstd) {
            return Err(DecodeError::Invalid {
                what: "legacy message",
                reason: format!("zstd compression needs magic 2, found magic {}", self.magic),
            });
        }
        Ok(codec)
    }

    fn log_append_time(&self) -> bool {
        self.magic >= 1 && self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }
}

/// Parses the message at `data[pos..]`; returns it and the position after it.
fn parse_message(
    data: &Bytes,
    pos: usize,
    verify_crc: bool,
) -> Result<(Message, usize), DecodeError> {
    let mut c = Cursor::new(data, pos);
    let offset = c.i64("message offset")?;
    let size = c.i32("message size")?;
    if size < 0 {
        return Err(DecodeError::NegativeLength {
            what: "message size",
            len: i64::from(size),
        });
    }
    let body = c.take(size as usize, "message")?;
    let mut c = Cursor::new(&data[..body.end], body.start);
    let crc = c.u32("message crc")?;
    let magic = c.u8("message magic")? as i8;
    if !matches!(magic, 0 | 1) {
        return Err(DecodeError::UnsupportedMagic(magic));
    }
    if verify_crc {
        let computed = crc32fast::hash(&data[body.start + 4..body.end]);
        if computed != crc {
            return Err(DecodeError::CrcMismatch {
                what: "message CRC32",
                stored: crc,
                computed,
            });
        }
    }
    let attributes = c.u8("message attributes")? as i8;
    let timestamp = if magic == 1 {
        c.i64("message timestamp")?
    } else {
        NO_TIMESTAMP
    };
    let key = c.i32_bytes("message key")?;
    let value = c.i32_bytes("message value")?;
    if c.pos() != body.end {
        return Err(DecodeError::TrailingBytes {
            what: "message",
            remaining: body.end - c.pos(),
        });
    }
    let msg = Message {
        offset,
        crc,
        magic,
        attributes,
        timestamp,
        key: key.map(|r| data.slice(r)),
        value: value.map(|r| data.slice(r)),
    };
    Ok((msg, body.end))
}

/// The offset field of the last message in `set`, walking only the
/// `offset | size` prefixes.
fn last_inner_offset(set: &[u8]) -> Result<i64, DecodeError> {
    let mut c = Cursor::new(set, 0);
    let mut last = None;
    while c.remaining() > 0 {
        last = Some(c.i64("message offset")?);
        let size = c.i32("message size")?;
        if size < 0 {
            return Err(DecodeError::NegativeLength {
                what: "message size",
                len: i64::from(size),
            });
        }
        c.take(size as usize, "message")?;
    }
    last.ok_or_else(|| DecodeError::Invalid {
        what: "compressed message set",
        reason: "no inner messages".into(),
    })
}

/// One top-level legacy message (magic 0 or 1), possibly a compressed wrapper.
#[derive(Debug, Clone)]
pub struct LegacyBatch {
    raw: Bytes,
    msg: Message,
    compression: Compression,
    opts: DecodeOptions,
}

impl LegacyBatch {
    /// Decodes the message at the front of `buf`, advancing past it.
    ///
    /// A `buf` shorter than the message is [`DecodeError::Truncated`]; `buf`
    /// is left untouched on any error.
    pub fn decode_with(buf: &mut Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(buf, 8);
        let size = c.i32("message size")?;
        if size < 0 {
            return Err(DecodeError::NegativeLength {
                what: "message size",
                len: i64::from(size),
            });
        }
        if size as usize > opts.max_batch_size() {
            return Err(DecodeError::TooLarge {
                what: "message",
                len: size as u64,
                limit: opts.max_batch_size() as u64,
            });
        }
        let total = LOG_OVERHEAD + size as usize;
        if buf.len() < total {
            return Err(DecodeError::Truncated {
                what: "message",
                needed: total,
                remaining: buf.len(),
            });
        }
        let raw = buf.slice(..total);
        let (msg, _) = parse_message(&raw, 0, opts.verify_crc())?;
        let compression = msg.compression()?;
        buf.advance(total);
        Ok(LegacyBatch {
            raw,
            msg,
            compression,
            opts: *opts,
        })
    }

    /// The whole encoded message.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The encoded size in bytes.
    #[inline]
    pub fn size_in_bytes(&self) -> usize {
        self.raw.len()
    }

    /// The message's offset; for a wrapper, the offset of its last inner record.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.msg.offset
    }

    /// The offset of the last record (the same as [`offset`](Self::offset)).
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.msg.offset
    }

    /// 0 or 1.
    #[inline]
    pub fn magic(&self) -> i8 {
        self.msg.magic
    }

    /// The stored CRC32.
    #[inline]
    pub fn crc(&self) -> u32 {
        self.msg.crc
    }

    /// The raw attributes byte.
    #[inline]
    pub fn attributes(&self) -> i8 {
        self.msg.attributes
    }

    /// The codec of a wrapper, `None` for a plain message.
    #[inline]
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// `NoTimestamp` for magic 0, else create or log-append time.
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.msg.magic == 0 {
            TimestampType::NoTimestamp
        } else {
            TimestampType::from_attribute_bit(self.msg.log_append_time())
        }
    }

    /// The message's own timestamp (-1 for magic 0).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.msg.timestamp
    }

    /// Iterates the records: the message itself, or a wrapper's inner
    /// messages, nested wrappers flattened.
    pub fn records(&self) -> LegacyRecords {
        LegacyRecords {
            pending: Some((self.msg.clone(), self.msg.offset, None)),
            stack: Vec::new(),
            decompressed: 0,
            opts: self.opts,
            done: false,
        }
    }
}

/// An open compressed wrapper: its decompressed inner set and how to turn
/// inner offsets and timestamps into absolute ones.
#[derive(Debug, Clone)]
struct Frame {
    data: Bytes,
    pos: usize,
    /// `Some(absolute base)` when inner offsets are relative (magic 1).
    relative_base: Option<i64>,
    /// The log-append time that overrides inner timestamps, if any.
    timestamp_override: Option<i64>,
}

/// Iterator over the records of a [`LegacyBatch`].
///
/// Ends after the first error.
#[derive(Debug, Clone)]
pub struct LegacyRecords {
    pending: Option<(Message, i64, Option<i64>)>,
    stack: Vec<Frame>,
    decompressed: usize,
    opts: DecodeOptions,
    done: bool,
}

impl LegacyRecords {
    /// Turns a message into a record, or opens it as a wrapper.
    fn visit(
        &mut self,
        msg: Message,
        offset: i64,
        ts_override: Option<i64>,
    ) -> Result<Option<Record>, DecodeError> {
        let codec = msg.compression()?;
        if matches!(codec, Compression::None) {
            return Ok(Some(Record {
                offset,
                timestamp: ts_override.unwrap_or(msg.timestamp),
                key: msg.key,
                value: msg.value,
                headers: Headers::empty(),
            }));
        }
        if self.stack.len() >= self.opts.max_nesting() {
            return Err(DecodeError::NestingTooDeep {
                limit: self.opts.max_nesting(),
            });
        }
        let value = msg.value.as_ref().ok_or(DecodeError::UnexpectedNull {
            what: "compressed message value",
        })?;
        let budget = self
            .opts
            .decompressed_limit()
            .saturating_sub(self.decompressed);
        let inner = if matches!(codec, Compression::Lz4) && msg.magic == 0 {
            compression::decompress_lz4_legacy(value, budget)?
        } else {
            compression::decompress(codec, value, budget)?
        };
        if inner.len() > budget {
            return Err(DecodeError::DecompressedTooLarge {
                codec: codec.name(),
                limit: self.opts.decompressed_limit(),
            });
        }
        self.decompressed += inner.len();
        let last = last_inner_offset(&inner)?;
        let relative_base = (msg.magic >= 1).then(|| offset.wrapping_sub(last));
        let own_override = msg.log_append_time().then_some(msg.timestamp);
        self.stack.push(Frame {
            data: inner,
            pos: 0,
            relative_base,
            timestamp_override: ts_override.or(own_override),
        });
        Ok(None)
    }
}

impl Iterator for LegacyRecords {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let (msg, offset, ts_override) = match self.pending.take() {
                Some(p) => p,
                None => {
                    let Some(frame) = self.stack.last_mut() else {
                        self.done = true;
                        return None;
                    };
                    if frame.pos >= frame.data.len() {
                        self.stack.pop();
                        continue;
                    }
                    match parse_message(&frame.data, frame.pos, self.opts.verify_crc()) {
                        Ok((msg, end)) => {
                            frame.pos = end;
                            let offset = frame
                                .relative_base
                                .map_or(msg.offset, |b| b.wrapping_add(msg.offset));
                            (msg, offset, frame.timestamp_override)
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            };
            match self.visit(msg, offset, ts_override) {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for LegacyRecords {}

#[cfg(test)]
pub(crate) mod tests;
