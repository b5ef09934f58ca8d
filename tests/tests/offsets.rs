//! A consumer finds where to start: ListOffsets for the earliest and latest
//! offsets and for a timestamp.

use kafkit_protocol::ErrorCode;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_tests::{RawClient, TestBroker, unique_topic};

/// KIP-79's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// Produces `count` records whose timestamps are 1000, 2000, ...
fn produce(client: &mut RawClient, topic: &str, first_timestamp: i64, count: i64) -> i64 {
    let mut builder = RecordBatchBuilder::new(0).with_compression(Compression::None, None);
    for i in 0..count {
        builder
            .append(first_timestamp + 1000 * i, None, Some(b"value"), &[])
            .expect("append");
    }
    let answer = client.produce(topic, 0, builder.finish().expect("finish"));
    assert_eq!(answer.error_code, ErrorCode::NONE);
    answer.base_offset
}

#[test]
fn list_offsets_finds_the_earliest_and_latest_offsets_and_a_timestamp() {
    let broker = TestBroker::start();
    let topic = unique_topic("offsets");
    broker.create_topic(&topic, 1);
    let mut client = RawClient::connect(broker.addr());

    let empty = client.list_offset(&topic, 0, LATEST);
    assert_eq!(empty.error_code, ErrorCode::NONE);
    assert_eq!(empty.offset, 0, "an empty partition ends at 0");

    // Offsets 0-4 with timestamps 1000-5000, then 5-7 with 6000-8000.
    assert_eq!(produce(&mut client, &topic, 1000, 5), 0);
    assert_eq!(produce(&mut client, &topic, 6000, 3), 5);

    let earliest = client.list_offset(&topic, 0, EARLIEST);
    assert_eq!(earliest.error_code, ErrorCode::NONE);
    assert_eq!(earliest.offset, 0);

    let latest = client.list_offset(&topic, 0, LATEST);
    assert_eq!(latest.error_code, ErrorCode::NONE);
    if broker
        .has_tansu_bug("the \"latest\" ListOffsets answer is the last batch's first offset + 1")
    {
        assert_eq!(latest.offset, 6);
    } else {
        assert_eq!(latest.offset, 8);
    }

    // The first record with a timestamp at or after 2500 is offset 2 (3000).
    let by_time = client.list_offset(&topic, 0, 2500);
    assert_eq!(by_time.error_code, ErrorCode::NONE);
    if !broker.has_tansu_bug("ListOffsets by timestamp always answers 0") {
        assert_eq!((by_time.offset, by_time.timestamp), (2, 3000));
    }

    // Fetch's high watermark, unlike tansu's ListOffsets, is right.
    assert_eq!(client.fetch(&topic, 0, 0).high_watermark, 8);
}
