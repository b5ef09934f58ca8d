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
//! The task owns nothing the caller needs: the handle aborts it on drop,
//! which drops the fetch and lookup tasks it spawned (their requests'
//! answers are discarded by the connection's driver).

use std::collections::{HashMap, HashSet};
use std::future::pending;
use std::sync::Arc;

use kafkit_conn::messages::FetchResponse;
use kafkit_conn::{ErrorCode, Transport};
use kafkit_protocol::Uuid;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

use super::answer::{self, Outcome, Planned};
use super::config::FetchConfig;
use super::request::{build_request, send};
use super::state::{FetchState, Shared};
use super::validate::{self, EpochEnd};
use crate::offsets::resolve;
use crate::{Error, StartOffset, TopicPartition};

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

    /// Sends one Fetch to each broker that leads fetchable partitions and
    /// has none in flight; returns the earliest backoff still pending.
    async fn start_fetches(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let (candidates, wake_at) = self.candidates(now);
        if candidates.is_empty() {
            return wake_at;
        }
        let mut topics: Vec<&str> = candidates.iter().map(|p| &*p.tp.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        let cluster = match self.transport.cluster_for(&topics).await {
            Ok(cluster) => cluster,
            Err(e) => {
                tracing::debug!(error = %e, "no metadata for fetching");
                self.transport.on_error(&e);
                let mut st = self.shared.lock();
                st.counters.errors += 1;
                for p in &candidates {
                    st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                }
                return Some(now + self.config.retry_backoff);
            }
        };
        let mut wake_at = wake_at;
        self.throttled.retain(|_, until| *until > now);
        let mut by_broker: HashMap<i32, Vec<Planned>> = HashMap::new();
        for p in candidates {
            // A read replica the leader named (KIP-392), else the leader.
            if let Some(replica) = p.replica.filter(|id| !cluster.brokers().contains_key(id)) {
                // Gone from the metadata: back to the leader after a
                // backoff (it may well name the same replica again).
                tracing::debug!(tp = %p.tp, replica, "the read replica is not in the metadata");
                let mut st = self.shared.lock();
                if let Some(part) = st.current(&p.tp, p.generation) {
                    part.read_replica = None;
                }
                st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                continue;
            }
            let target = cluster
                .leader(&p.tp.topic, p.tp.partition)
                .map(|leader| p.replica.unwrap_or(leader.id));
            match target {
                Some(broker) if self.busy.contains(&broker) => {}
                Some(broker) => match self.throttled.get(&broker) {
                    Some(&until) => wake_at = Some(wake_at.map_or(until, |w| w.min(until))),
                    None => by_broker.entry(broker).or_default().push(p),
                },
                None => {
                    if !cluster.contains_topic(&p.tp.topic) {
                        tracing::warn!(tp = %p.tp, "the metadata does not know the topic");
                    }
                    let e = kafkit_conn::Error::check(ErrorCode::LEADER_NOT_AVAILABLE, None)
                        .expect_err("an error code")
                        .with_topic(&p.tp.topic, Some(p.tp.partition));
                    self.transport.on_error(&e);
                    let mut st = self.shared.lock();
                    st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                }
            }
        }
        self.round = self.round.wrapping_add(1);
        let mut validations = Vec::new();
        for (broker, mut parts) in by_broker {
            let Some(addr) = cluster.brokers().get(&broker).map(|b| b.addr()) else {
                continue;
            };
            // Rotate so that no partition is always last: a broker cuts the
            // answer at max_bytes, and only the first partition is sure to
            // get a batch larger than max_partition_bytes (KIP-74).
            let len = parts.len();
            parts.rotate_left(self.round % len);
            let request_id = self.next_request;
            self.next_request += 1;
            // Claim the partitions, unless the caller changed them while
            // the metadata was being read. One whose leader changed since
            // its last fetch is validated first (KIP-320).
            parts.retain(|p| {
                let mut st = self.shared.lock();
                let epoch = cluster.leader_epoch(&p.tp.topic, p.tp.partition);
                match st.current(&p.tp, p.generation) {
                    Some(part)
                        if part.in_flight.is_none() && part.fetch == FetchState::At(p.offset) =>
                    {
                        if let (true, Some(fetched)) =
                            (part.epochs.needs_validation(epoch), part.epochs.fetched)
                        {
                            part.fetch = FetchState::Validating(p.offset);
                            validations.push((p.clone(), fetched));
                            return false;
                        }
                        part.epochs.leader = part.epochs.leader.max(epoch);
                        part.in_flight = Some(request_id);
                        true
                    }
                    _ => false,
                }
            });
            if parts.is_empty() {
                continue;
            }
            let epochs: Vec<i32> = parts
                .iter()
                .map(|p| {
                    cluster
                        .leader_epoch(&p.tp.topic, p.tp.partition)
                        .unwrap_or(-1)
                })
                .collect();
            let ids: HashMap<Arc<str>, Uuid> = parts
                .iter()
                .map(|p| {
                    let id = cluster.topic_id(&p.tp.topic).unwrap_or(Uuid::ZERO);
                    (p.tp.topic.clone(), id)
                })
                .collect();
            let request = build_request(&self.config, &parts, &epochs, &ids);
            let all_ids = ids.values().all(|id| !id.is_zero());
            let span = tracing::debug_span!("fetch", broker, %addr, partitions = parts.len());
            let transport = self.transport.clone();
            let max_wait = self.config.max_wait;
            let handle = self.tasks.spawn(
                async move {
                    let result = send(&transport, &addr, request, all_ids, max_wait).await;
                    Done::Fetch { result }
                }
                .instrument(span),
            );
            self.busy.insert(broker);
            self.running.insert(
                handle.id(),
                Running::Fetch {
                    broker,
                    request: request_id,
                    parts,
                },
            );
        }
        for (planned, fetched_epoch) in validations {
            self.start_validation(planned, fetched_epoch);
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

    /// The fetchable partitions, and the earliest backoff still pending.
    fn candidates(&self, now: Instant) -> (Vec<Planned>, Option<Instant>) {
        let st = self.shared.lock();
        let mut wake_at: Option<Instant> = None;
        if st.buffered_bytes >= self.config.max_buffered_bytes {
            // The caller's reading frees space and wakes the driver.
            return (Vec::new(), None);
        }
        let mut out = Vec::new();
        for (tp, part) in &st.parts {
            let FetchState::At(offset) = part.fetch else {
                continue;
            };
            if part.in_flight.is_some() {
                continue;
            }
            if let Some(at) = part.retry_at.filter(|&at| at > now) {
                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                continue;
            }
            out.push(Planned {
                tp: tp.clone(),
                generation: part.generation,
                offset,
                replica: part
                    .read_replica
                    .filter(|r| r.until > now)
                    .map(|r| r.broker),
            });
        }
        (out, wake_at)
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

    fn finish_fetch(
        &mut self,
        broker: i32,
        request: u64,
        parts: &[Planned],
        result: Result<FetchResponse, kafkit_conn::Error>,
    ) {
        let mut st = self.shared.lock();
        for p in parts {
            if let Some(part) = st.parts.get_mut(&p.tp) {
                if part.in_flight == Some(request) {
                    part.in_flight = None;
                }
            }
        }
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed");
                st.counters.errors += 1;
                self.transport.on_error(&e);
                for p in parts {
                    if let Some(part) = st.current(&p.tp, p.generation) {
                        // A read replica that fails is dropped for the leader.
                        if part.read_replica.is_some_and(|r| r.broker == broker) {
                            part.read_replica = None;
                        }
                    }
                    st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                }
                if !e.is_retriable() {
                    st.errors.push_back(Error::from(e));
                    self.shared.data_ready.notify_one();
                }
                return;
            }
        };
        st.counters.fetches += 1;
        if response.throttle_time_ms > 0 {
            // KIP-219: the broker answered at once but wants no new fetch
            // from us until the throttle time has passed.
            let wait = std::time::Duration::from_millis(response.throttle_time_ms as u64);
            tracing::debug!(broker, ?wait, "throttled by the broker");
            self.throttled.insert(broker, Instant::now() + wait);
        }
        for topic in response.responses {
            for data in topic.partitions {
                let planned = parts.iter().find(|p| {
                    p.tp.partition == data.partition_index
                        && (*p.tp.topic == topic.topic
                            || (!topic.topic_id.is_zero()
                                && self.transport.snapshot().topic_id(&p.tp.topic)
                                    == Some(topic.topic_id)))
                });
                let Some(planned) = planned else { continue };
                let outcome = answer::apply(&mut st, &self.config, planned, broker, data);
                self.relay(outcome);
            }
        }
    }
}
