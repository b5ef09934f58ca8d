//! The test broker itself: it starts, accepts connections and goes away.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use kafkit_tests::TestBroker;

#[test]
fn broker_starts_and_accepts_connections() {
    let broker = TestBroker::start();
    let stream = TcpStream::connect_timeout(&broker.addr(), Duration::from_secs(5)).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), broker.addr());
    assert_eq!(broker.bootstrap(), broker.addr().to_string());
}

#[test]
fn broker_creates_topics() {
    let broker = TestBroker::start();
    broker.create_topic(&kafkit_tests::unique_topic("created"), 3);
}

#[test]
fn stopped_broker_refuses_connections_and_leaves_no_process() {
    let broker = TestBroker::start_private();
    let addr = broker.addr();
    let pid = broker.pid().expect("the broker's pid");
    let mut idle = TcpStream::connect(addr).unwrap();
    drop(broker);

    // The broker closed our connection and no longer listens.
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(idle.read(&mut [0; 1]), Ok(0) | Err(_)));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    // Killed and reaped: not even a zombie is left.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the broker (pid {pid}) is still running"
    );
}

#[test]
fn private_brokers_are_separate_processes() {
    let first = TestBroker::start_private();
    let second = TestBroker::start_private();
    assert_ne!(first.addr(), second.addr());
    assert_ne!(first.pid(), second.pid());
}

/// The three-node cluster the fault tests use: replication factor 3, and
/// a killed leader's partitions move to the others and come back.
#[test]
fn a_three_node_cluster_survives_a_killed_leader() {
    use kafkit_tests::{KafkaCluster, KafkaOptions, Listener, RawClient};

    let mut cluster = KafkaCluster::start(KafkaOptions::three_nodes());
    let topic = kafkit_tests::unique_topic("cluster");
    let mut client = RawClient::connect(cluster.addr(1, Listener::Plaintext));
    let created = client.create_topics(&topic, 3);
    assert_eq!(
        created.topics[0].error_code,
        kafkit_protocol::ErrorCode::NONE
    );
    cluster.wait_for_leaders(&[&topic], Duration::from_secs(30));
    let metadata = client.metadata(None);
    assert_eq!(metadata.brokers.len(), 3);
    let partitions = client.topic_metadata(&topic).partitions;
    assert!(partitions.iter().all(|p| p.replica_nodes.len() == 3));

    let leader = u32::try_from(partitions[0].leader_id).unwrap();
    let survivor = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill(leader);
    let mut client = RawClient::connect(cluster.addr(survivor, Listener::Plaintext));
    let start = std::time::Instant::now();
    loop {
        let p = &client.topic_metadata(&topic).partitions[0];
        if p.leader_id >= 0 && p.leader_id != leader as i32 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.restart(leader);
    let start = std::time::Instant::now();
    while client.topic_metadata(&topic).partitions[0].isr_nodes.len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the restarted node never rejoined the ISR"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A node that cannot start fails the run, and the message carries the
/// end of its log, naming the cause.
#[test]
fn a_kafka_node_that_cannot_start_fails_with_the_end_of_its_log() {
    use kafkit_tests::{KafkaCluster, KafkaOptions};

    let options = KafkaOptions {
        overrides: vec![(
            "authorizer.class.name".to_owned(),
            "dev.kafkit.NoSuchAuthorizer".to_owned(),
        )],
        ..KafkaOptions::default()
    };
    let failure = std::panic::catch_unwind(|| KafkaCluster::start(options))
        .expect_err("a node with an unknown authorizer class started");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("exited before serving clients"),
        "{message}"
    );
    assert!(message.contains("dev.kafkit.NoSuchAuthorizer"), "{message}");
}
