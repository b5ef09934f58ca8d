//! Compression codecs for record batches and legacy message sets.
//!
//! Kafka names the codec of a batch in bits 0-2 of its attributes; see
//! [`Compression`]. This module turns the payload of such a batch into its
//! compressed form and back. It is sans-IO like the rest of the crate: every
//! function works on byte slices.
//!
//! | codec | compress writes | decompress reads | `level` |
//! | --- | --- | --- | --- |
//! | gzip | one gzip member (flate2) | one or more concatenated members | 0..=9, default 6 (`-1` = default) |
//! | snappy | xerial framing, 32 KiB blocks, as the Java client | xerial framing or one raw block | ignored |
//! | lz4 | LZ4 frame, independent 64 KiB blocks | any LZ4 frame (checksums, content size, linked blocks) | 1..=17 accepted, no effect |
//! | zstd | one frame with content size | one or more frames | zstd's range, default 3 |
//!
//! # Decompression limit
//!
//! Every decompression takes a `limit` on the size of its output and fails
//! with [`DecodeError::DecompressedTooLarge`] once the output would pass it.
//! The limit is enforced while the data streams out of the decoder, and sizes
//! declared in the input (snappy lengths, lz4 content size) are checked
//! against it before anything is allocated: a compression bomb costs at most
//! `limit` bytes plus one decoder chunk, never the size it claims.
//!
//! # Disabled codecs
//!
//! Each codec sits behind a crate feature of the same name (all on by
//! default). A codec left out at compile time is still a valid
//! [`Compression`] value; using it gives
//! [`DecodeError::CompressionNotEnabled`] or
//! [`EncodeError::CompressionNotEnabled`].

use bytes::{Bytes, BytesMut};

use crate::{DecodeError, EncodeError};

#[cfg_attr(
    not(any(feature = "gzip", feature = "lz4", feature = "zstd")),
    allow(unused_imports)
)]
pub(crate) use limited::read_limited;

#[macro_use]
mod limited;

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

/// Codec ids as in record-batch attributes bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip, RFC 1952 (id 1).
    Gzip,
    /// Snappy, xerial-framed or raw (id 2).
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4), since Kafka 2.1.
    Zstd,
}

impl Compression {
    /// The codec for an attributes id (bits 0-2 of a batch's attributes).
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => return Err(DecodeError::UnknownCompression(other)),
        })
    }

    /// The id written into a batch's attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default cap on the decompressed size of one batch: 256 MiB.
///
/// A broker rejects batches larger than `message.max.bytes` (about 1 MiB by
/// default) *compressed*, and a fetch returns at most `fetch.max.bytes`
/// (50 MiB). Real record data rarely compresses better than 10-20 times, so
/// 256 MiB leaves room for a batch at the largest common broker settings
/// while a bomb (gigabytes from a few kilobytes) is stopped long before it
/// hurts. Callers that raise `message.max.bytes` can pass their own limit.
pub const DEFAULT_DECOMPRESSED_LIMIT: usize = 256 * 1024 * 1024;

/// Appends the compressed form of `input` to `out`.
///
/// `level: None` is the codec's default; see the table in the module docs
/// for what each codec accepts. A level outside the codec's range gives
/// [`EncodeError::Compression`]. [`Compression::None`] copies `input`.
pub fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => gzip::compress(level, input, out),
        Compression::Snappy => snappy::compress(level, input, out),
        Compression::Lz4 => lz4::compress(level, input, out),
        Compression::Zstd => zstd::compress(level, input, out),
    }
}

/// Decompresses `input`, failing with
/// [`DecodeError::DecompressedTooLarge`] once the output would exceed `limit`.
///
/// Corrupt or truncated data gives [`DecodeError::Decompression`] with the
/// codec's own message; so does empty input for any real codec, since every
/// codec writes at least a header. [`Compression::None`] returns a copy.
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    if input.is_empty() && codec != Compression::None {
        return Err(corrupt(codec.name(), "empty input"));
    }
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(DecodeError::DecompressedTooLarge {
                    codec: "none",
                    limit,
                });
            }
            Ok(Bytes::copy_from_slice(input))
        }
        Compression::Gzip => gzip::decompress(input, limit),
        Compression::Snappy => snappy::decompress(input, limit),
        Compression::Lz4 => lz4::decompress(input, limit),
        Compression::Zstd => zstd::decompress(input, limit),
    }
}

/// LZ4 as written by Kafka brokers/clients for magic 0 message sets.
///
/// Before KAFKA-3160 (Kafka 0.10) the frame header checksum was computed over
/// the magic number as well as the frame descriptor, and Kafka still writes
/// that broken checksum for magic 0. This accepts a frame whose header
/// checksum is either the broken or the correct one; everything else is as in
/// [`decompress`] with [`Compression::Lz4`].
pub fn decompress_lz4_legacy(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    lz4::decompress_legacy(input, limit)
}

/// Appends an LZ4 frame with the KAFKA-3160 header checksum, as Kafka writes
/// for magic 0 message sets (for peers older than 0.10).
///
/// Use only for magic 0; magic 1 and record batches use [`compress`].
pub fn compress_lz4_legacy(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    lz4::compress_legacy(level, input, out)
}

/// Appends `input` as one raw snappy block, without xerial framing.
///
/// [`compress`] writes xerial framing, which is what the Java client writes
/// and what every Kafka client reads. Raw blocks are what librdkafka writes;
/// [`decompress`] reads both.
pub fn compress_snappy_raw(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    snappy::compress_raw(input, out)
}

