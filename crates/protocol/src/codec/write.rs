//! Writers into [`BytesMut`], the counterparts of the readers in `read`.

use bytes::{BufMut, BytesMut};

use super::uuid::Uuid;
use super::varint::write_unsigned_varint;
use crate::error::EncodeError;

/// Writes a `bool` as 0 or 1.
#[inline]
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Writes a `uuid`.
#[inline]
pub fn write_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(v.as_bytes());
}

/// Writes a length prefix for a value of `len` units, or null for `None`.
pub(super) fn write_length(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    wide: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    let max = if wide || compact {
        i32::MAX as usize - 1
    } else {
        i16::MAX as usize
    };
    match len {
        Some(l) if l > max => Err(EncodeError::TooLong { what, len: l, max }),
        Some(l) if compact => {
            write_unsigned_varint(buf, l as u32 + 1);
            Ok(())
        }
        Some(l) if wide => {
            buf.put_i32(l as i32);
            Ok(())
        }
        Some(l) => {
            buf.put_i16(l as i16);
            Ok(())
        }
        None if compact => {
            write_unsigned_varint(buf, 0);
            Ok(())
        }
        None if wide => {
            buf.put_i32(-1);
            Ok(())
        }
        None => {
            buf.put_i16(-1);
            Ok(())
        }
    }
}

/// Writes a nullable string.
pub fn write_nullable_string(
    buf: &mut BytesMut,
    v: Option<&str>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_length(buf, v.map(str::len), compact, false, what)?;
    if let Some(s) = v {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a non-nullable string.
pub fn write_string(
    buf: &mut BytesMut,
    v: &str,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_string(buf, Some(v), compact, what)
}

/// Writes a nullable byte string.
pub fn write_nullable_bytes(
    buf: &mut BytesMut,
    v: Option<&[u8]>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_length(buf, v.map(<[u8]>::len), compact, true, what)?;
    if let Some(b) = v {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes a non-nullable byte string.
pub fn write_bytes(
    buf: &mut BytesMut,
    v: &[u8],
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_bytes(buf, Some(v), compact, what)
}

/// Writes an array's element count, or null for `None`.
pub fn write_array_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_length(buf, len, compact, true, what)
}

/// Writes a nullable array, encoding each element with `item`.
pub fn write_nullable_array<T>(
    buf: &mut BytesMut,
    v: Option<&[T]>,
    compact: bool,
    what: &'static str,
    mut item: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_array_len(buf, v.map(<[T]>::len), compact, what)?;
    for e in v.unwrap_or_default() {
        item(buf, e)?;
    }
    Ok(())
}

/// Writes a non-nullable array.
pub fn write_array<T>(
    buf: &mut BytesMut,
    v: &[T],
    compact: bool,
    what: &'static str,
    item: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_nullable_array(buf, Some(v), compact, what, item)
}
