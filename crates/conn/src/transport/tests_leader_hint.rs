//! Leader hints (KIP-951) against the in-process [`FakeCluster`]: a hint
//! moves one partition without a Metadata request, never moves a leader
//! back, adds an unknown leader's endpoint, and leaves a refresh that was
//! asked for in place.

use std::time::Duration;

use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

use super::fake_cluster::FakeCluster;
use super::*;

const LIMIT: Duration = Duration::from_secs(20);

fn config(fake: &FakeCluster) -> TransportConfig {
    let mut config = TransportConfig::new([fake.addr(1)]);
    // Long enough that only a hint can move a leader during a test.
    config.metadata_min_age = Duration::from_secs(60);
    config.metadata_max_age = Duration::from_secs(600);
    config
}

fn endpoint(fake: &FakeCluster, id: i32) -> Broker {
    let addr = fake.addr(id);
    let (host, port) = addr.rsplit_once(':').unwrap();
    Broker {
        id,
        host: host.to_owned(),
        port: port.parse().unwrap(),
        rack: None,
    }
}

/// One empty produce to partition 0 of `t` on its cached leader: the
/// broker that answered.
async fn produce(transport: &Transport) -> Result<(), Error> {
    let send = transport.on_leader("t", 0, Purpose::Produce, |conn| async move {
        let request = ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = conn.request(request).await?;
        let code = response.responses[0].partition_responses[0].error_code;
        Error::check(code, None)
    });
    tokio::time::timeout(LIMIT, send)
        .await
        .expect("the produce")
}

fn produced_on(fake: &FakeCluster) -> Vec<(i32, ErrorCode)> {
    let st = fake.state();
    st.produce_seen
        .iter()
        .map(|(n, _, _, c)| (*n, *c))
        .collect()
}

#[tokio::test]
async fn a_hint_moves_the_leader_without_a_metadata_request() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    produce(&transport).await.unwrap();
    fake.set_topic("t", 1, &[(2, 1)]);
    let before = fake.metadata_count();

    assert!(transport.note_leader("t", 0, 2, 1, None));
    let cluster = transport.snapshot();
    assert_eq!(cluster.leader("t", 0).unwrap().id, 2);
    assert_eq!(cluster.leader_epoch("t", 0), Some(1));
    produce(&transport).await.unwrap();
    assert_eq!(
        produced_on(&fake),
        [(1, ErrorCode::NONE), (2, ErrorCode::NONE)]
    );
    assert_eq!(fake.metadata_count(), before, "no Metadata request");
}

#[tokio::test]
async fn a_hint_never_moves_a_leader_back() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(2, 5)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    transport.cluster_for(&["t"]).await.unwrap();

    // Older: the cache is newer already, nothing to refresh for.
    assert!(transport.note_leader("t", 0, 1, 4, None));
    // The same epoch and leader: known.
    assert!(transport.note_leader("t", 0, 2, 5, None));
    // The same epoch, another leader: a refresh must tell.
    assert!(!transport.note_leader("t", 0, 1, 5, None));
    // No leader, no epoch, unknown partition or topic.
    assert!(!transport.note_leader("t", 0, -1, 6, None));
    assert!(!transport.note_leader("t", 0, 1, -1, None));
    assert!(!transport.note_leader("t", 7, 1, 6, None));
    assert!(!transport.note_leader("u", 0, 1, 6, None));
    let cluster = transport.snapshot();
    assert_eq!(cluster.leader("t", 0).unwrap().id, 2);
    assert_eq!(cluster.leader_epoch("t", 0), Some(5));
}

#[tokio::test]
async fn an_unknown_leader_is_reached_through_its_endpoint() {
    let fake = FakeCluster::start(2).await;
    fake.state().advertised = vec![1];
    fake.set_topic("t", 1, &[(1, 0)]);
    let transport = Transport::connect(config(&fake)).await.unwrap();
    transport.cluster_for(&["t"]).await.unwrap();
    assert!(!transport.snapshot().brokers().contains_key(&2));
    fake.set_topic("t", 1, &[(2, 1)]);

    // Without an endpoint, or with one that is not the leader's or not
    // valid, the hint cannot be used.
    assert!(!transport.note_leader("t", 0, 2, 1, None));
    assert!(!transport.note_leader("t", 0, 2, 1, Some(endpoint(&fake, 1))));
    let mut bad = endpoint(&fake, 2);
    bad.port = 70_000;
    assert!(!transport.note_leader("t", 0, 2, 1, Some(bad)));
    assert_eq!(transport.snapshot().leader("t", 0).unwrap().id, 1);

    assert!(transport.note_leader("t", 0, 2, 1, Some(endpoint(&fake, 2))));
    assert_eq!(transport.snapshot().brokers()[&2], endpoint(&fake, 2));
    produce(&transport).await.unwrap();
    assert_eq!(produced_on(&fake), [(2, ErrorCode::NONE)]);
}

#[tokio::test]
async fn a_hint_keeps_a_requested_refresh_and_a_newer_refresh_wins() {
    let fake = FakeCluster::start(2).await;
    fake.set_topic("t", 1, &[(1, 0)]);
    let mut config = config(&fake);
    config.metadata_min_age = Duration::from_millis(20);
    let transport = Transport::connect(config).await.unwrap();
    transport.cluster_for(&["t"]).await.unwrap();

    transport.on_error(&Error::check(ErrorCode::NOT_LEADER_OR_FOLLOWER, None).unwrap_err());
    assert!(transport.note_leader("t", 0, 2, 2, None));
    assert!(
        !transport.inner.metadata.is_fresh(),
        "the refresh is still due"
    );

    // A refresh from a broker behind the hint keeps the hint...
    fake.set_topic("t", 1, &[(1, 1)]);
    let before = fake.metadata_count();
    let cluster = tokio::time::timeout(LIMIT, transport.cluster())
        .await
        .unwrap()
        .unwrap();
    assert!(fake.metadata_count() > before, "the refresh was made");
    assert_eq!(cluster.leader("t", 0).unwrap().id, 2);
    assert_eq!(cluster.leader_epoch("t", 0), Some(2));

    // ...and a newer one replaces it.
    fake.set_topic("t", 1, &[(1, 3)]);
    transport.on_error(&Error::check(ErrorCode::NOT_LEADER_OR_FOLLOWER, None).unwrap_err());
    let cluster = tokio::time::timeout(LIMIT, transport.cluster())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cluster.leader("t", 0).unwrap().id, 1);
    assert_eq!(cluster.leader_epoch("t", 0), Some(3));
}
