//! The record view shared by every format, its lazily parsed headers, and
//! the parser for one magic-2 record.

use std::fmt;

use bytes::Bytes;

use super::cursor::Cursor;
use crate::error::DecodeError;

/// One record, whatever format it came from.
///
/// `key`, `value` and the header bytes are slices of the buffer the batch
/// was decoded from (or decompressed into): a `Record` owns no allocation of
/// its own, and cloning one only bumps reference counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The absolute offset in the partition.
    pub offset: i64,
    /// The absolute timestamp in milliseconds; for a log-append-time batch
    /// the broker's time (the batch's `maxTimestamp`); -1 for magic 0.
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The headers (always empty for legacy formats).
    pub headers: Headers,
}

/// A record's headers, parsed only when iterated.
///
/// The bytes were validated when the record was decoded, so iteration
/// cannot fail.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    count: u32,
    data: Bytes,
}

impl Headers {
    /// No headers (what legacy records carry).
    #[inline]
    pub fn empty() -> Self {
        Headers::default()
    }

    /// The number of headers.
    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are no headers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers in wire order.
    #[inline]
    pub fn iter(&self) -> HeaderIter {
        HeaderIter {
            data: self.data.clone(),
            pos: 0,
            left: self.count,
        }
    }

    /// The last header named `key` (Kafka's `lastHeader`), if any.
    pub fn get(&self, key: &str) -> Option<Header> {
        self.iter().filter(|h| h.key == key.as_bytes()).last()
    }

