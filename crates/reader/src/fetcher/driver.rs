//! The background task of a [`Fetcher`](crate::Fetcher): it resolves start
//! offsets (ListOffsets), groups fetchable partitions by leader, keeps at
//! most one Fetch in flight per broker (on the transport's pooled
//! `Purpose::Fetch` connection), and turns answers into chunks for the
//! caller, offset resets, backoffs or errors.
//!
//! A partition is fetchable when its position is known, no fetch for it is
//! in flight, none of its chunks waits in the queue, its backoff has
//! passed, and the buffer is below `max_buffered_bytes`. So while the
//! caller reads one chunk of a partition, the next one is already being
//! fetched (prefetch), and memory stays bounded.
//!
//! The task owns nothing the caller needs: the handle aborts it on drop,
//! which drops the fetch and lookup tasks it spawned (their requests'
//! answers are discarded by the connection's driver).

use std::collections::{HashMap, HashSet};
use std::future::{Future, pending};
use std::sync::Arc;

use bytes::Bytes;
use kafkit_conn::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_conn::messages::fetch_response::PartitionData;
use kafkit_conn::messages::{FetchRequest, FetchResponse};
use kafkit_conn::{ApiKey, ErrorCode, Purpose, Transport};
use kafkit_protocol::Uuid;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

use super::chunk::{Chunk, TxnFilter, scan};
use super::config::FetchConfig;
use super::state::{FetchState, Shared, State};
use crate::offsets::resolve;
use crate::{Error, IsolationLevel, StartOffset, TopicPartition};

