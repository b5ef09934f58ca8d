//! A mixed consumer group: a librdkafka 2.16 consumer (confluent-kafka
//! 2.16.1) and a kafkit reader share a topic with the same assignor, and
//! together consume every record exactly once (each commits every record
//! it processes, and revocations commit before handing partitions over).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_conn::Message as Record;
use kafkit_reader::Reader;
use kafkit_reader::group::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use kafkit_tests::{TestBroker, run_python, unique_topic};

/// Consumes with librdkafka until `stop_file` exists, appending each
/// record as `partition offset` to `log_file` (flushed, so the test can
/// follow along) and committing it synchronously.
const PEER: &str = r#"
import os, sys, time
from confluent_kafka import Consumer, KafkaException, TopicPartition
bootstrap, group, topic, strategy, log_file, stop_file = sys.argv[1:7]
c = Consumer({
    "bootstrap.servers": bootstrap, "group.id": group,
    "partition.assignment.strategy": strategy,
    "enable.auto.commit": False, "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
})
def assigned(consumer, parts):
    print("assigned", [p.partition for p in parts], file=sys.stderr, flush=True)
def revoked(consumer, parts):
    print("revoked", [p.partition for p in parts], file=sys.stderr, flush=True)
c.subscribe([topic], on_assign=assigned, on_revoke=revoked)
deadline = time.time() + 50
with open(log_file, "a") as log:
    while time.time() < deadline and not os.path.exists(stop_file):
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            # A commit racing a rebalance (ILLEGAL_GENERATION or
            # REBALANCE_IN_PROGRESS on Kafka): the record is not processed.
            # Read it again if the partition is still ours; if not, its
            # next owner starts at the last commit, before it.
            print("commit failed, rewinding:", e, file=sys.stderr, flush=True)
            try:
                c.seek(TopicPartition(m.topic(), m.partition(), m.offset()))
            except KafkaException:
                pass
            continue
        log.write(f"{m.partition()} {m.offset()}\n")
        log.flush()
c.close()
print("done")
"#;

async fn produce(broker: &TestBroker, topic: &str, partitions: i32, round: usize, count: usize) {
    for p in 0..partitions {
        let conn = kafkit_conn::dial_leader(broker.bootstrap(), topic, p)
            .await
            .unwrap();
        let records: Vec<Record> = (0..count)
            .map(|i| Record::new(format!("{round}:{i}")))
            .collect();
        conn.write_messages(&records).await.unwrap();
    }
}

fn peer_records(log: &PathBuf) -> Vec<(i32, i64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (p, o) = l.split_once(' ')?;
            Some((p.parse().ok()?, o.parse().ok()?))
        })
        .collect()
}

/// `peer_leads`: the librdkafka member joins first and so leads the group
/// (it runs the assignor over kafkit's subscription); otherwise kafkit
/// joins first and assigns for both.
async fn mixed_group_consumes_every_record_once(assignor: Arc<dyn Assignor>, peer_leads: bool) {
    let broker = TestBroker::start();
    let name = assignor.name().to_owned();
    let topic = unique_topic(&format!("rgl-{name}"));
    let group = unique_topic(&format!("rgl-{name}-group"));
    broker.create_topic(&topic, 4);
    produce(&broker, &topic, 4, 0, 20).await;

    let dir = std::env::temp_dir().join(unique_topic("rgl-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, stop) = (dir.join("peer.log"), dir.join("stop"));
    let args: Vec<String> = vec![
        broker.bootstrap(),
        group.clone(),
        topic.clone(),
        name.clone(),
        log.display().to_string(),
        stop.display().to_string(),
    ];
    let peer = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(PEER, &args)
    });

    let start = Instant::now();
    while peer_leads && peer_records(&log).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "librdkafka never consumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reader = Reader::builder([broker.bootstrap()])
        .group_id(&group)
        .topics([&topic])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
        .assignors(vec![assignor])
        .build()
        .await
        .unwrap();
    let ours = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let (seen, finished) = (ours.clone(), done.clone());
    let member = tokio::spawn(async move {
        while !finished.load(Ordering::SeqCst) {
            if let Ok(m) =
                tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()).await
            {
                let m = m.unwrap();
                seen.lock().unwrap().push((m.partition, m.offset));
                reader.commit_messages(&[m]).await.unwrap();
            }
        }
        reader.close().await.unwrap();
    });

    // Keep writing while the group forms and rebalances.
    for round in 1..=12 {
        produce(&broker, &topic, 4, round, 5).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let total = 4 * (20 + 12 * 5);
    let start = Instant::now();
    while ours.lock().unwrap().len() + peer_records(&log).len() < total {
        assert!(
            // Generous: each eager rebalance on a loaded machine takes
            // several of tansu's one-second join rounds.
            start.elapsed() < Duration::from_secs(40),
            "kafkit read {}, librdkafka {} of {total}",
            ours.lock().unwrap().len(),
            peer_records(&log).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give duplicates, if any, a chance to show up before stopping.
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&stop, b"").unwrap();
    done.store(true, Ordering::SeqCst);
    member.await.unwrap();
    peer.await.unwrap();

    let ours = ours.lock().unwrap().clone();
    let theirs = peer_records(&log);
    assert!(
        !ours.is_empty() && !theirs.is_empty(),
        "both members read: {} / {}",
        ours.len(),
        theirs.len()
    );
    let mut all: Vec<(i32, i64)> = ours.iter().chain(&theirs).copied().collect();
    all.sort_unstable();
    let unique: BTreeSet<(i32, i64)> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a record was consumed twice");
    let expected: BTreeSet<(i32, i64)> =
        (0..4).flat_map(|p| (0..80).map(move |o| (p, o))).collect();
    assert_eq!(unique, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkit_leads_librdkafka_in_a_cooperative_sticky_group() {
    mixed_group_consumes_every_record_once(Arc::new(CooperativeStickyAssignor), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_leads_kafkit_in_a_range_group() {
    mixed_group_consumes_every_record_once(Arc::new(RangeAssignor), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_leads_kafkit_in_a_cooperative_sticky_group() {
    mixed_group_consumes_every_record_once(Arc::new(CooperativeStickyAssignor), true).await;
}
