//! Records a client produces come back from Fetch exactly as they were sent,
//! whatever the compression codec.

use kafkit_protocol::ErrorCode;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::records::{Record, RecordBatchBuilder};
use kafkit_tests::{RawClient, TestBroker, unique_topic};

/// One record as a test writes it.
struct Spec {
    timestamp: i64,
    key: Option<&'static [u8]>,
    value: Option<&'static [u8]>,
    headers: &'static [(&'static str, Option<&'static [u8]>)],
}

/// Records covering what a user can put in one: a binary (non-UTF-8) value,
/// a null key, headers including a null header value, a tombstone (null
/// value), a compressible value, and UTF-8 outside ASCII.
const RECORDS: &[Spec] = &[
    Spec {
        timestamp: 1_700_000_000_000,
        key: Some(b"k0"),
        value: Some(b"\x00\x01\x02\xfe\xffbinary"),
        headers: &[],
    },
    Spec {
        timestamp: 1_700_000_000_001,
        key: None,
        value: Some(b"record with a null key"),
        headers: &[("h1", Some(b"v1")), ("h-null", None)],
    },
    Spec {
        timestamp: 1_700_000_000_002,
        key: Some(b"k2"),
        value: None,
        headers: &[],
    },
    Spec {
        timestamp: 1_700_000_001_000,
        key: Some(b"k3"),
        value: Some(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
              0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        headers: &[],
    },
    Spec {
        timestamp: 1_700_000_001_500,
        key: Some("k4".as_bytes()),
        value: Some("héllo wörld ✓ 日本語 🚀".as_bytes()),
        headers: &[
            ("trace-id", Some(b"abc-123")),
            ("ünïcode", Some("✓".as_bytes())),
        ],
    },
];

fn batch(codec: Compression, records: &[Spec]) -> bytes::Bytes {
    let mut builder = RecordBatchBuilder::new(0).with_compression(codec, None);
    for r in records {
        builder
            .append(r.timestamp, r.key, r.value, r.headers)
            .expect("append a record");
    }
    builder.finish().expect("finish the batch")
}

fn assert_same(fetched: &Record, sent: &Spec, offset: i64) {
    assert_eq!(fetched.offset, offset);
    assert_eq!(
        fetched.timestamp, sent.timestamp,
        "timestamp at offset {offset}"
    );
    assert_eq!(fetched.key.as_deref(), sent.key, "key at offset {offset}");
    assert_eq!(
        fetched.value.as_deref(),
        sent.value,
        "value at offset {offset}"
    );
    let headers: Vec<(String, Option<Vec<u8>>)> = fetched
        .headers
        .iter()
        .map(|h| {
            (
                h.key_str().expect("UTF-8 header key").to_owned(),
                h.value.map(|v| v.to_vec()),
            )
        })
        .collect();
    let expected: Vec<(String, Option<Vec<u8>>)> = sent
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(headers, expected, "headers at offset {offset}");
}

/// Produces two batches with `codec` and fetches all records back.
fn round_trip(codec: Compression) {
    let broker = TestBroker::start();
    let topic = unique_topic(&format!("codec-{codec:?}").to_lowercase());
    broker.create_topic(&topic, 1);
    let mut client = RawClient::connect(broker.addr());

    let first = client.produce(&topic, 0, batch(codec, RECORDS));
    assert_eq!(
        first.error_code,
        ErrorCode::NONE,
        "{codec:?}: {:?}",
        first.error_message
    );
    assert_eq!(first.base_offset, 0);
    // The broker assigns offsets: the second batch, also built at base offset
    // 0, lands right after the first.
    let second = client.produce(&topic, 0, batch(codec, &RECORDS[..2]));
    assert_eq!(
        second.error_code,
        ErrorCode::NONE,
        "{codec:?}: {:?}",
        second.error_message
    );
    assert_eq!(second.base_offset, RECORDS.len() as i64);

    let total = RECORDS.len() + 2;
    let (fetched, high_watermark) = client.fetch_records(&topic, 0, 0, total);
    assert_eq!(fetched.len(), total);
    for (i, (record, sent)) in fetched
        .iter()
        .zip(RECORDS.iter().chain(&RECORDS[..2]))
        .enumerate()
    {
        assert_same(record, sent, i as i64);
    }
    assert_eq!(high_watermark, total as i64);

    // Fetching from the middle of the second batch skips what precedes it.
    let (tail, _) = client.fetch_records(&topic, 0, total as i64 - 1, 1);
    assert_same(&tail[0], &RECORDS[1], total as i64 - 1);
}

#[test]
fn produced_records_are_fetched_back_uncompressed() {
    round_trip(Compression::None);
}

#[test]
fn produced_records_are_fetched_back_with_gzip() {
    round_trip(Compression::Gzip);
}

#[test]
fn produced_records_are_fetched_back_with_snappy() {
    round_trip(Compression::Snappy);
}

#[test]
fn produced_records_are_fetched_back_with_lz4() {
    round_trip(Compression::Lz4);
}

#[test]
fn produced_records_are_fetched_back_with_zstd() {
    round_trip(Compression::Zstd);
}

#[test]
fn producing_to_an_unknown_partition_is_a_partition_error() {
    let broker = TestBroker::start();
    let topic = unique_topic("one-partition");
    broker.create_topic(&topic, 1);
    let mut client = RawClient::connect(broker.addr());

    let answer = client.produce(&topic, 7, batch(Compression::None, &RECORDS[..1]));
    if !broker.has_tansu_bug("Produce to a partition the topic does not have succeeds") {
        assert_eq!(answer.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    }
}
