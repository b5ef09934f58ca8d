//! An idempotent `Writer` while every connection to the broker is reset
//! every few hundred milliseconds, and the broker goes down for two seconds
//! and comes back halfway through (a `FaultProxy` that tansu advertises, so
//! bootstrap, metadata and produce connections all cross it): every record
//! arrives exactly once and in order per partition.
//!
//! CI size: 30,000 records, resets every 300 ms. `KAFKIT_RELIABILITY_FULL=1`:
//! 1,000,000 records, resets every 200 ms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_tests::{FaultProxy, Reliability, reliability_full, unique_topic};
use kafkit_writer::{DeliveryReport, Message, Murmur2, Writer};

const PARTITIONS: usize = 3;

fn key(i: u64) -> String {
    format!("key-{}", i % 101)
}

/// The longest time between two acknowledgements: how long the writer
/// needed, at worst, to get going again after a reset.
#[derive(Default)]
struct Gaps {
    last: Option<Instant>,
    longest: Duration,
    failed: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_survive_connection_resets_without_loss_duplicates_or_reordering() {
    let (records, period) = if reliability_full() {
        (1_000_000u64, Duration::from_millis(200))
    } else {
        (30_000, Duration::from_millis(300))
    };
    let (broker, proxy) = FaultProxy::with_private_broker();
    let proxy = Arc::new(proxy);
    let topic = unique_topic("rel-resets");
    broker.create_topic(&topic, PARTITIONS as u32);

    let gaps = Arc::new(Mutex::new(Gaps::default()));
    let writer = {
        let gaps = gaps.clone();
        Writer::builder([proxy.addr().to_string()])
            .topic(&topic)
            .batch_size(500)
            .max_attempts(100)
            .request_timeout(Duration::from_secs(5))
            .on_delivery(move |report: DeliveryReport| {
                let mut g = gaps.lock().unwrap();
                let now = Instant::now();
                if let Some(last) = g.last {
                    g.longest = g.longest.max(now - last);
                }
                g.last = Some(now);
                g.failed += u64::from(report.result.is_err());
            })
            .build()
            .await
            .unwrap()
    };
    assert!(writer.config().is_idempotent());

    proxy.reset_every(Some(period));
    let start = Instant::now();
    // Paced so the storm spans several seconds: 800 pauses of 8 ms.
    let pause_every = (records / 800).max(1);
    // Halfway, the broker is down for 2 s while records keep coming.
    let outage = {
        let proxy = proxy.clone();
        move || {
            proxy.down(true);
            std::thread::sleep(Duration::from_secs(2));
            proxy.down(false);
        }
    };
    let mut outage = Some(outage);
    let mut outage_thread = None;
    for i in 0..records {
        writer
            .produce(&Message::new(i.to_string()).with_key(key(i)))
            .await
            .unwrap();
        if i % pause_every == 0 {
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
        if i == records / 2 {
            outage_thread = outage.take().map(std::thread::spawn);
        }
    }
    outage_thread
        .expect("the outage started")
        .join()
        .expect("the outage thread");
    tokio::time::timeout(Duration::from_secs(120), writer.flush())
        .await
        .expect("flush finishes despite the resets")
        .expect("no record failed");
    proxy.reset_every(None);
    let storm = start.elapsed();
    writer.close().await.unwrap();
    let faults = proxy.stats();
    let stats = writer.stats();
    eprintln!("storm of {storm:?}: {faults:?}; writer {stats:?}");
    assert!(
        faults.resets >= 5,
        "too few resets to prove anything: {faults:?}"
    );
    assert_eq!(gaps.lock().unwrap().failed, 0);
    assert_eq!(stats.errors, 0);

    let mut expected: Vec<Vec<u64>> = vec![Vec::new(); PARTITIONS];
    for i in 0..records {
        expected[Murmur2::partition_for(key(i).as_bytes(), PARTITIONS) as usize].push(i);
    }
    let addr = broker.addr();
    let read = tokio::task::spawn_blocking(move || {
        (0..PARTITIONS as i32)
            .map(|p| Reliability::read_partition(addr, &topic, p))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let sent: Vec<u64> = (0..records).collect();
    let received: Vec<u64> = read.iter().flatten().copied().collect();
    let longest = gaps.lock().unwrap().longest;
    let report = Reliability::count("writer_resets", &sent, &received, longest);
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
