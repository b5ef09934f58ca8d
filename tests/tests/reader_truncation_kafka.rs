//! Position validation after a leader change (KIP-320) on a real
//! three-node Apache Kafka cluster: the twin of
//! `reader_truncation_scripted.rs`, with the diverged log made by Kafka
//! itself instead of a script.
//!
//! The unclean case. Partition 0 has two replicas, node 1 (the leader) and
//! node 2, with `unclean.leader.election.enable=true` and
//! `min.insync.replicas=1`. Node 3 holds no replica: it keeps the KRaft
//! quorum. Every node is a controller voter, so with a replica on all
//! three, stopping the two followers (to keep records off them) would stop
//! two voters, and no controller could shrink the ISR or elect anyone.
//!
//! a-0..a-4 are written to both replicas. Node 2 is paused (SIGSTOP) until
//! the controller fences it and it leaves the ISR; b-5..b-9 then go to
//! node 1 alone. Two readers read all ten from node 1. Node 1 is killed
//! (kill -9) and node 2 resumed: once node 1's controller session expires,
//! the controller elects node 2, the only live replica, uncleanly, at a new
//! leader epoch, and new-5..new-11 take the offsets of the lost b records.
//! Each reader, holding the epoch of b-9, asks node 2 where that epoch
//! ends (OffsetForLeaderEpoch: 5, asserted directly too): the default
//! policy reads new-5..new-11, `OffsetReset::Error` stops with
//! `LogTruncation { diverged_at: 5 }`. Node 1, restarted, truncates its
//! log to 5 and follows node 2; made leader again by a preferred election
//! (a clean change for the reader, which reads on), it serves a-0..a-4
//! and new-5..new-11, and says the epoch of b-9 ends at 5, as node 2 does.
//!
//! The clean case: the leader's controlled shutdown (SIGTERM) hands the
//! partition to an in-sync replica at the next epoch, whose log holds
//! every record the reader fetched; the reader goes on there with none
//! lost, none repeated, no truncation and no reset.

use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_admin::{Admin, ElectionType, NewTopic, TopicPartition};
use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::OffsetForLeaderEpochRequest;
use kafkit_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_reader::{ErrorKind, FetchConfig, OffsetReset, Reader, StartOffset};
use kafkit_tests::{KafkaCluster, KafkaOptions, Listener, RawClient, unique_topic};

/// One three-node cluster at a time: two would share two cores, and a
/// starved JVM drops out of the ISR on its own. (A tokio mutex: each test
/// holds it across its awaits, in a runtime of its own.)
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a reader may take for one message.
const READ_WAIT: Duration = Duration::from_secs(30);
/// How long the cluster may take to show a change: a fenced broker's
/// controller session is 9 s (`broker.session.timeout.ms`), ISR changes
/// follow `replica.lag.time.max.ms` (10 s), and this machine is shared.
const CHANGE_WAIT: Duration = Duration::from_secs(90);

/// Partition 0 as the metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionState {
    leader: i32,
    epoch: i32,
    isr: Vec<i32>,
}

/// Partition 0 of `topic` as node `id` shows it; `None` while that node
/// does not know the topic yet (metadata reaches each broker a moment
/// after the controller commits it).
fn partition_state(cluster: &KafkaCluster, id: u32, topic: &str) -> Option<PartitionState> {
    let mut client = RawClient::connect(cluster.addr(id, Listener::Plaintext));
    let t = client.metadata(Some(&[topic])).topics.into_iter().next()?;
    if t.error_code != ErrorCode::NONE {
        return None;
    }
    let p = t.partitions.into_iter().find(|p| p.partition_index == 0)?;
    Some(PartitionState {
        leader: p.leader_id,
        epoch: p.leader_epoch,
        isr: p.isr_nodes,
    })
}

