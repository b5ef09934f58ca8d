//! The transport against in-process fake brokers ([`FakeCluster`]): leader
//! moves, stale answers, single-flight and spaced refreshes, topic scope,
//! the background task, broker loss and dead connections.

use std::future::Future;
use std::time::{Duration, Instant};

use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

use super::fake_cluster::{FakeCluster, Placement, Topics};
use super::*;

/// The bound on anything a test waits for: generous, since CI has 2 cores.
const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {LIMIT:?}"))
}

/// Polls `ready` every 10 ms until it holds (at most [`LIMIT`]).
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    within(what, async {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn config(fake: &FakeCluster) -> TransportConfig {
    let mut config = TransportConfig::new([fake.addr(1)]);
    config.metadata_min_age = Duration::from_millis(20);
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        max_attempts: 10,
        ..Default::default()
    };
    config
}

/// One empty produce to `topic`/`partition`; the partition's error code
/// becomes the error.
async fn produce(conn: Conn, topic: &str, partition: i32) -> Result<(), Error> {
    let request = ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = conn.request(request).await?;
    Error::check(
        response.responses[0].partition_responses[0].error_code,
        None,
    )
}

fn not_leader() -> Error {
    broker_error(ErrorCode::NOT_LEADER_OR_FOLLOWER)
}

#[tokio::test]
async fn a_request_follows_its_partition_leader_to_another_broker() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    let send = || transport.on_leader("t", 0, Purpose::Produce, |c| produce(c, "t", 0));
    within("the first produce", send()).await.unwrap();

    // The partition's leadership moves to broker 2 (a new leader epoch).
    fake.set_topic("t", 1, &[(2, 1)]);
    within("the produce after the move", send()).await.unwrap();
    let seen: Vec<(i32, ErrorCode)> = fake
        .state()
        .produce_seen
        .iter()
        .map(|(node, _, _, code)| (*node, *code))
        .collect();
    let not_leader = ErrorCode::NOT_LEADER_OR_FOLLOWER;
    assert_eq!(
        seen,
        [(1, ErrorCode::NONE), (1, not_leader), (2, ErrorCode::NONE)]
    );
    let cluster = transport.snapshot();
    assert_eq!(cluster.leader("t", 0).unwrap().id, 2);
    assert_eq!(cluster.leader_epoch("t", 0), Some(1));
}

#[tokio::test]
async fn a_lagging_broker_cannot_move_a_leader_back() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(2, 5)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    let cluster = transport.cluster_for(&["t"]).await.unwrap();
    assert_eq!(cluster.leader_epoch("t", 0), Some(5));

    // Both brokers now answer from before the last election.
    let old: Topics = [(
        "t".to_owned(),
        (
            kafkit_protocol::Uuid::from_bytes([1; 16]),
            vec![Placement {
                leader: 1,
                epoch: 4,
            }],
        ),
    )]
    .into();
    fake.state().lagging = [(1, old.clone()), (2, old)].into();
    let before = fake.metadata_count();
    transport.on_error(&not_leader());
    let cluster = within("the refresh", transport.cluster()).await.unwrap();
    assert!(fake.metadata_count() > before, "a refresh was made");
    assert_eq!(
        cluster.leader("t", 0).unwrap().id,
        2,
        "the older epoch is ignored"
    );
    assert_eq!(cluster.leader_epoch("t", 0), Some(5));
    assert!(
        !transport.inner.metadata.is_fresh(),
        "a stale answer asks for another refresh"
    );

    // Once the brokers catch up, the background task picks up the newer
    // epoch without anyone asking again.
    fake.state().lagging.clear();
    fake.set_topic("t", 1, &[(1, 6)]);
    eventually("the newer epoch", || {
        transport.snapshot().leader_epoch("t", 0) == Some(6)
    })
    .await;
    assert_eq!(transport.snapshot().leader("t", 0).unwrap().id, 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_metadata_request() {
    let fake = FakeCluster::start(1).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    transport.cluster_for(&["t"]).await.unwrap();
    fake.state().metadata_delay = Duration::from_millis(200);
    let before = fake.metadata_count();

    transport.on_error(&not_leader());
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let transport = transport.clone();
            tokio::spawn(async move { transport.leader("t", 0, Purpose::Produce).await })
        })
        .collect();
    for caller in callers {
        within("a lookup", caller).await.unwrap().unwrap();
    }
    assert_eq!(
        fake.metadata_count() - before,
        1,
        "one Metadata request for all"
    );
}

#[tokio::test]
async fn a_refresh_that_is_no_longer_due_is_not_repeated() {
    let fake = FakeCluster::start(1).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    transport.on_error(&not_leader());
    within("a refresh", transport.cluster_for(&["t"]))
        .await
        .unwrap();
    let count = fake.metadata_count();
    // What the background task does when it wakes after a caller already
    // refreshed: nothing is due, so nothing is fetched.
    let inner = &transport.inner;
    inner
        .refresh("timer", metadata::Scope::InUse, &[], false)
        .await
        .unwrap();
    assert_eq!(fake.metadata_count(), count);
    // An urgent refresh always fetches.
    inner
        .refresh("test", metadata::Scope::InUse, &[], true)
        .await
        .unwrap();
    assert_eq!(fake.metadata_count(), count + 1);
}