    /// The encoded header bytes (each header's key and value lengths and
    /// bytes, without the count).
    #[inline]
    pub fn raw(&self) -> &Bytes {
        &self.data
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl IntoIterator for &Headers {
    type Item = Header;
    type IntoIter = HeaderIter;

    fn into_iter(self) -> HeaderIter {
        self.iter()
    }
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key, which Kafka defines as UTF-8; see [`Header::key_str`].
    pub key: Bytes,
    /// The header's value, `None` for null.
    pub value: Option<Bytes>,
}

impl Header {
    /// The key as a `&str`, or [`DecodeError::InvalidUtf8`] if it is not UTF-8.
    #[inline]
    pub fn key_str(&self) -> Result<&str, DecodeError> {
        std::str::from_utf8(&self.key).map_err(|_| DecodeError::InvalidUtf8 { what: "header key" })
    }
}

/// Iterator over [`Headers`].
#[derive(Debug, Clone)]
pub struct HeaderIter {
    data: Bytes,
    pos: usize,
    left: u32,
}

impl Iterator for HeaderIter {
    type Item = Header;

    #[inline]
    fn next(&mut self) -> Option<Header> {
        if self.left == 0 {
            return None;
        }
        let mut c = Cursor::new(&self.data, self.pos);
        // Validated at record decode time; a failure here would mean the
        // view was built from unchecked bytes, so just stop.
        let key = c.varint_bytes("header key").ok()??;
        let value = c.varint_bytes("header value").ok()?;
        self.pos = c.pos();
        self.left -= 1;
        Some(Header {
            key: self.data.slice(key),
            value: value.map(|r| self.data.slice(r)),
        })
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for HeaderIter {}

/// The per-batch context needed to turn deltas into absolute values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBase {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    /// `Some(maxTimestamp)` for log-append-time batches.
    pub(crate) log_append_time: Option<i64>,
}

/// Parses the magic-2 record at `data[pos..]`; returns it and the position
/// after it.
///
/// Checks that the record's `length` covers exactly its fields, and walks
/// the headers (without allocating) so that [`Headers`] iteration is safe.
#[inline]
pub(crate) fn parse_record(
    data: &Bytes,
    pos: usize,
    base: &RecordBase,
) -> Result<(Record, usize), DecodeError> {
    let buf: &[u8] = data;
    let mut c = Cursor::new(buf, pos);
    let len = c.varint("record length")?;
    if len < 0 {
        return Err(DecodeError::NegativeLength {
            what: "record length",
            len: i64::from(len),
        });
    }
    let body = c.take(len as usize, "record")?;
    // Read the body through a cursor that ends where the record does.
    let mut c = Cursor::new(&buf[..body.end], body.start);
    let _attributes = c.u8("record attributes")?;
    let timestamp_delta = c.varlong("record timestampDelta")?;
    let offset_delta = c.varint("record offsetDelta")?;
    let key = c.varint_bytes("record key")?;
    let value = c.varint_bytes("record value")?;
    let header_count = c.varint("record headers count")?;
    if header_count < 0 {
        return Err(DecodeError::NegativeLength {
            what: "record headers count",
            len: i64::from(header_count),
        });
    }
    let headers_start = c.pos();
    for _ in 0..header_count {
        match c.varint_bytes("header key")? {
            Some(_) => {}
            None => return Err(DecodeError::UnexpectedNull { what: "header key" }),
        }
        c.varint_bytes("header value")?;
    }
    if c.pos() != body.end {
        return Err(DecodeError::Invalid {
            what: "record",
            reason: format!(
                "length field says {len} bytes but the fields take {}",
                c.pos() - body.start
            ),
        });
    }
    let headers = if header_count == 0 {
        Headers::empty()
    } else {
        Headers {
            count: header_count as u32,
            data: data.slice(headers_start..body.end),
        }
    };
    let record = Record {
        offset: base.offset.wrapping_add(i64::from(offset_delta)),
        timestamp: base
            .log_append_time
            .unwrap_or_else(|| base.timestamp.wrapping_add(timestamp_delta)),
        key: key.map(|r| data.slice(r)),
        value: value.map(|r| data.slice(r)),
        headers,
    };
    Ok((record, body.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: RecordBase = RecordBase {
        offset: 100,
        timestamp: 1_000,
        log_append_time: None,
    };

    fn record_bytes(body: &[u8]) -> Bytes {
        let mut v = vec![(body.len() as u8) << 1];
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn parses_a_record_with_headers() {
        // attrs, tsDelta 5, offDelta 2, key "k", value null, 2 headers.
        let data = record_bytes(&[0, 10, 4, 2, b'k', 1, 4, 2, b'a', 2, b'1', 2, b'b', 1]);
        let (r, end) = parse_record(&data, 0, &BASE).unwrap();
        assert_eq!(end, data.len());
        assert_eq!((r.offset, r.timestamp), (102, 1_005));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value, None);
        let hs: Vec<Header> = r.headers.iter().collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].key_str().unwrap(), "a");
        assert_eq!(hs[0].value.as_deref(), Some(&b"1"[..]));
        assert_eq!(hs[1].value, None);
        assert_eq!(r.headers.get("b").unwrap().key, "b");
        assert!(r.headers.get("zz").is_none());
    }

    #[test]
    fn log_append_time_overrides() {
        let data = record_bytes(&[0, 10, 0, 1, 1, 0]);
        let base = RecordBase {
            log_append_time: Some(77),
            ..BASE
        };
        assert_eq!(parse_record(&data, 0, &base).unwrap().0.timestamp, 77);
    }

    #[test]
    fn length_must_match_the_fields() {
        // One spare byte inside the record.
        let data = record_bytes(&[0, 0, 0, 1, 1, 0, 9]);
        assert!(matches!(
            parse_record(&data, 0, &BASE),
            Err(DecodeError::Invalid { .. })
        ));
        // Fields running past the declared length.
        let data = record_bytes(&[0, 0, 0, 1, 1, 2, 2, b'a', 1]);
        let short = data.slice(..data.len() - 1);
        let mut v = short.to_vec();
        v[0] = ((v.len() - 1) as u8) << 1;
        assert!(parse_record(&Bytes::from(v), 0, &BASE).is_err());
    }

    #[test]
    fn null_header_key_is_rejected() {
        let data = record_bytes(&[0, 0, 0, 1, 1, 2, 1, 1]);
        assert_eq!(
            parse_record(&data, 0, &BASE).unwrap_err(),
            DecodeError::UnexpectedNull { what: "header key" }
        );
    }

    #[test]
    fn invalid_utf8_key_is_reported_lazily() {
        let data = record_bytes(&[0, 0, 0, 1, 1, 2, 2, 0xff, 1]);
        let (r, _) = parse_record(&data, 0, &BASE).unwrap();
        assert!(r.headers.iter().next().unwrap().key_str().is_err());
    }
}
