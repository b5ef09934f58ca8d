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
fn parse_message(data: &Bytes, pos: usize, verify_crc: bool) -> Result<(Message, usize), DecodeError> {
    let mut c = Cursor::new(data, pos);
    let offset = c.i64("message offset")?;
    let size = c.i32("message size")?;
    if size < 0 {
        return Err(DecodeError::NegativeLength { what: "message size", len: i64::from(size) });
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
            return Err(DecodeError::CrcMismatch { what: "message CRC32", stored: crc, computed });
        }
    }
    let attributes = c.u8("message attributes")? as i8;
    let timestamp = if magic == 1 { c.i64("message timestamp")? } else { NO_TIMESTAMP };
    let key = c.i32_bytes("message key")?;
    let value = c.i32_bytes("message value")?;
    if c.pos() != body.end {
        return Err(DecodeError::TrailingBytes { what: "message", remaining: body.end - c.pos() });
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
            return Err(DecodeError::NegativeLength { what: "message size", len: i64::from(size) });
        }
        c.take(size as usize, "message")?;
    }
    last.ok_or_else(|| DecodeError::Invalid { what: "compressed message set", reason: "no inner messages".into() })
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
            return Err(DecodeError::NegativeLength { what: "message size", len: i64::from(size) });
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
            return Err(DecodeError::Truncated { what: "message", needed: total, remaining: buf.len() });
        }
        let raw = buf.slice(..total);
        let (msg, _) = parse_message(&raw, 0, opts.verify_crc())?;
        let compression = msg.compression()?;
        buf.advance(total);
        Ok(LegacyBatch { raw, msg, compression, opts: *opts })
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
    fn visit(&mut self, msg: Message, offset: i64, ts_override: Option<i64>) -> Result<Option<Record>, DecodeError> {
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
            return Err(DecodeError::NestingTooDeep { limit: self.opts.max_nesting() });
        }
        let value = msg.value.as_ref().ok_or(DecodeError::UnexpectedNull { what: "compressed message value" })?;
        let budget = self.opts.decompressed_limit().saturating_sub(self.decompressed);
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
        self.stack.push(Frame { data: inner, pos: 0, relative_base, timestamp_override: ts_override.or(own_override) });
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
                            let offset = frame.relative_base.map_or(msg.offset, |b| b.wrapping_add(msg.offset));
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
pub(crate) mod tests {
    use super::*;
    use crate::records::{Batch, RecordSet};
    use bytes::{BufMut, BytesMut};

    /// Encodes one legacy message (test-only: the crate does not write v0/v1).
    pub(crate) fn message(
        offset: i64,
        magic: i8,
        attributes: i8,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = BytesMut::new();
        body.put_i8(magic);
        body.put_i8(attributes);
        if magic == 1 {
            body.put_i64(timestamp);
        }
        for field in [key, value] {
            match field {
                None => body.put_i32(-1),
                Some(b) => {
                    body.put_i32(b.len() as i32);
                    body.put_slice(b);
                }
            }
        }
        let mut out = BytesMut::new();
        out.put_i64(offset);
        out.put_i32(body.len() as i32 + 4);
        out.put_u32(crc32fast::hash(&body));
        out.put_slice(&body);
        out.to_vec()
    }

    /// Encodes a compressed wrapper around the message set `inner`.
    pub(crate) fn wrapper(
        offset: i64,
        magic: i8,
        codec: Compression,
        log_append: bool,
        ts: i64,
        inner: &[u8],
    ) -> Vec<u8> {
        let mut compressed = BytesMut::new();
        if magic == 0 && matches!(codec, Compression::Lz4) {
            compression::compress_lz4_legacy(None, inner, &mut compressed).unwrap();
        } else {
            compression::compress(codec, None, inner, &mut compressed).unwrap();
        }
        let attrs = codec.id() as i8 | if log_append { TIMESTAMP_TYPE_FLAG } else { 0 };
        message(offset, magic, attrs, ts, None, Some(&compressed))
    }

    fn collect(set: Vec<u8>, opts: DecodeOptions) -> Result<Vec<Record>, DecodeError> {
        RecordSet::with_options(Bytes::from(set), opts).records().collect()
    }

    fn offsets_and_ts(records: &[Record]) -> Vec<(i64, i64)> {
        records.iter().map(|r| (r.offset, r.timestamp)).collect()
    }

    #[test]
    fn plain_v0_and_v1_sets() {
        let mut set = message(5, 0, 0, 0, Some(b"k"), Some(b"v"));
        set.extend(message(6, 0, 0, 0, None, None));
        set.extend(message(7, 1, 0, 1234, None, Some(b"x")));
        set.extend(message(8, 1, TIMESTAMP_TYPE_FLAG, 99, Some(b""), Some(b"y")));
        let recs = collect(set.clone(), DecodeOptions::default()).unwrap();
        assert_eq!(offsets_and_ts(&recs), vec![(5, -1), (6, -1), (7, 1234), (8, 99)]);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!((recs[1].key.clone(), recs[1].value.clone()), (None, None));
        assert_eq!(recs[3].key.as_deref(), Some(&b""[..]));
        assert!(recs.iter().all(|r| r.headers.is_empty()));
        let batches: Vec<Batch> = RecordSet::new(Bytes::from(set)).batches().collect::<Result<_, _>>().unwrap();
        assert_eq!(batches[0].timestamp_type(), TimestampType::NoTimestamp);
        assert_eq!(batches[3].timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batches[2].magic(), 1);
    }

