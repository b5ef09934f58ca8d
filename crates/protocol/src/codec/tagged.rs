//! The tagged-field section that ends every struct in a flexible version
//! (KIP-482): a count, then `tag, size, value` for each field.
//!
//! Tags the generated code knows are decoded into their fields; the rest are
//! kept verbatim in [`TaggedFields`] so that a message re-encodes to the same
//! bytes and a proxy never drops what it does not understand.
//!
//! [`TaggedFields`] also remembers which *known* tags were on the wire. The
//! generated encoders write a known tagged field when its value differs from
//! the default **or** when it was present in the decoded input, so that a
//! peer that always writes its tagged fields (tansu sends ApiVersions'
//! `FinalizedFeaturesEpoch = -1` and friends) round-trips byte for byte.

use std::hash::{Hash, Hasher};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::read::read_slice;
use super::varint::{read_unsigned_varint, write_unsigned_varint};
use crate::error::{DecodeError, EncodeError};

/// The tagged-field section of one decoded struct: the tagged fields this
/// version of the crate does not know (kept verbatim, in wire order), and
/// which known tags were present on the wire.
///
/// Every generated flexible struct carries one as `unknown_tagged_fields`.
///
/// # Presence of known tags
///
/// A known tagged field is decoded into its struct field, so its value alone
/// cannot tell "absent" from "present with the default value". The decoder
/// records the tag ([`was_present`](Self::was_present)) and the encoder
/// writes a known tagged field when its value is not the default *or* it was
/// present, which makes decode → encode byte-exact. A value built in code has
/// no presence and writes only non-default tagged fields, as Kafka does;
/// [`mark_present`](Self::mark_present) forces a default-valued field out.
///
/// Presence is an encoding detail: `PartialEq` and `Hash` look only at the
/// unknown fields, so a decoded message equals the same message built in code.
#[derive(Debug, Clone, Default)]
pub struct TaggedFields {
    /// Unknown tagged fields as `(tag, raw value)`, in ascending tag order
    /// (as decoded; the encoder sorts them in with the known ones anyway).
    pub unknown: Vec<(u32, Bytes)>,
    /// Known tags that were on the wire, ascending, without duplicates.
    present_known: Vec<u32>,
}

impl TaggedFields {
    /// Unknown tagged fields `(tag, raw value)`, with no known tag marked present.
    pub fn new(unknown: Vec<(u32, Bytes)>) -> Self {
        TaggedFields {
            unknown,
            present_known: Vec::new(),
        }
    }

    /// True when no unknown tagged fields were seen (presence of known tags
    /// is not counted).
    pub fn is_empty(&self) -> bool {
        self.unknown.is_empty()
    }

    /// The raw value of unknown tag `tag`, if present.
    pub fn get(&self, tag: u32) -> Option<&Bytes> {
        self.unknown.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// True when the known tag `tag` was on the wire when this struct was
    /// decoded (or was marked with [`mark_present`](Self::mark_present)).
    pub fn was_present(&self, tag: u32) -> bool {
        self.present_known.binary_search(&tag).is_ok()
    }

    /// Records that the known tag `tag` is present: the encoder then writes
    /// that field even when it holds its default value.
    pub fn mark_present(&mut self, tag: u32) {
        if let Err(i) = self.present_known.binary_search(&tag) {
            self.present_known.insert(i, tag);
        }
    }

    /// The known tags marked present, ascending.
    pub fn present_known(&self) -> &[u32] {
        &self.present_known
    }

    /// Forgets which known tags were present, so that only non-default
    /// known fields are written (Kafka's own behaviour).
    pub fn clear_presence(&mut self) {
        self.present_known.clear();
    }
}

impl From<Vec<(u32, Bytes)>> for TaggedFields {
    fn from(unknown: Vec<(u32, Bytes)>) -> Self {
        TaggedFields::new(unknown)
    }
}

/// Compares the unknown fields only: presence of known tags is an encoding
/// detail (see the type's documentation).
impl PartialEq for TaggedFields {
    fn eq(&self, other: &Self) -> bool {
        self.unknown == other.unknown
    }
}

impl Eq for TaggedFields {}

/// Hashes the unknown fields only, consistently with `PartialEq`.
impl Hash for TaggedFields {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.unknown.hash(state);
    }
}

