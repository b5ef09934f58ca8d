//! An idempotent `Writer` (acks=all, the defaults) through the faults of a
//! replicated cluster, on three Apache Kafka nodes (KRaft, each node broker
//! and controller; replication factor 3, `min.insync.replicas` 2, unclean
//! election off): every record arrives exactly once, in order per
//! partition, in each of these, run one after another on one cluster, each
//! on a topic of its own:
//!
//! - `leader_kill`: the node that leads the most partitions is killed
//!   (kill -9) a quarter of the way in, and restarted 5 s later.
//! - `leader_pause`: that node is SIGSTOPped, as a long GC pause would
//!   stop it, for longer than the broker session (9 s: the controller
//!   fences it and elects other leaders) and than the writer's request
//!   timeout (its requests to the paused node time out and go to the new
//!   leaders), then SIGCONTed: it finds itself fenced and rejoins.
//! - `controller_failover`: the node of the active controller (the leader
//!   of the KRaft metadata log, from DescribeQuorum) is killed, so the
//!   quorum elects another while that node's partitions change leader;
//!   restarted 5 s later.
//! - `network_partition`: the busiest leader is cut off from the client
//!   alone (its proxy swallows everything, connections stay open and
//!   silent) while it still replicates with the others, so it stays
//!   leader: its partitions wait, the others go on, and all of it is
//!   delivered once the cut heals. Recovery is at least the cut.
//! - `rolling_restart`: each node in turn is shut down under control
//!   (SIGTERM: it hands its leaderships over first), restarted, and waited
//!   for until it is back in every ISR.
//!
//! Why nothing may be lost, duplicated or reordered: a record is
//! acknowledged only once every in-sync replica has it, and the ISR has at
//! least two members, so an acknowledged record is on a surviving replica,
//! and only an in-sync replica becomes leader. What was unacknowledged is
//! sent again to the new leader, where idempotence (a producer id and
//! per-partition sequences, replicated with the log) answers
//! `DUPLICATE_SEQUENCE_NUMBER` to a batch it has, and refuses a batch whose
//! predecessor it lacks. `max_attempts` is unbounded (the default, as
//! Java's `retries`), so only `delivery_timeout` (2 minutes) limits
//! retries: a dead leader stays named in the metadata for up to 9 s.
//!
//! CI size: 20,000 records over 20 s per scenario, 15 s pauses and cuts,
//! with the writer's and the connections' request timeout at 10 s.
//! `KAFKIT_RELIABILITY_FULL=1`: 1,000,000 records over 120 s, 45 s pauses
//! and cuts, default timeouts (30 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_conn::ConnConfig;
use kafkit_tests::{
    ClusterScenario, Pacing, check_written, reliability_full, unique_topic, write_paced,
};
use kafkit_writer::{Writer, WriterBuilder};

const PARTITIONS: usize = 6;

fn pacing() -> Pacing {
    Pacing::sized(
        Pacing {
            records: 20_000,
            span: Duration::from_secs(20),
        },
        Pacing {
            records: 1_000_000,
            span: Duration::from_secs(120),
        },
    )
}

/// How long a pause or a cut lasts.
fn outage() -> Duration {
    Duration::from_secs(if reliability_full() { 45 } else { 15 })
}

fn writer(cluster: &ClusterScenario) -> WriterBuilder {
    let builder = Writer::builder(cluster.bootstrap().split(','));
    if reliability_full() {
        return builder;
    }
    let timeout = Duration::from_secs(10);
    builder.request_timeout(timeout).conn(ConnConfig {
        request_timeout: Some(timeout),
        ..ConnConfig::default()
    })
}

/// Runs one scenario: a topic of its own, the paced writer, `fault` a
/// quarter of the way in (given the cluster and the topic's busiest
/// leader), and the checker.
async fn scenario(
    cluster: &Arc<ClusterScenario>,
    name: &str,
    fault: impl FnOnce(&ClusterScenario, u32) + Send + 'static,
) {
    let started = Instant::now();
    let topic = unique_topic(&format!("rel-{name}"));
    let victim = tokio::task::block_in_place(|| {
        cluster.create_topic(&topic, PARTITIONS);
        cluster.busiest_leader(&topic)
    });
    eprintln!("{name}: leaders {:?}", cluster.leaders(&topic));
    let for_fault = cluster.clone();
    let written = write_paced(writer(cluster), &topic, pacing(), move || {
        fault(&for_fault, victim)
    })
    .await;
    assert!(
        written.stats.retries > 0,
        "{name} disturbed nothing: {:?}",
        written.stats
    );
    tokio::task::block_in_place(|| check_written(cluster, name, &topic, pacing(), &written));
    eprintln!("{name}: done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_survive_kills_pauses_failovers_partitions_and_rolling_restarts() {
    let start = Instant::now();
    let cluster = Arc::new(tokio::task::block_in_place(|| ClusterScenario::start(&[])));
    eprintln!("cluster up after {:?}", start.elapsed());

    scenario(&cluster, "leader_kill", |cluster, victim| {
        eprintln!("killing node {victim}");
        cluster.kill_for(victim, Duration::from_secs(5));
    })
    .await;

    scenario(&cluster, "leader_pause", |cluster, victim| {
        eprintln!("pausing node {victim} for {:?}", outage());
        cluster.nodes().pause(victim);
        std::thread::sleep(outage());
        cluster.nodes().resume(victim);
    })
    .await;

    scenario(&cluster, "controller_failover", |cluster, _| {
        let controller = cluster.active_controller();
        eprintln!("killing node {controller}, the active controller");
        cluster.nodes().kill(controller);
        let killed = Instant::now();
        let mut successor = cluster.active_controller();
        while successor == controller {
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no new controller"
            );
            std::thread::sleep(Duration::from_millis(200));
            successor = cluster.active_controller();
        }
        eprintln!("node {successor} controls after {:?}", killed.elapsed());
        std::thread::sleep(Duration::from_secs(5).saturating_sub(killed.elapsed()));
        cluster.nodes().restart(controller);
    })
    .await;

    scenario(&cluster, "network_partition", |cluster, victim| {
        eprintln!(
            "cutting node {victim} off from the client for {:?}",
            outage()
        );
        cluster.proxy(victim).blackhole(true);
        std::thread::sleep(outage());
        cluster.proxy(victim).blackhole(false);
    })
    .await;

    scenario(&cluster, "rolling_restart", |cluster, _| {
        cluster.rolling_restart()
    })
    .await;
}
