//! Moving a partition's leader on a three-node [`KafkaCluster`], for the
//! KIP-951 tests: reorder its replicas, run a preferred election, and wait
//! until every node shows the change. Partition 0 of a one-partition topic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_admin::{Admin, ElectionType, NewTopic, TopicPartition};
use kafkit_conn::{Transport, TransportConfig};
use kafkit_protocol::ErrorCode;
use kafkit_protocol::records::RecordBatchBuilder;

use crate::{KafkaCluster, KafkaOptions, Listener, RawClient, unique_topic};

/// How long the cluster may take to show a change (ISR, election).
pub const CHANGE_WAIT: Duration = Duration::from_secs(90);

/// The transport's metadata age in both tests: no periodic refresh during
/// a test (error-triggered refreshes keep their default spacing, 100 ms).
pub const NO_REFRESH: Duration = Duration::from_secs(600);

/// What both KIP-951 tests start from.
#[derive(Debug)]
pub struct Setup {
    pub cluster: KafkaCluster,
    pub admin: Admin,
    /// A one-partition topic, replicas 1, 2, 3.
    pub topic: String,
    /// Its partition once node 1 leads it with all three in sync.
    pub first: PartitionState,
    /// A transport on the cluster that refreshes no metadata on a timer.
    pub transport: Transport,
}

/// Three nodes, a topic named from `prefix` with one partition on nodes 1,
/// 2 and 3, led by node 1 with every replica in sync, and a transport
/// whose metadata never ages during the test ([`NO_REFRESH`]).
pub async fn setup(prefix: &str) -> Setup {
    let cluster = blocking(|| KafkaCluster::start(KafkaOptions::three_nodes()));
    let bootstrap = cluster.bootstrap(Listener::Plaintext);
    let topic = unique_topic(prefix);
    let admin = Admin::builder([&bootstrap]).build().await.unwrap();
    let spec = NewTopic::new(&topic, 1).assign(0, vec![1, 2, 3]);
    let created = admin.create_topics(&[spec], false).await.unwrap();
    created[&topic].as_ref().expect("the topic is created");
    let first = blocking(|| {
        wait_all(&cluster, &topic, "created", |s| {
            s.leader == 1 && s.isr.len() == 3
        })
    });
    let mut config = TransportConfig::new(bootstrap.split(',').map(str::to_owned));
    config.metadata_max_age = NO_REFRESH;
    config.metadata_idle = NO_REFRESH;
    let transport = Transport::connect(config).await.unwrap();
    Setup {
        cluster,
        admin,
        topic,
        first,
        transport,
    }
}

/// Partition 0 of a topic as one node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Partition 0 of `topic` as node `id` shows it, if it knows the topic.
pub fn partition_state(cluster: &KafkaCluster, id: u32, topic: &str) -> Option<PartitionState> {
    let mut client = RawClient::connect(cluster.addr(id, Listener::Plaintext));
    let t = client.metadata(Some(&[topic])).topics.into_iter().next()?;
    if t.error_code != ErrorCode::NONE {
        return None;
    }
    let p = t.partitions.into_iter().find(|p| p.partition_index == 0)?;
    Some(PartitionState {
        leader: p.leader_id,
        epoch: p.leader_epoch,
        replicas: p.replica_nodes,
        isr: p.isr_nodes,
    })
}

/// Waits (blocking, at most [`CHANGE_WAIT`]) until every node shows
/// partition 0 of `topic` as `done` wants; returns the last node's view.
pub fn wait_all(
    cluster: &KafkaCluster,
    topic: &str,
    what: &str,
    done: impl Fn(&PartitionState) -> bool,
) -> PartitionState {
    let start = Instant::now();
    let mut last = None;
    for id in [1, 2, 3] {
        loop {
            let state = partition_state(cluster, id, topic);
            if let Some(state) = state.as_ref().filter(|s| done(s)) {
                last = Some(state.clone());
                break;
            }
            assert!(
                start.elapsed() < CHANGE_WAIT,
                "{what}: node {id} shows {state:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!("{what} after {:.1?}: {last:?}", start.elapsed());
    last.expect("three nodes")
}

/// Makes `replicas[0]` the leader of partition 0 of `topic`: the replicas
/// are reordered to `replicas`, and once every node shows them in sync, a
/// preferred election runs. Returns the state after the election, whose
/// leader epoch is newer than before.
pub async fn move_leader(
    cluster: &KafkaCluster,
    admin: &Admin,
    topic: &str,
    replicas: [i32; 3],
) -> PartitionState {
    let p0 = TopicPartition::new(topic, 0);
    let moves = BTreeMap::from([(p0.clone(), Some(replicas.to_vec()))]);
    let moved = admin.alter_partition_reassignments(&moves).await.unwrap();
    assert!(moved[&p0].is_ok(), "{:?}", moved[&p0]);
    blocking(|| {
        wait_all(cluster, topic, "reordered", |s| {
            s.replicas == replicas && s.isr.len() == 3
        })
    });
    let elected = admin
        .elect_leaders(ElectionType::Preferred, Some(std::slice::from_ref(&p0)))
        .await
        .unwrap();
    assert!(elected[&p0].is_ok(), "{:?}", elected[&p0]);
    blocking(|| wait_all(cluster, topic, "elected", |s| s.leader == replicas[0]))
}

/// Writes `prefix-<offset>` for `offsets` to partition 0 on node `leader`
/// with a [`RawClient`], retrying while it does not serve the partition
/// yet; the first record must land at `offsets.start`.
pub fn produce_raw(
    cluster: &KafkaCluster,
    leader: u32,
    topic: &str,
    prefix: &str,
    offsets: std::ops::Range<i64>,
) {
    let start = Instant::now();
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut batch = RecordBatchBuilder::new(0);
        for offset in offsets.clone() {
            let value = format!("{prefix}-{offset}");
            batch
                .append(now, None, Some(value.as_bytes()), &[])
                .unwrap();
        }
        let mut client = RawClient::connect(cluster.addr(leader, Listener::Plaintext));
        let answer = client.produce(topic, 0, batch.finish().unwrap());
        if answer.error_code == ErrorCode::NONE {
            assert_eq!(answer.base_offset, offsets.start, "where {prefix} landed");
            return;
        }
        assert!(
            start.elapsed() < CHANGE_WAIT,
            "producing {prefix}: {:?}",
            answer.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(offset, "prefix-offset")` for each of `offsets`.
pub fn expected(prefix: &str, offsets: std::ops::Range<i64>) -> Vec<(i64, String)> {
    offsets.map(|o| (o, format!("{prefix}-{o}"))).collect()
}

/// Runs blocking test code (a [`RawClient`], a sleep) on a multi-threaded
/// runtime's worker without stalling the other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
