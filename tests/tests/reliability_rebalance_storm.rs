//! A rebalance storm: while one member reads a topic at-least-once
//! (`fetch_message`, then `commit_messages` per batch), another member joins
//! every second and leaves (`close()`) four seconds later (a join takes
//! tansu a second or more, so shorter lives would leave before owning
//! anything there), so the group
//! rebalances all the time. No record is skipped, and the group's committed
//! offsets, polled throughout, never go backwards.
//!
//! It runs twice: against the run's broker (Apache Kafka; or tansu, whose
//! stuck-leader bug ends only the liveness check, see
//! `Target::stall_is_tansus_bug`), and against librdkafka's mock cluster.
//! On Kafka and on the mock the group must never stall.
//!
//! CI size: 30,000 records on 6 partitions, 10 s of storm.
//! `KAFKIT_RELIABILITY_FULL=1`: 200,000 records, 60 s of storm. The group
//! has stalled when no record is processed for a minute; with `RUST_LOG`
//! set (say `kafkit_reader=debug`), the client's logs go to the test output.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_conn::messages::OffsetFetchRequest;
use kafkit_conn::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafkit_conn::{ApiKey, CoordinatorKey, Purpose, Transport, TransportConfig};
use kafkit_reader::Reader;
use kafkit_tests::{MockCluster, Reliability, TestBroker, reliability_full, unique_topic};
use kafkit_writer::{Message as Record, Writer};

const PARTITIONS: i32 = 6;
/// The group has stalled when no record was processed for this long.
const STALL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Shared {
    processed: Mutex<Vec<u64>>,
    distinct: Mutex<HashSet<u64>>,
    commit_errors: AtomicU64,
    /// Records processed by the members that come and go.
    by_churn: AtomicU64,
    /// The last record's time and the longest pause between two records:
    /// how long a rebalance stopped the group at worst.
    gap: Mutex<(Option<Instant>, Duration)>,
    done: AtomicBool,
}

/// The broker the storm runs against.
enum Target {
    Broker(TestBroker),
    Mock(MockCluster),
}

impl Target {
    fn mock() -> Target {
        let cluster = MockCluster::start(1);
        // Classic versions of the group APIs: the mock (librdkafka 2.16)
        // advertises flexible ones but drops the connection on them (as in
        // reader_group_faults.rs).
        for (api, max) in [(11, 5), (14, 3), (12, 3), (13, 2)] {
            cluster.set_api_versions(api, Some((0, max)));
        }
        Target::Mock(cluster)
    }

    fn bootstrap(&self) -> String {
        match self {
            Target::Broker(broker) => broker.bootstrap(),
            Target::Mock(cluster) => cluster.bootstrap(),
        }
    }

    fn create_topic(&self, topic: &str) {
        match self {
            Target::Broker(broker) => broker.create_topic(topic, PARTITIONS as u32),
            Target::Mock(cluster) => cluster.create_topic(topic, PARTITIONS as u32, 1),
        }
    }

    /// Whether a stalled group is tansu's coordinator bug (naming it). Seen
    /// with every departed member's LeaveGroup acknowledged: the
    /// survivor's JoinGroup keeps naming as leader a member that left, its
    /// SyncGroup times out with REBALANCE_IN_PROGRESS, and the generation
    /// never moves again (a Kafka coordinator drops a leader that does not
    /// sync within the session timeout).
    fn stall_is_tansus_bug(&self) -> bool {
        match self {
            Target::Broker(broker) => {
                broker.has_tansu_bug("a leader that left mid-rebalance is named leader again")
            }
            Target::Mock(_) => false,
        }
    }
}

struct Setup {
    bootstrap: String,
    group: String,
    topic: String,
    records: u64,
}

async fn produce(setup: &Setup) {
    let writer = Writer::builder([setup.bootstrap.clone()])
        .topic(&setup.topic)
        .build()
        .await
        .unwrap();
    let ids: Vec<u64> = (0..setup.records).collect();
    for chunk in ids.chunks(10_000) {
        let batch: Vec<Record> = chunk
            .iter()
            .map(|i| Record::new(i.to_string()).with_partition((*i % 6) as i32))
            .collect();
        for result in writer.write_messages(&batch).await.unwrap() {
            result.unwrap();
        }
    }
    writer.close().await.unwrap();
}

