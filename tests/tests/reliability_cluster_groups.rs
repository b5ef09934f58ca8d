//! Consumer groups through the faults of a replicated cluster, on three
//! Apache Kafka nodes (replication factor 3, `min.insync.replicas` 2): an
//! idempotent writer produces numbered records at an even pace while a
//! group of kafkit `Reader`s consumes them at-least-once
//! (`kafkit_tests::GroupRun`: fetch, process, `commit_messages` per batch),
//! and a fault runs a quarter of the way in. No record is skipped; records
//! processed twice are counted (at-least-once allows them, after a commit
//! lost to a rebalance). One cluster, one topic and group per scenario:
//!
//! - `rolling_restart_group`: three members while each node in turn is
//!   shut down under control, restarted, and waited for until it is back
//!   in every ISR. The group coordinator moves at least once.
//! - `reassignment_group`: three members while every partition is
//!   reassigned: its replicas rotated (so the preferred leader changes)
//!   and a preferred election run, then its old leader removed from the
//!   replicas and added back (a replica copied while being read).
//! - `group_storm_broker_kill`: five members, two steady and the others
//!   joining every second and leaving four seconds later (a rebalance
//!   every second), while the node of the group's coordinator is killed
//!   (kill -9) and restarted 5 s later.
//!
//! CI size: 20,000 records over 20 s per scenario. With `RUST_LOG` set
//! (say `kafkit_reader=debug`), the client's logs go to the test output.
//! `KAFKIT_RELIABILITY_FULL=1`: 300,000 records over 120 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_admin::{Admin, ElectionType, TopicPartition};
use kafkit_protocol::messages::metadata_response::MetadataResponsePartition;
use kafkit_tests::{ClusterScenario, GroupRun, Pacing, check_consumed, unique_topic, write_paced};
use kafkit_writer::Writer;

const PARTITIONS: usize = 6;
/// The group has stopped when no record was processed for this long.
const STALL: Duration = Duration::from_secs(90);

fn pacing() -> Pacing {
    Pacing::sized(
        Pacing {
            records: 20_000,
            span: Duration::from_secs(20),
        },
        Pacing {
            records: 300_000,
            span: Duration::from_secs(120),
        },
    )
}

/// Runs one scenario: a topic of its own, `members` steady members, the
/// paced writer with `fault` a quarter of the way in (given the cluster,
/// the group and the topic), `during` beside the run (say, members that come and
/// go), and the count.
async fn scenario(
    cluster: &Arc<ClusterScenario>,
    name: &str,
    members: usize,
    fault: impl FnOnce(&ClusterScenario, &str, &str) + Send + 'static,
    during: impl AsyncFnOnce(Arc<GroupRun>),
) {
    let started = Instant::now();
    let topic = unique_topic(&format!("rel-{name}"));
    tokio::task::block_in_place(|| cluster.create_topic(&topic, PARTITIONS));
    let group = Arc::new(GroupRun::new(
        &cluster.bootstrap(),
        &topic,
        pacing().records,
    ));
    for _ in 0..members {
        group.spawn_member(None);
    }
    let writer = Writer::builder(cluster.bootstrap().split(','));
    let (for_fault, group_id, topic_name) =
        (cluster.clone(), group.group().to_owned(), topic.clone());
    let writing = write_paced(writer, &topic, pacing(), move || {
        fault(&for_fault, &group_id, &topic_name)
    });
    let ((), written) = tokio::join!(during(group.clone()), writing);
    assert_eq!((written.acked, written.failed), (pacing().records, 0));
    let consumed = group.finish(STALL).await;
    check_consumed(name, pacing().records, &consumed);
    tokio::task::block_in_place(|| cluster.settle(&topic));
    eprintln!("{name}: done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_skip_nothing_through_rolling_restarts_reassignments_and_a_killed_coordinator() {
    // The client's logs only on request (say RUST_LOG=kafkit_reader=debug).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let start = Instant::now();
    let cluster = Arc::new(tokio::task::block_in_place(|| ClusterScenario::start(&[])));
    eprintln!("cluster up after {:?}", start.elapsed());

    scenario(
        &cluster,
        "rolling_restart_group",
        3,
        |cluster, group, _| {
            let coordinator = cluster.group_coordinator(group);
            cluster.rolling_restart();
            eprintln!(
                "the coordinator was node {coordinator}, now {}",
                cluster.group_coordinator(group)
            );
        },
        async |_| {},
    )
    .await;

    scenario(
        &cluster,
        "reassignment_group",
        3,
        |cluster, _, topic| {
            let partitions = cluster.partitions(topic);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the admin client");
            runtime.block_on(reassign_everything(cluster, topic, &partitions));
        },
        async |_| {},
    )
    .await;

    scenario(
        &cluster,
        "group_storm_broker_kill",
        2,
        |cluster, group, _| {
            let victim = cluster.group_coordinator(group);
            eprintln!("killing node {victim}, the group's coordinator");
            cluster.kill_for(victim, Duration::from_secs(5));
        },
        async |group| {
            // Three more members at a time: one joins every second, each
            // leaves four seconds later, while records remain.
            let mut joined = 0;
            while !group.is_done() {
                group.spawn_member(Some(Duration::from_secs(4)));
                joined += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            assert!(joined >= 10, "the storm was too short to prove anything");
        },
    )
    .await;
}

/// Rotates every partition's replicas and elects the new preferred
/// leaders, then takes each partition's old leader out of its replicas and
/// puts it back, waiting for each reassignment to finish.
async fn reassign_everything(
    cluster: &ClusterScenario,
    topic: &str,
    partitions: &[MetadataResponsePartition],
) {
    let admin = Admin::builder([&cluster.bootstrap()])
        .build()
        .await
        .expect("admin connects");
    let tp = |p: i32| TopicPartition::new(topic, p);
    let plan =
        |replicas: &dyn Fn(&[i32]) -> Vec<i32>| -> BTreeMap<TopicPartition, Option<Vec<i32>>> {
            partitions
                .iter()
                .map(|p| (tp(p.partition_index), Some(replicas(&p.replica_nodes))))
                .collect()
        };
    let rotated = plan(&|r| [&r[1..], &r[..1]].concat());
    let without_old_leader = plan(&|r| r[1..].to_vec());
    let restored = rotated.clone();
    for (step, moves) in [
        ("rotate", &rotated),
        ("shrink", &without_old_leader),
        ("restore", &restored),
    ] {
        let started = Instant::now();
        let answers = admin
            .alter_partition_reassignments(moves)
            .await
            .expect("reassign");
        assert!(answers.values().all(Result::is_ok), "{step}: {answers:?}");
        loop {
            let ongoing = admin
                .list_partition_reassignments(None)
                .await
                .expect("list");
            if ongoing.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{step}: {ongoing:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if step == "rotate" {
            let all: Vec<TopicPartition> = rotated.keys().cloned().collect();
            let elected = admin
                .elect_leaders(ElectionType::Preferred, Some(&all))
                .await
                .expect("elect");
            eprintln!("preferred election: {elected:?}");
        }
        eprintln!("{step} done after {:?}", started.elapsed());
    }
}
