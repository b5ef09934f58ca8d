//! kafkit-admin's partition and offset calls against Apache Kafka 4.3.1:
//! the twins of `admin_scripted_cluster.rs`'s CreatePartitions,
//! DeleteRecords and ListOffsets tests, with the real broker's answers.
//!
//! - CreatePartitions grows a topic, refuses a smaller count for that topic
//!   alone, and with `validate_only` checks without changing anything.
//! - DeleteRecords moves the log start offset (the answer's low
//!   watermark), which ListOffsets and Fetch then see.
//! - ListOffsets finds offsets by timestamp, earliest, latest and the
//!   record with the highest timestamp (KIP-734).
//!
//! Every test runs on the run's shared broker with topics of its own.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafkit_admin::{
    Admin, ErrorCode, IsolationLevel, ListedOffset, NewPartitions, OffsetSpec, TopicPartition,
};
use kafkit_conn::Message as Record;
use kafkit_tests::{RawClient, TestBroker, eventually, unique_topic};

/// The run's broker, or `None` (the test returns) on tansu: these twins
/// pin Apache Kafka's own answers, which tansu does not give (its gaps are
/// why the scripted tests exist).
async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([&broker.bootstrap()])
        .build()
        .await
        .expect("admin connects")
}

/// Writes `records` (value, timestamp) to `topic`/`partition` as one batch.
async fn write(broker: &TestBroker, topic: &str, partition: i32, records: &[(&str, SystemTime)]) {
    let conn = kafkit_conn::dial_leader(broker.bootstrap(), topic, partition)
        .await
        .expect("dial the leader");
    let records: Vec<Record> = records
        .iter()
        .map(|(value, time)| Record {
            time: Some(*time),
            ..Record::new(value.to_string())
        })
        .collect();
    conn.write_messages(&records).await.expect("produce");
}

/// `count` records `record-0`.. written now to `topic`/`partition`.
async fn write_now(broker: &TestBroker, topic: &str, partition: i32, count: usize) {
    let values: Vec<String> = (0..count).map(|i| format!("record-{i}")).collect();
    let now = SystemTime::now();
    let records: Vec<(&str, SystemTime)> = values.iter().map(|v| (v.as_str(), now)).collect();
    write(broker, topic, partition, &records).await;
}

/// ListOffsets for `specs`, each partition's answer or its error code.
async fn list(
    admin: &Admin,
    specs: &[(TopicPartition, OffsetSpec)],
) -> BTreeMap<TopicPartition, Result<ListedOffset, Option<ErrorCode>>> {
    let specs: BTreeMap<TopicPartition, OffsetSpec> = specs.iter().cloned().collect();
    let answers = admin
        .list_offsets(&specs, IsolationLevel::ReadUncommitted)
        .await
        .expect("list offsets");
    assert_eq!(answers.len(), specs.len(), "one answer per partition");
    answers
        .into_iter()
        .map(|(tp, r)| (tp, r.map_err(|e| e.code())))
        .collect()
}

