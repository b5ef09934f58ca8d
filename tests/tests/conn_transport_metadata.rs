//! `kafkit_conn::Transport`'s metadata against a real (single) broker:
//! requests routed to a partition's leader retry until it has one, the cache
//! covers the topics in use (all topics only on request), topics are not
//! auto-created unless configured, the background timer picks up a topic
//! created elsewhere, and a restarted broker is dialled again.
//!
//! Leader moves between brokers need a second broker; the fake-cluster unit
//! tests in `crates/conn/src/transport/tests.rs` cover them.

use std::time::{Duration, Instant};

use kafkit_conn::messages::ListOffsetsRequest;
use kafkit_conn::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_conn::{Backoff, Conn, Error, ErrorCode, Message, Purpose, Transport, TransportConfig};
use kafkit_tests::{TestBroker, unique_topic};

/// The bound on anything these tests wait for (CI has 2 cores).
const LIMIT: Duration = Duration::from_secs(30);

fn patient(bootstrap: String) -> TransportConfig {
    let mut config = TransportConfig::new([bootstrap]);
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        max_attempts: 60,
        deadline: Some(LIMIT),
        ..Default::default()
    };
    config
}

/// The latest offset of `topic`/`partition`: a ListOffsets request, which
/// only the partition's leader may answer.
async fn latest_offset(conn: Conn, topic: &str, partition: i32) -> Result<i64, Error> {
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_owned(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = conn.request(request).await?;
    let answer = &response.topics[0].partitions[0];
    Error::check(answer.error_code, None)?;
    Ok(answer.offset)
}

/// Partition 0's latest offset through `Transport::on_leader`, which
/// retries and re-routes until the partition has a leader; bounded by LIMIT.
async fn latest_offset_at_leader(transport: &Transport, topic: &str) -> i64 {
    tokio::time::timeout(
        LIMIT,
        transport.on_leader(topic, 0, Purpose::Admin, |conn| {
            latest_offset(conn, topic, 0)
        }),
    )
    .await
    .expect("bounded")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_routed_requests_retry_until_the_partition_has_a_leader() {
    let broker = TestBroker::start();
    let topic = unique_topic("transport-on-leader");
    let transport = Transport::connect(patient(broker.bootstrap()))
        .await
        .unwrap();
    let creator = {
        let (addr, topic) = (broker.addr(), topic.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            kafkit_tests::RawClient::connect(addr).create_topics(&topic, 1);
        })
    };
    let offset = latest_offset_at_leader(&transport, &topic).await;
    creator.join().unwrap();
    assert_eq!(offset, 0, "a new topic is empty");
    assert!(transport.snapshot().leader(&topic, 0).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_covers_the_topics_in_use_and_all_topics_on_request() {
    let broker = TestBroker::start();
    let (used, other) = (
        unique_topic("transport-used"),
        unique_topic("transport-other"),
    );
    broker.create_topic(&used, 2);
    broker.create_topic(&other, 3);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    transport.leader(&used, 1, Purpose::Fetch).await.unwrap();
    let cluster = transport.snapshot();
    assert_eq!(cluster.partition_count(&used), 2);
    assert!(
        !cluster.contains_topic(&other),
        "only topics in use are fetched"
    );

    let all = transport.refresh_all_topics().await.unwrap();
    assert_eq!(all.partition_count(&used), 2);
    assert_eq!(all.partition_count(&other), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_not_auto_created_unless_configured() {
    let broker = TestBroker::start();
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let absent = unique_topic("transport-absent");
    let e = transport
        .leader(&absent, 0, Purpose::Produce)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    let all = transport.refresh_all_topics().await.unwrap();
    assert!(!all.contains_topic(&absent), "a lookup created {absent}");

    // tansu auto-creates topics (BROKERS.md) when the request allows it.
    let mut config = patient(broker.bootstrap());
    config.allow_auto_topic_creation = true;
    let creating = Transport::connect(config).await.unwrap();
    let created = unique_topic("transport-auto");
    let partition = tokio::time::timeout(
        LIMIT,
        creating.retry(|| creating.partition_conn(&created, 0, Purpose::Produce)),
    )
    .await
    .expect("bounded")
    .unwrap();
    let base = partition
        .write_messages(&[Message::new("auto-created")])
        .await
        .unwrap();
    assert_eq!(base, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_timer_picks_up_a_topic_created_elsewhere() {
    let broker = TestBroker::start();
    let topic = unique_topic("transport-timer");
    let mut config = TransportConfig::new([broker.bootstrap()]);
    config.metadata_max_age = Duration::from_millis(200);
    config.metadata_min_age = Duration::from_millis(50);
    let transport = Transport::connect(config).await.unwrap();
    // Looking it up puts the topic in use, though it does not exist yet.
    let e = transport
        .leader(&topic, 0, Purpose::Fetch)
        .await
        .unwrap_err();
    assert!(e.is_retriable(), "{e}");

    broker.create_topic(&topic, 1);
    // No lookup from here on: only the background task refreshes.
    let start = Instant::now();
    while !transport.snapshot().contains_topic(&topic) {
        assert!(start.elapsed() < LIMIT, "the timer never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(transport.snapshot().leader(&topic, 0).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_is_dialled_again() {
    let mut broker = TestBroker::start_private();
    let topic = unique_topic("transport-restart");
    broker.create_topic(&topic, 1);
    let transport = Transport::connect(patient(broker.bootstrap()))
        .await
        .unwrap();
    let before = transport.leader(&topic, 0, Purpose::Admin).await.unwrap();
    latest_offset(before.clone(), &topic, 0).await.unwrap();

    broker.restart();
    if broker.loses_data_on_restart() {
        // tansu's memory storage: the topic is gone with the old process.
        broker.create_topic(&topic, 1);
    }
    let offset = latest_offset_at_leader(&transport, &topic).await;
    assert_eq!(offset, 0);
    let after = transport.leader(&topic, 0, Purpose::Admin).await.unwrap();
    assert!(before.is_closed());
    assert!(!after.same_connection(&before));
}
