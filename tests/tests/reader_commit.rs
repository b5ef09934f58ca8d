//! Commit modes against tansu: `read_message` commits as it hands out
//! (at-most-once), `fetch_message` + `commit_messages` commits what was
//! processed (at-least-once), `commit_interval` batches commits in the
//! background, `close` flushes (but never a record `read_message` did not
//! hand out), and commits never go backwards.

use std::time::Duration;

use kafkit_conn::messages::OffsetFetchRequest;
use kafkit_conn::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafkit_conn::{CoordinatorKey, Message as Record, Purpose, Transport, TransportConfig};
use kafkit_reader::{ErrorKind, Reader, ReaderBuilder};
use kafkit_tests::{TestBroker, unique_topic};

async fn produce(broker: &TestBroker, topic: &str, count: usize) {
    let conn = kafkit_conn::dial_leader(broker.bootstrap(), topic, 0)
        .await
        .unwrap();
    let records: Vec<Record> = (0..count).map(|i| Record::new(format!("v{i}"))).collect();
    conn.write_messages(&records).await.unwrap();
}

fn builder(broker: &TestBroker, group: &str, topic: &str) -> ReaderBuilder {
    Reader::builder([broker.bootstrap()])
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
}

/// The group's committed offset of partition 0, asked of the coordinator.
async fn committed(broker: &TestBroker, group: &str, topic: &str) -> Option<i64> {
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let conn = transport
        .coordinator(&CoordinatorKey::Group(group.into()), Purpose::Admin)
        .await
        .unwrap();
    let request = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let response = conn.request_at(7, request).await.unwrap();
    let offset = response.topics[0].partitions[0].committed_offset;
    (offset >= 0).then_some(offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_message_commits_each_record_as_it_is_handed_out() {
    let broker = TestBroker::start();
    let topic = unique_topic("rc-read");
    let group = unique_topic("rc-read-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 10).await;

    let mut reader = builder(&broker, &group, &topic).build().await.unwrap();
    for expected in 0..3 {
        assert_eq!(reader.read_message().await.unwrap().offset, expected);
        // Committed before read_message returned.
        assert_eq!(committed(&broker, &group, &topic).await, Some(expected + 1));
    }
    // A crash right after the third was handed out: at-most-once, so the
    // next member starts after it, not at it.
    drop(reader);
    let mut next = builder(&broker, &group, &topic).build().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), next.read_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.offset, 3);
    next.close().await.unwrap();
}

/// A `read_message` dropped while committing (a caller's timeout or
/// select) never handed its record out: the next call returns it, and a
/// `close` before that must not commit it as read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_message_dropped_while_committing_is_not_committed_by_close() {
    use futures_util::FutureExt;
    let broker = TestBroker::start();
    let topic = unique_topic("rc-parked");
    let group = unique_topic("rc-parked-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 10).await;

    let mut reader = builder(&broker, &group, &topic).build().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(20), reader.read_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.offset, 0);
    // Offset 1 is buffered: this call takes it, starts its commit and is
    // dropped at the commit's first wait.
    assert!(reader.read_message().now_or_never().is_none());
    // Handed out again by the next call, committed by it.
    assert_eq!(reader.read_message().await.unwrap().offset, 1);
    assert_eq!(committed(&broker, &group, &topic).await, Some(2));

    assert!(reader.read_message().now_or_never().is_none());
    reader.close().await.unwrap();
    assert_eq!(
        committed(&broker, &group, &topic).await,
        Some(2),
        "offset 2 was never handed out"
    );
    let mut next = builder(&broker, &group, &topic).build().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), next.read_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.offset, 2, "the next member gets the record no one saw");
    next.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_message_commits_nothing_until_told() {
    let broker = TestBroker::start();
    let topic = unique_topic("rc-fetch");
    let group = unique_topic("rc-fetch-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 10).await;

    let mut reader = builder(&broker, &group, &topic).build().await.unwrap();
    let mut read = Vec::new();
    for _ in 0..6 {
        read.push(reader.fetch_message().await.unwrap());
    }
    assert_eq!(committed(&broker, &group, &topic).await, None);
    reader.commit_messages(&read[4..5]).await.unwrap();
    assert_eq!(committed(&broker, &group, &topic).await, Some(5));
    // An older offset never moves the commit back.
    reader.commit_messages(&read[1..2]).await.unwrap();
    assert_eq!(committed(&broker, &group, &topic).await, Some(5));
    // close() commits nothing that was not marked: 5 stays.
    reader.close().await.unwrap();
    assert_eq!(committed(&broker, &group, &topic).await, Some(5));
    let e = reader.fetch_message().await.unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_interval_batches_commits_in_the_background() {
    let broker = TestBroker::start();
    let topic = unique_topic("rc-interval");
    let group = unique_topic("rc-interval-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 50).await;

    let mut reader = builder(&broker, &group, &topic)
        .commit_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    for _ in 0..50 {
        let m = reader.fetch_message().await.unwrap();
        reader.commit_messages(&[m]).await.unwrap();
    }
    // Marked, then sent by the background task within an interval or two.
    let start = std::time::Instant::now();
    while committed(&broker, &group, &topic).await != Some(50) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no periodic commit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let commits = reader.stats().commits;
    assert!((1..=10).contains(&commits), "50 marks in {commits} commits");
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_what_the_interval_has_not_sent() {
    let broker = TestBroker::start();
    let topic = unique_topic("rc-close");
    let group = unique_topic("rc-close-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 10).await;

    let mut reader = builder(&broker, &group, &topic)
        .commit_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    for _ in 0..7 {
        let m = reader.read_message().await.unwrap();
        assert!(m.offset < 7);
    }
    assert_eq!(committed(&broker, &group, &topic).await, None);
    reader.close().await.unwrap();
    assert_eq!(committed(&broker, &group, &topic).await, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_reader_cannot_commit() {
    let broker = TestBroker::start();
    let topic = unique_topic("rc-nogroup");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 1).await;
    let mut reader = Reader::builder([broker.bootstrap()])
        .partition(&topic, 0)
        .build()
        .await
        .unwrap();
    let m = reader.read_message().await.unwrap();
    let e = reader.commit_messages(&[m]).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)), "{e}");
    reader.close().await.unwrap();
}

/// A `close` dropped before it finished (a caller's timeout) does not let
/// the next `close` claim success: its commit or LeaveGroup may be unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_dropped_halfway_is_not_reported_as_done() {
    use futures_util::FutureExt;
    let broker = TestBroker::start();
    let topic = unique_topic("rc-close");
    let group = unique_topic("rc-close-group");
    broker.create_topic(&topic, 1);
    produce(&broker, &topic, 3).await;

    let mut reader = builder(&broker, &group, &topic).build().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), reader.fetch_message())
        .await
        .unwrap()
        .unwrap();
    // Dropped at its first wait: the offset stays marked, uncommitted.
    reader.commit_messages(&[m]).now_or_never();
    assert!(reader.close().now_or_never().is_none());
    let e = reader.close().await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed), "{e}");

    let mut done = builder(&broker, &group, &topic).build().await.unwrap();
    done.close().await.unwrap();
    done.close().await.unwrap();
}
