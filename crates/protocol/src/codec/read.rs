//! Checked readers over [`Bytes`].
//!
//! Each takes a `what` label that names the field in any error.

use bytes::{Buf, Bytes};

use super::uuid::Uuid;
use super::varint::read_unsigned_varint;
use crate::error::DecodeError;

/// Fails with [`DecodeError::Truncated`] unless `n` bytes remain.
#[inline]
pub fn ensure_remaining(buf: &Bytes, n: usize, what: &'static str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError::Truncated {
            what,
            needed: n,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

macro_rules! fixed_reader {
    ($(#[$doc:meta] $name:ident -> $ty:ty = $get:ident;)*) => {$(
        #[$doc]
        #[inline]
        pub fn $name(buf: &mut Bytes, what: &'static str) -> Result<$ty, DecodeError> {
            ensure_remaining(buf, std::mem::size_of::<$ty>(), what)?;
            Ok(buf.$get())
        }
    )*};
}

fixed_reader! {
    /// Reads an `int8`.
    read_i8 -> i8 = get_i8;
    /// Reads a big-endian `int16`.
    read_i16 -> i16 = get_i16;
    /// Reads a big-endian `int32`.
    read_i32 -> i32 = get_i32;
    /// Reads a big-endian `int64`.
    read_i64 -> i64 = get_i64;
    /// Reads a big-endian `uint16`.
    read_u16 -> u16 = get_u16;
    /// Reads a big-endian `uint32`.
    read_u32 -> u32 = get_u32;
    /// Reads a big-endian IEEE-754 `float64`.
    read_f64 -> f64 = get_f64;
}

/// Reads a `bool`: any non-zero byte is true, as in the Java client.
#[inline]
pub fn read_bool(buf: &mut Bytes, what: &'static str) -> Result<bool, DecodeError> {
    ensure_remaining(buf, 1, what)?;
    Ok(buf.get_u8() != 0)
}

/// Reads a 16-byte `uuid`.
#[inline]
pub fn read_uuid(buf: &mut Bytes, what: &'static str) -> Result<Uuid, DecodeError> {
    ensure_remaining(buf, 16, what)?;
    let mut raw = [0u8; 16];
    buf.copy_to_slice(&mut raw);
    Ok(Uuid::from_bytes(raw))
}

/// Takes the next `len` bytes as a zero-copy slice.
#[inline]
pub fn read_slice(buf: &mut Bytes, len: usize, what: &'static str) -> Result<Bytes, DecodeError> {
    ensure_remaining(buf, len, what)?;
    Ok(buf.split_to(len))
}

/// Reads a length prefix: `Ok(None)` for null.
///
/// Classic encoding: an `int16` (strings) or `int32` (bytes, arrays) with -1
/// as null. Compact encoding: an unsigned varint of length + 1, 0 as null.
fn read_length(
    buf: &mut Bytes,
    compact: bool,
    wide: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        i64::from(read_unsigned_varint(buf, what)?) - 1
    } else if wide {
        i64::from(read_i32(buf, what)?)
    } else {
        i64::from(read_i16(buf, what)?)
    };
    match len {
        -1 => Ok(None),
        l if l < -1 => Err(DecodeError::NegativeLength { what, len: l }),
        l => Ok(Some(l as usize)),
    }
}

/// Reads a nullable string.
pub fn read_nullable_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<String>, DecodeError> {
    let Some(len) = read_length(buf, compact, false, what)? else {
        return Ok(None);
    };
    ensure_remaining(buf, len, what)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| DecodeError::InvalidUtf8 { what })?
        .to_owned();
    buf.advance(len);
    Ok(Some(s))
}

/// Reads a non-nullable string; null is an error.
pub fn read_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<String, DecodeError> {
    read_nullable_string(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what })
}

/// Reads a nullable byte string as a zero-copy slice.
pub fn read_nullable_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    match read_length(buf, compact, true, what)? {
        None => Ok(None),
        Some(len) => read_slice(buf, len, what).map(Some),
    }
}

/// Reads a non-nullable byte string; null is an error.
pub fn read_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what })
}

/// Reads an array's element count: `Ok(None)` for null.
///
/// Every element takes at least one byte on the wire, so a count larger
/// than the remaining input is rejected here, before any `Vec` is sized
/// from it.
pub fn read_array_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len = read_length(buf, compact, true, what)?;
    if let Some(n) = len {
        if n > buf.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                remaining: buf.remaining(),
            });
        }
    }
    Ok(len)
}

/// Reads a nullable array, decoding each element with `item`.
pub fn read_nullable_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    mut item: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(n) = read_array_len(buf, compact, what)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(item(buf)?);
    }
    Ok(Some(out))
}

/// Reads a non-nullable array; null is an error.
pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    item: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    read_nullable_array(buf, compact, what, item)?.ok_or(DecodeError::UnexpectedNull { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_lengths_are_typed_errors() {
        let mut b = Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(
            read_nullable_string(&mut b, false, "s"),
            Err(DecodeError::NegativeLength { what: "s", len: -2 })
        );
        let mut b = Bytes::from_static(&[0x80, 0, 0, 0]);
        assert!(matches!(
            read_nullable_bytes(&mut b, false, "b"),
            Err(DecodeError::NegativeLength { .. })
        ));
    }

    #[test]
    fn huge_array_count_is_rejected_before_allocation() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        let r = read_array(&mut b, false, "arr", |b| read_i8(b, "e"));
        assert!(r.unwrap_err().is_truncated());
    }

    #[test]
    fn compact_null_and_empty() {
        let mut b = Bytes::from_static(&[0x00, 0x01]);
        assert_eq!(read_nullable_string(&mut b, true, "s").unwrap(), None);
        assert_eq!(
            read_nullable_string(&mut b, true, "s").unwrap(),
            Some(String::new())
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut b = Bytes::from_static(&[0x00, 0x02, 0xc3, 0x28]);
        assert_eq!(
            read_string(&mut b, false, "s"),
            Err(DecodeError::InvalidUtf8 { what: "s" })
        );
    }
}
