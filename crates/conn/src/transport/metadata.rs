//! The metadata cache behind [`Transport`](crate::Transport): which topics
//! are in use, when to refresh, one refresh at a time shared by everyone
//! waiting, and the background task that refreshes on a timer and on
//! request.
//!
//! # When a refresh happens
//!
//! - **Bootstrap, new topics, all topics:** at once.
//! - **Errors** ([`Transport::on_error`](crate::Transport::on_error)) and
//!   lookups that find no leader *ask* for one; it happens on the next
//!   lookup, or in the background task, but never sooner than
//!   `metadata_min_age` after the previous one (doubling after failed or
//!   stale refreshes, up to `backoff.max`), so a burst of errors from one
//!   election costs one Metadata request.
//! - **Age:** the background task refreshes every `metadata_max_age`, and a
//!   lookup that finds older metadata refreshes first.
//!
//! # Single flight
//!
//! Refreshes run one at a time behind an async mutex. A caller notes the
//! cache's generation and how many refreshes have been asked for *before*
//! it waits; when it gets the mutex and finds that a refresh finished in
//! the meantime, one that started after every request the caller knows of
//! and covered the caller's topics, it takes that result instead of asking
//! again. Step by step, for an error seen by ten callers at once: each
//! calls `on_error` (`wanted` goes 0 -> 10) and waits; the first to get the
//! mutex snapshots `wanted = 10`, fetches, and sets `satisfied = 10`; the
//! other nine find `generation` moved and `satisfied >= wanted` and return
//! the same snapshot. An error reported *while* that fetch is in flight
//! leaves `wanted > satisfied`, so it gets a refresh of its own, since the
//! fetch in flight may have been answered before the broker knew.
//!
//! A refresh that is not urgent also checks, under the lock that notes the
//! generation, that one is still due: the background task waking for a
//! refresh some caller has just made finds nothing due and fetches nothing.
//!
//! The mutex is tokio's, and nothing else is held across an await: a
//! cancelled refresh releases it and the next waiter fetches instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use super::cluster::{Changes, Cluster};
use super::{Inner, lock};
use crate::Error;

/// The cache's shared state; see the module docs.
#[derive(Debug)]
pub(super) struct Cache {
    state: Mutex<State>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Wakes the background task when a refresh is asked for.
    wake: Notify,
}

#[derive(Debug)]
struct State {
    cluster: Arc<Cluster>,
    /// Topics in use, with when a lookup last asked for each.
    in_use: BTreeMap<String, Instant>,
    /// Bumped by every finished refresh.
    generation: u64,
    /// Bumped by every request for a refresh.
    wanted: u64,
    /// The `wanted` count the last finished refresh started after.
    satisfied: u64,
    /// Why the latest refresh was asked for.
    reason: &'static str,
    /// The topics the last finished refresh asked about; `None`: all.
    covered: Option<BTreeSet<String>>,
    /// When the last refresh started, and finished successfully.
    last_attempt: Option<Instant>,
    last_success: Instant,
    /// Failed or stale refreshes in a row: they space the next one out.
    failures: u32,
}

/// Which topics a refresh asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The topics in use.
    InUse,
    /// Every topic in the cluster (admin listings).
    All,
}

impl Cache {
    pub(super) fn new() -> Cache {
        Cache {
            state: Mutex::new(State {
                cluster: Arc::new(Cluster::empty()),
                in_use: BTreeMap::new(),
                generation: 0,
                wanted: 0,
                satisfied: 0,
                reason: "bootstrap",
                covered: Some(BTreeSet::new()),
                last_attempt: None,
                last_success: Instant::now(),
                failures: 0,
            }),
            one_at_a_time: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }
    }

    /// The current snapshot, without any IO.
    pub(super) fn snapshot(&self) -> Arc<Cluster> {
        lock(&self.state).cluster.clone()
    }

    /// Asks for a refresh, for `reason`; see the module docs for when it
    /// happens.
    pub(super) fn request_refresh(&self, reason: &'static str) {
        let mut s = lock(&self.state);
        s.wanted += 1;
        s.reason = reason;
        drop(s);
        self.wake.notify_one();
    }

    /// Replaces the snapshot by what `amend` makes of it, if anything,
    /// leaving the refresh bookkeeping alone: a refresh asked for still
    /// happens, and the generation does not move, so no waiter takes the
    /// amended snapshot for a refresh.
    pub(super) fn amend(&self, amend: impl FnOnce(&Cluster) -> Option<Cluster>) {
        let mut s = lock(&self.state);
        if let Some(amended) = amend(&s.cluster) {
            s.cluster = Arc::new(amended);
        }
    }

