//! An idempotent [`Writer`] producing numbered, keyed records at an even
//! pace while a fault runs beside it, and the checker that reads the topic
//! back: the writer half of the three-node scenarios
//! (`tests/tests/reliability_cluster_*.rs`).
//!
//! Record `i` has the value `i` (decimal) and the key `key-{i % 101}`, so
//! murmur2 spreads the records over every partition and
//! [`expected_partitions`] knows, without asking the writer, which
//! partition holds which records in which order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_writer::{DeliveryReport, Message, Murmur2, WriterBuilder, WriterStats};

use crate::cluster_scenario::ClusterScenario;
use crate::{Reliability, reliability_full};

/// How many records, over how long.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Records written.
    pub records: u64,
    /// The time they are spread over.
    pub span: Duration,
}

impl Pacing {
    /// `ci`, or `full` with `KAFKIT_RELIABILITY_FULL=1`.
    pub fn sized(ci: Pacing, full: Pacing) -> Pacing {
        if reliability_full() { full } else { ci }
    }
}

/// Record `i`'s key.
pub fn record_key(i: u64) -> String {
    format!("key-{}", i % 101)
}

/// Records `0..records` by partition, in the order they were written.
pub fn expected_partitions(records: u64, partitions: usize) -> Vec<Vec<u64>> {
    let mut expected = vec![Vec::new(); partitions];
    for i in 0..records {
        let p = Murmur2::partition_for(record_key(i).as_bytes(), partitions);
        expected[p as usize].push(i);
    }
    expected
}

/// What the writer saw.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// Records acknowledged.
    pub acked: u64,
    /// Records that failed.
    pub failed: u64,
    /// The longest time between two acknowledgements of one partition: how
    /// long the writer needed, at worst, to get going again after the fault
    /// (a cut-off leader stalls only its own partitions).
    pub longest_gap: Duration,
    /// When that gap ended, from the first write.
    pub gap_ended: Duration,
    /// The writer's counters after `close()`.
    pub stats: WriterStats,
}

#[derive(Default)]
struct Reports {
    start: Option<Instant>,
    /// Each partition's last acknowledgement.
    last: std::collections::HashMap<i32, Instant>,
    written: Written,
}

/// Writes `pacing.records` records to `topic` with `builder`'s writer
/// (plus a delivery callback), runs `fault` on a thread of its own once a
/// quarter of them are written, waits for the fault to end and every
/// record to be acknowledged or failed (3 minutes at most), and closes the
/// writer.
///
/// # Panics
///
/// If the writer cannot be built, a write is refused, or the flush does
/// not finish.
pub async fn write_paced(
    builder: WriterBuilder,
    topic: &str,
    pacing: Pacing,
    fault: impl FnOnce() + Send + 'static,
) -> Written {
    let reports = Arc::new(Mutex::new(Reports::default()));
    let writer = {
        let reports = reports.clone();
        builder
            .topic(topic)
            .on_delivery(move |report: DeliveryReport| {
                let mut r = reports.lock().unwrap();
                let now = Instant::now();
                match report.result {
                    Ok(landed) => {
                        if let Some(last) = r.last.insert(landed.partition, now)
                            && now - last > r.written.longest_gap
                        {
                            r.written.longest_gap = now - last;
                            r.written.gap_ended = now - r.start.unwrap_or(now);
                        }
                        r.written.acked += 1;
                    }
                    Err(e) => {
                        if r.written.failed == 0 {
                            eprintln!("record {} failed: {e}", report.id);
                        }
                        r.written.failed += 1;
                    }
                }
            })
            .build()
            .await
            .expect("the writer builds")
    };
    assert!(writer.config().is_idempotent());
    let start = Instant::now();
    reports.lock().unwrap().start = Some(start);
    let mut fault = Some(fault);
    let mut running = None;
    for i in 0..pacing.records {
        let message = Message::new(i.to_string()).with_key(record_key(i));
        writer
            .produce(&message)
            .await
            .expect("the write is buffered");
        if i % 100 == 0 {
            let due = pacing.span.mul_f64(i as f64 / pacing.records as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if i == pacing.records / 4
            && let Some(fault) = fault.take()
        {
            eprintln!("fault at {:?}", start.elapsed());
            running = Some(std::thread::spawn(fault));
        }
    }
    eprintln!("written by {:?}", start.elapsed());
    if let Some(running) = running {
        tokio::task::block_in_place(|| running.join().expect("the fault thread"));
        eprintln!("fault over at {:?}", start.elapsed());
    }
    tokio::time::timeout(Duration::from_secs(180), writer.flush())
        .await
        .expect("the flush finishes")
        .expect("no record failed");
    writer.close().await.expect("the writer closes");
    let mut written = reports.lock().unwrap().written.clone();
    written.stats = writer.stats();
    eprintln!("flushed by {:?}: {written:?}", start.elapsed());
    written
}

/// Reads `topic` back and counts it against what was written, per
/// partition, printing the scenario's `RELIABILITY` line; panics unless
/// every record was acknowledged and is there exactly once, in order.
pub fn check_written(
    cluster: &ClusterScenario,
    scenario: &str,
    topic: &str,
    pacing: Pacing,
    written: &Written,
) -> Reliability {
    let partitions = cluster.partitions(topic).len();
    let expected = expected_partitions(pacing.records, partitions);
    let counts: Vec<usize> = expected.iter().map(Vec::len).collect();
    let read = cluster.read_back(topic, &counts);
    let report = Reliability::count_partitions(scenario, &expected, &read, written.longest_gap);
    assert_eq!(
        (written.acked, written.failed),
        (pacing.records, 0),
        "{report}"
    );
    assert_eq!(written.stats.errors, 0, "{:?}", written.stats);
    assert_eq!(
        (report.lost, report.duplicated, report.reordered),
        (0, 0, 0),
        "{report}"
    );
    for (p, (got, want)) in read.iter().zip(&expected).enumerate() {
        if let Some(at) = got.iter().zip(want).position(|(g, w)| g != w) {
            panic!(
                "{topic}-{p}: offset {at} holds record {} where {} belongs",
                got[at], want[at]
            );
        }
    }
    report
}
