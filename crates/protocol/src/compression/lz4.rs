//! LZ4 frame format (lz4_flex), plus Kafka's magic-0 header-checksum quirk.
//!
//! Compression writes what the Java client writes: one frame of independent
//! 64 KiB blocks with no content size and no checksums beyond the header's.
//! The Java reader rejects linked blocks, so independence is not optional.
//! lz4_flex has only the fast compressor, so `level` (Kafka's
//! `compression.lz4.level`, `1..=17`, default 9, which selects LZ4-HC in
//! Java) is checked for range but does not change the output.
//!
//! Decompression accepts any frame lz4 itself writes: linked or independent
//! blocks, block and content checksums, content size, several frames in a
//! row. Before decoding, [`scan`] walks the frame structure without
//! decompressing: it catches truncation at a block boundary (which a
//! streaming decoder would take for a clean end), rejects a declared content
//! size above the limit, and verifies the header checksum — accepting, for
//! [`decompress_legacy`], the KAFKA-3160 checksum that Kafka before 0.10
//! computed over the magic number as well as the frame descriptor.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{DecodeError, EncodeError, corrupt, encode_failed, read_limited};

const CODEC: &str = "lz4";

const FRAME_MAGIC: u32 = 0x184D_2204;
const FLG_DICT_ID: u8 = 0x01;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

fn check_level(level: Option<i32>) -> Result<(), EncodeError> {
    match level {
        None | Some(1..=17) => Ok(()),
        Some(l) => Err(encode_failed(CODEC, format!("level {l} is outside 1..=17"))),
    }
}

/// Appends one LZ4 frame holding `input` to `out`.
pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    check_level(level)?;
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent);
    let mut encoder = FrameEncoder::with_frame_info(info, out.writer());
    encoder
        .write_all(input)
        .map_err(|e| encode_failed(CODEC, e))?;
    encoder.finish().map_err(|e| encode_failed(CODEC, e))?;
    Ok(())
}

/// Like [`compress`], but with the KAFKA-3160 header checksum (magic 0).
pub(super) fn compress_legacy(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    compress(level, input, out)?;
    // The header is magic (4), FLG, BD, then the checksum: no optional fields.
    out[start + 6] = header_checksum(&out[start..start + 6]);
    Ok(())
}

/// Decompresses one or more LZ4 frames, at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    scan(input, false, limit)?;
    decode(input, limit)
}

/// Like [`decompress`], also accepting the KAFKA-3160 header checksum.
pub(super) fn decompress_legacy(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let fixes = scan(input, true, limit)?;
    if fixes.is_empty() {
        return decode(input, limit);
    }
    // Only the compressed input is copied, so this is bounded by its size.
    let mut patched = input.to_vec();
    for (at, checksum) in fixes {
        patched[at] = checksum;
    }
    decode(&patched, limit)
}

fn decode(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let frames = AllFrames(FrameDecoder::new(input));
    read_limited(frames, CODEC, limit, input.len().saturating_mul(3))
}

/// A [`FrameDecoder`] that goes on to the next frame: lz4_flex reports the
/// end of each frame as end of input.
struct AllFrames<'a>(FrameDecoder<&'a [u8]>);

impl Read for AllFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            // Each zero-length read consumed an end mark, so this terminates.
            if n > 0 || buf.is_empty() || self.0.get_ref().is_empty() {
                return Ok(n);
            }
        }
    }
}

/// The header checksum byte of a frame descriptor: xxh32, second byte.
fn header_checksum(descriptor: &[u8]) -> u8 {
    (xxh32(descriptor) >> 8) as u8
}

fn truncated(what: &str, at: usize) -> DecodeError {
    corrupt(CODEC, format!("frame truncated in the {what} at byte {at}"))
}

fn u32_le(input: &[u8], at: usize, what: &str) -> Result<u32, DecodeError> {
    match input.get(at..at + 4) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(truncated(what, at)),
    }
}