    #[test]
    fn v1_wrapper_relative_offsets() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            let mut inner = message(0, 1, 0, 10, None, Some(b"a"));
            inner.extend(message(1, 1, 0, 11, None, Some(b"b")));
            inner.extend(message(2, 1, 0, 12, None, Some(b"c")));
            let set = wrapper(102, 1, codec, false, 12, &inner);
            let recs = collect(set, DecodeOptions::default()).unwrap();
            assert_eq!(offsets_and_ts(&recs), vec![(100, 10), (101, 11), (102, 12)], "{codec}");
            assert_eq!(recs[2].value.as_deref(), Some(&b"c"[..]));
        }
    }

    #[test]
    fn v1_log_append_wrapper_overrides_timestamps() {
        let mut inner = message(0, 1, 0, 10, None, Some(b"a"));
        inner.extend(message(1, 1, 0, 11, None, Some(b"b")));
        let set = wrapper(41, 1, Compression::Gzip, true, 777, &inner);
        let recs = collect(set, DecodeOptions::default()).unwrap();
        assert_eq!(offsets_and_ts(&recs), vec![(40, 777), (41, 777)]);
    }

    #[test]
    fn v0_wrapper_absolute_offsets_and_legacy_lz4() {
        for codec in [Compression::Gzip, Compression::Lz4] {
            let mut inner = message(50, 0, 0, 0, None, Some(b"a"));
            inner.extend(message(51, 0, 0, 0, Some(b"k"), Some(b"b")));
            let set = wrapper(51, 0, codec, false, 0, &inner);
            let recs = collect(set, DecodeOptions::default()).unwrap();
            assert_eq!(offsets_and_ts(&recs), vec![(50, -1), (51, -1)], "{codec}");
        }
    }

    fn nested_set() -> Vec<u8> {
        nested_set_sizes().0
    }

    /// The nested set, and the decompressed sizes of its two levels.
    fn nested_set_sizes() -> (Vec<u8>, usize, usize) {
        // Outer wrapper (absolute 203) holds a plain message at relative 0
        // and a wrapper at relative 3 whose own inner set is 0, 1, 2.
        let mut deepest = message(0, 1, 0, 1, None, Some(b"x"));
        deepest.extend(message(1, 1, 0, 2, None, Some(b"y")));
        deepest.extend(message(2, 1, 0, 3, None, Some(b"z")));
        let mut middle = message(0, 1, 0, 0, None, Some(b"w"));
        middle.extend(wrapper(3, 1, Compression::Snappy, false, 3, &deepest));
        let mut set = wrapper(203, 1, Compression::Gzip, false, 3, &middle);
        set.extend(message(204, 1, 0, 9, None, Some(b"after")));
        (set, middle.len(), deepest.len())
    }

    #[test]
    fn two_level_nested_wrappers() {
        let recs = collect(nested_set(), DecodeOptions::default()).unwrap();
        assert_eq!(offsets_and_ts(&recs), vec![(200, 0), (201, 1), (202, 2), (203, 3), (204, 9)]);
        let values: Vec<_> = recs.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, ["w", "x", "y", "z", "after"]);
    }

    #[test]
    fn nesting_and_decompression_limits() {
        let err = collect(nested_set(), DecodeOptions::default().with_max_nesting(1)).unwrap_err();
        assert_eq!(err, DecodeError::NestingTooDeep { limit: 1 });
        // The cap counts both levels together.
        let (set, middle, deepest) = nested_set_sizes();
        assert!(middle > deepest);
        let opts = DecodeOptions::default().with_decompressed_limit(middle + deepest - 1);
        let err = collect(set.clone(), opts).unwrap_err();
        assert!(matches!(err, DecodeError::DecompressedTooLarge { .. }), "{err:?}");
        assert!(collect(set, DecodeOptions::default().with_decompressed_limit(middle + deepest)).is_ok());
    }

    #[test]
    fn crc_mismatch_and_corruption() {
        let mut set = message(1, 1, 0, 5, None, Some(b"value"));
        let last = set.len() - 1;
        set[last] ^= 1;
        let err = collect(set.clone(), DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, DecodeError::CrcMismatch { what: "message CRC32", .. }));
        assert!(collect(set, DecodeOptions::default().with_verify_crc(false)).is_ok());
        // A wrapper with a null value, and one whose inner set is empty.
        let set = message(1, 1, Compression::Gzip.id() as i8, 0, None, None);
        assert!(collect(set, DecodeOptions::default()).is_err());
        let set = wrapper(1, 1, Compression::Gzip, false, 0, &[]);
        assert!(collect(set, DecodeOptions::default()).is_err());
    }

    #[test]
    fn truncated_final_message_ends_cleanly() {
        let mut set = message(1, 1, 0, 5, None, Some(b"one"));
        let whole = set.len();
        set.extend(message(2, 1, 0, 6, None, Some(b"two")));
        for cut in whole..set.len() {
            let rs = RecordSet::new(Bytes::copy_from_slice(&set[..cut]));
            let mut it = rs.records();
            assert_eq!(it.next().unwrap().unwrap().offset, 1);
            assert!(it.next().is_none(), "cut at {cut}");
            assert_eq!(it.truncated_tail(), cut > whole);
        }
    }

    #[test]
    fn truncated_inner_set_is_corruption() {
        let inner = message(0, 1, 0, 10, None, Some(b"abc"));
        let set = wrapper(0, 1, Compression::Gzip, false, 0, &inner[..inner.len() - 1]);
        assert!(collect(set, DecodeOptions::default()).unwrap_err().is_truncated());
    }
}
