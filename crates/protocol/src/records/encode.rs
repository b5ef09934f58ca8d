//! Encoding one magic-2 record: exact sizing and writing.

use bytes::{BufMut, BytesMut};

use crate::codec::{varint_len, varlong_len, write_varint, write_varlong};
use crate::error::EncodeError;

pub(crate) fn too_many(reason: &str) -> EncodeError {
    EncodeError::Invalid {
        what: "record batch",
        reason: reason.into(),
    }
}

fn checked_len(len: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: i32::MAX as usize,
    })
}

#[inline]
fn nullable_len(v: Option<&[u8]>, what: &'static str) -> Result<usize, EncodeError> {
    match v {
        None => Ok(1),
        Some(b) => Ok(varint_len(checked_len(b.len(), what)?) + b.len()),
    }
}

/// The size of a record without its length prefix.
#[inline]
pub(crate) fn record_body_len<'h>(
    offset_delta: i32,
    ts_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> Result<(usize, i32), EncodeError> {
    let mut count = 0usize;
    let mut len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
    len += nullable_len(key, "record key")? + nullable_len(value, "record value")?;
    for (k, v) in headers {
        count += 1;
        let h = nullable_len(Some(k.as_bytes()), "header key")? + nullable_len(v, "header value")?;
        len = len
            .checked_add(h)
            .ok_or_else(|| too_many("record too large"))?;
    }
    let count = checked_len(count, "record headers")?;
    len += varint_len(count);
    checked_len(len, "record")?;
    Ok((len, count))
}

#[inline]
fn put_nullable(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.put_slice(b);
        }
    }
}

/// Appends one encoded record to `out`.
#[inline]
pub(crate) fn write_record<'h, I>(
    out: &mut BytesMut,
    offset_delta: i32,
    ts_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: I,
) -> Result<(), EncodeError>
where
    I: Iterator<Item = (&'h str, Option<&'h [u8]>)> + Clone,
{
    let (body, header_count) =
        record_body_len(offset_delta, ts_delta, key, value, headers.clone())?;
    let body_i32 = body as i32; // checked by record_body_len
    out.reserve(varint_len(body_i32) + body);
    write_varint(out, body_i32);
    out.put_u8(0);
    write_varlong(out, ts_delta);
    write_varint(out, offset_delta);
    put_nullable(out, key);
    put_nullable(out, value);
    write_varint(out, header_count);
    for (k, v) in headers {
        put_nullable(out, Some(k.as_bytes()));
        put_nullable(out, v);
    }
    Ok(())
}
