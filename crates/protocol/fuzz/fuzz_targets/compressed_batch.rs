//! The codecs behind a compressed batch, and the record parsers behind them.
//!
//! Input: `selector:u8` then a compressed payload. The selector picks the
//! codec (`selector % 5`: none, gzip, snappy, lz4, zstd), a record count
//! (`selector / 5 % 26`) and a legacy magic (`selector / 130`).
//!
//! The payload goes to `decompress` (and, for lz4, `decompress_lz4_legacy`)
//! with a 1 MiB limit: output never passes the limit, the limit is exact
//! (the output's own length succeeds, one less fails with
//! `DecompressedTooLarge`), and small outputs survive a compress/decompress
//! round trip. Then the payload is wrapped, with correct CRCs, into a
//! magic-2 batch of that codec and record count, and into a legacy wrapper
//! message of that magic, so that the record parsers behind decompression
//! see every mutation.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_protocol::DecodeError;
use kafkit_protocol::compression::{Compression, compress, decompress, decompress_lz4_legacy};
use kafkit_protocol::records::{DecodeOptions, RecordSet};
use kafkit_protocol_fuzz::{DECOMPRESSED_LIMIT, walk_set};
use libfuzzer_sys::fuzz_target;

fn check_limit(
    codec: Compression,
    payload: &[u8],
    decode: impl Fn(&[u8], usize) -> Result<Bytes, DecodeError>,
) {
    let Ok(out) = decode(payload, DECOMPRESSED_LIMIT) else {
        return;
    };
    assert!(
        out.len() <= DECOMPRESSED_LIMIT,
        "{codec}: {} bytes out, limit {DECOMPRESSED_LIMIT}",
        out.len()
    );
    let exact = decode(payload, out.len())
        .unwrap_or_else(|e| panic!("{codec}: fails at a limit of its output size: {e}"));
    assert_eq!(exact, out, "{codec}: output depends on the limit");
    if !out.is_empty() {
        match decode(payload, out.len() - 1) {
            Err(DecodeError::DecompressedTooLarge { .. }) => {}
            other => panic!("{codec}: limit one below the output gave {other:?}"),
        }
    }
    if out.len() <= 64 * 1024 {
        let mut again = BytesMut::new();
        compress(codec, None, &out, &mut again)
            .unwrap_or_else(|e| panic!("{codec}: compress failed: {e}"));
        let back = decompress(codec, &again, DECOMPRESSED_LIMIT)
            .unwrap_or_else(|e| panic!("{codec}: round trip: {e}"));
        assert_eq!(
            back, out,
            "{codec}: compress/decompress round trip changed the data"
        );
    }
}

/// A magic-2 batch around `records` (already compressed with `codec`),
/// with a correct CRC.
fn v2_batch(codec: Compression, count: i32, records: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(61 + records.len());
    b.put_i64(100); // baseOffset
    b.put_i32((49 + records.len()) as i32); // batchLength
    b.put_i32(0); // partitionLeaderEpoch
    b.put_u8(2); // magic
    b.put_u32(0); // crc, patched below
    b.put_i16(i16::from(codec.id())); // attributes
    b.put_i32((count - 1).max(0)); // lastOffsetDelta
    b.put_i64(1_700_000_000_000); // baseTimestamp
    b.put_i64(1_700_000_001_500); // maxTimestamp
    b.put_i64(-1); // producerId
    b.put_i16(-1); // producerEpoch
    b.put_i32(-1); // baseSequence
    b.put_i32(count); // recordsCount
    b.extend_from_slice(records);
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// A legacy message of `magic` whose value is `value` (a compressed inner
/// message set when `codec` is not none), with a correct CRC32.
fn legacy_wrapper(codec: Compression, magic: u8, value: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u8(magic);
    body.put_u8(codec.id());
    if magic == 1 {
        body.put_i64(1_700_000_000_000);
    }
    body.put_i32(-1); // null key
    body.put_i32(value.len() as i32);
    body.extend_from_slice(value);
    let mut b = BytesMut::with_capacity(16 + body.len());
    b.put_i64(4); // the last inner offset, as a producer writes it
    b.put_i32((body.len() + 4) as i32);
    b.put_u32(crc32(&body));
    b.extend_from_slice(&body);
    b.freeze()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let codec = Compression::from_id(selector % 5).expect("ids 0-4 are codecs");
    let count = i32::from(selector / 5 % 26);
    let magic = selector / 130;

    check_limit(codec, payload, |p, limit| decompress(codec, p, limit));
    if codec == Compression::Lz4 {
        check_limit(codec, payload, decompress_lz4_legacy);
    }

    let opts = DecodeOptions::new().with_decompressed_limit(DECOMPRESSED_LIMIT);
    let batch = RecordSet::with_options(v2_batch(codec, count, payload), opts);
    let mut batches = batch.batches();
    match batches.next().expect("one batch") {
        Ok(_) => assert!(batches.next().is_none()),
        // Only an uncompressed batch's header is checked against its records.
        Err(e) => assert!(
            codec == Compression::None,
            "{codec}: the batch header is well formed: {e}"
        ),
    }
    walk_set(&batch);

    let legacy = RecordSet::with_options(
        legacy_wrapper(codec, magic, payload),
        opts.with_verify_crc(false),
    );
    walk_set(&legacy);
});

// CRCs computed here rather than with the library's own helpers, so that a
// bug there cannot hide behind a matching bug here.
fn crc32c(data: &[u8]) -> u32 {
    crc(data, 0x82F6_3B78)
}

fn crc32(data: &[u8]) -> u32 {
    crc(data, 0xEDB8_8320)
}

fn crc(data: &[u8], poly: u32) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 2]> = std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 2];
        for (k, p) in [0x82F6_3B78u32, 0xEDB8_8320].into_iter().enumerate() {
            for i in 0..256u32 {
                let mut c = i;
                for _ in 0..8 {
                    c = if c & 1 != 0 { (c >> 1) ^ p } else { c >> 1 };
                }
                t[k][i as usize] = c;
            }
        }
        t
    });
    let t = &tables[usize::from(poly == 0xEDB8_8320)];
    !data.iter().fold(!0u32, |c, &b| {
        t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}
