//! 100,000 records consumed by a group that rebalances twice while
//! reading (a second member joins, then the first leaves): every record is
//! seen, and since each member marks what it processed and revocations
//! and close commit it, none is seen twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_conn::Message as Record;
use kafkit_reader::Reader;
use kafkit_tests::{TestBroker, unique_topic};

const PARTITIONS: i32 = 6;
const TOTAL: usize = 100_000;

type Seen = Arc<Mutex<Vec<(i32, i64)>>>;

fn spawn_member(mut reader: Reader, seen: Seen) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let task = tokio::spawn(async move {
        while !st.load(Ordering::SeqCst) {
            if let Ok(m) =
                tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()).await
            {
                let m = m.unwrap();
                seen.lock().unwrap().push((m.partition, m.offset));
                // Marks only; the interval task commits in batches.
                reader.commit_messages(&[m]).await.unwrap();
            }
        }
        reader.close().await.unwrap();
    });
    (stop, task)
}

async fn reader(broker: &TestBroker, group: &str, topic: &str) -> Reader {
    Reader::builder([broker.bootstrap()])
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
        .commit_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap()
}

async fn wait_for(seen: &Seen, count: usize, timeout: Duration) {
    let start = Instant::now();
    while seen.lock().unwrap().len() < count {
        assert!(
            start.elapsed() < timeout,
            "only {} of {count} records read",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_records_across_rebalances_each_seen_once() {
    let broker = TestBroker::start();
    let topic = unique_topic("rgl-load");
    let group = unique_topic("rgl-load-group");
    broker.create_topic(&topic, PARTITIONS as u32);
    // Written while the group reads, so that records are left for the
    // second member whenever it joins: 50 rounds of 2,000.
    let rounds = 50;
    let per_round = TOTAL / rounds / PARTITIONS as usize + 1;
    let mut expected = HashSet::new();
    let mut counts = [0usize; PARTITIONS as usize];
    let mut plan = Vec::new();
    let mut left = TOTAL;
    for _ in 0..rounds {
        let mut round = Vec::new();
        for p in 0..PARTITIONS {
            let n = per_round.min(left);
            left -= n;
            let first = counts[p as usize];
            counts[p as usize] += n;
            expected.extend((first as i64..(first + n) as i64).map(|o| (p, o)));
            round.push((p, first, n));
        }
        plan.push(round);
    }
    let bootstrap = broker.bootstrap();
    let producer_topic = topic.clone();
    let producer = tokio::spawn(async move {
        let mut conns = Vec::new();
        for p in 0..PARTITIONS {
            conns.push(
                kafkit_conn::dial_leader(&bootstrap, &producer_topic, p)
                    .await
                    .unwrap(),
            );
        }
        for round in plan {
            for (p, first, n) in round {
                if n == 0 {
                    continue;
                }
                let records: Vec<Record> = (first..first + n)
                    .map(|i| Record::new(format!("{p}:{i}")))
                    .collect();
                conns[p as usize].write_messages(&records).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(expected.len(), TOTAL);

    let started = Instant::now();
    let seen_a: Seen = Arc::default();
    let seen_b: Seen = Arc::default();
    let (stop_a, a) = spawn_member(reader(&broker, &group, &topic).await, seen_a.clone());
    wait_for(&seen_a, 25_000, Duration::from_secs(30)).await;

    // Rebalance 1: b joins; a hands over half its partitions.
    let (stop_b, b) = spawn_member(reader(&broker, &group, &topic).await, seen_b.clone());
    let both = Arc::new(Mutex::new(Vec::new()));
    let total = |both: &Arc<Mutex<Vec<(i32, i64)>>>| {
        let mut all = both.lock().unwrap();
        all.clear();
        all.extend(seen_a.lock().unwrap().iter().copied());
        all.extend(seen_b.lock().unwrap().iter().copied());
        all.len()
    };
    let start = Instant::now();
    while seen_b.lock().unwrap().is_empty() || total(&both) < 60_000 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "b never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Rebalance 2: a leaves (close commits and leaves); b takes all.
    stop_a.store(true, Ordering::SeqCst);
    a.await.unwrap();
    let start = Instant::now();
    while total(&both) < TOTAL {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "read {} of {TOTAL}",
            total(&both)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything read twice would show up by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_b.store(true, Ordering::SeqCst);
    b.await.unwrap();
    let elapsed = started.elapsed();
    producer.await.unwrap();

    let (a_count, b_count) = (seen_a.lock().unwrap().len(), seen_b.lock().unwrap().len());
    total(&both);
    let all = both.lock().unwrap();
    let unique: HashSet<(i32, i64)> = all.iter().copied().collect();
    assert_eq!(unique, expected, "every record seen");
    assert_eq!(
        all.len(),
        TOTAL,
        "no record seen twice (a read {a_count}, b {b_count})"
    );
    eprintln!(
        "{TOTAL} records in {elapsed:?} across two rebalances: a read {a_count}, b read {b_count}"
    );
}