/// Walks every frame in `input` without decompressing it.
///
/// Returns the header checksums to rewrite (position, correct value) when
/// `legacy` lets a frame through on its KAFKA-3160 checksum.
fn scan(input: &[u8], legacy: bool, limit: usize) -> Result<Vec<(usize, u8)>, DecodeError> {
    let mut fixes = Vec::new();
    let mut declared: u64 = 0;
    let mut pos = 0;
    while pos < input.len() {
        let magic = u32_le(input, pos, "magic number")?;
        if magic != FRAME_MAGIC {
            return Err(corrupt(
                CODEC,
                format!("not an LZ4 frame: magic {magic:#010x} at byte {pos}"),
            ));
        }
        let flg = *input
            .get(pos + 4)
            .ok_or_else(|| truncated("frame descriptor", pos + 4))?;
        let optional = if flg & FLG_CONTENT_SIZE != 0 { 8 } else { 0 }
            + if flg & FLG_DICT_ID != 0 { 4 } else { 0 };
        let hc_at = pos + 6 + optional;
        let stored = *input
            .get(hc_at)
            .ok_or_else(|| truncated("frame descriptor", hc_at))?;
        let correct = header_checksum(&input[pos + 4..hc_at]);
        if stored != correct {
            if legacy && stored == header_checksum(&input[pos..hc_at]) {
                fixes.push((hc_at, correct));
            } else {
                return Err(corrupt(
                    CODEC,
                    format!(
                        "header checksum {stored:#04x} at byte {hc_at}, expected {correct:#04x}"
                    ),
                ));
            }
        }
        if flg & FLG_CONTENT_SIZE != 0 {
            let lo = u64::from(u32_le(input, pos + 6, "content size")?);
            let hi = u64::from(u32_le(input, pos + 10, "content size")?);
            declared = declared.saturating_add(hi << 32 | lo);
            if declared > limit as u64 {
                return Err(DecodeError::DecompressedTooLarge {
                    codec: CODEC,
                    limit,
                });
            }
        }
        let checksum_len = if flg & FLG_BLOCK_CHECKSUM != 0 { 4 } else { 0 };
        let mut at = hc_at + 1;
        loop {
            let word = u32_le(input, at, "block size")?;
            at += 4;
            if word == 0 {
                break;
            }
            let len = (word & !BLOCK_UNCOMPRESSED) as usize + checksum_len;
            if input.len() - at < len {
                return Err(truncated("block data", at));
            }
            at += len;
        }
        if flg & FLG_CONTENT_CHECKSUM != 0 {
            u32_le(input, at, "content checksum")?;
            at += 4;
        }
        pos = at;
    }
    Ok(fixes)
}

