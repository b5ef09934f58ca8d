//! kafkit-reader's `Fetcher` against librdkafka's mock cluster, which can
//! move leaders, take brokers down, inject error codes, and (unlike tansu)
//! answers OFFSET_OUT_OF_RANGE: every fault is survived without losing or
//! repeating a message, and each out-of-range policy does what it says.

use std::time::Duration;

use kafkit_conn::{ApiKey, ErrorCode, Message as Produce, Purpose, Transport, TransportConfig};
use kafkit_reader::{
    ErrorKind, FetchConfig, Fetcher, Message, OffsetReset, StartOffset, TopicPartition,
};
use kafkit_tests::{MockCluster, unique_topic};

const WAIT: Duration = Duration::from_secs(15);

async fn transport(cluster: &MockCluster) -> Transport {
    let mut config = TransportConfig::new(cluster.bootstrap().split(','));
    config.metadata_min_age = Duration::from_millis(50);
    Transport::connect(config).await.unwrap()
}

/// Produces `values` to the current leader of `topic`/`partition`.
async fn produce(transport: &Transport, topic: &str, partition: i32, values: &[String]) {
    let messages: Vec<Produce> = values.iter().map(|v| Produce::new(v.clone())).collect();
    transport
        .retry(|| async {
            transport
                .partition_conn(topic, partition, Purpose::Produce)
                .await?
                .write_messages(&messages)
                .await
        })
        .await
        .unwrap();
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn read_n(fetcher: &mut Fetcher, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let m = tokio::time::timeout(WAIT, fetcher.next())
            .await
            .expect("a message within the wait")
            .expect("no error");
        out.push(m);
    }
    out
}

fn offsets(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.offset).collect()
}

async fn leader_of(transport: &Transport, topic: &str, partition: i32) -> i32 {
    let cluster = transport.cluster_for(&[topic]).await.unwrap();
    cluster.leader(topic, partition).expect("a leader").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_is_followed_from_the_same_position() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("reader-leader-move");
    cluster.create_topic(&topic, 1, 3);
    let transport = transport(&cluster).await;
    produce(&transport, &topic, 0, &values("a", 10)).await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport.clone(), FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    assert_eq!(
        offsets(&read_n(&mut fetcher, 10).await),
        (0..10).collect::<Vec<_>>()
    );

    let before = leader_of(&transport, &topic, 0).await;
    let after = before % 3 + 1;
    cluster.start_request_tracking();
    cluster.set_partition_leader(&topic, 0, after);
    produce(&transport, &topic, 0, &values("b", 10)).await;
    let read = read_n(&mut fetcher, 10).await;
    assert_eq!(offsets(&read), (10..20).collect::<Vec<_>>());
    assert_eq!(read[0].value_bytes(), b"b-0");
    assert_eq!(fetcher.position(&tp), Some(20));
    assert_eq!(leader_of(&transport, &topic, 0).await, after);
    // The position was validated on the new leader (KIP-320) and held.
    let validations = cluster
        .take_requests()
        .into_iter()
        .filter(|&(broker, key)| key == ApiKey::OffsetForLeaderEpoch as i16 && broker == after)
        .count();
    assert!(validations > 0, "no OffsetForLeaderEpoch to the new leader");
    assert_eq!(fetcher.stats().truncations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_is_survived_once_another_leads() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("reader-broker-down");
    cluster.create_topic(&topic, 1, 3);
    let transport = transport(&cluster).await;
    produce(&transport, &topic, 0, &values("a", 5)).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport.clone(), FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Offset(0))]);
    assert_eq!(offsets(&read_n(&mut fetcher, 5).await), [0, 1, 2, 3, 4]);

    let before = leader_of(&transport, &topic, 0).await;
    cluster.broker_down(before);
    cluster.set_partition_leader(&topic, 0, before % 3 + 1);
    produce(&transport, &topic, 0, &values("b", 5)).await;
    // Whether the fetch in flight failed with the broker or had already
    // returned is timing; either way reading goes on from the position.
    assert_eq!(offsets(&read_n(&mut fetcher, 5).await), [5, 6, 7, 8, 9]);
    cluster.broker_up(before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_fetch_errors_are_retried_without_loss() {
    let cluster = MockCluster::start(1);
    let topic = unique_topic("reader-fetch-errors");
    cluster.create_topic(&topic, 1, 1);
    let transport = transport(&cluster).await;
    produce(&transport, &topic, 0, &values("a", 20)).await;
    cluster.push_request_errors(
        1,
        &[
            ErrorCode::NOT_LEADER_OR_FOLLOWER.0,
            ErrorCode::REQUEST_TIMED_OUT.0,
            ErrorCode::UNKNOWN_LEADER_EPOCH.0,
        ],
    );
    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp, StartOffset::Offset(0))]);
    assert_eq!(
        offsets(&read_n(&mut fetcher, 20).await),
        (0..20).collect::<Vec<_>>()
    );
    assert!(fetcher.stats().errors >= 3, "{:?}", fetcher.stats());
}

async fn out_of_range(policy: OffsetReset) -> (MockCluster, Transport, TopicPartition, Fetcher) {
    let cluster = MockCluster::start(1);
    let topic = unique_topic("reader-range");
    cluster.create_topic(&topic, 1, 1);
    let transport = transport(&cluster).await;
    produce(&transport, &topic, 0, &values("r", 5)).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let config = FetchConfig {
        offset_reset: policy,
        ..Default::default()
    };
    let mut fetcher = Fetcher::new(transport.clone(), config);
    fetcher.assign(vec![(tp.clone(), StartOffset::Offset(1_000))]);
    (cluster, transport, tp, fetcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_offset_resets_to_earliest() {
    let (_cluster, _transport, tp, mut fetcher) = out_of_range(OffsetReset::Earliest).await;
    let read = read_n(&mut fetcher, 5).await;
    assert_eq!(offsets(&read), [0, 1, 2, 3, 4]);
    assert_eq!(read[0].value_bytes(), b"r-0");
    assert_eq!(fetcher.stats().resets, 1);
    assert_eq!(fetcher.position(&tp), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_offset_resets_to_latest() {
    let (_cluster, transport, tp, mut fetcher) = out_of_range(OffsetReset::Latest).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while fetcher.position(&tp) != Some(5) {
        assert!(tokio::time::Instant::now() < deadline, "reset to latest");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    produce(&transport, &tp.topic, 0, &values("late", 1)).await;
    let read = read_n(&mut fetcher, 1).await;
    assert_eq!((read[0].offset, read[0].value_bytes()), (5, &b"late-0"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_offset_is_an_error_under_the_error_policy() {
    let (_cluster, _transport, tp, mut fetcher) = out_of_range(OffsetReset::Error).await;
    let e = tokio::time::timeout(WAIT, fetcher.next())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::OffsetOutOfRange, "{e}");
    assert_eq!(e.code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
    assert_eq!((e.partition(), e.offset()), (Some(0), Some(1_000)));
    // Stopped until sought.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fetcher.next())
            .await
            .is_err()
    );
    fetcher.seek(&tp, StartOffset::Offset(2));
    assert_eq!(offsets(&read_n(&mut fetcher, 3).await), [2, 3, 4]);
}
