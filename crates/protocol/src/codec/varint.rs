//! Variable-length integers: the unsigned varints of the flexible encoding
//! and the zigzag varints and varlongs of the record format (v2).

use bytes::{Buf, BufMut, Bytes};

use crate::error::DecodeError;

/// Reads an unsigned varint of at most 5 bytes (a `u32`).
pub fn read_unsigned_varint(buf: &mut Bytes, what: &'static str) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        if !buf.has_remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: 1,
                remaining: 0,
            });
        }
        let byte = buf.get_u8();
        // The fifth byte may carry only the top 4 bits of a u32.
        if i == 4 && byte > 0x0f {
            return Err(DecodeError::MalformedVarint { what });
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::MalformedVarint { what })
}

/// Reads an unsigned varlong of at most 10 bytes (a `u64`).
pub fn read_unsigned_varlong(buf: &mut Bytes, what: &'static str) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: 1,
                remaining: 0,
            });
        }
        let byte = buf.get_u8();
        if i == 9 && byte > 0x01 {
            return Err(DecodeError::MalformedVarint { what });
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::MalformedVarint { what })
}

/// Reads a zigzag-encoded signed varint (record format `varint`).
pub fn read_varint(buf: &mut Bytes, what: &'static str) -> Result<i32, DecodeError> {
    let raw = read_unsigned_varint(buf, what)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag-encoded signed varlong (record format `varlong`).
pub fn read_varlong(buf: &mut Bytes, what: &'static str) -> Result<i64, DecodeError> {
    let raw = read_unsigned_varlong(buf, what)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Writes an unsigned varint.
pub fn write_unsigned_varint(buf: &mut impl BufMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes an unsigned varlong.
pub fn write_unsigned_varlong(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a zigzag-encoded signed varint.
pub fn write_varint(buf: &mut impl BufMut, value: i32) {
    write_unsigned_varint(buf, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zigzag-encoded signed varlong.
pub fn write_varlong(buf: &mut impl BufMut, value: i64) {
    write_unsigned_varlong(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// The number of bytes [`write_unsigned_varint`] produces for `value`.
pub fn unsigned_varint_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// The number of bytes [`write_varint`] produces for `value`.
pub fn varint_len(value: i32) -> usize {
    unsigned_varint_len(((value << 1) ^ (value >> 31)) as u32)
}

/// The number of bytes [`write_varlong`] produces for `value`.
pub fn varlong_len(value: i64) -> usize {
    let mut zz = ((value << 1) ^ (value >> 63)) as u64;
    let mut n = 1;
    while zz >= 0x80 {
        zz >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values from the Kafka protocol guide's varint examples.
        let mut b = BytesMut::new();
        write_varint(&mut b, -1);
        write_varint(&mut b, 1);
        write_varint(&mut b, 300);
        assert_eq!(&b[..], &[0x01, 0x02, 0xd8, 0x04]);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            read_unsigned_varint(&mut b, "x"),
            Err(DecodeError::MalformedVarint { .. })
        ));
        let mut b = Bytes::from_static(&[0x80]);
        assert!(
            read_unsigned_varint(&mut b, "x")
                .unwrap_err()
                .is_truncated()
        );
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v: i32) {
            let mut b = BytesMut::new();
            write_varint(&mut b, v);
            prop_assert_eq!(b.len(), varint_len(v));
            prop_assert_eq!(read_varint(&mut b.freeze(), "v").unwrap(), v);
        }

        #[test]
        fn varlong_roundtrip(v: i64) {
            let mut b = BytesMut::new();
            write_varlong(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            prop_assert_eq!(read_varlong(&mut b.freeze(), "v").unwrap(), v);
        }

        #[test]
        fn unsigned_varint_roundtrip(v: u32) {
            let mut b = BytesMut::new();
            write_unsigned_varint(&mut b, v);
            prop_assert_eq!(b.len(), unsigned_varint_len(v));
            prop_assert_eq!(read_unsigned_varint(&mut b.freeze(), "v").unwrap(), v);
        }
    }
}