/// One member: reads and commits batches until `life` is over (then
/// closes, leaving the group) or, with no `life`, until every record was
/// processed.
async fn member(setup: Arc<Setup>, shared: Arc<Shared>, life: Option<Duration>) {
    let mut reader = Reader::builder([setup.bootstrap.clone()])
        .group_id(&setup.group)
        .topics([setup.topic.clone()])
        .session_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let born = Instant::now();
    while life.is_none_or(|l| born.elapsed() < l) && !shared.done.load(Ordering::SeqCst) {
        let mut batch = Vec::new();
        while batch.len() < 100 {
            let next = tokio::time::timeout(Duration::from_millis(200), reader.fetch_message());
            let Ok(m) = next.await else { break };
            let m = m.expect("fetch_message survives rebalances");
            let id: u64 = std::str::from_utf8(m.value_bytes())
                .unwrap()
                .parse()
                .unwrap();
            shared.processed.lock().unwrap().push(id);
            {
                let mut gap = shared.gap.lock().unwrap();
                let now = Instant::now();
                if let Some(last) = gap.0 {
                    gap.1 = gap.1.max(now - last);
                }
                gap.0 = Some(now);
            }
            let mut distinct = shared.distinct.lock().unwrap();
            distinct.insert(id);
            if distinct.len() as u64 == setup.records {
                shared.done.store(true, Ordering::SeqCst);
            }
            drop(distinct);
            batch.push(m);
        }
        if life.is_some() {
            shared
                .by_churn
                .fetch_add(batch.len() as u64, Ordering::SeqCst);
        }
        // Processing takes time, so the storm overlaps the reading.
        tokio::time::sleep(Duration::from_millis(40)).await;
        // A commit for partitions a rebalance just took away fails; their
        // records come again to the new owner (at-least-once).
        if reader.commit_messages(&batch).await.is_err() {
            shared.commit_errors.fetch_add(1, Ordering::SeqCst);
        }
    }
    if reader.close().await.is_err() {
        shared.commit_errors.fetch_add(1, Ordering::SeqCst);
    }
}

