//! Zstandard through the `zstd` crate (the reference C library).
//!
//! Compression writes a single frame that records the content size, which
//! lets readers size their buffers; no content checksum (Kafka batches carry
//! their own CRC). Levels are zstd's: `None` is 3, zstd's and Kafka's
//! default; anything in [`zstd::compression_level_range`] is accepted
//! (negative levels are zstd's fast modes; 0 also means 3).
//!
//! Decompression streams through zstd's decoder into the limited buffer, so
//! a frame that expands past the limit stops there. It reads any number of
//! frames in a row, with or without content size and checksum. zstd's own
//! window cap (128 MiB, `ZSTD_WINDOWLOG_LIMIT_DEFAULT`) bounds its internal
//! buffers whatever a frame header claims; it is left at the library
//! default because Java (zstd-jni) streams use large windows at high levels.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use zstd::stream::read::Decoder;
use zstd::stream::write::Encoder;

use super::{DecodeError, EncodeError, corrupt, encode_failed, read_limited};

const CODEC: &str = "zstd";

/// The level used when none is given.
pub(super) const DEFAULT_LEVEL: i32 = 3;

fn level_of(level: Option<i32>) -> Result<i32, EncodeError> {
    let level = level.unwrap_or(DEFAULT_LEVEL);
    let range = zstd::compression_level_range();
    if range.contains(&level) {
        Ok(level)
    } else {
        let (min, max) = (range.start(), range.end());
        Err(encode_failed(
            CODEC,
            format!("level {level} is outside {min}..={max}"),
        ))
    }
}

/// Appends one zstd frame holding `input` to `out`.
pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let level = level_of(level)?;
    let fail = |e: std::io::Error| encode_failed(CODEC, e);
    let mut encoder = Encoder::new(out.writer(), level).map_err(fail)?;
    encoder.include_checksum(false).map_err(fail)?;
    encoder.include_contentsize(true).map_err(fail)?;
    encoder
        .set_pledged_src_size(Some(input.len() as u64))
        .map_err(fail)?;
    encoder.write_all(input).map_err(fail)?;
    encoder.finish().map_err(fail)?;
    Ok(())
}

/// Decompresses one or more zstd frames, at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    let decoder = Decoder::with_buffer(input).map_err(|e| corrupt(CODEC, e))?;
    read_limited(decoder, CODEC, limit, input.len().saturating_mul(4))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{KAT_PLAIN, mixed};
    use super::*;
    use proptest::prelude::*;

    fn zst(level: Option<i32>, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(level, input, &mut out).unwrap();
        out.to_vec()
    }

    fn is_corrupt(r: Result<Bytes, DecodeError>) -> bool {
        matches!(r, Err(DecodeError::Decompression { codec: "zstd", .. }))
    }

    #[test]
    fn round_trip_levels_and_sizes() {
        for level in [None, Some(-5), Some(1), Some(19)] {
            for len in [0, 1, 1 << 20] {
                let input = mixed(len);
                assert_eq!(
                    decompress(&zst(level, &input), len).unwrap(),
                    input,
                    "{level:?} {len}"
                );
            }
        }
        let input = mixed(200_000);
        assert!(zst(Some(19), &input).len() < zst(Some(-5), &input).len());
        for bad in [23, i32::MAX, i32::MIN] {
            let err = compress(Some(bad), b"x", &mut BytesMut::new()).unwrap_err();
            assert!(matches!(
                err,
                EncodeError::Compression { codec: "zstd", .. }
            ));
        }
    }

    #[test]
    fn frame_records_content_size() {
        let out = zst(None, &mixed(1000));
        assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor: FCS flag (bits 6-7) set, checksum bit (2) clear.
        assert_ne!(out[4] & 0xc0, 0, "content size flag");
        assert_eq!(out[4] & 0x04, 0, "no checksum");
    }

    #[test]
    fn known_answer_from_zstd_cli() {
        // `zstd -19`: content size and content checksum present.
        let kat = include_bytes!("testdata/kat.zst");
        assert_eq!(decompress(kat, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
        assert_eq!(
            decompress(kat, KAT_PLAIN.len() - 1),
            Err(DecodeError::DecompressedTooLarge {
                codec: "zstd",
                limit: KAT_PLAIN.len() - 1
            })
        );
    }

    #[test]
    fn concatenated_frames() {
        let both = [zst(None, b"one "), zst(Some(1), b"two")].concat();
        assert_eq!(decompress(&both, 100).unwrap(), &b"one two"[..]);
    }

    #[test]
    fn bomb_is_stopped_quickly() {
        let out = zst(None, &vec![0u8; 64 << 20]);
        assert!(out.len() < 64 << 10);
        let started = std::time::Instant::now();
        for limit in [0, 1 << 20, (64 << 20) - 1] {
            assert_eq!(
                decompress(&out, limit),
                Err(DecodeError::DecompressedTooLarge {
                    codec: "zstd",
                    limit
                })
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn corrupt_frames_are_typed_errors() {
        let good = zst(None, &mixed(100_000));
        let n = good.len();
        let mut bad_checksum = include_bytes!("testdata/kat.zst").to_vec();
        let m = bad_checksum.len();
        bad_checksum[m - 1] ^= 1;
        let cases = [
            good[..n - 1].to_vec(),
            good[..n / 2].to_vec(),
            good[..3].to_vec(),
            b"definitely not zstd".to_vec(),
            bad_checksum,
            [&good[..], b"junk"].concat(),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(
                is_corrupt(decompress(case, 1 << 20)),
                "case {i}: {:?}",
                decompress(case, 1 << 20).err()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn mutated_streams_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut data = zst(None, &mixed(3000));
            let i = pos.index(data.len());
            data[i] = byte;
            data.truncate(cut.index(data.len()) + 1);
            let _ = decompress(&data, 1 << 16);
        }
    }
}
