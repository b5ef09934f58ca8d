//! The background task of a [`Fetcher`](crate::Fetcher): it resolves start
//! offsets (ListOffsets), validates positions after a leader change
//! (OffsetForLeaderEpoch, KIP-320), groups fetchable partitions by leader, keeps at
//! most one Fetch in flight per broker (on the transport's pooled
//! `Purpose::Fetch` connection), and turns answers into chunks for the
//! caller, offset resets, backoffs or errors.
//!
//! A partition is fetchable when its position is known, no fetch for it is
//! in flight, its backoff has passed, and the buffer is below
//! `max_buffered_bytes`. So while the caller reads one answer, the next
//! ones are already being fetched (prefetch), and memory stays bounded.
//! Partitions whose earlier answers still wait in the queue are fetched too
//! (from where those answers end): a request made only of caught-up
//! partitions would sit out the broker's whole `max_wait` while others
//! have data.
//!
//! Fetching itself (`fetch.rs`): each broker's Fetch is shaped by its fetch
//! session (KIP-227, `session.rs` decides, the driver only sends), and a
//! session none of whose partitions is assigned any more is closed.
//!
//! The task owns nothing the caller needs: the handle aborts it on drop,
//! which drops the fetch and lookup tasks it spawned (their requests'
//! answers are discarded by the connection's driver).

use std::collections::{HashMap, HashSet};
use std::future::pending;
use std::sync::Arc;

use kafkit_conn::Transport;
use kafkit_conn::messages::FetchResponse;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};

use super::answer::{Outcome, Planned};
use super::config::FetchConfig;
use super::state::{FetchState, Shared};
use super::validate::{self, EpochEnd};
use crate::offsets::resolve;
use crate::{Error, StartOffset, TopicPartition};

mod fetch;
mod finish;
mod hook;

pub(crate) use fetch::close_detached;

/// What a spawned task was doing, to clean up if it panics.
#[derive(Debug)]
enum Running {
    Fetch {
        broker: i32,
        request: u64,
        parts: Vec<Planned>,
    },
    Resolve {
        tp: TopicPartition,
        generation: u64,
        start: StartOffset,
    },
    Validate {
        tp: TopicPartition,
        generation: u64,
        offset: i64,
    },
    /// Closing the fetch session with `broker` (KIP-227).
    CloseSession { broker: i32 },
}

/// What a spawned task returns.
#[derive(Debug)]
enum Done {
    Fetch {
        result: Result<FetchResponse, kafkit_conn::Error>,
    },
    Resolve {
        result: Result<i64, Error>,
    },
    Validate {
        result: Result<Option<EpochEnd>, Error>,
    },
    /// A fetch session was closed, or closing it failed (best effort).
    Closed,
}

/// The driver's own state (the shared part is behind [`Shared`]).
#[derive(Debug)]
pub(crate) struct Driver {
    transport: Transport,
    config: FetchConfig,
    shared: Arc<Shared>,
    tasks: JoinSet<Done>,
    running: HashMap<Id, Running>,
    busy: HashSet<i32>,
    /// Brokers that asked us to wait (`throttle_time_ms`, KIP-219), until when.
    throttled: HashMap<i32, Instant>,
    next_request: u64,
    round: usize,
}

impl Driver {
    pub(crate) fn new(transport: Transport, config: FetchConfig, shared: Arc<Shared>) -> Driver {
        Driver {
            transport,
            config,
            shared,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            busy: HashSet::new(),
            throttled: HashMap::new(),
            next_request: 0,
            round: 0,
        }
    }

