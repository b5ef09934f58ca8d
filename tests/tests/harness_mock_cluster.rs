//! The librdkafka mock cluster harness works: kafkit-conn produces to and
//! fetches from a 3-broker mock cluster, and sees each fault the harness
//! injects: a moved leader, a broker down then up, an error code, a delay.

use std::time::{Duration, Instant};

use kafkit_conn::{Conn, ErrorCode, Message, dial_leader};
use kafkit_tests::{MockCluster, unique_topic};

/// The leader of `topic`/`partition` as Metadata tells it.
async fn leader_of(conn: &Conn, topic: &str, partition: i32) -> i32 {
    let partitions = conn.read_partitions(&[topic]).await.unwrap();
    let found = partitions.iter().find(|p| p.id == partition).unwrap();
    found.leader.as_ref().expect("a leader").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_serve_produce_and_fetch() {
    let cluster = MockCluster::start(3);
    assert_eq!(cluster.bootstrap().split(',').count(), 3);
    let topic = unique_topic("mock-produce");
    cluster.create_topic(&topic, 4, 3);

    let first = cluster.bootstrap().split(',').next().unwrap().to_owned();
    let conn = Conn::dial(&first).await.unwrap();
    let brokers = conn.brokers().await.unwrap();
    let mut ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(conn.read_partitions(&[&topic]).await.unwrap().len(), 4);

    let mut partition = dial_leader(&first, &topic, 2).await.unwrap();
    let base = partition
        .write_messages(&[Message::new("a").with_key("k"), Message::new("b")])
        .await
        .unwrap();
    assert_eq!(base, Some(0));
    partition.seek(0);
    let values: Vec<Vec<u8>> = partition
        .read_batch(1, 1 << 20)
        .await
        .unwrap()
        .map(|r| r.unwrap().value.unwrap().to_vec())
        .collect();
    assert_eq!(values, [b"a".to_vec(), b"b".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_shows_in_metadata() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("mock-leader");
    cluster.create_topic(&topic, 2, 3);
    let conn = Conn::dial(cluster.bootstrap().split(',').next().unwrap())
        .await
        .unwrap();

    let before = leader_of(&conn, &topic, 1).await;
    let next = before % 3 + 1;
    cluster.set_partition_leader(&topic, 1, next);
    assert_eq!(leader_of(&conn, &topic, 1).await, next);
    // The old leader now refuses to write the partition.
    let old = conn.brokers().await.unwrap();
    let old = old.iter().find(|b| b.id == before).unwrap();
    let stale = Conn::dial(old.addr()).await.unwrap();
    let error = stale
        .partition_conn(&topic, 1)
        .await
        .unwrap()
        .write_messages(&[Message::new("x")])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_taken_down_refuses_connections_until_it_is_up() {
    let cluster = MockCluster::start(3);
    let conn = Conn::dial(cluster.bootstrap().split(',').next().unwrap())
        .await
        .unwrap();
    let brokers = conn.brokers().await.unwrap();
    let two = brokers.iter().find(|b| b.id == 2).unwrap().addr();
    let held = Conn::dial(&two).await.unwrap();

    cluster.broker_down(2);
    let error = Conn::dial(&two).await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");
    // The connection open before is closed too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !held.is_closed() && held.brokers().await.is_ok() {
        assert!(Instant::now() < deadline, "the old connection still works");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.broker_up(2);
    assert_eq!(
        Conn::dial(&two)
            .await
            .unwrap()
            .brokers()
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_error_code_comes_back_once() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("mock-errors");
    cluster.create_topic(&topic, 1, 1);
    let first = cluster.bootstrap().split(',').next().unwrap().to_owned();
    let partition = dial_leader(&first, &topic, 0).await.unwrap();

    cluster.push_request_errors(0, &[ErrorCode::NOT_ENOUGH_REPLICAS.0]);
    let error = partition
        .write_messages(&[Message::new("x")])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NOT_ENOUGH_REPLICAS));
    assert!(error.is_retriable(), "{error}");
    // Only the next request failed.
    assert_eq!(
        partition
            .write_messages(&[Message::new("y")])
            .await
            .unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_slows_every_answer_and_requests_are_recorded() {
    let cluster = MockCluster::start(1);
    let conn = Conn::dial(cluster.bootstrap()).await.unwrap();
    cluster.start_request_tracking();
    cluster.set_rtt(1, Duration::from_millis(300));
    let start = Instant::now();
    conn.brokers().await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    cluster.set_rtt(1, Duration::ZERO);

    let requests = cluster.take_requests();
    // Metadata is api key 3.
    assert!(requests.contains(&(1, 3)), "{requests:?}");
    assert!(cluster.take_requests().is_empty());
}

/// Why [`kafkit_tests::mock_cluster::DEFAULT_API_VERSIONS`] caps Metadata:
/// when this starts failing, librdkafka fixed its mock and the cap can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_metadata_above_v8_carries_a_trailing_byte() {
    let cluster = MockCluster::start(1);
    cluster.set_api_versions(3, Some((0, 12)));
    let conn = Conn::dial(cluster.bootstrap()).await.unwrap();
    let error = conn.brokers().await.unwrap_err();
    assert!(error.to_string().contains("MetadataResponse"), "{error}");
    assert!(format!("{error:?}").contains("TrailingBytes"), "{error:?}");
}
