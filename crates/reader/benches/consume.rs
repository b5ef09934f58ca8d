//! The consumer's client-side CPU per record: one partition's `records`
//! from a fetch response, decoded and handed out as `Message`s through
//! `MessageSet`, the path `Fetcher::next` takes after the socket.
//!
//! Run with `cargo bench -p kafkit-reader --bench consume`. divan reports
//! time per fetch-sized chunk (10,000 records of 100 bytes with an 8-byte
//! key, in batches of 500, about 1.2 MB), so time / 10,000 is the cost per
//! record; the target is at most 0.22 us per record for the whole client.

use bytes::{Bytes, BytesMut};
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use kafkit_protocol::compression::Compression;
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_reader::{MessageSet, TopicPartition};

const RECORDS: usize = 10_000;
const PER_BATCH: usize = 500;

fn main() {
    divan::main();
}

/// Values that compress like real payloads.
fn value(i: usize) -> [u8; 100] {
    let mut v = [0u8; 100];
    for (j, b) in v.iter_mut().enumerate() {
        *b = b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + j) % 36];
    }
    v
}

fn records(codec: Compression, headers: bool) -> Bytes {
    let mut out = BytesMut::new();
    for base in (0..RECORDS).step_by(PER_BATCH) {
        let mut b = RecordBatchBuilder::new(base as i64).with_compression(codec, None);
        for i in base..base + PER_BATCH {
            let key = (i as u64).to_be_bytes();
            let h: &[(&str, Option<&[u8]>)] = if headers {
                &[("trace-id", Some(b"abc"))]
            } else {
                &[]
            };
            b.append(1_700_000_000_000 + i as i64, Some(&key), Some(&value(i)), h)
                .expect("append");
        }
        out.extend_from_slice(&b.finish().expect("finish"));
    }
    out.freeze()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn consume(bencher: Bencher<'_, '_>, data: Bytes) {
    let tp = TopicPartition::new("bench", 0);
    bencher
        .counter(ItemsCount::new(RECORDS))
        .counter(BytesCount::new(data.len()))
        .bench(|| {
            let mut sum = 0usize;
            for message in MessageSet::new(tp.clone(), 0, data.clone()) {
                let message = message.expect("valid");
                sum += message.value_bytes().len() + message.offset as usize;
            }
            black_box(sum)
        });
}

/// Decode and hand out 10,000 records, per codec.
#[divan::bench(args = CODECS)]
fn messages(bencher: Bencher<'_, '_>, codec: Compression) {
    consume(bencher, records(codec, false));
}

/// The same, uncompressed, every record carrying one header.
#[divan::bench]
fn messages_with_a_header(bencher: Bencher<'_, '_>) {
    consume(bencher, records(Compression::None, true));
}
