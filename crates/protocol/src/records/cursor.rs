//! A position over a byte slice with checked, inlined readers.
//!
//! The record hot path reads varints straight from `&[u8]` and remembers
//! ranges, slicing the owning [`Bytes`](bytes::Bytes) only for the fields it
//! hands out; this avoids the bookkeeping of advancing a `Bytes` per field.

use std::ops::Range;

use crate::error::DecodeError;

/// A read position in `buf`; every reader fails cleanly past the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf[pos..]` (a `pos` past the end reads as empty).
    #[inline]
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    /// The current position, relative to the start of the slice.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[inline]
    fn truncated(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            what,
            needed,
            remaining: self.remaining(),
        }
    }

    /// Reads one byte.
    #[inline]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(what, 1)),
        }
    }

    /// Reads `N` bytes into an array.
    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).filter(|&e| e <= self.buf.len());
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                let mut out = [0u8; N];
                out.copy_from_slice(s);
                self.pos += N;
                Ok(out)
            }
            None => Err(self.truncated(what, N)),
        }
    }

    /// Reads a big-endian `int16`.
    #[inline]
    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.array(what).map(i16::from_be_bytes)
    }

    /// Reads a big-endian `int32`.
    #[inline]
    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        self.array(what).map(i32::from_be_bytes)
    }

    /// Reads a big-endian `uint32`.
    #[inline]
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Reads a big-endian `int64`.
    #[inline]
    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.array(what).map(i64::from_be_bytes)
    }

    /// Reads an unsigned LEB128 value of at most `max_bytes` bytes.
    #[inline]
    fn unsigned(&mut self, max_bytes: u32, what: &'static str) -> Result<u64, DecodeError> {
        // Fast path: one-byte varints are by far the most common.
        let first = self.u8(what)?;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let mut value = u64::from(first & 0x7f);
        for i in 1..max_bytes {
            let byte = self.u8(what)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVarint { what })
    }

    /// Reads a zigzag `varint` (at most 5 bytes, must fit 32 bits).
    #[inline]
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let raw = self.unsigned(5, what)?;
        let raw = u32::try_from(raw).map_err(|_| DecodeError::MalformedVarint { what })?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Reads a zigzag `varlong` (at most 10 bytes).
    #[inline]
    pub(crate) fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        // A 10th byte may hold only the top bit of a u64; `unsigned` drops
        // higher bits of byte 10, so check it here for exactness.
        let start = self.pos;
        let raw = self.unsigned(10, what)?;
        if self.pos - start == 10 && self.buf.get(self.pos - 1).is_some_and(|&b| b > 1) {
            return Err(DecodeError::MalformedVarint { what });
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Takes the next `len` bytes, returning their range.
    #[inline]
    pub(crate) fn take(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<Range<usize>, DecodeError> {
        if len > self.remaining() {
            return Err(self.truncated(what, len));
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    /// Reads a varint length then that many bytes; -1 is null.
    #[inline]
    pub(crate) fn varint_bytes(
        &mut self,
        what: &'static str,
    ) -> Result<Option<Range<usize>>, DecodeError> {
        match self.varint(what)? {
            -1 => Ok(None),
            len if len < 0 => Err(DecodeError::NegativeLength {
                what,
                len: i64::from(len),
            }),
            len => self.take(len as usize, what).map(Some),
        }
    }

    /// Reads an `int32` length then that many bytes; -1 is null.
    #[inline]
    pub(crate) fn i32_bytes(
        &mut self,
        what: &'static str,
    ) -> Result<Option<Range<usize>>, DecodeError> {
        match self.i32(what)? {
            -1 => Ok(None),
            len if len < 0 => Err(DecodeError::NegativeLength {
                what,
                len: i64::from(len),
            }),
            len => self.take(len as usize, what).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{write_varint, write_varlong};
    use bytes::BytesMut;
    use proptest::prelude::*;

    #[test]
    fn overlong_varints_are_rejected() {
        let six = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            Cursor::new(&six, 0).varint("v"),
            Err(DecodeError::MalformedVarint { .. })
        ));
        // Five bytes whose value exceeds 32 bits.
        let big = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            Cursor::new(&big, 0).varint("v"),
            Err(DecodeError::MalformedVarint { .. })
        ));
        let long = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(
            Cursor::new(&long, 0).varlong("v"),
            Err(DecodeError::MalformedVarint { .. })
        ));
        assert!(
            Cursor::new(&[0x80], 0)
                .varint("v")
                .unwrap_err()
                .is_truncated()
        );
    }

    #[test]
    fn nullable_lengths() {
        let mut c = Cursor::new(&[0x01, 0x03, 0x04, 0xaa, 0xbb], 0);
        assert_eq!(c.varint_bytes("k").unwrap(), None);
        assert!(matches!(
            c.varint_bytes("k"),
            Err(DecodeError::NegativeLength { len: -2, .. })
        ));
        let mut c = Cursor::new(&[0x04, 0xaa], 0);
        assert!(c.varint_bytes("k").unwrap_err().is_truncated());
    }

    proptest! {
        #[test]
        fn agrees_with_codec_writers(a: i32, b: i64) {
            let mut buf = BytesMut::new();
            write_varint(&mut buf, a);
            write_varlong(&mut buf, b);
            let mut c = Cursor::new(&buf, 0);
            prop_assert_eq!(c.varint("a").unwrap(), a);
            prop_assert_eq!(c.varlong("b").unwrap(), b);
            prop_assert_eq!(c.remaining(), 0);
        }
    }
}