#[tokio::test]
async fn error_triggered_refreshes_are_spaced_by_the_min_age() {
    let fake = FakeCluster::start(1).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let mut config = config(&fake);
    config.metadata_min_age = Duration::from_millis(300);
    let transport = Transport::connect(config).await.unwrap();
    let start = Instant::now();
    transport.cluster_for(&["t"]).await.unwrap(); // new topic: at once
    let before = fake.metadata_count();
    for _ in 0..3 {
        transport.on_error(&not_leader());
        within("a refresh", transport.cluster()).await.unwrap();
    }
    assert_eq!(fake.metadata_count() - before, 3);
    // Each waited for the min age after the one before.
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn metadata_asks_only_for_the_topics_in_use() {
    let fake = FakeCluster::start(1).await;
    fake.set_topic("a", 1, &[(1, 0)]);
    fake.set_topic("b", 2, &[(1, 0), (1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    transport.leader("a", 0, Purpose::Fetch).await.unwrap();
    assert!(!transport.snapshot().contains_topic("b"));
    let all = transport.refresh_all_topics().await.unwrap();
    assert_eq!(all.partition_count("b"), 2);
    let seen: Vec<Option<Vec<String>>> = fake
        .state()
        .metadata_seen
        .iter()
        .map(|m| m.topics.clone())
        .collect();
    assert_eq!(seen, [Some(vec![]), Some(vec!["a".to_owned()]), None]);
    assert!(
        fake.state()
            .metadata_seen
            .iter()
            .all(|m| !m.allow_auto_topic_creation)
    );

    // An unknown topic is not created by default...
    let e = transport.leader("c", 0, Purpose::Fetch).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert!(!fake.state().topics.contains_key("c"));
    // ...but is when the flag says so.
    let mut config = config(&fake);
    config.allow_auto_topic_creation = true;
    let creating = Transport::connect(config).await.unwrap();
    creating.leader("c", 0, Purpose::Fetch).await.unwrap();
    assert!(
        fake.state()
            .metadata_seen
            .last()
            .unwrap()
            .allow_auto_topic_creation
    );
}

#[tokio::test]
async fn the_background_task_refreshes_on_a_timer_and_stops_with_the_last_handle() {
    let fake = FakeCluster::start(1).await;
    let mut config = config(&fake);
    config.metadata_max_age = Duration::from_millis(100);
    config.metadata_min_age = Duration::from_millis(10);
    let transport = Transport::connect(config).await.unwrap();
    let before = fake.metadata_count();
    eventually("three timed refreshes", || {
        fake.metadata_count() >= before + 3
    })
    .await;

    let state = Arc::downgrade(&transport.inner);
    let clone = transport.clone();
    drop(transport);
    let count = fake.metadata_count();
    eventually("a refresh while a clone lives", || {
        fake.metadata_count() > count
    })
    .await;
    drop(clone);
    eventually("the task to stop", || state.upgrade().is_none()).await;
    let count = fake.metadata_count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fake.metadata_count(),
        count,
        "no refresh after the last handle"
    );
}

#[tokio::test]
async fn a_broker_that_leaves_the_cluster_loses_its_connections() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(2, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    let on_two = transport.leader("t", 0, Purpose::Produce).await.unwrap();
    assert_eq!(on_two.addr(), fake.addr(2));

    fake.state().advertised = vec![1];
    fake.set_topic("t", 1, &[(1, 1)]);
    transport.on_error(&not_leader());
    let cluster = within("the refresh", transport.cluster()).await.unwrap();
    assert_eq!(cluster.brokers().len(), 1);
    eventually("the evicted connection to close", || on_two.is_closed()).await;
    let on_one = transport.leader("t", 0, Purpose::Produce).await.unwrap();
    assert_eq!(on_one.addr(), fake.addr(1));
}

#[tokio::test]
async fn a_dead_connection_is_dialled_again_and_refreshes_metadata() {
    let fake = FakeCluster::start(1).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    let first = transport.leader("t", 0, Purpose::Produce).await.unwrap();
    fake.kill_connections(1);
    eventually("the connection to die", || first.is_closed()).await;
    let e = produce(first.clone(), "t", 0).await.unwrap_err();
    assert!(e.is_connection_error(), "{e}");
    let before = fake.metadata_count();
    transport.on_error(&e);
    assert!(!transport.inner.metadata.is_fresh());
    within(
        "a produce on a new connection",
        transport.on_leader("t", 0, Purpose::Produce, |c| produce(c, "t", 0)),
    )
    .await
    .unwrap();
    assert!(fake.metadata_count() > before);
    let second = transport.leader("t", 0, Purpose::Produce).await.unwrap();
    assert!(!second.same_connection(&first));
    assert!(!second.is_closed());
}

#[tokio::test]
async fn metadata_is_asked_of_a_silent_broker_last() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let mut config = config(&fake);
    config.conn.request_timeout = Some(Duration::from_millis(200));
    let transport = Transport::connect(config).await.unwrap();
    // Live connections to both brokers; broker 1 (asked first by id)
    // then stops answering, and a produce to it times out.
    transport.broker(2, Purpose::Admin).await.unwrap();
    let leader = transport.leader("t", 0, Purpose::Produce).await.unwrap();
    fake.state().silent.insert(1);
    let e = produce(leader, "t", 0).await.unwrap_err();
    assert!(matches!(e.kind(), crate::ErrorKind::Timeout), "{e}");

    // The partition moves to broker 2; the refresh asks broker 2 at once
    // instead of waiting out a request timeout on broker 1.
    fake.set_topic("t", 1, &[(2, 1)]);
    let asked = Instant::now();
    transport.refresh_all_topics().await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(200),
        "{:?}",
        asked.elapsed()
    );
    let seen = fake.state().metadata_seen.last().unwrap().node;
    assert_eq!(seen, 2);
    assert_eq!(transport.snapshot().leader("t", 0).unwrap().id, 2);
}

#[tokio::test]
async fn an_empty_bootstrap_list_is_a_config_error() {
    let e = Transport::connect(TransportConfig::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), crate::ErrorKind::Config(_)), "{e}");
}