/// XXH32 with seed 0, as the LZ4 frame header checksum uses it.
fn xxh32(data: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round = |acc: u32, lane: u32| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };

    let stripes = data.chunks_exact(16);
    let tail = stripes.remainder();
    let mut h = if data.len() >= 16 {
        let mut v = [P1.wrapping_add(P2), P2, 0, 0u32.wrapping_sub(P1)];
        for stripe in stripes {
            for (lane, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word(&stripe[lane * 4..]));
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        P5
    };
    h = h.wrapping_add(data.len() as u32);
    let words = tail.chunks_exact(4);
    let bytes = words.remainder();
    for w in words {
        h = h
            .wrapping_add(word(w).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in bytes {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{KAT_PLAIN, mixed};
    use super::*;
    use proptest::prelude::*;

    fn lz4(level: Option<i32>, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(level, input, &mut out).unwrap();
        out.to_vec()
    }

    fn is_corrupt(r: Result<Bytes, DecodeError>) -> bool {
        matches!(r, Err(DecodeError::Decompression { codec: "lz4", .. }))
    }

    fn too_large(limit: usize) -> Result<Bytes, DecodeError> {
        Err(DecodeError::DecompressedTooLarge {
            codec: CODEC,
            limit,
        })
    }

    #[test]
    fn xxh32_matches_reference_values() {
        // Values from the reference implementation (Python `xxhash`).
        assert_eq!(xxh32(b""), 0x02CC_5D05);
        assert_eq!(xxh32(b"a"), 0x550D_7456);
        assert_eq!(xxh32(b"abcd"), 0xA364_3705);
        assert_eq!(xxh32(b"0123456789abcdefghij"), 0x3560_0916);
        assert_eq!(xxh32(&(0..100).collect::<Vec<u8>>()), 0x7F89_BA44);
    }

    #[test]
    fn round_trip_levels_and_sizes() {
        for level in [None, Some(1), Some(17)] {
            for len in [0, 1, 65_536, 1 << 20] {
                let input = mixed(len);
                assert_eq!(
                    decompress(&lz4(level, &input), len).unwrap(),
                    input,
                    "{level:?} {len}"
                );
            }
        }
        for bad in [0, 18, -1] {
            let err = compress(Some(bad), b"x", &mut BytesMut::new()).unwrap_err();
            assert!(matches!(err, EncodeError::Compression { codec: "lz4", .. }));
        }
    }

    #[test]
    fn header_is_what_kafka_writes() {
        // Version 1 + independent blocks, 64 KiB blocks, no optional fields.
        let out = lz4(None, b"hello");
        assert_eq!(&out[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
        assert_eq!(out[6], header_checksum(&out[4..6]));
    }

    #[test]
    fn known_answer_from_lz4_cli() {
        let plain = include_bytes!("testdata/kat.lz4");
        assert_eq!(decompress(plain, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
        // Linked blocks, block checksums, content size, content checksum.
        let (linked, three) = (
            include_bytes!("testdata/kat.linked.lz4"),
            KAT_PLAIN.repeat(3),
        );
        assert_eq!(decompress(linked, three.len()).unwrap(), three);
        assert_eq!(decompress_legacy(linked, three.len()).unwrap(), three);
    }

    #[test]
    fn kafka_3160_checksum() {
        // kat.lz4 with the header checksum xxh32'd over magic + descriptor.
        let broken = include_bytes!("testdata/kat.broken_hc.lz4");
        assert_eq!(broken[6], 0x0c);
        assert!(is_corrupt(decompress(broken, 1 << 20)));
        assert_eq!(decompress_legacy(broken, 1 << 20).unwrap(), KAT_PLAIN);

        let mut ours = BytesMut::new();
        compress_legacy(None, &mixed(100_000), &mut ours).unwrap();
        assert!(is_corrupt(decompress(&ours, 1 << 20)));
        assert_eq!(decompress_legacy(&ours, 1 << 20).unwrap(), mixed(100_000));

        let mut neither = broken.to_vec();
        neither[6] ^= 0x55;
        assert!(is_corrupt(decompress_legacy(&neither, 1 << 20)));
    }

    #[test]
    fn bombs_hit_the_limit() {
        let out = lz4(None, &vec![0u8; 10 << 20]);
        for limit in [0, 1 << 20, (10 << 20) - 1] {
            for result in [decompress(&out, limit), decompress_legacy(&out, limit)] {
                assert_eq!(result, too_large(limit));
            }
        }
        // A declared content size above the limit fails before any decoding.
        let linked = include_bytes!("testdata/kat.linked.lz4");
        assert_eq!(decompress(linked, 1000), too_large(1000));
    }

    #[test]
    fn corrupt_frames_are_typed_errors() {
        let good = lz4(None, &mixed(200_000));
        let n = good.len();
        let mut bad_checksum = include_bytes!("testdata/kat.linked.lz4").to_vec();
        bad_checksum[40] ^= 1; // inside the first block: its checksum fails
        let mut oversize = good[..7].to_vec();
        oversize.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let cases = [
            good[..n - 4].to_vec(), // end mark missing: cut at a block boundary
            good[..n - 5].to_vec(), // cut inside the last block
            good[..5].to_vec(),     // descriptor cut
            b"\x02\x21\x4c\x18legacy".to_vec(),
            bad_checksum,
            oversize,
            [&good[..], &[1, 2, 3][..]].concat(), // trailing junk
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(is_corrupt(decompress(case, 1 << 20)), "case {i}");
            assert!(is_corrupt(decompress_legacy(case, 1 << 20)), "legacy {i}");
        }
    }

    #[test]
    fn concatenated_frames() {
        let both = [lz4(None, b"one "), lz4(Some(9), b"two")].concat();
        assert_eq!(decompress(&both, 100).unwrap(), &b"one two"[..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn mutated_streams_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let base = [lz4(None, &mixed(3000)), include_bytes!("testdata/kat.linked.lz4").to_vec()];
            for mut data in base {
                let i = pos.index(data.len());
                data[i] = byte;
                data.truncate(cut.index(data.len()) + 1);
                let _ = decompress(&data, 1 << 16);
                let _ = decompress_legacy(&data, 1 << 16);
            }
        }
    }
}
