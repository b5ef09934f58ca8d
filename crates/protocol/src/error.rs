//! The protocol crate's error types: one for decoding, one for encoding.
//!
//! Both are exact: every variant says which field or structure failed and
//! why, so that a caller (or a fuzz crash report) can tell a truncated frame
//! from a corrupt one without reading hex dumps.

use thiserror::Error;

/// Why some bytes could not be decoded.
///
/// Decoding never panics and never allocates more than the input could
/// possibly describe: every length is checked against the bytes that remain
/// (or, for decompression, against an explicit cap) before anything is
/// reserved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `what` was complete.
    #[error("truncated input while reading {what}: needed {needed} bytes, {remaining} left")]
    Truncated {
        /// The field or structure being read.
        what: &'static str,
        /// How many bytes it needed.
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A length or count was negative where only `-1` (null) or `>= 0` is allowed.
    #[error("invalid negative length {len} for {what}")]
    NegativeLength {
        /// The field or structure being read.
        what: &'static str,
        /// The length found on the wire.
        len: i64,
    },
    /// A length or count exceeds a hard limit.
    #[error("{what} length {len} exceeds the limit of {limit}")]
    TooLarge {
        /// The field or structure being read.
        what: &'static str,
        /// The length found on the wire.
        len: u64,
        /// The limit it broke.
        limit: u64,
    },
    /// A varint ran past its maximum width.
    #[error("malformed varint in {what}")]
    MalformedVarint {
        /// The field or structure being read.
        what: &'static str,
    },
    /// A string field was not valid UTF-8.
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// A null value where the message version does not allow one.
    #[error("unexpected null for non-nullable {what}")]
    UnexpectedNull {
        /// The field being read.
        what: &'static str,
    },
    /// A message was asked to decode at a version it does not define.
    #[error("{message} has no version {version} (valid versions are {min} to {max})")]
    UnsupportedVersion {
        /// The message name, for example `ProduceRequest`.
        message: &'static str,
        /// The version asked for.
        version: i16,
        /// The lowest valid version.
        min: i16,
        /// The highest valid version.
        max: i16,
    },
    /// An API key this crate does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// Bytes were left over after a structure that must fill its frame.
    #[error("{remaining} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// The structure that was decoded.
        what: &'static str,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A checksum did not match the data it covers.
    #[error("{what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Which checksum (`record batch CRC32C`, `message CRC32`).
        what: &'static str,
        /// The checksum found on the wire.
        stored: u32,
        /// The checksum computed over the data.
        computed: u32,
    },
    /// A record batch or message set with a magic byte this crate cannot read.
    #[error("unsupported record magic {0}")]
    UnsupportedMagic(i8),
    /// A compression codec id outside 0..=4.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// A codec that is valid but was left out at compile time.
    #[error("compression codec {0} is not enabled (enable the `{0}` feature of kafkit-protocol)")]
    CompressionNotEnabled(&'static str),
    /// Decompression would produce more than the configured cap.
    ///
    /// This is how a compression bomb surfaces.
    #[error("{codec} data decompresses to more than the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The codec.
        codec: &'static str,
        /// The cap that was hit.
        limit: usize,
    },
    /// The compressed data itself is corrupt.
    #[error("corrupt {codec} data: {reason}")]
    Decompression {
        /// The codec.
        codec: &'static str,
        /// What the decompressor reported.
        reason: String,
    },
    /// Compressed wrappers (legacy message sets) nested deeper than allowed.
    #[error("compressed message sets nested deeper than {limit} levels")]
    NestingTooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// Any other structural violation, described in words.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or structure.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl DecodeError {
    /// True when more input could make the decode succeed.
    ///
    /// Frame readers use this to tell "wait for more bytes" from "corrupt".
    /// Inside a complete frame, truncation is corruption.
    pub fn is_truncated(&self) -> bool {
        matches!(self, DecodeError::Truncated { .. })
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A message was asked to encode at a version it does not define.
    #[error("{message} has no version {version} (valid versions are {min} to {max})")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
        /// The lowest valid version.
        min: i16,
        /// The highest valid version.
        max: i16,
    },
    /// A non-ignorable field holds a non-default value in a version that lacks it.
    ///
    /// Sending it anyway would silently drop what the caller asked for.
    #[error("{message}.{field} is not available in version {version}")]
    FieldNotInVersion {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A field is null in a version where it is not nullable.
    #[error("{message}.{field} cannot be null in version {version}")]
    NullNotAllowed {
        /// The message or struct name.
        message: &'static str,
        /// The field name.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A string, byte string or array is longer than its length prefix can express.
    #[error("{what} is {len} long, more than the maximum of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The maximum its encoding allows.
        max: usize,
    },
    /// Compression failed.
    #[error("{codec} compression failed: {reason}")]
    Compression {
        /// The codec.
        codec: &'static str,
        /// What the compressor reported.
        reason: String,
    },
    /// A compression codec that was left out at compile time.
    #[error("compression codec {0} is not enabled (enable the `{0}` feature of kafkit-protocol)")]
    CompressionNotEnabled(&'static str),
    /// Any other value that cannot be put on the wire, described in words.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or structure.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}