    /// How long refreshes have failed in a row; `None` when the last one
    /// succeeded.
    pub(super) fn failing_for(&self) -> Option<std::time::Duration> {
        let s = lock(&self.state);
        (s.failures > 0).then(|| s.last_success.elapsed())
    }

    /// Whether a refresh has succeeded yet.
    pub(super) fn is_bootstrapped(&self) -> bool {
        lock(&self.state).generation > 0
    }

    /// True once the refresh asked for is done.
    #[cfg(test)]
    pub(super) fn is_fresh(&self) -> bool {
        let s = lock(&self.state);
        s.wanted <= s.satisfied
    }
}

impl Inner {
    /// The snapshot, refreshed first if `topics` holds one not in use yet,
    /// if a refresh was asked for, or if it is older than
    /// `metadata_max_age`.
    pub(super) async fn cluster_for(&self, topics: &[&str]) -> Result<Arc<Cluster>, Error> {
        let config = &self.config;
        let (cluster, urgent, reason) = {
            let mut s = lock(&self.metadata.state);
            let now = Instant::now();
            let mut new_topic = false;
            for topic in topics {
                if s.in_use.insert((*topic).to_owned(), now).is_none() {
                    let cached = s.cluster.contains_topic(topic)
                        && s.cluster.age() < config.metadata_min_age;
                    new_topic |= !cached;
                }
            }
            if new_topic {
                (None, true, "new topic")
            } else if s.wanted > s.satisfied {
                (None, false, s.reason)
            } else if s.last_success.elapsed() >= config.metadata_max_age {
                (None, false, "expired")
            } else {
                (Some(s.cluster.clone()), false, "")
            }
        };
        let Some(cached) = cluster else {
            return match self.refresh(reason, Scope::InUse, topics, urgent).await {
                Ok(cluster) => Ok(cluster),
                // Metadata that is old or suspect beats none: a leader that
                // moved is found again when its broker says so.
                Err(e) if !urgent && lock(&self.metadata.state).generation > 0 => {
                    tracing::debug!(error = %e, "using the cached metadata");
                    Ok(self.metadata.snapshot())
                }
                Err(e) => Err(e),
            };
        };
        Ok(cached)
    }

