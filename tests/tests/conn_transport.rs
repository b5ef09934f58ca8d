//! `kafkit_conn::Transport` against a real broker: bootstrap past a dead
//! address, leader and coordinator lookup, one pooled connection per broker
//! and purpose, dead connections replaced, retries that refresh metadata.

use std::time::Duration;

use kafkit_conn::{
    Backoff, CoordinatorKey, ErrorCode, Message, Purpose, Transport, TransportConfig,
};
use kafkit_tests::{TestBroker, unique_topic};

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_past_a_dead_address_and_finds_leaders() {
    let broker = TestBroker::start();
    let topic = unique_topic("transport-leader");
    broker.create_topic(&topic, 2);
    let config = TransportConfig::new([closed_port(), broker.bootstrap()]);
    let transport = Transport::connect(config).await.unwrap();

    // Metadata covers the topics in use; naming one puts it in use.
    let cluster = transport.cluster_for(&[&topic]).await.unwrap();
    assert!(!cluster.brokers().is_empty());
    assert_eq!(cluster.partition_count(&topic), 2);

    let partition = transport
        .partition_conn(&topic, 1, Purpose::Produce)
        .await
        .unwrap();
    let base = partition
        .write_messages(&[Message::new("via transport")])
        .await
        .unwrap();
    assert_eq!(base, Some(0));

    let e = transport
        .leader("no-such-topic-transport", 0, Purpose::Fetch)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert!(e.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pooled_connection_per_broker_and_purpose() {
    let broker = TestBroker::start();
    let topic = unique_topic("transport-pool");
    broker.create_topic(&topic, 1);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let produce = transport.leader(&topic, 0, Purpose::Produce).await.unwrap();
    let again = transport.leader(&topic, 0, Purpose::Produce).await.unwrap();
    let fetch = transport.leader(&topic, 0, Purpose::Fetch).await.unwrap();
    assert!(produce.same_connection(&again));
    assert!(
        !produce.same_connection(&fetch),
        "fetches get their own socket"
    );

    // A dead pooled connection is replaced on the next lookup.
    produce.close().await.unwrap();
    let fresh = transport.leader(&topic, 0, Purpose::Produce).await.unwrap();
    assert!(!fresh.same_connection(&produce));
    assert!(!fresh.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_group_coordinator() {
    let broker = TestBroker::start();
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let key = CoordinatorKey::Group(unique_topic("transport-group"));
    let coordinator = transport.coordinator(&key, Purpose::Group).await.unwrap();
    assert!(!coordinator.is_closed());
    let cached = transport.coordinator(&key, Purpose::Group).await.unwrap();
    assert!(coordinator.same_connection(&cached));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_refreshes_metadata_until_a_new_topic_appears() {
    let broker = TestBroker::start();
    let topic = unique_topic("transport-retry");
    let mut config = TransportConfig::new([broker.bootstrap()]);
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        max_attempts: 40,
        ..Default::default()
    };
    let transport = Transport::connect(config).await.unwrap();
    // The topic does not exist yet: the first lookups fail with a
    // retriable error, and each retry refreshes the metadata.
    let creator = {
        let (addr, topic) = (broker.addr(), topic.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            kafkit_tests::RawClient::connect(addr).create_topics(&topic, 1);
        })
    };
    let conn = transport
        .retry(|| transport.partition_conn(&topic, 0, Purpose::Produce))
        .await
        .unwrap();
    creator.join().unwrap();
    assert_eq!(conn.topic(), topic);
    assert_eq!(
        conn.write_messages(&[Message::new("late topic")])
            .await
            .unwrap(),
        Some(0)
    );
}
