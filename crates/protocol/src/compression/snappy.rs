//! Snappy: raw blocks (the `snap` crate) and the xerial framing around them.
//!
//! Kafka has two spellings of snappy data:
//!
//! * **xerial framing**, written by the Java client (snappy-java's
//!   `SnappyOutputStream`): a 16-byte header — the magic
//!   `0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00`, a big-endian `i32` version (1) and a
//!   big-endian `i32` minimum compatible version (1) — then blocks, each a
//!   big-endian `i32` compressed length followed by one raw snappy block of at
//!   most 32 KiB of input. A reader also accepts a second header between
//!   blocks, which is what concatenating two streams produces.
//! * **one raw block**, written by librdkafka and others.
//!
//! [`decompress`] tells them apart by the magic, as every Kafka client does;
//! [`compress`] writes xerial framing so that the oldest readers understand
//! it, and [`compress_raw`] writes a raw block. Snappy has no levels.
//!
//! A raw block starts with its uncompressed length. That length is checked
//! against the caller's limit, and against the most the block could expand to
//! ([`MAX_EXPANSION`]), before the output is allocated.

use bytes::{Bytes, BytesMut};
use snap::raw::{Decoder, Encoder, decompress_len, max_compress_len};

use super::{DecodeError, EncodeError, corrupt, encode_failed};

const CODEC: &str = "snappy";

/// The first eight bytes of a xerial-framed stream.
pub(super) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus the two version fields.
const XERIAL_HEADER_LEN: usize = 16;
/// The framing version this module writes and understands.
const XERIAL_VERSION: i32 = 1;
/// Input bytes per xerial block, snappy-java's default.
pub(super) const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// An upper bound on the expansion of a valid raw block: the densest element
/// of the format is a 3-byte copy of 64 bytes, so output never exceeds ~22
/// times the input. A declared length beyond 32 times the block is a lie.
const MAX_EXPANSION: usize = 32;

/// Appends `input` as one raw block, compressed straight into `out`'s tail.
fn append_raw_block(
    encoder: &mut Encoder,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    let max = max_compress_len(input.len());
    if max == 0 {
        return Err(encode_failed(
            CODEC,
            format!("input of {} bytes is too large for one block", input.len()),
        ));
    }
    let start = out.len();
    out.resize(start + max, 0);
    match encoder.compress(input, &mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(n)
        }
        Err(e) => {
            out.truncate(start);
            Err(encode_failed(CODEC, e))
        }
    }
}

/// Appends `input` as xerial-framed snappy (header, then 32 KiB blocks).
/// Snappy has no levels: `_level` is ignored.
pub(super) fn compress(
    _level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut encoder = Encoder::new();
    out.reserve(XERIAL_HEADER_LEN + max_compress_len(input.len().min(XERIAL_BLOCK_SIZE)));
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let n = append_raw_block(&mut encoder, chunk, out)?;
        // A block of at most 32 KiB compresses to far less than i32::MAX.
        out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_be_bytes());
    }
    Ok(())
}

/// Appends `input` as one raw snappy block.
pub(super) fn compress_raw(input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    append_raw_block(&mut Encoder::new(), input, out).map(drop)
}

/// Decompresses xerial-framed or raw snappy, at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    if input.starts_with(&XERIAL_MAGIC) {
        decompress_xerial(input, limit, &mut out)?;
    } else {
        decompress_block(input, limit, &mut out)?;
    }
    Ok(Bytes::from(out))
}

/// Appends one raw block to `out`, keeping `out` within `limit` bytes.
fn decompress_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let len = decompress_len(block).map_err(|e| corrupt(CODEC, e))?;
    if len > limit.saturating_sub(out.len()) {
        return Err(DecodeError::DecompressedTooLarge {
            codec: CODEC,
            limit,
        });
    }
    if len > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(corrupt(
            CODEC,
            format!(
                "block of {} bytes claims {len} uncompressed bytes",
                block.len()
            ),
        ));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(CODEC, e))?;
    if n != len {
        return Err(corrupt(
            CODEC,
            format!("block declared {len} bytes but held {n}"),
        ));
    }
    Ok(())
}

/// Checks a xerial header at the start of `input`.
fn check_xerial_header(input: &[u8]) -> Result<(), DecodeError> {
    if input.len() < XERIAL_HEADER_LEN {
        return Err(corrupt(
            CODEC,
            format!("xerial header truncated to {} bytes", input.len()),
        ));
    }
    let compatible = i32::from_be_bytes([input[12], input[13], input[14], input[15]]);
    if !(0..=XERIAL_VERSION).contains(&compatible) {
        return Err(corrupt(
            CODEC,
            format!(
                "xerial stream needs reader version {compatible}, this reader is version {XERIAL_VERSION}"
            ),
        ));
    }
    Ok(())
}

