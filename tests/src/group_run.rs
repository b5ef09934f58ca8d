//! A consumer group reading at-least-once while faults run: the consumer
//! half of the three-node scenarios (`tests/tests/reliability_cluster_*.rs`).
//!
//! Each member reads batches of up to 100 records with `fetch_message`,
//! "processes" them (notes each record's id, then sleeps 20 ms), and
//! commits the batch with `commit_messages`. A commit that fails (its
//! partitions were taken away by a rebalance) is counted, not fatal: their
//! records come again to the new owner. So a record processed twice is
//! allowed, and reported; a record never processed (skipped) is not.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_reader::Reader;
use tokio::task::JoinHandle;

use crate::{Reliability, unique_topic};

/// The group's members and what they processed.
#[derive(Debug)]
pub struct GroupRun {
    bootstrap: String,
    topic: String,
    group: String,
    shared: Arc<Shared>,
    members: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    /// Distinct records to process before the run is over.
    expected: u64,
    processed: Mutex<Vec<u64>>,
    distinct: Mutex<HashSet<u64>>,
    /// The last record's time and the longest pause between two records.
    gap: Mutex<(Option<Instant>, Duration)>,
    commit_errors: AtomicU64,
    joined: AtomicU64,
    done: AtomicBool,
    /// What each member is doing, by the order it joined: shown when the
    /// group stops.
    doing: Mutex<Vec<String>>,
}

/// What the group did.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// Record ids in the order they were processed, repeats included.
    pub processed: Vec<u64>,
    /// The longest time no record was processed.
    pub longest_gap: Duration,
    /// Commits that failed (a rebalance took the partitions first).
    pub commit_errors: u64,
    /// Members that joined, in all.
    pub joined: u64,
}

impl GroupRun {
    /// A group of a fresh name for `topic`, whose run is over once
    /// `expected` distinct records (ids `0..expected`) were processed.
    pub fn new(bootstrap: &str, topic: &str, expected: u64) -> GroupRun {
        GroupRun {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            group: unique_topic("rel-group"),
            shared: Arc::new(Shared {
                expected,
                processed: Mutex::default(),
                distinct: Mutex::default(),
                gap: Mutex::default(),
                commit_errors: AtomicU64::new(0),
                joined: AtomicU64::new(0),
                done: AtomicBool::new(false),
                doing: Mutex::default(),
            }),
            members: Mutex::default(),
        }
    }

    /// The group's id.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Distinct records processed so far.
    pub fn progress(&self) -> u64 {
        self.shared.distinct.lock().unwrap().len() as u64
    }

    /// Whether every expected record was processed.
    pub fn is_done(&self) -> bool {
        self.shared.done.load(Ordering::SeqCst)
    }

    /// Adds a member that reads until `life` is over (then closes, leaving
    /// the group) or, with no `life`, until the run is over.
    pub fn spawn_member(&self, life: Option<Duration>) {
        let reader = Reader::builder(self.bootstrap.split(',').map(str::to_owned))
            .group_id(&self.group)
            .topics([self.topic.clone()]);
        let shared = self.shared.clone();
        let member = tokio::spawn(async move {
            let mut reader = reader.build().await.expect("the member connects");
            let me = shared.joined.fetch_add(1, Ordering::SeqCst) as usize;
            let born = Instant::now();
            while life.is_none_or(|l| born.elapsed() < l) && !shared.done.load(Ordering::SeqCst) {
                shared.doing(me, || {
                    format!("fetching {:?}, {:?}", reader.assignment(), reader.stats())
                });
                let mut batch = Vec::new();
                while batch.len() < 100 {
                    let next =
                        tokio::time::timeout(Duration::from_millis(200), reader.fetch_message());
                    let Ok(message) = next.await else { break };
                    let message = message.expect("fetch_message survives the faults");
                    shared.note(&message);
                    batch.push(message);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                shared.doing(me, || format!("committing {} records", batch.len()));
                if reader.commit_messages(&batch).await.is_err() {
                    shared.commit_errors.fetch_add(1, Ordering::SeqCst);
                }
            }
            shared.doing(me, || "closing".to_owned());
            if let Err(e) = reader.close().await {
                eprintln!("a member's close: {e}");
                shared.commit_errors.fetch_add(1, Ordering::SeqCst);
            }
        });
        self.members.lock().unwrap().push(member);
    }

    /// Waits until every expected record was processed, then for every
    /// member to close.
    ///
    /// # Panics
    ///
    /// If no record was processed for `stall` while some remain, every
    /// member ended first, or a member failed.
    pub async fn finish(&self, stall: Duration) -> Consumed {
        let start = Instant::now();
        while !self.is_done() {
            let idle = self.shared.gap.lock().unwrap().0.unwrap_or(start).elapsed();
            assert!(
                idle < stall,
                "the group {} stopped: no record for {idle:?}, {} of {} processed; members: {:#?}",
                self.group,
                self.progress(),
                self.shared.expected,
                self.shared.doing.lock().unwrap()
            );
            let ended = self
                .members
                .lock()
                .unwrap()
                .iter()
                .all(JoinHandle::is_finished);
            assert!(
                !ended,
                "every member of {} ended (or failed) with records left",
                self.group
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let members: Vec<JoinHandle<()>> = std::mem::take(&mut *self.members.lock().unwrap());
        for member in members {
            member.await.expect("a member ran to its end");
        }
        Consumed {
            processed: self.shared.processed.lock().unwrap().clone(),
            longest_gap: self.shared.gap.lock().unwrap().1,
            commit_errors: self.shared.commit_errors.load(Ordering::SeqCst),
            joined: self.shared.joined.load(Ordering::SeqCst),
        }
    }
}

impl Shared {
    /// Notes what member `me` does now.
    fn doing(&self, me: usize, what: impl FnOnce() -> String) {
        let mut doing = self.doing.lock().unwrap();
        if doing.len() <= me {
            doing.resize(me + 1, String::new());
        }
        doing[me] = what();
    }

    fn note(&self, message: &kafkit_reader::Message) {
        let id: u64 = std::str::from_utf8(message.value_bytes())
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("record values are decimal ids");
        self.processed.lock().unwrap().push(id);
        let now = Instant::now();
        {
            let mut gap = self.gap.lock().unwrap();
            if let Some(last) = gap.0 {
                gap.1 = gap.1.max(now - last);
            }
            gap.0 = Some(now);
        }
        let mut distinct = self.distinct.lock().unwrap();
        distinct.insert(id);
        if distinct.len() as u64 >= self.expected {
            self.done.store(true, Ordering::SeqCst);
        }
    }
}

/// Counts what the group processed against records `0..records`, printing
/// the scenario's `RELIABILITY` line (lost: skipped; duplicated: processed
/// twice); panics if a record was skipped.
pub fn check_consumed(scenario: &str, records: u64, consumed: &Consumed) -> Reliability {
    let sent: Vec<u64> = (0..records).collect();
    let report = Reliability::count(scenario, &sent, &consumed.processed, consumed.longest_gap);
    eprintln!(
        "{scenario}: {} members joined, {} commits failed",
        consumed.joined, consumed.commit_errors
    );
    assert_eq!(report.lost, 0, "records skipped: {report}");
    report
}