fn grow(topic: &str, total_count: i32) -> NewPartitions {
    NewPartitions {
        topic: topic.into(),
        total_count,
        assignments: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_a_topic_and_refuses_a_smaller_count_for_that_topic_alone() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let (grown, fixed) = (unique_topic("akt-grow"), unique_topic("akt-fixed"));
    broker.create_topic(&grown, 1);
    broker.create_topic(&fixed, 3);
    let missing = unique_topic("akt-missing");

    // Validate-only: the broker checks each topic and changes nothing.
    let checked = admin
        .create_partitions(&[grow(&grown, 5), grow(&fixed, 2)], true)
        .await
        .expect("validate");
    assert!(checked[&grown].is_ok(), "{:?}", checked[&grown]);
    let e = checked[&fixed].as_ref().expect_err("fewer partitions");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_PARTITIONS));

    // Had the validation grown `grown` to 5, growing it to 3 would be refused.
    let results = admin
        .create_partitions(
            &[grow(&grown, 3), grow(&fixed, 2), grow(&missing, 2)],
            false,
        )
        .await
        .expect("the call as a whole succeeds");
    assert_eq!(results.len(), 3);
    assert!(results[&grown].is_ok(), "{:?}", results[&grown]);
    let e = results[&fixed].as_ref().expect_err("fewer partitions");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_PARTITIONS));
    assert_eq!(e.topic(), Some(fixed.as_str()));
    assert!(e.to_string().contains("has 3 partition(s)"), "{e}");
    let e = results[&missing].as_ref().expect_err("no such topic");
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));

    // The new partitions have leaders and serve, empty.
    let partitions = eventually(&format!("{grown} has 3 serving partitions"), || async {
        let described = admin.describe_topics(&[&grown]).await;
        let topic = described.map_err(|e| e.to_string())?.remove(&grown);
        let topic = topic.expect("asked").map_err(|e| e.to_string())?;
        if topic.partitions.iter().any(|p| p.leader.is_none()) || topic.partitions.len() != 3 {
            return Err(format!("{:?}", topic.partitions));
        }
        let specs: Vec<_> = (0..3)
            .map(|p| (TopicPartition::new(&grown, p), OffsetSpec::Latest))
            .collect();
        let ends = list(&admin, &specs).await;
        match ends
            .values()
            .all(|r| r.as_ref().is_ok_and(|o| o.offset == 0))
        {
            true => Ok(topic.partitions),
            false => Err(format!("{ends:?}")),
        }
    })
    .await;
    let indexes: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
    assert_eq!(indexes, [0, 1, 2]);
    let described = admin.describe_topics(&[&fixed]).await.expect("describe");
    let fixed_topic = described[&fixed].as_ref().expect("described");
    assert_eq!(fixed_topic.partitions.len(), 3, "the refused topic kept 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_offset_that_list_offsets_and_fetch_see() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let topic = unique_topic("akt-delete-records");
    broker.create_topic(&topic, 2);
    write_now(&broker, &topic, 0, 10).await;
    write_now(&broker, &topic, 1, 5).await;
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );

    // Past the high watermark fails that partition alone.
    let deleted = admin
        .delete_records(&BTreeMap::from([(p0.clone(), 4), (p1.clone(), 99)]))
        .await
        .expect("delete records");
    assert_eq!(*deleted[&p0].as_ref().expect("p0"), 4, "the low watermark");
    let e = deleted[&p1].as_ref().expect_err("past the end");
    assert_eq!(e.code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
    assert_eq!((e.topic(), e.partition()), (Some(topic.as_str()), Some(1)));

    // -1 deletes up to the high watermark; an offset below the log start
    // deletes nothing more and answers the current low watermark.
    let deleted = admin
        .delete_records(&BTreeMap::from([(p0.clone(), 2), (p1.clone(), -1)]))
        .await
        .expect("delete records");
    assert_eq!(*deleted[&p0].as_ref().expect("p0"), 4);
    assert_eq!(*deleted[&p1].as_ref().expect("p1"), 5);

    let offsets = list(
        &admin,
        &[
            (p0.clone(), OffsetSpec::Earliest),
            (p1.clone(), OffsetSpec::Earliest),
        ],
    )
    .await;
    assert_eq!(offsets[&p0].clone().map(|o| o.offset), Ok(4));
    assert_eq!(offsets[&p1].clone().map(|o| o.offset), Ok(5));
    let offsets = list(
        &admin,
        &[
            (p0.clone(), OffsetSpec::Latest),
            (p1.clone(), OffsetSpec::Latest),
        ],
    )
    .await;
    assert_eq!(offsets[&p0].clone().map(|o| o.offset), Ok(10), "kept");
    assert_eq!(offsets[&p1].clone().map(|o| o.offset), Ok(5));

    // Fetching a deleted offset is out of range (the error answer carries
    // no offsets: Kafka sends -1 for them); the log now starts at 4.
    let mut client = RawClient::connect(broker.addr());
    let gone = client.fetch(&topic, 0, 3);
    assert_eq!(gone.error_code, ErrorCode::OFFSET_OUT_OF_RANGE);
    let (records, high_watermark) = client.fetch_records(&topic, 0, 4, 6);
    let got: Vec<(i64, Vec<u8>)> = records
        .iter()
        .map(|r| (r.offset, r.value.as_deref().unwrap_or_default().to_vec()))
        .collect();
    let expected: Vec<(i64, Vec<u8>)> = (4..10)
        .map(|i| (i, format!("record-{i}").into_bytes()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(high_watermark, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_finds_offsets_by_timestamp_earliest_latest_and_max_timestamp() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let topic = unique_topic("akt-offsets-by-time");
    broker.create_topic(&topic, 2);
    // Whole milliseconds in the past (the broker refuses times more than
    // an hour ahead), out of order: offset 2 has the highest timestamp.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let base = UNIX_EPOCH + Duration::from_millis(now_ms - 600_000);
    let at = |s: u64| base + Duration::from_secs(s);
    write(
        &broker,
        &topic,
        0,
        &[("a", at(1)), ("b", at(2)), ("c", at(5))],
    )
    .await;
    write(&broker, &topic, 0, &[("d", at(3)), ("e", at(4))]).await;
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );

    // The first offset whose timestamp is at or after the one asked for.
    for (asked, offset, found) in [(0, 0, 1), (1, 0, 1), (2, 1, 2), (3, 2, 5), (5, 2, 5)] {
        let answers = list(&admin, &[(p0.clone(), OffsetSpec::Timestamp(at(asked)))]).await;
        let o = answers[&p0].as_ref().expect("found");
        assert_eq!(
            (o.offset, o.timestamp),
            (offset, Some(at(found))),
            "timestamp base+{asked}s"
        );
        assert_eq!(o.leader_epoch, Some(0), "the record's leader epoch");
    }

    let answers = list(
        &admin,
        &[
            (p0.clone(), OffsetSpec::Timestamp(at(6))),
            (p1.clone(), OffsetSpec::Timestamp(at(0))),
        ],
    )
    .await;
    for tp in [&p0, &p1] {
        let o = answers[tp].as_ref().expect("answered");
        assert_eq!(
            (o.offset, o.timestamp),
            (-1, None),
            "{tp:?}: no such record"
        );
    }

    let answers = list(&admin, &[(p0.clone(), OffsetSpec::MaxTimestamp)]).await;
    let o = answers[&p0].as_ref().expect("max timestamp");
    assert_eq!((o.offset, o.timestamp), (2, Some(at(5))));

    let answers = list(
        &admin,
        &[
            (p0.clone(), OffsetSpec::Latest),
            (p1.clone(), OffsetSpec::Earliest),
        ],
    )
    .await;
    assert_eq!(answers[&p0].clone().map(|o| o.offset), Ok(5), "5 records");
    assert_eq!(answers[&p1].clone().map(|o| o.offset), Ok(0), "empty");
    let answers = list(&admin, &[(p0.clone(), OffsetSpec::Earliest)]).await;
    assert_eq!(answers[&p0].clone().map(|o| o.offset), Ok(0));

    // A partition the topic lacks fails alone.
    let p7 = TopicPartition::new(&topic, 7);
    let answers = list(
        &admin,
        &[
            (p0.clone(), OffsetSpec::Latest),
            (p7.clone(), OffsetSpec::Latest),
        ],
    )
    .await;
    assert_eq!(answers[&p0].clone().map(|o| o.offset), Ok(5));
    assert_eq!(
        answers[&p7].clone().map(|o| o.offset),
        Err(Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))
    );
}
