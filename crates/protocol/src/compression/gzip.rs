//! gzip (RFC 1952) through flate2 and its pure-Rust miniz_oxide backend.
//!
//! Compression writes one member with no file name and a zero timestamp,
//! so the output depends only on the input and the level. Decompression reads
//! any number of concatenated members: some producers append one member per
//! flush, and RFC 1952 defines the concatenation as the joined data.
//!
//! Levels: `0..=9` as in zlib (0 stores, 1 is fastest, 9 smallest). `None`
//! and `-1` (Kafka's `compression.gzip.level` default, which is Java's
//! `Deflater.DEFAULT_COMPRESSION`) both mean 6, the level the Java client
//! uses.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{DecodeError, EncodeError, encode_failed, read_limited};

const CODEC: &str = "gzip";

/// The level used when none is given.
pub(super) const DEFAULT_LEVEL: u32 = 6;

fn level_of(level: Option<i32>) -> Result<u32, EncodeError> {
    match level {
        None | Some(-1) => Ok(DEFAULT_LEVEL),
        Some(l @ 0..=9) => Ok(l as u32),
        Some(l) => Err(encode_failed(CODEC, format!("level {l} is outside 0..=9"))),
    }
}

/// Appends one gzip member holding `input` to `out`.
pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let level = flate2::Compression::new(level_of(level)?);
    let fail = |e| encode_failed(CODEC, e);
    let mut encoder = GzEncoder::new(out.writer(), level);
    encoder.write_all(input).map_err(fail)?;
    encoder.finish().map_err(fail)?;
    Ok(())
}

/// Decompresses one or more concatenated gzip members, at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
    // Deflate rarely does better than 4:1 on record data; the hint only sizes
    // the first buffer, which read_limited caps anyway.
    read_limited(
        MultiGzDecoder::new(input),
        CODEC,
        limit,
        input.len().saturating_mul(4),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{KAT_PLAIN, mixed};
    use super::*;
    use proptest::prelude::*;

    fn gz(level: Option<i32>, input: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(level, input, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_levels_and_sizes() {
        for level in [None, Some(-1), Some(0), Some(1), Some(9)] {
            for len in [0, 1, 1 << 20] {
                let input = mixed(len);
                let out = gz(level, &input);
                assert_eq!(
                    decompress(&out, len).unwrap(),
                    input,
                    "level {level:?} len {len}"
                );
            }
        }
    }

    #[test]
    fn levels_change_output_and_bad_levels_fail() {
        let input = mixed(100_000);
        assert!(gz(Some(9), &input).len() < gz(Some(0), &input).len());
        for bad in [-2, 10, i32::MAX] {
            let err = compress(Some(bad), b"x", &mut BytesMut::new()).unwrap_err();
            assert!(
                matches!(err, EncodeError::Compression { codec: "gzip", .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn output_starts_with_gzip_magic() {
        let out = gz(None, b"hello");
        assert_eq!(&out[..3], &[0x1f, 0x8b, 8]);
    }

    #[test]
    fn known_answer_from_gzip_cli_and_python() {
        let cli = include_bytes!("testdata/kat.gz");
        assert_eq!(decompress(cli, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
        // Two members (Python's gzip module, levels 9 and 1) concatenated.
        let multi = include_bytes!("testdata/kat.multi.gz");
        assert_eq!(decompress(multi, KAT_PLAIN.len()).unwrap(), KAT_PLAIN);
    }

    #[test]
    fn concatenated_members_are_joined() {
        let mut both = gz(None, b"first ");
        both.extend_from_slice(&gz(Some(1), b"second"));
        assert_eq!(decompress(&both, 100).unwrap(), &b"first second"[..]);
    }

    #[test]
    fn limit_is_exact() {
        let out = gz(None, &[b'a'; 1000]);
        assert_eq!(decompress(&out, 1000).unwrap().len(), 1000);
        assert_eq!(
            decompress(&out, 999),
            Err(DecodeError::DecompressedTooLarge {
                codec: "gzip",
                limit: 999
            })
        );
    }

    #[test]
    fn bomb_is_stopped_quickly() {
        // 64 MiB of zeros deflate to about 64 KiB; a 1 MiB limit must return
        // long before all of it is inflated.
        let out = gz(Some(1), &vec![0u8; 64 << 20]);
        let started = std::time::Instant::now();
        assert_eq!(
            decompress(&out, 1 << 20),
            Err(DecodeError::DecompressedTooLarge {
                codec: "gzip",
                limit: 1 << 20
            })
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn corrupt_input_is_a_typed_error() {
        let good = gz(None, &mixed(10_000));
        let cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(),        // trailer cut
            good[..good.len() / 2].to_vec(),        // deflate stream cut
            good[..5].to_vec(),                     // header cut
            b"not gzip at all".to_vec(),            // bad magic
            [&good[..], b"trailing junk"].concat(), // garbage after the member
            {
                let mut crc = good.to_vec();
                let n = crc.len();
                crc[n - 8] ^= 0xff; // CRC32 of the member
                crc
            },
        ];
        for case in cases {
            let err = decompress(&case, 1 << 20).unwrap_err();
            assert!(
                matches!(err, DecodeError::Decompression { codec: "gzip", .. }),
                "{err:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn mutated_streams_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut data = gz(None, &mixed(3000)).to_vec();
            let i = pos.index(data.len());
            data[i] = byte;
            data.truncate(cut.index(data.len()) + 1);
            let _ = decompress(&data, 1 << 16);
        }
    }
}
