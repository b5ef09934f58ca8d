//! Wire primitives shared by the generated messages and the record format.
//!
//! Reading works on [`bytes::Bytes`] and hands out zero-copy slices for byte
//! fields; writing appends to [`bytes::BytesMut`]. Every reader checks a
//! length against the bytes that remain *before* it reserves or slices, so a
//! hostile length can cost an error but never memory.
//!
//! The flexible ("compact", KIP-482) and classic encodings are chosen by a
//! `compact: bool` argument that the generated code derives from the message
//! version.

mod read;
pub(crate) mod records;
mod tagged;
mod uuid;
mod varint;
mod write;

pub use read::*;
pub use records::{write_nullable_records, write_records};
pub use tagged::{TaggedFields, read_tagged_fields, write_tagged_fields};
pub use uuid::Uuid;
pub use varint::*;
pub use write::*;