/// The group's committed offset of every partition (-1: none). On a fresh
/// Kafka node the first FindCoordinator creates the offsets topic, and its
/// coordinator answers COORDINATOR_NOT_AVAILABLE (retriable) until it has
/// loaded: the lookup and the request are retried with the transport's backoff.
async fn committed(transport: &Transport, setup: &Setup) -> Vec<i64> {
    let request = OffsetFetchRequest {
        group_id: setup.group.clone(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: setup.topic.clone(),
            partition_indexes: (0..PARTITIONS).collect(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let response = transport
        .retry(|| async {
            let conn = transport
                .coordinator(&CoordinatorKey::Group(setup.group.clone()), Purpose::Admin)
                .await?;
            // v7 at most: v8 asks by groups, not by topics.
            let version = conn.version_for(ApiKey::OffsetFetch)?.min(7);
            let response = conn.request_at(version, request.clone()).await?;
            kafkit_conn::Error::check(response.error_code, None)?;
            Ok(response)
        })
        .await
        .unwrap();
    let mut offsets = vec![-1; PARTITIONS as usize];
    for p in &response.topics[0].partitions {
        offsets[p.partition_index as usize] = p.committed_offset;
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_storm_skips_no_record_and_commits_never_go_back() {
    storm(Target::Broker(TestBroker::start()), "rebalance_storm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_coordinator_the_storm_never_stalls() {
    storm(Target::mock(), "rebalance_storm_mock").await;
}

async fn storm(target: Target, scenario: &str) {
    let (records, storm) = if reliability_full() {
        // A member processes at most 100 records per 40 ms: 200,000 last
        // past the minute of storm (1,000,000 would take 7 minutes).
        (200_000, Duration::from_secs(60))
    } else {
        (30_000, Duration::from_secs(10))
    };
    // Logs only on request; a second test in this process would find one set.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let setup = Arc::new(Setup {
        bootstrap: target.bootstrap(),
        group: unique_topic("rel-storm-group"),
        topic: unique_topic("rel-storm"),
        records,
    });
    target.create_topic(&setup.topic);
    produce(&setup).await;

    let shared = Arc::new(Shared::default());
    let steady = tokio::spawn(member(setup.clone(), shared.clone(), None));
    let churn = {
        let (setup, shared) = (setup.clone(), shared.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let mut members = Vec::new();
            while start.elapsed() < storm && !shared.done.load(Ordering::SeqCst) {
                let life = Some(Duration::from_secs(4));
                members.push(tokio::spawn(member(setup.clone(), shared.clone(), life)));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let joined = members.len();
            for m in members {
                m.await.unwrap();
            }
            joined
        })
    };

    // Commits polled throughout: never backwards.
    let transport = Transport::connect(TransportConfig::new([setup.bootstrap.clone()]))
        .await
        .unwrap();
    let mut last = vec![-1; PARTITIONS as usize];
    let (mut polls, start, mut stalled) = (0, Instant::now(), false);
    while !steady.is_finished() {
        // Stalled: no record processed for STALL (by the clock of the last
        // one, or of the start before the first).
        let idle = shared.gap.lock().unwrap().0.unwrap_or(start).elapsed();
        if idle >= STALL {
            let message = format!(
                "the group stopped making progress: no record for {idle:?}, {} of {records} \
                 processed, commits {last:?}",
                shared.distinct.lock().unwrap().len()
            );
            assert!(target.stall_is_tansus_bug(), "{message}");
            eprintln!("{message}: the liveness check ends here, the safety checks go on");
            stalled = true;
            shared.done.store(true, Ordering::SeqCst);
            break;
        }
        let now = committed(&transport, &setup).await;
        for (p, (before, after)) in last.iter().zip(&now).enumerate() {
            assert!(
                after >= before,
                "partition {p}: commit went from {before} to {after}"
            );
        }
        last = now;
        polls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A member stuck in the rebalance closes once its LeaveGroup wait is
    // over; none of them may fail.
    steady.await.unwrap();
    let joined = churn.await.unwrap();

    let processed = shared.processed.lock().unwrap().clone();
    if stalled {
        // No record skipped: what was processed of each partition is a
        // prefix of it (record i is offset i / 6 of partition i % 6), and
        // nothing past that prefix was ever committed.
        let distinct = shared.distinct.lock().unwrap().clone();
        let end = committed(&transport, &setup).await;
        for p in 0..PARTITIONS as u64 {
            let read = distinct.iter().filter(|i| *i % 6 == p).count() as u64;
            for offset in 0..read {
                assert!(
                    distinct.contains(&(offset * 6 + p)),
                    "partition {p}: offset {offset} skipped"
                );
            }
            assert!(
                end[p as usize] <= read as i64,
                "partition {p}: committed {} past the {read} records processed",
                end[p as usize]
            );
        }
        return;
    }
    let sent: Vec<u64> = (0..records).collect();
    let longest = shared.gap.lock().unwrap().1;
    let report = Reliability::count(scenario, &sent, &processed, longest);
    eprintln!(
        "{joined} members joined and left, processing {} records; {polls} commit polls; \
         {} failed commits",
        shared.by_churn.load(Ordering::SeqCst),
        shared.commit_errors.load(Ordering::SeqCst)
    );
    assert_eq!(report.lost, 0, "{report}");
    // Members join only while records remain, so this many rebalances
    // happened during the reading. (The newcomers mostly own nothing: each
    // join restarts the rebalance before cooperative-sticky's second round
    // hands them partitions; `by_churn` above shows how much they read.)
    assert!(joined >= 3, "the storm was too short to prove anything");
    // The last batch's commit may have lost a race with a rebalance, so
    // the end is not always committed; nothing past it ever is.
    let end = committed(&transport, &setup).await;
    // Record i went to partition i % 6.
    let sizes: Vec<i64> = (0..PARTITIONS as u64)
        .map(|p| ((records + PARTITIONS as u64 - 1 - p) / PARTITIONS as u64) as i64)
        .collect();
    assert!(
        end.iter().zip(&sizes).all(|(c, size)| c <= size),
        "final commits {end:?} beyond the partitions' sizes {sizes:?}"
    );
}
