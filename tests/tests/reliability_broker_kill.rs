//! An idempotent `Writer` while the broker that leads the most partitions
//! is killed (kill -9) mid-produce and restarted five seconds later, on a
//! three-node Apache Kafka cluster (KRaft, each node broker and
//! controller): every record arrives exactly once, and in order per
//! partition.
//!
//! The topic: 6 partitions, replication factor 3, `min.insync.replicas`
//! 2, unclean election off (the cluster's defaults). The writer: acks=all
//! and idempotence (the defaults), keyed records (murmur2 over the 6
//! partitions), `max_attempts` unbounded so that only `delivery_timeout`
//! (2 minutes, the default) limits a record's retries, as in the Java
//! client (`retries` = MAX_INT, `delivery.timeout.ms` 120 s).
//!
//! Why nothing may be lost: a record is acknowledged only once every
//! in-sync replica has it, and the ISR has at least two members, so an
//! acknowledged record is on a surviving replica, and only an in-sync
//! replica can become leader. What was unacknowledged at the kill is sent
//! again to the new leader, and idempotence (a producer id and
//! per-partition sequence numbers, which followers replicate with the log)
//! makes the new leader answer `DUPLICATE_SEQUENCE_NUMBER` to a batch it
//! already has instead of writing it twice, and refuse with
//! `OUT_OF_ORDER_SEQUENCE_NUMBER` a batch whose predecessor it lacks, so
//! order holds.
//!
//! Why `max_attempts`: the metadata names the killed broker as leader
//! until its controller session expires (`broker.session.timeout.ms`,
//! 9 s) and the controller elects new leaders; until then each attempt is
//! refused at once. The default 10 attempts back off about 6.5 s in all
//! and give up first: with the defaults, records fail with
//! `ConnectionRefused`. Meanwhile acks=all writes to the other partitions
//! wait for the dead ISR member too, so acknowledgements stop everywhere
//! for about the session timeout: the time to recover reported.
//!
//! `leader.imbalance.check.interval.seconds=5` (default 300): once the
//! restarted broker is back in the ISR, the controller hands its preferred
//! partitions back within seconds, a second, clean, leader change, while
//! the writer still produces when the restart is quick enough.
//!
//! Records go out at an even pace over 60 s (CI: 30,000;
//! `KAFKIT_RELIABILITY_FULL=1`: 1,000,000 over 120 s), the kill after a
//! quarter of them. They are read back from each partition's leader once
//! every partition has its three replicas in sync and its preferred leader.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_protocol::ErrorCode;
use kafkit_tests::{
    KafkaCluster, KafkaOptions, Listener, RawClient, Reliability, reliability_full, unique_topic,
};
use kafkit_writer::{DeliveryReport, Message, Murmur2, Writer};

const PARTITIONS: usize = 6;

fn key(i: u64) -> String {
    format!("key-{}", i % 101)
}

/// The longest time between two acknowledgements: how long the writer
/// needed, at worst, to get going again after the kill.
#[derive(Default)]
struct Gaps {
    last: Option<Instant>,
    longest: Duration,
    longest_ended: Option<Instant>,
    acked: u64,
    failed: u64,
}

