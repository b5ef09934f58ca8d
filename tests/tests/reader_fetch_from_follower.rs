//! Fetching from a follower (KIP-392) on librdkafka's mock cluster, which
//! names a partition's preferred read replica when told to
//! (`set_partition_follower`): a fetcher with a rack follows the leader's
//! pointer, reads every record from the follower, and goes back to the
//! leader when the follower is lost, without losing or repeating a record.
//! tansu is a single broker with no replicas to point at. (The mock names
//! the follower whether or not the fetch carries a rack, unlike a broker
//! with a rack-aware replica selector, so the rack itself is checked in
//! the request's unit test.)

use std::time::Duration;

use kafkit_conn::{ApiKey, Message as Produce, Purpose, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};
use kafkit_tests::{MockCluster, unique_topic};

const WAIT: Duration = Duration::from_secs(15);

async fn transport(cluster: &MockCluster) -> Transport {
    let mut config = TransportConfig::new(cluster.bootstrap().split(','));
    config.metadata_min_age = Duration::from_millis(50);
    Transport::connect(config).await.unwrap()
}

async fn produce(transport: &Transport, topic: &str, prefix: &str, n: usize) {
    let messages: Vec<Produce> = (0..n)
        .map(|i| Produce::new(format!("{prefix}-{i}")))
        .collect();
    transport
        .retry(|| async {
            transport
                .partition_conn(topic, 0, Purpose::Produce)
                .await?
                .write_messages(&messages)
                .await
        })
        .await
        .unwrap();
}

/// Reads `n` messages and returns their offsets.
async fn read_offsets(fetcher: &mut Fetcher, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(WAIT, fetcher.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages", out.len()))
            .unwrap();
        out.push(m.offset);
    }
    out
}

/// How many Fetch requests each broker got since the last call.
fn fetches_by_broker(cluster: &MockCluster) -> [usize; 4] {
    let mut counts = [0; 4];
    for (broker, key) in cluster.take_requests() {
        if key == ApiKey::Fetch as i16 {
            counts[broker as usize] += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rack_aware_fetcher_reads_from_the_named_replica_and_falls_back_to_the_leader() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("reader-follower");
    cluster.create_topic(&topic, 1, 3);
    let transport = transport(&cluster).await;
    produce(&transport, &topic, "a", 10).await;
    let leader = transport
        .cluster_for(&[topic.as_str()])
        .await
        .unwrap()
        .leader(&topic, 0)
        .unwrap()
        .id;
    let follower = leader % 3 + 1;
    cluster.set_partition_follower(&topic, 0, follower);

    cluster.start_request_tracking();
    let config = FetchConfig {
        rack: Some("rack-a".into()),
        max_wait: Duration::from_millis(100),
        ..FetchConfig::default()
    };
    let mut fetcher = Fetcher::new(transport.clone(), config);
    let tp = TopicPartition::new(topic.as_str(), 0);
    fetcher.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    assert_eq!(
        read_offsets(&mut fetcher, 10).await,
        (0..10).collect::<Vec<_>>()
    );
    // Let a few more (empty) fetches go out to see where they go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = fetches_by_broker(&cluster);
    assert!(
        counts[follower as usize] > 0,
        "no fetch reached the follower {follower}: {counts:?}"
    );
    assert!(
        counts[follower as usize] > counts[leader as usize],
        "the leader {leader} still serves most fetches: {counts:?}"
    );

    // The follower is lost. A real leader names it until it leaves the
    // ISR; the mock names it until told otherwise (-1: no follower), which
    // stands for it leaving: then the leader serves again, from the same
    // position. Meanwhile the fetcher backs off instead of spinning.
    cluster.broker_down(follower);
    produce(&transport, &topic, "b", 10).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let counts = fetches_by_broker(&cluster);
    assert!(
        counts[leader as usize] < 20,
        "spinning between leader and replica: {counts:?}"
    );
    cluster.set_partition_follower(&topic, 0, -1);
    assert_eq!(
        read_offsets(&mut fetcher, 10).await,
        (10..20).collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = fetches_by_broker(&cluster);
    assert!(
        counts[leader as usize] > 0,
        "no fetch went back to the leader: {counts:?}"
    );
    assert_eq!(fetcher.position(&tp), Some(20));
}
