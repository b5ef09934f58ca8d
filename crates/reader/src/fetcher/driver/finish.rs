//! What a fetch's answer does: its session moves on (or the next fetch
//! is full), each partition in it is applied (records queued, errors,
//! resets, a leader hint), and a failed fetch backs its partitions off.

use std::collections::HashMap;

use kafkit_conn::messages::FetchResponse;
use kafkit_protocol::Uuid;
use tokio::time::Instant;

use super::Driver;
use crate::Error;
use crate::fetcher::answer::{self, Outcome, Planned};
use crate::fetcher::leader_hint;
use crate::fetcher::session::Answer;

impl Driver {
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