fn decompress_xerial(input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut rest = input;
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            check_xerial_header(rest)?;
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        if rest.len() < 4 {
            return Err(corrupt(
                CODEC,
                format!("xerial block length truncated to {} bytes", rest.len()),
            ));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        let len = usize::try_from(len)
            .map_err(|_| corrupt(CODEC, format!("negative xerial block length {len}")))?;
        if len > rest.len() {
            return Err(corrupt(
                CODEC,
                format!("xerial block of {len} bytes but only {} remain", rest.len()),
            ));
        }
        let (block, tail) = rest.split_at(len);
        if block.is_empty() {
            return Err(corrupt(CODEC, "empty xerial block"));
        }
        decompress_block(block, limit, out)?;
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{KAT_PLAIN, mixed};
    use super::*;
    use proptest::prelude::*;

    fn xerial(input: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(None, input, &mut out).unwrap();
        out
    }

    fn raw(input: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress_raw(input, &mut out).unwrap();
        out
    }

    fn is_corrupt(r: Result<Bytes, DecodeError>) -> bool {
        matches!(
            r,
            Err(DecodeError::Decompression {
                codec: "snappy",
                ..
            })
        )
    }

    #[test]
    fn round_trip_both_framings() {
        for len in [0, 1, XERIAL_BLOCK_SIZE, XERIAL_BLOCK_SIZE + 1, 1 << 20] {
            let input = mixed(len);
            assert_eq!(
                decompress(&xerial(&input), len).unwrap(),
                input,
                "xerial {len}"
            );
            assert_eq!(decompress(&raw(&input), len).unwrap(), input, "raw {len}");
        }
    }

    #[test]
    fn xerial_layout_matches_java() {
        let out = xerial(&mixed(XERIAL_BLOCK_SIZE * 2 + 10));
        assert_eq!(
            &out[..16],
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        );
        // Three blocks: walk the lengths to the exact end.
        let mut pos = 16;
        let mut blocks = 0;
        while pos < out.len() {
            let len = i32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4 + len;
            blocks += 1;
        }
        assert_eq!((pos, blocks), (out.len(), 3));
        assert_eq!(xerial(b"").len(), 16, "empty input is a bare header");
    }

    #[test]
    fn known_answer_from_python_snappy() {
        let raw_kat = include_bytes!("testdata/kat.snappy");
        assert_eq!(decompress(raw_kat, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
        let xerial_kat = include_bytes!("testdata/kat.xerial.snappy");
        assert_eq!(decompress(xerial_kat, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
    }

    #[test]
    fn concatenated_xerial_streams() {
        let mut both = xerial(b"one ");
        both.extend_from_slice(&xerial(b"two"));
        assert_eq!(decompress(&both, 100).unwrap(), &b"one two"[..]);
    }

    #[test]
    fn declared_lengths_are_checked_before_allocation() {
        // A raw header claiming 4 GiB - 1, and one claiming 1 MiB in 5 bytes.
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            decompress(&huge, 1 << 20),
            Err(DecodeError::DecompressedTooLarge {
                codec: "snappy",
                limit: 1 << 20
            })
        );
        let liar = [0x80, 0x80, 0x40, 0, 0];
        assert!(is_corrupt(decompress(&liar, usize::MAX)));
    }

    #[test]
    fn bombs_hit_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        for out in [xerial(&zeros), raw(&zeros)] {
            for limit in [0, 1 << 20, (10 << 20) - 1] {
                assert_eq!(
                    decompress(&out, limit),
                    Err(DecodeError::DecompressedTooLarge {
                        codec: "snappy",
                        limit
                    })
                );
            }
            assert_eq!(decompress(&out, 10 << 20).unwrap().len(), 10 << 20);
        }
    }

    #[test]
    fn bad_xerial_framing_is_a_typed_error() {
        let good = xerial(&mixed(XERIAL_BLOCK_SIZE + 100)).to_vec();
        let mut negative = good[..16].to_vec();
        negative.extend_from_slice(&(-5i32).to_be_bytes());
        negative.extend_from_slice(&[0; 8]);
        let mut oversize = good[..16].to_vec();
        oversize.extend_from_slice(&i32::MAX.to_be_bytes());
        oversize.extend_from_slice(&[0; 8]);
        let mut future = good.clone();
        future[15] = 2; // needs a version-2 reader
        let mut zero_len = good[..16].to_vec();
        zero_len.extend_from_slice(&[0; 4]);
        let cases = [
            good[..12].to_vec(),             // header cut
            good[..18].to_vec(),             // block length cut
            good[..good.len() - 1].to_vec(), // last block cut
            negative,
            oversize,
            future,
            zero_len,
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(is_corrupt(decompress(case, 1 << 20)), "case {i}");
        }
    }

    #[test]
    fn corrupt_raw_blocks_are_typed_errors() {
        let good = raw(&mixed(5000)).to_vec();
        assert!(is_corrupt(decompress(&good[..good.len() - 3], 1 << 20)));
        assert!(is_corrupt(decompress(&[0xff; 11], 1 << 20))); // varint too long
        assert!(is_corrupt(decompress(&[5, 0x01], 1 << 20))); // copy before any output
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn mutated_streams_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            for mut data in [xerial(&mixed(40_000)).to_vec(), raw(&mixed(3000)).to_vec()] {
                let i = pos.index(data.len());
                data[i] = byte;
                data.truncate(cut.index(data.len()) + 1);
                let _ = decompress(&data, 1 << 16);
            }
        }
    }
}