/// Reads a tagged-field section.
///
/// `known(tag, value)` is offered each field's bytes; it returns `Ok(true)`
/// after decoding a tag it knows, and must consume the whole value. Those
/// tags are marked present ([`TaggedFields::was_present`]); fields it
/// declines are kept in [`TaggedFields::unknown`].
pub fn read_tagged_fields(
    buf: &mut Bytes,
    what: &'static str,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
) -> Result<TaggedFields, DecodeError> {
    let count = read_unsigned_varint(buf, what)? as usize;
    // Each field takes at least two bytes (tag and size).
    if count > buf.remaining() / 2 {
        return Err(DecodeError::Truncated {
            what,
            needed: count * 2,
            remaining: buf.remaining(),
        });
    }
    let mut fields = TaggedFields::default();
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
                return Err(DecodeError::TrailingBytes {
                    what,
                    remaining: value.remaining(),
                });
            }
            // Tags arrive strictly ascending, so this stays sorted.
            fields.present_known.push(tag);
        } else {
            fields.unknown.push((tag, value));
        }
    }
    Ok(fields)
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
    known.extend(unknown.unknown.iter().cloned());
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
        assert_eq!(
            r,
            Err(DecodeError::TrailingBytes {
                what: "t",
                remaining: 1
            })
        );
    }

    #[test]
    fn huge_tag_count_is_rejected() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(
            read_tagged_fields(&mut b, "t", |_, _| Ok(false))
                .unwrap_err()
                .is_truncated()
        );
    }

    /// A known tag holding its default value on the wire (tansu writes
    /// `FinalizedFeaturesEpoch = -1`) is remembered, so it can be written back.
    #[test]
    fn known_tags_are_marked_present() {
        // Tag 1 (known, an int8 equal to its default 0), tag 4 (unknown), tag 9 (known).
        let wire = Bytes::from_static(&[3, 1, 1, 0, 4, 1, 0xee, 9, 1, 7]);
        let mut b = wire.clone();
        let mut seen = Vec::new();
        let tags = read_tagged_fields(&mut b, "t", |tag, v| {
            if tag == 4 {
                return Ok(false);
            }
            seen.push((tag, v.get_u8()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, [(1, 0), (9, 7)]);
        assert_eq!(tags.present_known(), &[1, 9]);
        assert!(tags.was_present(1) && tags.was_present(9));
        assert!(!tags.was_present(4), "unknown tags are not 'known present'");
        assert_eq!(tags.unknown, vec![(4, Bytes::from_static(&[0xee]))]);
        assert!(!tags.is_empty());

        // What a generated encoder does: write the known fields that are
        // non-default or were present. Both are, so the bytes come back.
        let mut known = Vec::new();
        for (tag, value) in [(1u32, 0u8), (9, 7)] {
            if value != 0 || tags.was_present(tag) {
                known.push((tag, Bytes::copy_from_slice(&[value])));
            }
        }
        let mut out = BytesMut::new();
        write_tagged_fields(&mut out, known, &tags).unwrap();
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn presence_is_ignored_by_eq_and_hash() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |t: &TaggedFields| {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        };
        let plain = TaggedFields::new(vec![(30, Bytes::from_static(b"x"))]);
        let mut marked = plain.clone();
        marked.mark_present(3);
        marked.mark_present(1);
        marked.mark_present(3);
        assert_eq!(marked.present_known(), &[1, 3], "sorted, no duplicates");
        assert_eq!(plain, marked);
        assert_eq!(hash(&plain), hash(&marked));
        assert_ne!(plain, TaggedFields::default());
        marked.clear_presence();
        assert!(!marked.was_present(1));
        assert!(TaggedFields::default().is_empty());
    }
}
