//! The tagged-field section that ends every struct in a flexible version
//! (KIP-482): a count, then `tag, size, value` for each field.
//!
//! Tags the generated code knows are decoded into their fields; the rest are
//! kept verbatim in [`TaggedFields`] so that a message re-encodes to the same
//! bytes and a proxy never drops what it does not understand.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::read::read_slice;
use super::varint::{read_unsigned_varint, write_unsigned_varint};
use crate::error::{DecodeError, EncodeError};

/// Tagged fields this version of the crate does not know, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaggedFields(pub Vec<(u32, Bytes)>);

impl TaggedFields {
    /// True when no unknown tagged fields were seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw value of unknown tag `tag`, if present.
    pub fn get(&self, tag: u32) -> Option<&Bytes> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }
}

/// Reads a tagged-field section.
///
/// `known(tag, value)` is offered each field's bytes; it returns `Ok(true)`
/// after decoding a tag it knows, and must consume the whole value. Fields it
/// declines are kept in the returned [`TaggedFields`].
pub fn read_tagged_fields(
    buf: &mut Bytes,
    what: &'static str,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
) -> Result<TaggedFields, DecodeError> {
    let count = read_unsigned_varint(buf, what)? as usize;
    // Each field takes at least two bytes (tag and size).
    if count > buf.remaining() / 2 {
        return Err(DecodeError::Truncated { what, needed: count * 2, remaining: buf.remaining() });
    }
    let mut unknown = Vec::new();
    let mut last_tag: Option<u32> = None;
    for _ in 0..count {
        let tag = read_unsigned_varint(buf, what)?;
        if last_tag.is_some_and(|last| tag <= last) {
            return Err(DecodeError::Invalid {
                what,
                reason: format!("tagged field {tag} is out of order or repeated"),
            });
        }
        last_tag = Some(tag);
        let size = read_unsigned_varint(buf, what)? as usize;
        let mut value = read_slice(buf, size, what)?;
        if known(tag, &mut value)? {
            if value.has_remaining() {
                return Err(DecodeError::TrailingBytes { what, remaining: value.remaining() });
            }
        } else {
            unknown.push((tag, value));
        }
    }
    Ok(TaggedFields(unknown))
}

/// Writes a tagged-field section from the known fields (already encoded, as
/// `(tag, value)`) and the unknown ones kept from decoding, in ascending tag
/// order as the protocol requires.
pub fn write_tagged_fields(
    buf: &mut BytesMut,
    mut known: Vec<(u32, Bytes)>,
    unknown: &TaggedFields,
) -> Result<(), EncodeError> {
    if known.is_empty() && unknown.is_empty() {
        buf.put_u8(0);
        return Ok(());
    }
    known.extend(unknown.0.iter().cloned());
    known.sort_by_key(|(tag, _)| *tag);
    if let Some(w) = known.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(EncodeError::Invalid {
            what: "tagged fields",
            reason: format!("tag {} is set both as a known and an unknown field", w[0].0),
        });
    }
    write_unsigned_varint(buf, known.len() as u32);
    for (tag, value) in &known {
        write_unsigned_varint(buf, *tag);
        write_unsigned_varint(buf, value.len() as u32);
        buf.put_slice(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tags_survive_a_roundtrip() {
        let wire = Bytes::from_static(&[2, 0, 1, 0xaa, 5, 2, 0xbb, 0xcc]);
        let mut b = wire.clone();
        let tags = read_tagged_fields(&mut b, "t", |_, _| Ok(false)).unwrap();
        assert_eq!(tags.get(5).unwrap().as_ref(), &[0xbb, 0xcc]);
        let mut out = BytesMut::new();
        write_tagged_fields(&mut out, vec![], &tags).unwrap();
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn a_known_tag_must_consume_its_value() {
        let mut b = Bytes::from_static(&[1, 0, 2, 0xaa, 0xbb]);
        let r = read_tagged_fields(&mut b, "t", |_, v| {
            v.advance(1);
            Ok(true)
        });
        assert_eq!(r, Err(DecodeError::TrailingBytes { what: "t", remaining: 1 }));
    }

    #[test]
    fn huge_tag_count_is_rejected() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(read_tagged_fields(&mut b, "t", |_, _| Ok(false)).unwrap_err().is_truncated());
    }
}