/// Polls node `via`'s metadata until `done` holds, at most [`CHANGE_WAIT`].
fn wait_state(
    cluster: &KafkaCluster,
    via: u32,
    topic: &str,
    what: &str,
    done: impl Fn(&PartitionState) -> bool,
) -> PartitionState {
    let start = Instant::now();
    loop {
        let state = partition_state(cluster, via, topic);
        if let Some(state) = state.as_ref().filter(|s| done(s)) {
            eprintln!("{what} after {:.1?}: {state:?}", start.elapsed());
            return state.clone();
        }
        assert!(
            start.elapsed() < CHANGE_WAIT,
            "{what}: not so after {CHANGE_WAIT:?}; node {via} shows {state:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`wait_state`] on every node: a new topic reaches each broker's
/// metadata on its own time, and producing asks the leader for the topic id.
fn wait_created(
    cluster: &KafkaCluster,
    topic: &str,
    done: impl Fn(&PartitionState) -> bool,
) -> PartitionState {
    let states: Vec<PartitionState> = cluster
        .node_ids()
        .into_iter()
        .map(|id| wait_state(cluster, id, topic, &format!("created, on node {id}"), &done))
        .collect();
    states[0].clone()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produces `{prefix}-{offset}` for each of `offsets` to partition 0 on
/// node `leader`, in one batch (acks=all), asserting where it lands.
fn produce(cluster: &KafkaCluster, leader: u32, topic: &str, prefix: &str, offsets: Range<i64>) {
    let mut batch = RecordBatchBuilder::new(0);
    for offset in offsets.clone() {
        let value = format!("{prefix}-{offset}");
        batch
            .append(now_ms(), None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    let mut client = RawClient::connect(cluster.addr(leader, Listener::Plaintext));
    let answer = client.produce(topic, 0, batch.finish().unwrap());
    assert_eq!(
        answer.error_code,
        ErrorCode::NONE,
        "producing {prefix} to node {leader}"
    );
    assert_eq!(answer.base_offset, offsets.start, "where {prefix} landed");
}

/// OffsetForLeaderEpoch as a consumer, to node `node` at its leader epoch
/// `current`: where `epoch` (or the largest epoch before it) ends in the
/// node's log, as (that epoch, its end offset).
fn epoch_end(
    cluster: &KafkaCluster,
    node: u32,
    topic: &str,
    current: i32,
    epoch: i32,
) -> (i32, i64) {
    let mut client = RawClient::connect(cluster.addr(node, Listener::Plaintext));
    let response = client.send(&OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: topic.to_owned(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: current,
                leader_epoch: epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let p = &response.topics[0].partitions[0];
    assert_eq!(
        p.error_code,
        ErrorCode::NONE,
        "OffsetForLeaderEpoch on node {node}"
    );
    (p.leader_epoch, p.end_offset)
}

/// Every record of partition 0 on node `node` (its leader), as (offset, value).
fn whole_log(cluster: &KafkaCluster, node: u32, topic: &str, count: usize) -> Vec<(i64, String)> {
    let mut client = RawClient::connect(cluster.addr(node, Listener::Plaintext));
    let (records, high_watermark) = client.fetch_records(topic, 0, 0, count);
    assert_eq!(high_watermark, count as i64, "node {node}'s log end");
    records
        .iter()
        .map(|r| {
            let value = r.value.as_deref().unwrap_or_default();
            (r.offset, String::from_utf8_lossy(value).into_owned())
        })
        .collect()
}

async fn reader(cluster: &KafkaCluster, topic: &str, offset_reset: OffsetReset) -> Reader {
    Reader::builder(cluster.bootstrap(Listener::Plaintext).split(','))
        .partition(topic, 0)
        .start_offset(StartOffset::Offset(0))
        .fetch(FetchConfig {
            max_wait: Duration::from_millis(100),
            offset_reset,
            ..FetchConfig::default()
        })
        .build()
        .await
        .unwrap()
}

/// A message as read: (offset, value, its batch's leader epoch).
type Read = (i64, String, i32);

/// Reads `count` messages, each within [`READ_WAIT`].
async fn read(reader: &mut Reader, count: usize) -> Vec<Read> {
    let mut out = Vec::new();
    for _ in 0..count {
        let m = tokio::time::timeout(READ_WAIT, reader.fetch_message())
            .await
            .unwrap_or_else(|_| panic!("only {} messages: {out:?}", out.len()))
            .unwrap_or_else(|e| panic!("an error after {out:?}: {e}"));
        out.push((
            m.offset,
            String::from_utf8_lossy(m.value_bytes()).into_owned(),
            m.leader_epoch
                .expect("Kafka stamps each batch with its leader epoch"),
        ));
    }
    out
}

fn values(read: &[Read]) -> Vec<(i64, String)> {
    read.iter().map(|(o, v, _)| (*o, v.clone())).collect()
}

fn expected(prefix: &str, offsets: Range<i64>) -> Vec<(i64, String)> {
    offsets.map(|o| (o, format!("{prefix}-{o}"))).collect()
}

/// Runs a blocking cluster operation (seconds long) off the reactor, so
/// the readers' background tasks keep running.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Starts a three-node cluster; the logs guard, dropped before it, copies
/// the nodes' logs out if the test fails.
fn start_cluster(name: &str) -> (KafkaCluster, KeepLogs) {
    let started = Instant::now();
    let cluster = blocking(|| KafkaCluster::start(KafkaOptions::three_nodes()));
    eprintln!("cluster up after {:.1?}", started.elapsed());
    let logs = cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.log(id))
        .collect();
    (cluster, KeepLogs(name.to_owned(), logs))
}

/// The nodes' broker logs, copied to the temp dir if the test panics
/// (the cluster's own dir goes with it).
struct KeepLogs(String, Vec<PathBuf>);

impl Drop for KeepLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("{}-{}", self.0, std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for (i, log) in self.1.iter().enumerate() {
            let _ = std::fs::copy(log, dir.join(format!("node-{}.log", i + 1)));
        }
        eprintln!("the nodes' logs are in {}", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_unclean_election_reading_resumes_where_the_logs_diverge() {
    let _one = ONE_CLUSTER.lock().await;
    let (mut cluster, _logs) = start_cluster("truncation-unclean");
    let (old, new, witness) = (1u32, 2u32, 3u32);
    let topic = unique_topic("truncation");
    let admin = Admin::builder([&cluster.bootstrap(Listener::Plaintext)])
        .build()
        .await
        .unwrap();
    let spec = NewTopic::new(&topic, 1)
        .assign(0, vec![old as i32, new as i32])
        .config("unclean.leader.election.enable", "true")
        .config("min.insync.replicas", "1");
    let created = admin.create_topics(&[spec], false).await.unwrap();
    created[&topic].as_ref().expect("the topic is created");
    let first = blocking(|| {
        wait_created(&cluster, &topic, |s| {
            s.leader == old as i32 && s.isr.len() == 2
        })
    });

    blocking(|| produce(&cluster, old, &topic, "a", 0..5));
    let mut default_policy = reader(&cluster, &topic, OffsetReset::Earliest).await;
    let mut error_policy = reader(&cluster, &topic, OffsetReset::Error).await;
    let a = read(&mut default_policy, 5).await;
    assert_eq!(values(&a), expected("a", 0..5));
    assert_eq!(
        values(&read(&mut error_policy, 5).await),
        expected("a", 0..5)
    );
    let epoch_a = a[4].2;
    assert_eq!(epoch_a, first.epoch);

    // Node 2 stops answering: the controller fences it, and the ISR is node 1.
    cluster.pause(new);
    blocking(|| {
        wait_state(&cluster, witness, &topic, "node 2 out of the ISR", |s| {
            s.isr == [old as i32]
        })
    });
    blocking(|| produce(&cluster, old, &topic, "b", 5..10));
    let b = read(&mut default_policy, 5).await;
    assert_eq!(values(&b), expected("b", 5..10));
    assert_eq!(
        values(&read(&mut error_policy, 5).await),
        expected("b", 5..10)
    );
    let epoch_b = b[4].2;

    // The only replica with b-5..b-9 dies, the one without comes back, and
    // the controller elects it uncleanly once node 1's session expires.
    cluster.kill(old);
    cluster.resume(new);
    let moved = blocking(|| {
        wait_state(&cluster, witness, &topic, "unclean election", |s| {
            s.leader == new as i32
        })
    });
    assert!(moved.epoch > epoch_b, "a new leader epoch: {moved:?}");
    assert_eq!(moved.isr, [new as i32]);
    blocking(|| produce(&cluster, new, &topic, "new", 5..12));

    // Node 2 has epoch `epoch_b`'s records up to 5 only (a-0..a-4).
    assert_eq!(
        blocking(|| epoch_end(&cluster, new, &topic, moved.epoch, epoch_b)),
        (epoch_a, 5),
        "where the fetched epoch ends on the new leader"
    );
    assert_eq!(
        blocking(|| epoch_end(&cluster, new, &topic, moved.epoch, moved.epoch)),
        (moved.epoch, 12),
        "the current epoch ends at the log end"
    );

    // Fetched up to 10; the logs part at 5: new-5..new-11 all come.
    let after = read(&mut default_policy, 7).await;
    assert_eq!(values(&after), expected("new", 5..12));
    assert!(after.iter().all(|m| m.2 == moved.epoch), "{after:?}");
    let stats = default_policy.stats().fetch;
    assert_eq!(stats.truncations, 1);
    assert_eq!(stats.resets, 0, "not the reset policy's doing");

    let e = tokio::time::timeout(READ_WAIT, error_policy.fetch_message())
        .await
        .expect("an answer in time")
        .expect_err("the truncation is reported");
    assert_eq!(e.kind(), &ErrorKind::LogTruncation { diverged_at: 5 });
    assert_eq!((e.partition(), e.offset()), (Some(0), Some(10)));
    assert!(!e.is_retriable());
    // The caller decides: seek to the divergence point and read the new log.
    error_policy.set_offset(5).unwrap();
    assert_eq!(
        values(&read(&mut error_policy, 7).await),
        expected("new", 5..12)
    );
    assert_eq!(error_policy.stats().fetch.truncations, 1);
    error_policy.close().await.unwrap();

    // Node 1 comes back: it truncates its log to 5 and catches up.
    blocking(|| cluster.restart(old));
    blocking(|| {
        wait_state(&cluster, witness, &topic, "node 1 in sync", |s| {
            s.isr.contains(&(old as i32))
        })
    });
    let tp = TopicPartition::new(topic.clone(), 0);
    let elected = admin
        .elect_leaders(ElectionType::Preferred, Some(std::slice::from_ref(&tp)))
        .await
        .unwrap();
    elected[&tp].as_ref().expect("node 1 leads again");
    let back = blocking(|| {
        wait_state(&cluster, witness, &topic, "node 1 leads", |s| {
            s.leader == old as i32
        })
    });
    assert_eq!(
        blocking(|| epoch_end(&cluster, old, &topic, back.epoch, epoch_b)),
        (epoch_a, 5),
        "node 1's epoch cache, truncated"
    );
    // A clean change for the reader this time: validated, no truncation.
    blocking(|| produce(&cluster, old, &topic, "c", 12..13));
    assert_eq!(
        values(&read(&mut default_policy, 1).await),
        expected("c", 12..13)
    );
    assert_eq!(default_policy.stats().fetch.truncations, 1);
    default_policy.close().await.unwrap();

    let mut want = expected("a", 0..5);
    want.extend(expected("new", 5..12));
    want.extend(expected("c", 12..13));
    assert_eq!(
        blocking(|| whole_log(&cluster, old, &topic, 13)),
        want,
        "node 1's log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_controlled_leader_change_reading_goes_on_without_loss_or_repeats() {
    let _one = ONE_CLUSTER.lock().await;
    let (mut cluster, _logs) = start_cluster("truncation-clean");
    let topic = unique_topic("truncation-clean");
    // Replication factor 3 (the cluster's default), min.insync.replicas 2.
    let created = blocking(|| {
        RawClient::connect(cluster.addr(1, Listener::Plaintext)).create_topics(&topic, 1)
    });
    assert_eq!(created.topics[0].error_code, ErrorCode::NONE);
    let first = blocking(|| wait_created(&cluster, &topic, |s| s.leader > 0 && s.isr.len() == 3));
    let old = first.leader as u32;
    let witness = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != old)
        .unwrap();

    blocking(|| produce(&cluster, old, &topic, "a", 0..10));
    let mut reader = reader(&cluster, &topic, OffsetReset::Earliest).await;
    let a = read(&mut reader, 10).await;
    assert_eq!(values(&a), expected("a", 0..10));
    assert!(a.iter().all(|m| m.2 == first.epoch));

    // SIGTERM: the controller moves the leadership to an in-sync replica.
    blocking(|| cluster.shutdown(old));
    let moved = blocking(|| {
        wait_state(&cluster, witness, &topic, "leader moved", |s| {
            s.leader > 0 && s.leader != old as i32
        })
    });
    assert!(moved.epoch > first.epoch, "{moved:?}");
    assert!(!moved.isr.contains(&(old as i32)), "{moved:?}");
    let new = moved.leader as u32;
    // The reader's validation finds the epoch it fetched whole on the new
    // leader: it ends at 10, where the reader stands.
    assert_eq!(
        blocking(|| epoch_end(&cluster, new, &topic, moved.epoch, first.epoch)),
        (first.epoch, 10)
    );

    blocking(|| produce(&cluster, new, &topic, "b", 10..20));
    let b = read(&mut reader, 10).await;
    assert_eq!(values(&b), expected("b", 10..20));
    assert!(b.iter().all(|m| m.2 == moved.epoch), "{b:?}");
    let stats = reader.stats();
    assert_eq!((stats.fetch.truncations, stats.fetch.resets), (0, 0));
    assert_eq!(stats.messages, 20);
    reader.close().await.unwrap();

    let mut want = expected("a", 0..10);
    want.extend(expected("b", 10..20));
    assert_eq!(blocking(|| whole_log(&cluster, new, &topic, 20)), want);
}
