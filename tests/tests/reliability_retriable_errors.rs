//! The broker answering with retriable error codes in turn, on librdkafka's
//! mock cluster: while an idempotent `Writer` writes and a partition
//! `Reader` per partition reads, the next Produce and Fetch requests are answered with
//! NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS,
//! LEADER_NOT_AVAILABLE, UNKNOWN_LEADER_EPOCH and KAFKA_STORAGE_ERROR, again
//! and again. No record fails (each is retried within its delivery
//! timeout), both are going again within a request timeout of the last
//! error, and every record is written once and read.
//!
//! The mock checks producer sequences only for transactional producers (see
//! `writer_faults.rs`), so the writer keeps one request in flight per broker.
//!
//! A round of errors goes in every 1.5 s (3 s at full size): the client
//! backs off between retries (100 ms doubling, up to 1 s for the writer),
//! so a round takes it about 1.5 s to get through. Faster rounds would
//! queue errors faster than any retrying client can consume them, which
//! tests nothing: over a minute at 1.5 s, the writer's queue of pending
//! errors grew until a record ran out of attempts.
//!
//! CI size: 20,000 records, errors injected for 4.5 s.
//! `KAFKIT_RELIABILITY_FULL=1`: 1,000,000 records, 60 s of errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_reader::Reader;
use kafkit_tests::{MockCluster, Reliability, reliability_full, unique_topic};
use kafkit_writer::{DeliveryReport, Message, Writer};

const PARTITIONS: u32 = 6;
const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
/// The retriable codes the mock answers with, in turn.
const PRODUCE_ERRORS: [i16; 4] = [6, 7, 19, 5];
const FETCH_ERRORS: [i16; 4] = [6, 75, 56, 5];
/// The writer's and reader's request timeout: each must recover within it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between two events (acknowledgements or reads).
#[derive(Default)]
struct Gap {
    last: Option<Instant>,
    longest: Duration,
}

impl Gap {
    fn tick(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.longest = self.longest.max(now - last);
        }
        self.last = Some(now);
    }
}

/// Reads partition `p` (a partition reader, no group) until it holds its
/// share of `records` (ids `i` with `i % 6 == p`); returns the ids and the
/// longest pause between two messages after the first.
async fn read_partition(
    bootstrap: String,
    topic: String,
    p: i32,
    records: u64,
    storm: Duration,
) -> (Vec<u64>, Duration) {
    let expected = (0..records).filter(|i| i % 6 == p as u64).count();
    let mut reader = Reader::builder(bootstrap.split(','))
        .partition(topic, p)
        .build()
        .await
        .unwrap();
    let (mut ids, mut gap) = (Vec::with_capacity(expected), Gap::default());
    let deadline = Instant::now() + storm + Duration::from_secs(60);
    while ids.len() < expected {
        assert!(
            Instant::now() < deadline,
            "partition {p}: read {} of {expected}",
            ids.len()
        );
        // Errors keep coming for the whole storm, and the writer may make
        // no progress while they do: a read may wait that long, and then
        // two request timeouts. (The first also waits for the writer to
        // start.) The final assertion bounds the pause once errors stop.
        let wait = (storm + REQUEST_TIMEOUT * 2).max(Duration::from_secs(30));
        let m = tokio::time::timeout(wait, reader.fetch_message())
            .await
            .expect("the reader recovers within its timeouts")
            .expect("fetch errors are retried, not returned");
        gap.tick();
        ids.push(
            std::str::from_utf8(m.value_bytes())
                .unwrap()
                .parse()
                .unwrap(),
        );
    }
    reader.close().await.unwrap();
    (ids, gap.longest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_produce_and_fetch_errors_are_recovered_within_the_timeouts() {
    let (records, storm, round) = if reliability_full() {
        (
            1_000_000u64,
            Duration::from_secs(60),
            Duration::from_secs(3),
        )
    } else {
        (
            20_000,
            Duration::from_millis(4_500),
            Duration::from_millis(1_500),
        )
    };
    let cluster = MockCluster::start(1);
    let topic = unique_topic("rel-errors");
    cluster.create_topic(&topic, PARTITIONS, 1);

    let cluster_bootstrap = cluster.bootstrap();
    let acked = Arc::new(Mutex::new(Gap::default()));
    let writer = {
        let acked = acked.clone();
        Writer::builder(cluster.bootstrap().split(','))
            .topic(&topic)
            .max_in_flight(1)
            .batch_size(1_000)
            .max_attempts(50)
            .request_timeout(REQUEST_TIMEOUT)
            .on_delivery(move |r: DeliveryReport| {
                r.result.expect("every record is delivered");
                acked.lock().unwrap().tick();
            })
            .build()
            .await
            .unwrap()
    };
    let producer = tokio::spawn(async move {
        let pause_every = (records / 600).max(1);
        for i in 0..records {
            let m = Message::new(i.to_string()).with_partition((i % 6) as i32);
            writer.produce(&m).await.unwrap();
            if i % pause_every == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        writer.flush().await.expect("no record failed");
        let stats = writer.stats();
        writer.close().await.unwrap();
        stats
    });
    let injector = {
        let cluster_errors = Arc::new(cluster);
        let cluster = cluster_errors.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut rounds = 0;
            while start.elapsed() < storm {
                cluster.push_request_errors(PRODUCE, &PRODUCE_ERRORS);
                cluster.push_request_errors(FETCH, &FETCH_ERRORS);
                rounds += 1;
                tokio::time::sleep(round).await;
            }
            rounds
        });
        (cluster_errors, task)
    };

    let readers: Vec<_> = (0..PARTITIONS as i32)
        .map(|p| {
            tokio::spawn(read_partition(
                cluster_bootstrap.clone(),
                topic.clone(),
                p,
                records,
                storm,
            ))
        })
        .collect();
    let (mut seen, mut read_gap) = (Vec::new(), Duration::ZERO);
    for reader in readers {
        let (ids, gap) = reader.await.unwrap();
        seen.extend(ids);
        read_gap = read_gap.max(gap);
    }
    let stats = tokio::time::timeout(Duration::from_secs(60), producer)
        .await
        .expect("the writer finishes")
        .unwrap();
    let rounds = injector.1.await.unwrap();
    drop(injector.0);

    let write_gap = acked.lock().unwrap().longest;
    let recover = write_gap.max(read_gap);
    let sent: Vec<u64> = (0..records).collect();
    let report = Reliability::count("retriable_errors", &sent, &seen, recover);
    eprintln!(
        "{rounds} rounds of errors; writer retries {}, longest write pause {write_gap:?}, \
         longest read pause {read_gap:?}",
        stats.retries
    );
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report}");
    assert!(stats.retries > 0, "no error reached the writer");
    // Errors keep coming for the whole storm, so progress may pause that
    // long; once they stop, both must be going within a request timeout.
    assert!(recover < storm + REQUEST_TIMEOUT, "{report}");
}
