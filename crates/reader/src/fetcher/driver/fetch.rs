//! The fetching half of the [`Driver`]: which partitions go to which
//! broker, the Fetch each broker gets (shaped by its fetch session,
//! KIP-227), what its answer does, and closing sessions nothing is read
//! from any more.

use std::collections::HashMap;
use std::sync::Arc;

use kafkit_conn::messages::FetchResponse;
use kafkit_conn::{ErrorCode, Transport};
use kafkit_protocol::Uuid;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Done, Driver, Running};
use crate::fetcher::answer::{self, Outcome, Planned};
use crate::fetcher::leader_hint;
use crate::fetcher::request::{self, build_request, close_session, send};
use crate::fetcher::session::{Answer, Params};
use crate::fetcher::state::{FetchState, State};
use crate::{Error, TopicPartition};

impl Driver {
    /// Sends one Fetch to each broker that leads fetchable partitions and
    /// has none in flight; returns the earliest backoff still pending.
    pub(super) async fn start_fetches(&mut self) -> Option<Instant> {
        let now = Instant::now();
        self.close_idle_sessions();
        let (candidates, wake_at) = self.candidates(now);
        tracing::trace!(candidates = candidates.len(), ?wake_at, "fetch candidates");
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
                let retry_at = st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                wake_at = earliest(wake_at, retry_at);
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
                    let e = kafkit_conn::Error::from_code(ErrorCode::LEADER_NOT_AVAILABLE)
                        .with_topic(&p.tp.topic, Some(p.tp.partition));
                    self.transport.on_error(&e);
                    let mut st = self.shared.lock();
                    let retry_at = st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                    wake_at = earliest(wake_at, retry_at);
                }
            }
        }
        self.round = self.round.wrapping_add(1);
        let mut validations = Vec::new();
        for (broker, mut parts) in by_broker {
            let Some(addr) = cluster.brokers().get(&broker).map(|b| b.addr()) else {
                // A leader the metadata has no endpoint for: ask again.
                tracing::debug!(
                    broker,
                    "the leader is not among the brokers of the metadata"
                );
                let e = kafkit_conn::Error::from_code(ErrorCode::BROKER_NOT_AVAILABLE);
                self.transport.on_error(&e);
                let mut st = self.shared.lock();
                for p in &parts {
                    let retry_at = st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
                    wake_at = earliest(wake_at, retry_at);
                }
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
            let ids: HashMap<Arc<str>, Uuid> = parts
                .iter()
                .map(|p| {
                    let id = cluster.topic_id(&p.tp.topic).unwrap_or(Uuid::ZERO);
                    (p.tp.topic.clone(), id)
                })
                .collect();
            let all_ids = ids.values().all(|id| !id.is_zero());
            let next: Vec<(TopicPartition, Params)> = parts
                .iter()
                .map(|p| {
                    let epoch = cluster
                        .leader_epoch(&p.tp.topic, p.tp.partition)
                        .unwrap_or(-1);
                    (p.tp.clone(), request::params(&self.config, p, epoch, &ids))
                })
                .collect();
            let plan = match self.shared.lock().sessions.open(broker, &addr) {
                Some(session) => session.plan(&next, all_ids),
                None => return wake_at, // the fetcher is closing
            };
            let request = build_request(&self.config, &next, &plan);
            let span = tracing::debug_span!(
                "fetch",
                broker,
                %addr,
                partitions = parts.len(),
                listed = request.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
                session = plan.session_id,
                epoch = plan.epoch,
                incremental = plan.is_incremental(),
            );
            let transport = self.transport.clone();
            let shared = self.shared.clone();
            let max_wait = self.config.max_wait;
            let handle = self.tasks.spawn(
                async move {
                    let sent = Instant::now();
                    let result = send(&transport, &addr, request, all_ids, max_wait).await;
                    if result.is_ok() {
                        let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        shared.fetch_latency.record(us);
                    }
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

    /// Closes the sessions (KIP-227) none of whose partitions is assigned
    /// any more, such as after the unassignment of every partition read
    /// from a broker, so the broker frees them at once: a Fetch with the
    /// session id and the final epoch, sent when no fetch to that broker
    /// is in flight. A session whose partitions moved to other brokers
    /// while still assigned is left to the broker's eviction.
    fn close_idle_sessions(&mut self) {
        let closing = {
            let mut st = self.shared.lock();
            let State {
                parts, sessions, ..
            } = &mut *st;
            let busy = &self.busy;
            sessions.close_where(|broker, s| {
                s.id().is_some()
                    && !s.in_flight()
                    && !busy.contains(&broker)
                    && s.partitions().all(|tp| !parts.contains_key(tp))
            })
        };
        for (broker, addr, id) in closing {
            tracing::debug!(broker, session = id, "closing an unused fetch session");
            let close = close_session(&self.transport, &addr, id, self.config.max_wait);
            let handle = self.tasks.spawn(async move {
                close.await;
                Done::Closed
            });
            self.busy.insert(broker);
            self.running
                .insert(handle.id(), Running::CloseSession { broker });
        }
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

    /// Settles a fetch: its session first (an answer moves it on, a
    /// failure makes the next fetch full), then each partition in the
    /// answer. A partition of the request absent from the answer is
    /// unchanged at the broker (an incremental answer names only
    /// partitions with records or news): it just becomes fetchable again.
    pub(super) fn finish_fetch(
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
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                st.counters.errors += 1;
                let session_error = st.sessions.get(broker).is_some_and(|s| s.failed(e.code()));
                if session_error {
                    // The next fetch, full, fixes it: no backoff.
                    tracing::debug!(broker, error = %e, "fetch session reset");
                    return;
                }
                tracing::debug!(error = %e, "fetch failed");
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
        let throttled_empty = response.throttle_time_ms > 0 && response.responses.is_empty();
        let answer = match st.sessions.get(broker) {
            Some(session) => session.answered(response.session_id, throttled_empty),
            None => Answer::Apply { incremental: false },
        };
        match answer {
            Answer::Apply { incremental } => {
                st.counters.incremental_fetches += u64::from(incremental);
            }
            Answer::Discard => {
                tracing::warn!(
                    broker,
                    session = response.session_id,
                    "a fetch answer of an unknown session: ignored"
                );
                st.counters.errors += 1;
                return;
            }
        }
        // Answers name topics by id from Fetch v13 on, by name before.
        let snapshot = self.transport.snapshot();
        let mut names: HashMap<Uuid, &str> = HashMap::new();
        let mut by_tp: HashMap<(&str, i32), &Planned> = HashMap::with_capacity(parts.len());
        for p in parts {
            if let Some(id) = snapshot.topic_id(&p.tp.topic) {
                names.insert(id, &p.tp.topic);
            }
            by_tp.insert((&p.tp.topic, p.tp.partition), p);
        }
        let endpoints = std::mem::take(&mut response.node_endpoints);
        for topic in response.responses {
            let name = match names.get(&topic.topic_id) {
                Some(name) if !topic.topic_id.is_zero() => *name,
                _ => topic.topic.as_str(),
            };
            for data in topic.partitions {
                let Some(planned) = by_tp.get(&(name, data.partition_index)) else {
                    continue;
                };
                let hint = leader_hint::of(&data, &endpoints);
                let bytes = data.records.as_ref().map_or(0, |r| r.len());
                let outcome = answer::apply(&mut st, &self.config, planned, broker, data);
                if matches!(outcome, Outcome::Queued) {
                    self.report_fetch(&st, &snapshot, broker, planned, bytes);
                }
                let outcome = leader_hint::settle(&mut st, planned, outcome, hint, |h| {
                    let tp = &planned.tp;
                    self.transport
                        .follow_hint(&tp.topic, tp.partition, h, broker)
                });
                self.relay(outcome);
            }
        }
    }
}

/// Closes `closing`'s sessions in tasks of their own, which outlive the
/// fetcher (bounded by [`close_session`]'s timeout): best effort, when a
/// tokio runtime is there to run them.
pub(crate) fn close_detached(
    transport: &Transport,
    closing: Vec<(i32, String, i32)>,
    max_wait: std::time::Duration,
) {
    if closing.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for (broker, addr, id) in closing {
        tracing::debug!(broker, session = id, "closing a fetch session");
        runtime.spawn(close_session(transport, &addr, id, max_wait));
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
