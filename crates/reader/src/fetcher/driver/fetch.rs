//! The fetching half of the [`Driver`]: acting on the round's plan
//! (`fetcher/plan`: which partitions go to which broker), claiming the
//! partitions, the Fetch each broker gets (shaped by its fetch session,
//! KIP-227), and closing sessions nothing is read from any more. What an
//! answer does is `finish.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafkit_conn::{Cluster, ErrorCode, Transport};
use kafkit_protocol::Uuid;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Done, Driver, Running};
use crate::TopicPartition;
use crate::fetcher::answer::Planned;
use crate::fetcher::plan::{self, BrokerFetch, Unfetchable};
use crate::fetcher::request::{self, build_request, close_session, send};
use crate::fetcher::session::Params;
use crate::fetcher::state::{FetchState, State};

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
        self.throttled.retain(|_, until| *until > now);
        self.round = self.round.wrapping_add(1);
        let plan = plan::plan(
            candidates,
            &*cluster,
            &self.busy,
            &self.throttled,
            now,
            self.round,
        );
        let mut wake_at = earliest(wake_at, plan.throttled_until);
        wake_at = earliest(wake_at, self.back_off_unfetchable(plan.unfetchable));
        let mut validations = Vec::new();
        for BrokerFetch {
            broker,
            addr,
            parts,
        } in plan.fetches
        {
            let request = self.next_request;
            self.next_request += 1;
            let parts = self.claim(&cluster, parts, request, &mut validations);
            if parts.is_empty() {
                continue;
            }
            if !self.spawn_fetch(&cluster, broker, addr, parts, request) {
                return wake_at; // the fetcher is closing
            }
        }
        for (planned, fetched_epoch) in validations {
            self.start_validation(planned, fetched_epoch);
        }
        wake_at
    }

    /// Claims `parts` for fetch `request`, unless the caller changed them
    /// while the metadata was being read; one whose leader changed since
    /// its last fetch goes to `validations` instead (KIP-320). One lock
    /// for the whole request.
    fn claim(
        &self,
        cluster: &Cluster,
        mut parts: Vec<Planned>,
        request: u64,
        validations: &mut Vec<(Planned, i32)>,
    ) -> Vec<Planned> {
        let mut st = self.shared.lock();
        parts.retain(|p| {
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
                    part.in_flight = Some(request);
                    true
                }
                _ => false,
            }
        });
        parts
    }

    /// Sends fetch `request_id` of `parts` to `broker` in a task of its own,
    /// shaped by the broker's fetch session. False when the fetcher is
    /// closing (no session opens any more).
    fn spawn_fetch(
        &mut self,
        cluster: &Cluster,
        broker: i32,
        addr: String,
        parts: Vec<Planned>,
        request_id: u64,
    ) -> bool {
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
            None => return false,
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
        true
    }

    /// Backs off the partitions the plan could not place, telling the
    /// transport what was missing from its metadata; returns the earliest
    /// retry.
    fn back_off_unfetchable(&self, unfetchable: Vec<(Planned, Unfetchable)>) -> Option<Instant> {
        if unfetchable.is_empty() {
            return None;
        }
        let mut no_endpoint = HashSet::new();
        for (p, why) in &unfetchable {
            let e = match *why {
                Unfetchable::ReplicaGone(replica) => {
                    tracing::debug!(tp = %p.tp, replica, "the read replica is not in the metadata");
                    continue;
                }
                Unfetchable::NoLeader { unknown_topic } => {
                    if unknown_topic {
                        tracing::warn!(tp = %p.tp, "the metadata does not know the topic");
                    }
                    kafkit_conn::Error::from_code(ErrorCode::LEADER_NOT_AVAILABLE)
                        .with_topic(&p.tp.topic, Some(p.tp.partition))
                }
                Unfetchable::NoEndpoint(broker) => {
                    if !no_endpoint.insert(broker) {
                        continue;
                    }
                    tracing::debug!(
                        broker,
                        "the leader is not among the brokers of the metadata"
                    );
                    kafkit_conn::Error::from_code(ErrorCode::BROKER_NOT_AVAILABLE)
                }
            };
            self.transport.on_error(&e);
        }
        let mut st = self.shared.lock();
        let mut wake_at = None;
        for (p, why) in unfetchable {
            if matches!(why, Unfetchable::ReplicaGone(_)) {
                // Back to the leader after the backoff (it may well name
                // the same replica again).
                if let Some(part) = st.current(&p.tp, p.generation) {
                    part.read_replica = None;
                }
            }
            let retry_at = st.back_off(&p.tp, p.generation, |n| self.config.backoff(n));
            wake_at = earliest(wake_at, retry_at);
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