    /// Runs until aborted.
    pub(crate) async fn run(mut self) {
        loop {
            let resolve_at = self.start_resolves();
            let fetch_at = self.start_fetches().await;
            let wake_at = match (resolve_at, fetch_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tracing::trace!(?wake_at, busy = ?self.busy, tasks = self.tasks.len(), "fetcher driver waits");
            let timer = async move {
                match wake_at {
                    Some(at) => sleep_until(at).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                () = self.shared.wake_driver.notified() => {}
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finish(joined);
                }
                () = timer => {}
            }
        }
    }

    /// Spawns ListOffsets lookups for partitions that need a start; returns
    /// the earliest backoff still pending among them.
    fn start_resolves(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let mut wake_at: Option<Instant> = None;
        let mut todo = Vec::new();
        {
            let mut st = self.shared.lock();
            for (tp, part) in st.parts.iter_mut() {
                let FetchState::Resolve(start) = part.fetch else {
                    continue;
                };
                if let Some(at) = part.retry_at.filter(|&at| at > now) {
                    wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                    continue;
                }
                part.fetch = FetchState::Resolving;
                todo.push((tp.clone(), part.generation, start));
            }
        }
        for (tp, generation, start) in todo {
            let transport = self.transport.clone();
            let isolation = self.config.isolation_level;
            let lookup_tp = tp.clone();
            let handle = self.tasks.spawn(async move {
                let result = resolve(&transport, &lookup_tp, start, isolation).await;
                Done::Resolve { result }
            });
            self.running.insert(
                handle.id(),
                Running::Resolve {
                    tp,
                    generation,
                    start,
                },
            );
        }
        wake_at
    }

    /// Spawns the OffsetForLeaderEpoch lookup of a partition in
    /// [`FetchState::Validating`].
    fn start_validation(&mut self, planned: Planned, fetched_epoch: i32) {
        tracing::debug!(tp = %planned.tp, offset = planned.offset, fetched_epoch, "leader changed: validating the position");
        let transport = self.transport.clone();
        let tp = planned.tp.clone();
        let handle = self.tasks.spawn(async move {
            let result = validate::end_of_epoch(&transport, &tp, fetched_epoch).await;
            Done::Validate { result }
        });
        self.running.insert(
            handle.id(),
            Running::Validate {
                tp: planned.tp,
                generation: planned.generation,
                offset: planned.offset,
            },
        );
    }

    /// Settles a finished task.
    fn finish(&mut self, joined: Result<(Id, Done), JoinError>) {
        let (id, done) = match joined {
            Ok((id, done)) => (id, Some(done)),
            // A task cancelled by a shutting-down runtime is not a failure
            // worth an error log (the reader is going away with it).
            Err(e) if e.is_cancelled() => {
                tracing::debug!(error = %e, "a fetcher task was cancelled");
                (e.id(), None)
            }
            Err(e) => {
                tracing::error!(error = %e, "a fetcher task failed");
                (e.id(), None)
            }
        };
        let Some(running) = self.running.remove(&id) else {
            return;
        };
        match (running, done) {
            (
                Running::Fetch {
                    broker,
                    request,
                    parts,
                },
                done,
            ) => {
                self.busy.remove(&broker);
                let result = match done {
                    Some(Done::Fetch { result }) => result,
                    _ => Err(kafkit_conn::Error::new(kafkit_conn::ErrorKind::Closed)
                        .with_message("fetch task failed")),
                };
                self.finish_fetch(broker, request, &parts, result);
            }
            (
                Running::Resolve {
                    tp,
                    generation,
                    start,
                },
                done,
            ) => {
                let result = match done {
                    Some(Done::Resolve { result }) => result,
                    _ => Err(Error::closed("offset lookup task failed")),
                };
                self.finish_resolve(&tp, generation, start, result);
            }
            (
                Running::Validate {
                    tp,
                    generation,
                    offset,
                },
                done,
            ) => {
                let result = match done {
                    Some(Done::Validate { result }) => result,
                    _ => Err(Error::closed("position validation task failed")),
                };
                let current = self
                    .transport
                    .snapshot()
                    .leader_epoch(&tp.topic, tp.partition);
                let mut st = self.shared.lock();
                let outcome = validate::apply(
                    &mut st,
                    &self.config,
                    (&tp, generation, offset),
                    current,
                    result,
                );
                drop(st);
                self.relay(outcome);
            }
            (Running::CloseSession { broker }, _) => {
                self.busy.remove(&broker);
            }
        }
    }

    /// Passes an [`Outcome`] on to the transport and the caller.
    fn relay(&self, outcome: Outcome) {
        match outcome {
            Outcome::Quiet => {}
            Outcome::Queued => self.shared.data_ready.notify_one(),
            Outcome::Failed { error, told_caller } => {
                self.transport.on_error(&error);
                if told_caller {
                    self.shared.data_ready.notify_one();
                }
            }
        }
    }

    fn finish_resolve(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        start: StartOffset,
        result: Result<i64, Error>,
    ) {
        let mut st = self.shared.lock();
        let Some(part) = st.current(tp, generation) else {
            return;
        };
        if part.fetch != FetchState::Resolving {
            return;
        }
        match result {
            Ok(offset) => {
                tracing::debug!(%tp, ?start, offset, "start resolved");
                part.fetch = FetchState::At(offset);
                part.position = Some(offset);
                part.failures = 0;
                part.retry_at = None;
            }
            Err(e) => {
                part.fetch = FetchState::Resolve(start);
                st.counters.errors += 1;
                st.back_off(tp, generation, |n| self.config.backoff(n));
                tracing::warn!(%tp, ?start, error = %e, "offset lookup failed");
                if !e.is_retriable() {
                    st.errors.push_back(e);
                    self.shared.data_ready.notify_one();
                }
            }
        }
    }
}