/// One partition in a fetch request.
#[derive(Debug, Clone)]
struct Planned {
    tp: TopicPartition,
    generation: u64,
    offset: i64,
}

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
            match cluster.leader(&p.tp.topic, p.tp.partition) {
                Some(leader) if self.busy.contains(&leader.id) => {}
                Some(leader) => match self.throttled.get(&leader.id) {
                    Some(&until) => wake_at = Some(wake_at.map_or(until, |w| w.min(until))),
                    None => by_broker.entry(leader.id).or_default().push(p),
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
            // the metadata was being read.
            parts.retain(|p| {
                let mut st = self.shared.lock();
                match st.current(&p.tp, p.generation) {
                    Some(part)
                        if part.in_flight.is_none() && part.fetch == FetchState::At(p.offset) =>
                    {
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
        wake_at
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
            if part.in_flight.is_some() || part.queued > 0 {
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
            });
        }
        (out, wake_at)
    }

    /// Settles a finished task.
    fn finish(&mut self, joined: Result<(Id, Done), JoinError>) {
        let (id, done) = match joined {
            Ok((id, done)) => (id, Some(done)),
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
                if let Some(planned) = planned {
                    self.partition_answer(&mut st, planned, data);
                }
            }
        }
    }

    /// Applies one partition's answer.
    fn partition_answer(&self, st: &mut State, planned: &Planned, data: PartitionData) {
        let tp = &planned.tp;
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let Some(part) = st.current(tp, planned.generation) else {
            return; // sought or unassigned meanwhile
        };
        if part.fetch != FetchState::At(planned.offset) {
            return;
        }
        match data.error_code {
            ErrorCode::NONE => {
                part.high_watermark = data.high_watermark;
                part.last_stable_offset = data.last_stable_offset;
                part.log_start_offset = data.log_start_offset;
                let records = data.records.unwrap_or_default();
                if records.is_empty() {
                    part.failures = 0;
                    return;
                }
                let end = scan(&records)
                    .next_offset
                    .map_or(planned.offset, |end| end.max(planned.offset));
                if end == planned.offset {
                    // Only part of a batch: the partition was not first in
                    // the answer and its batch exceeds what was left. The
                    // rotation puts it first soon; don't spin meanwhile.
                    tracing::debug!(%tp, offset = planned.offset, "only a partial batch");
                    st.back_off(tp, planned.generation, |n| self.config.backoff(n));
                    return;
                }
                part.fetch = FetchState::At(end);
                part.queued += 1;
                part.failures = 0;
                part.retry_at = None;
                let filter = match data.aborted_transactions.as_deref() {
                    Some(aborted) if read_committed && !aborted.is_empty() => {
                        Some(TxnFilter::new(aborted))
                    }
                    _ => None,
                };
                push_chunk(st, planned, end, records, filter);
                self.shared.data_ready.notify_one();
            }
            ErrorCode::OFFSET_OUT_OF_RANGE => {
                match self.config.offset_reset.start() {
                    Some(start) => {
                        tracing::info!(%tp, offset = planned.offset, ?start, "offset out of range: resetting");
                        st.reset(tp, start);
                    }
                    None => {
                        tracing::warn!(%tp, offset = planned.offset, "offset out of range");
                        part.fetch = FetchState::Stopped;
                        st.errors.push_back(Error::offset_out_of_range(
                            tp.topic.clone(),
                            tp.partition,
                            planned.offset,
                        ));
                        self.shared.data_ready.notify_one();
                    }
                }
                st.counters.errors += 1;
            }
            code => {
                let e = kafkit_conn::Error::check(code, None)
                    .expect_err("an error code")
                    .with_api(ApiKey::Fetch)
                    .with_topic(&tp.topic, Some(tp.partition));
                tracing::debug!(%tp, error = %e, "fetch partition error");
                self.transport.on_error(&e);
                st.counters.errors += 1;
                st.back_off(tp, planned.generation, |n| self.config.backoff(n));
                if !(code.is_retriable() || code == ErrorCode::FENCED_LEADER_EPOCH) {
                    st.errors.push_back(Error::from(e));
                    self.shared.data_ready.notify_one();
                }
            }
        }
    }
}

fn push_chunk(
    st: &mut State,
    planned: &Planned,
    end: i64,
    records: Bytes,
    filter: Option<TxnFilter>,
) {
    let len = records.len();
    st.counters.bytes += len as u64;
    st.buffered_bytes += len;
    st.ready.push_back(Chunk::new(
        planned.tp.clone(),
        planned.generation,
        planned.offset,
        end,
        records,
        filter,
    ));
}

/// The Fetch for `parts` (in this order), grouped by topic.
fn build_request(
    config: &FetchConfig,
    parts: &[Planned],
    epochs: &[i32],
    ids: &HashMap<Arc<str>, Uuid>,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (p, &epoch) in parts.iter().zip(epochs) {
        let partition = FetchPartition {
            partition: p.tp.partition,
            current_leader_epoch: epoch,
            fetch_offset: p.offset,
            partition_max_bytes: FetchConfig::wire_i32(config.max_partition_bytes),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| *t.topic == *p.tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic {
                topic: p.tp.topic.to_string(),
                // Fetch v13+ names topics by id (KIP-516); each version
                // encodes the field it knows.
                topic_id: ids.get(&p.tp.topic).copied().unwrap_or(Uuid::ZERO),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        max_wait_ms: i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: FetchConfig::wire_i32(config.min_bytes),
        max_bytes: FetchConfig::wire_i32(config.max_bytes),
        isolation_level: config.isolation_level.as_i8(),
        topics,
        ..Default::default()
    }
}

/// Sends `request` on the pooled fetch connection to `addr`, with the
/// request timeout extended by the broker's `max_wait`. Topic ids need
/// Fetch v13+; without them (a broker that sends none) the version stays
/// at 12.
fn send(
    transport: &Transport,
    addr: &str,
    request: FetchRequest,
    all_ids: bool,
    max_wait: std::time::Duration,
) -> impl Future<Output = Result<FetchResponse, kafkit_conn::Error>> + Send + 'static {
    let transport = transport.clone();
    let addr = addr.to_owned();
    async move {
        let context = |e: kafkit_conn::Error| e.with_broker(&addr).with_api(ApiKey::Fetch);
        let conn = transport.conn(&addr, Purpose::Fetch).await?;
        let response = if all_ids {
            conn.request_with_extra_timeout(request, max_wait).await
        } else {
            if let Some(timeout) = conn.config().request_timeout.filter(|&t| t <= max_wait) {
                return Err(kafkit_conn::Error::new(kafkit_conn::ErrorKind::Config(format!(
                    "max_wait ({max_wait:?}) must be shorter than the request_timeout ({timeout:?})"
                ))));
            }
            let version = conn.version_for(ApiKey::Fetch)?.min(12);
            conn.request_at(version, request).await
        }
        .map_err(context)?;
        kafkit_conn::Error::check(response.error_code, None).map_err(context)?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafkit_protocol::{Message, Request};

    fn planned(topic: &str, partition: i32, offset: i64) -> Planned {
        Planned {
            tp: TopicPartition::new(topic, partition),
            generation: 1,
            offset,
        }
    }

    #[test]
    fn requests_group_partitions_by_topic_and_encode_at_every_version() {
        let config = FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..Default::default()
        };
        let parts = [planned("a", 0, 42), planned("b", 1, 7), planned("a", 2, 9)];
        let mut ids = HashMap::new();
        ids.insert(Arc::<str>::from("a"), Uuid::from_bytes([1; 16]));
        ids.insert(Arc::<str>::from("b"), Uuid::from_bytes([2; 16]));
        let r = build_request(&config, &parts, &[3, -1, 3], &ids);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[0].fetch_offset, 42);
        assert_eq!(r.topics[0].partitions[0].current_leader_epoch, 3);
        assert_eq!(r.topics[0].partitions[1].partition, 2);
        assert_eq!(r.topics[1].topic_id, Uuid::from_bytes([2; 16]));
        assert_eq!(r.isolation_level, 1);
        assert_eq!(r.max_wait_ms, 500);
        assert_eq!(r.topics[0].partitions[0].partition_max_bytes, 1 << 20);
        let stable = FetchRequest::API_KEY.stable_versions();
        for version in stable.min..=stable.max {
            r.encode(&mut BytesMut::new(), version).unwrap();
        }
    }
}