/// Each partition's leader, as node `via` sees it.
fn leaders(cluster: &KafkaCluster, via: u32, topic: &str) -> Vec<i32> {
    let mut client = RawClient::connect(cluster.addr(via, Listener::Plaintext));
    let mut partitions = client.topic_metadata(topic).partitions;
    partitions.sort_by_key(|p| p.partition_index);
    partitions.iter().map(|p| p.leader_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_survive_a_killed_leader_without_loss_duplicates_or_reordering() {
    let (records, span) = if reliability_full() {
        (1_000_000u64, Duration::from_secs(120))
    } else {
        (30_000, Duration::from_secs(60))
    };
    let started = Instant::now();
    let cluster = tokio::task::block_in_place(|| {
        KafkaCluster::start(KafkaOptions {
            overrides: vec![("leader.imbalance.check.interval.seconds".into(), "5".into())],
            ..KafkaOptions::three_nodes()
        })
    });
    eprintln!("cluster up after {:.1?}", started.elapsed());
    let topic = unique_topic("rel-kill");
    let bootstrap = cluster.bootstrap(Listener::Plaintext);
    let before = tokio::task::block_in_place(|| {
        let mut client = RawClient::connect(cluster.addr(1, Listener::Plaintext));
        let created = client.create_topics(&topic, PARTITIONS as i32);
        assert_eq!(created.topics[0].error_code, ErrorCode::NONE);
        cluster.wait_for_leaders(&[&topic], Duration::from_secs(30));
        let start = Instant::now();
        loop {
            let ps = client.topic_metadata(&topic).partitions;
            if ps.len() == PARTITIONS && ps.iter().all(|p| p.isr_nodes.len() == 3) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{ps:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        leaders(&cluster, 1, &topic)
    });
    let victim = (1..=3u32)
        .max_by_key(|id| {
            (
                before.iter().filter(|l| **l == *id as i32).count(),
                std::cmp::Reverse(*id),
            )
        })
        .unwrap();
    let survivor = (1..=3u32).find(|id| *id != victim).unwrap();
    let victim_leads = before.iter().filter(|l| **l == victim as i32).count();
    assert!(victim_leads >= 2, "{before:?}");
    eprintln!("leaders {before:?}: killing node {victim}");
    let cluster = Arc::new(Mutex::new(cluster));

    let gaps = Arc::new(Mutex::new(Gaps::default()));
    let writer = {
        let gaps = gaps.clone();
        Writer::builder(bootstrap.split(','))
            .topic(&topic)
            .max_attempts(u32::MAX)
            .on_delivery(move |report: DeliveryReport| {
                let mut g = gaps.lock().unwrap();
                let now = Instant::now();
                if let Some(last) = g.last
                    && now - last > g.longest
                {
                    g.longest = now - last;
                    g.longest_ended = Some(now);
                }
                g.last = Some(now);
                match report.result {
                    Ok(_) => g.acked += 1,
                    Err(e) => {
                        if g.failed == 0 {
                            eprintln!("record {} failed: {e}", report.id);
                        }
                        g.failed += 1;
                    }
                }
            })
            .build()
            .await
            .unwrap()
    };
    assert!(writer.config().is_idempotent());

    let start = Instant::now();
    let kill_at = records / 4;
    let mut fault = None;
    for i in 0..records {
        writer
            .produce(&Message::new(i.to_string()).with_key(key(i)))
            .await
            .unwrap();
        if i % 100 == 0 {
            let due = span.mul_f64(i as f64 / records as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if i == kill_at {
            let cluster = cluster.clone();
            fault = Some(std::thread::spawn(move || {
                let killed = start.elapsed();
                cluster.lock().unwrap().kill(victim);
                std::thread::sleep(Duration::from_secs(5));
                let restarting = start.elapsed();
                cluster.lock().unwrap().restart(victim);
                (killed, restarting, start.elapsed())
            }));
        }
    }
    let produced = start.elapsed();
    let (killed, restarting, restarted) = tokio::task::block_in_place(|| {
        fault
            .expect("the kill happened")
            .join()
            .expect("the fault thread")
    });
    tokio::time::timeout(Duration::from_secs(180), writer.flush())
        .await
        .expect("flush finishes")
        .expect("no record failed");
    let flushed = start.elapsed();
    writer.close().await.unwrap();
    let stats = writer.stats();
    let g = gaps.lock().unwrap();
    eprintln!(
        "killed node {victim} at {killed:?}, restarting at {restarting:?}, serving at \
         {restarted:?}; produced by {produced:?}, flushed at {flushed:?}; longest gap \
         {:?} ending at {:?}; writer {stats:?}",
        g.longest,
        g.longest_ended.map(|t| t - start),
    );
    assert_eq!((g.acked, g.failed), (records, 0));
    assert_eq!(stats.errors, 0);
    assert!(stats.retries > 0, "the kill disturbed nothing: {stats:?}");
    let longest = g.longest;
    drop(g);

    let mut expected: Vec<Vec<u64>> = vec![Vec::new(); PARTITIONS];
    for i in 0..records {
        expected[Murmur2::partition_for(key(i).as_bytes(), PARTITIONS) as usize].push(i);
    }
    // Read once the restarted node is back in every ISR and leads its
    // preferred partitions again, so no leader moves during the read.
    let read = tokio::task::block_in_place(|| {
        let cluster = cluster.lock().unwrap();
        let settled = Instant::now();
        let leaders = loop {
            let mut client = RawClient::connect(cluster.addr(survivor, Listener::Plaintext));
            let mut ps = client.topic_metadata(&topic).partitions;
            ps.sort_by_key(|p| p.partition_index);
            if ps
                .iter()
                .all(|p| p.isr_nodes.len() == 3 && Some(&p.leader_id) == p.replica_nodes.first())
            {
                break ps.iter().map(|p| p.leader_id).collect::<Vec<_>>();
            }
            assert!(settled.elapsed() < Duration::from_secs(90), "{ps:?}");
            std::thread::sleep(Duration::from_millis(200));
        };
        eprintln!("leaders {leaders:?} after {:?}", settled.elapsed());
        (0..PARTITIONS)
            .map(|p| {
                let addr = cluster.addr(u32::try_from(leaders[p]).unwrap(), Listener::Plaintext);
                // A leader that just took over learns the high watermark
                // from its followers' next fetch: until then it serves
                // less than was acknowledged. Wait for it (a shortfall
                // that lasts is a loss, and counted below).
                let mut client = RawClient::connect(addr);
                let waited = Instant::now();
                let end = loop {
                    let end = client.list_offset(&topic, p as i32, -1);
                    assert_eq!(end.error_code, ErrorCode::NONE);
                    if end.offset >= expected[p].len() as i64
                        || waited.elapsed() > Duration::from_secs(10)
                    {
                        break end.offset;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                let values = Reliability::read_partition(addr, &topic, p as i32);
                eprintln!(
                    "partition {p}: {} records read, log end {end} after {:?}, {} sent",
                    values.len(),
                    waited.elapsed(),
                    expected[p].len()
                );
                assert_eq!(values.len() as i64, end, "partition {p} read whole");
                values
            })
            .collect::<Vec<_>>()
    });
    let sent: Vec<u64> = (0..records).collect();
    let received: Vec<u64> = read.iter().flatten().copied().collect();
    let report = Reliability::count("broker_kill", &sent, &received, longest);
    for (p, (got, want)) in read.iter().zip(&expected).enumerate() {
        let got: std::collections::HashSet<u64> = got.iter().copied().collect();
        let missing: Vec<u64> = want
            .iter()
            .filter(|id| !got.contains(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "partition {p}: {} missing: {:?}",
                missing.len(),
                &missing[..missing.len().min(50)]
            );
        }
    }
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report}");
    for (p, (got, want)) in read.iter().zip(&expected).enumerate() {
        if let Some(at) = got.iter().zip(want).position(|(g, w)| g != w) {
            panic!(
                "partition {p}: offset {at} holds record {} where {} belongs",
                got[at], want[at]
            );
        }
    }
}