    /// Refreshes `scope`, unless a refresh that covers `needs` finished
    /// while this one waited its turn (see the module docs). An `urgent`
    /// refresh always fetches, at once; any other fetches only if a refresh
    /// is due (asked for, retrying a failure, or the metadata expired),
    /// checked under the same lock that notes the generation, so a refresh
    /// that finishes just before cannot be repeated, and no sooner than the
    /// `metadata_min_age` spacing allows.
    pub(super) async fn refresh(
        &self,
        reason: &'static str,
        scope: Scope,
        needs: &[&str],
        urgent: bool,
    ) -> Result<Arc<Cluster>, Error> {
        let (seen, wanted) = {
            let s = lock(&self.metadata.state);
            let due = s.wanted > s.satisfied
                || s.failures > 0
                || s.last_success.elapsed() >= self.config.metadata_max_age;
            if !urgent && !due {
                return Ok(s.cluster.clone());
            }
            (s.generation, s.wanted)
        };
        let _turn = self.metadata.one_at_a_time.lock().await;
        let wait_until = {
            let s = lock(&self.metadata.state);
            let covered = match (&s.covered, scope) {
                (None, _) => true,
                (Some(_), Scope::All) => false,
                (Some(set), Scope::InUse) => needs.iter().all(|t| set.contains(*t)),
            };
            if s.generation > seen && s.satisfied >= wanted && covered {
                return Ok(s.cluster.clone());
            }
            let gap = self.config.refresh_backoff().base_delay(s.failures);
            s.last_attempt.map(|last| last + gap).filter(|_| !urgent)
        };
        if let Some(until) = wait_until {
            tokio::time::sleep_until(until).await;
        }

        let (topics, wanted_at_start) = {
            let mut s = lock(&self.metadata.state);
            let now = Instant::now();
            s.last_attempt = Some(now);
            let idle = self.config.metadata_idle;
            s.in_use.retain(|_, used| now.duration_since(*used) < idle);
            let topics: Option<Vec<String>> = match scope {
                Scope::All => None,
                Scope::InUse => Some(s.in_use.keys().cloned().collect()),
            };
            (topics, s.wanted)
        };
        let span = tracing::debug_span!(
            "kafka_metadata_refresh",
            reason,
            topics = %topics.as_ref().map_or_else(|| "all".to_owned(), |t| t.join(",")),
            elapsed_ms = tracing::field::Empty,
            brokers = tracing::field::Empty,
            brokers_added = tracing::field::Empty,
            brokers_removed = tracing::field::Empty,
            leaders_moved = tracing::field::Empty,
            stale_epochs_ignored = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let started = Instant::now();
        let fetched = self
            .fetch_metadata(topics.as_deref())
            .instrument(span.clone())
            .await;
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        let response = match fetched {
            Ok(response) => response,
            Err(e) => {
                lock(&self.metadata.state).failures += 1;
                span.record("error", tracing::field::display(&e));
                let _in_span = span.enter();
                tracing::debug!(error = %e, "metadata refresh failed");
                return Err(e);
            }
        };

        let (cluster, changes) = {
            let mut s = lock(&self.metadata.state);
            let (cluster, changes) = s.cluster.merge(&response, topics.as_deref());
            let cluster = Arc::new(cluster);
            s.cluster = cluster.clone();
            s.generation += 1;
            s.satisfied = s.satisfied.max(wanted_at_start);
            s.covered = topics.map(|t| t.into_iter().collect());
            s.last_success = Instant::now();
            if changes.stale_partitions > 0 {
                // A lagging broker answered: ask again, spaced out further.
                s.failures += 1;
                s.wanted += 1;
                s.reason = "stale leader epoch";
                self.metadata.wake.notify_one();
            } else {
                s.failures = 0;
            }
            (cluster, changes)
        };
        record_changes(&span, &cluster, &changes);
        self.evict(&changes.brokers_removed, &cluster);
        Ok(cluster)
    }

    /// When the background task should refresh next, and why.
    fn next_refresh(&self) -> (Instant, &'static str) {
        let s = lock(&self.metadata.state);
        let gap = self.config.refresh_backoff().base_delay(s.failures);
        let after_last = s.last_attempt.map_or_else(Instant::now, |last| last + gap);
        if s.wanted > s.satisfied {
            (after_last, s.reason)
        } else if s.failures > 0 {
            (after_last, "retry")
        } else {
            (s.last_success + self.config.metadata_max_age, "timer")
        }
    }
}

fn record_changes(span: &tracing::Span, cluster: &Cluster, changes: &Changes) {
    span.record("brokers", cluster.brokers().len());
    span.record(
        "brokers_added",
        tracing::field::debug(&changes.brokers_added),
    );
    let removed: Vec<i32> = changes.brokers_removed.iter().map(|b| b.id).collect();
    span.record("brokers_removed", tracing::field::debug(&removed));
    span.record("leaders_moved", changes.leaders_moved);
    span.record("stale_epochs_ignored", changes.stale_partitions);
    let _in_span = span.enter();
    if changes.stale_partitions > 0 {
        tracing::debug!(
            partitions = changes.stale_partitions,
            "kept newer leader epochs over a stale answer (KIP-320)"
        );
    }
    tracing::debug!(topics_gone = ?changes.topics_gone, "metadata refreshed");
}

/// The background refresher: refreshes every `metadata_max_age`, and soon
/// after a refresh is asked for. It holds the transport's state alive, and
/// stops as soon as `closed` fires, which happens when the last
/// [`Transport`](crate::Transport) handle drops its sender; a refresh in
/// flight is then abandoned (refreshes are cancel safe). So dropping the
/// last handle never blocks and leaves no task behind.
pub(super) async fn run_refresher(inner: Arc<Inner>, mut closed: oneshot::Receiver<()>) {
    loop {
        let (due, reason) = inner.next_refresh();
        tokio::select! {
            biased;
            _ = &mut closed => break,
            () = inner.metadata.wake.notified() => {
                // Re-plan: the request may need to wait for the min age.
                continue;
            }
            () = tokio::time::sleep_until(due) => {}
        }
        tokio::select! {
            biased;
            _ = &mut closed => break,
            result = inner.refresh(reason, Scope::InUse, &[], false) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, reason, "background metadata refresh failed");
                }
            }
        }
    }
    tracing::debug!("metadata refresher stopped: the last transport handle is gone");
}