/// The error for a failed compression in `codec`.
#[cfg_attr(
    not(any(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    )),
    allow(dead_code)
)]
pub(crate) fn encode_failed(codec: &'static str, reason: impl ToString) -> EncodeError {
    EncodeError::Compression {
        codec,
        reason: reason.to_string(),
    }
}

/// The error for corrupt data in `codec`.
pub(crate) fn corrupt(codec: &'static str, reason: impl ToString) -> DecodeError {
    DecodeError::Decompression {
        codec,
        reason: reason.to_string(),
    }
}

#[cfg(not(feature = "gzip"))]
disabled_codec!(gzip, "gzip");
#[cfg(not(feature = "snappy"))]
disabled_codec!(snappy, "snappy");
#[cfg(not(feature = "lz4"))]
disabled_codec!(lz4, "lz4");
#[cfg(not(feature = "zstd"))]
disabled_codec!(zstd, "zstd");

/// Helpers shared by the codec tests.
#[cfg(test)]
#[allow(dead_code)] // with every codec disabled nothing uses them
pub(crate) mod test_support {
    /// `len` bytes that mix compressible text with pseudo-random noise.
    pub(crate) fn mixed(len: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 3 == 0 {
                out.extend_from_slice(&state.to_le_bytes());
            } else {
                out.extend_from_slice(b"kafkit record value, partly repetitive; ");
            }
        }
        out.truncate(len);
        out
    }

    /// The plaintext of the known-answer vectors in `testdata/`.
    pub(crate) const KAT_PLAIN: &[u8] = include_bytes!("testdata/kat.txt");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn ids_and_names() {
        for (i, c) in ALL.into_iter().enumerate() {
            assert_eq!(c.id() as usize, i);
            assert_eq!(Compression::from_id(c.id()).unwrap(), c);
            assert_eq!(c.to_string(), c.name());
        }
        let names: Vec<_> = ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["none", "gzip", "snappy", "lz4", "zstd"]);
        assert_eq!(Compression::default(), Compression::None);
        for id in 5..=u8::MAX {
            assert_eq!(
                Compression::from_id(id),
                Err(DecodeError::UnknownCompression(id))
            );
        }
    }

    #[test]
    fn round_trip_every_codec() {
        for codec in ALL {
            for len in [0, 1, 1000, 1 << 20] {
                let input = test_support::mixed(len);
                let mut out = BytesMut::from(&b"prefix"[..]);
                match compress(codec, None, &input, &mut out) {
                    Err(EncodeError::CompressionNotEnabled(_)) => continue,
                    other => other.unwrap(),
                }
                assert_eq!(&out[..6], b"prefix", "{codec}: compress must append");
                let back = decompress(codec, &out[6..], len).unwrap();
                assert_eq!(back, input, "{codec} len {len}");
            }
        }
    }

    #[test]
    fn none_codec_respects_limit() {
        let too_large = DecodeError::DecompressedTooLarge {
            codec: "none",
            limit: 3,
        };
        assert_eq!(decompress(Compression::None, b"abcd", 3), Err(too_large));
        assert_eq!(decompress(Compression::None, b"", 0).unwrap(), Bytes::new());
    }

    #[test]
    fn empty_input_is_corrupt() {
        for codec in &ALL[1..] {
            let err = decompress(*codec, b"", 100).unwrap_err();
            let expected = matches!(err, DecodeError::Decompression { .. });
            assert!(expected || err == DecodeError::CompressionNotEnabled(codec.name()));
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        for codec in &ALL[1..] {
            let mut out = BytesMut::new();
            if compress(*codec, None, &zeros, &mut out).is_err() {
                continue; // codec disabled
            }
            assert!(out.len() < 1 << 20, "{codec}: bomb should be small");
            for limit in [0, 1000, 1 << 20] {
                let too_large = DecodeError::DecompressedTooLarge {
                    codec: codec.name(),
                    limit,
                };
                assert_eq!(decompress(*codec, &out, limit), Err(too_large));
            }
        }
    }

    #[cfg(not(all(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    )))]
    #[test]
    fn disabled_codecs_are_typed_errors() {
        #[cfg(not(feature = "gzip"))]
        let codec = Compression::Gzip;
        #[cfg(all(feature = "gzip", not(feature = "snappy")))]
        let codec = Compression::Snappy;
        #[cfg(all(feature = "gzip", feature = "snappy", not(feature = "lz4")))]
        let codec = Compression::Lz4;
        #[cfg(all(feature = "gzip", feature = "snappy", feature = "lz4"))]
        let codec = Compression::Zstd;
        let mut out = BytesMut::new();
        assert_eq!(
            compress(codec, None, b"x", &mut out),
            Err(EncodeError::CompressionNotEnabled(codec.name()))
        );
        assert_eq!(
            decompress(codec, b"x", 10),
            Err(DecodeError::CompressionNotEnabled(codec.name()))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            for codec in ALL {
                if let Ok(out) = decompress(codec, &data, 1 << 16) {
                    prop_assert!(out.len() <= 1 << 16);
                }
            }
            let _ = decompress_lz4_legacy(&data, 1 << 16);
        }

        #[test]
        fn arbitrary_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            for codec in ALL {
                let mut out = BytesMut::new();
                if compress(codec, None, &data, &mut out).is_ok() {
                    prop_assert_eq!(decompress(codec, &out, data.len()).unwrap(), &data[..]);
                }
            }
        }
    }
}
