//! Record-batch encode and decode throughput for 100-byte records.
//!
//! Run with `cargo bench -p kafkit-protocol --bench records`. divan reports
//! time per batch plus throughput in items (records) and bytes per second;
//! the byte figure counts the encoded batch, so decode GB/s is the rate at
//! which fetch-response bytes are turned into records.
//!
//! Each batch holds 1,000 records with an 8-byte key, a 100-byte value and
//! one header, the shape of the performance targets in the README.

use bytes::Bytes;
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::records::{RecordBatchBuilder, RecordSet};

const RECORDS: usize = 1_000;
const VALUE: [u8; 100] = [0x61; 100];

fn main() {
    divan::main();
}

/// Values that compress like real payloads (not all one byte), so the
/// compressed benches measure a realistic ratio.
fn value(i: usize) -> [u8; 100] {
    let mut v = VALUE;
    for (j, b) in v.iter_mut().enumerate() {
        *b = b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + j) % 36];
    }
    v
}

fn encode(codec: Compression) -> Bytes {
    let mut builder = RecordBatchBuilder::new(0).with_compression(codec, None);
    for i in 0..RECORDS {
        let key = (i as u64).to_be_bytes();
        builder
            .append(
                1_700_000_000_000 + i as i64,
                Some(&key),
                Some(&value(i)),
                &[("h", Some(b"v"))],
            )
            .expect("append");
    }
    builder.finish().expect("finish")
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[divan::bench(args = CODECS)]
fn encode_batch(bencher: Bencher<'_, '_>, codec: Compression) {
    let size = encode(codec).len();
    let values: Vec<[u8; 100]> = (0..RECORDS).map(value).collect();
    let mut builder = RecordBatchBuilder::new(0).with_compression(codec, None);
    bencher
        .counter(ItemsCount::new(RECORDS))
        .counter(BytesCount::new(size))
        .bench_local(|| {
            for (i, v) in values.iter().enumerate() {
                let key = (i as u64).to_be_bytes();
                builder
                    .append(
                        1_700_000_000_000 + i as i64,
                        Some(&key),
                        Some(v),
                        &[("h", Some(b"v"))],
                    )
                    .expect("append");
            }
            black_box(builder.finish().expect("finish"))
        });
}

#[divan::bench(args = CODECS)]
fn decode_batch(bencher: Bencher<'_, '_>, codec: Compression) {
    let batch = encode(codec);
    bencher
        .counter(ItemsCount::new(RECORDS))
        .counter(BytesCount::new(batch.len()))
        .bench_local(|| {
            let mut total = 0usize;
            for record in RecordSet::new(batch.clone()).records() {
                let record = record.expect("valid record");
                total += record.value.map_or(0, |v| v.len()) + record.headers.iter().count();
            }
            assert_eq!(total, RECORDS * 101);
            black_box(total)
        });
}
