//! The writer's one background task: it takes sealed batches from the
//! accumulator, finds each partition's leader, groups batches per broker
//! into one ProduceRequest (at most one batch per partition, at most
//! `max_in_flight` requests per broker), and hands every record its outcome.
//! It owns all per-partition sending state (`Part`), so ordering needs no
//! locks; sequences and epochs are the producer identity's (`identity/`).
//!
//! Files: `mod.rs` (the loop, a partition's state, collecting batches,
//! metadata), `dispatch.rs` (which batches go, stamping, one request per
//! broker), `link.rs` (each broker's submitter, which keeps requests in
//! order), `outcome.rs` (answers, retries, epoch bumps), `shared.rs` (what
//! callers and the task share), `leader_hint.rs` (a broker's word on a
//! partition's new leader, KIP-951), `txn.rs` (joining partitions to a
//! transaction, failing unsent batches of an aborted one).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kafkit_conn::Transport;
use kafkit_protocol::messages::ProduceResponse;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use crate::Error;
use crate::batch::Batch;
use crate::identity::ProducerId;
use crate::txn::requests::Key;

mod dispatch;
mod leader_hint;
mod link;
mod outcome;
mod shared;
mod txn;

pub(crate) use shared::Shared;

/// What a spawned request reports back.
#[derive(Debug)]
enum Outcome {
    Produced {
        broker: i32,
        addr: String,
        sent: Vec<link::BatchRef>,
        result: Result<ProduceResponse, kafkit_conn::Error>,
    },
    /// Partition counts of topics, after a metadata lookup.
    Metadata {
        topics: Vec<Arc<str>>,
        /// A refresh of known topics, not a lookup for pending records.
        refresh: bool,
        result: Result<Vec<usize>, Error>,
    },
    Producer(Result<ProducerId, Error>),
    /// An AddPartitionsToTxn answer, for transaction `generation`.
    PartitionsAdded {
        generation: u64,
        partitions: Vec<Key>,
        result: Result<Vec<(Key, kafkit_protocol::ErrorCode)>, kafkit_conn::Error>,
    },
}

/// Sending state of one partition, owned by the sender task (its
/// sequences are the producer identity's, `identity/`).
#[derive(Debug, Default)]
pub(super) struct Part {
    /// Sealed batches waiting to be sent, in order.
    pub(super) queue: VecDeque<Batch>,
    /// Sent and not answered, in send order.
    pub(super) in_flight: VecDeque<Batch>,
    /// Failed, to resend (in id order) once `in_flight` is empty.
    pub(super) retries: Vec<Batch>,
    /// No new batch may go before the next retry.
    pub(super) retry_at: Option<Instant>,
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    transport: Transport,
    parts: HashMap<(Arc<str>, i32), Part>,
    /// Produce requests in flight per broker id.
    requests: HashMap<i32, usize>,
    /// Each broker's submitter (see `link.rs`).
    links: HashMap<i32, mpsc::UnboundedSender<link::Job>>,
    /// Topics whose metadata lookup is running, or failed and waits to
    /// retry (attempts so far, when).
    lookups: HashMap<Arc<str>, (u32, Option<Instant>)>,
    /// A refresh for leaderless partitions is running.
    refreshing: bool,
    /// When to look at leaderless partitions (or refresh topic counts) again.
    recheck_at: Option<Instant>,
    last_refresh: Instant,
    /// The transaction's sending state (transactional writers only).
    txn_send: Option<txn::TxnSend>,
    tx: mpsc::UnboundedSender<Outcome>,
    rx: mpsc::UnboundedReceiver<Outcome>,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>, transport: Transport) -> Sender {
        let (tx, rx) = mpsc::unbounded_channel();
        Sender {
            shared,
            transport,
            parts: HashMap::new(),
            requests: HashMap::new(),
            links: HashMap::new(),
            lookups: HashMap::new(),
            refreshing: false,
            recheck_at: None,
            last_refresh: Instant::now(),
            txn_send: None,
            tx,
            rx,
        }
    }

    /// Runs until the writer is closed and every record is done.
    pub(crate) async fn run(mut self) {
        let producer_id = self.shared.identity().current().id;
        let span = tracing::debug_span!("kafka_writer", producer_id);
        async move {
            loop {
                let deadline = self.step();
                if self.finished() {
                    tracing::debug!("writer closed and drained");
                    return;
                }
                let sleep = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    Some(o) = self.rx.recv() => self.on_outcome(o),
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep_until(sleep) => {}
                }
                while let Ok(o) = self.rx.try_recv() {
                    self.on_outcome(o);
                }
            }
        }
        .instrument(span)
        .await;
    }

    fn finished(&self) -> bool {
        let acc = self.shared.lock();
        acc.closed && acc.is_empty()
    }

    /// One turn: collect sealed batches, look up new topics, expire, send.
    /// Returns when the loop must look again at the latest.
    fn step(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let mut next = self.collect(now);
        self.expire(now);
        self.lookup_topics(now, &mut next);
        if self.txn_sync() {
            let dispatch_next = self.dispatch(now);
            let add_next = self.txn_add_partitions(now);
            for t in [dispatch_next, add_next] {
                next = earliest(next, t);
            }
        }
        earliest(next, self.recheck_at)
    }

    /// Seals lingering batches and moves sealed ones to their partitions'
    /// queues. Returns the next linger deadline.
    fn collect(&mut self, now: Instant) -> Option<Instant> {
        let all = self.shared.flushing.load(Ordering::Acquire) > 0;
        let (sealed, next) = {
            let mut acc = self.shared.lock();
            let all = all || acc.closed;
            let next = acc.seal_due(self.shared.config.linger, all, now);
            (std::mem::take(&mut acc.sealed), next)
        };
        for batch in sealed {
            let key = (batch.topic.clone(), batch.partition);
            self.parts.entry(key).or_default().queue.push_back(batch);
        }
        next
    }

    /// Fails queued batches and pending records past the delivery timeout.
    fn expire(&mut self, now: Instant) {
        let timeout = self.shared.config.delivery_timeout;
        let mut expired = Vec::new();
        for part in self.parts.values_mut() {
            while part
                .queue
                .front()
                .is_some_and(|b| b.created + timeout <= now)
            {
                expired.push(part.queue.pop_front().expect("checked"));
            }
        }
        for batch in expired {
            self.fail_batch(batch, Error::DeliveryTimeout(timeout));
        }
        self.shared.fail_pending(
            |p| p.since + timeout <= now,
            &Error::DeliveryTimeout(timeout),
        );
    }

    /// Starts metadata lookups for topics with pending records, and the
    /// periodic one that keeps the writer's topics in the transport's use
    /// (and learns added partitions).
    fn lookup_topics(&mut self, now: Instant, next: &mut Option<Instant>) {
        if self.recheck_at.is_some_and(|t| t <= now) {
            self.recheck_at = None;
        }
        let wanted: HashSet<Arc<str>> = {
            let acc = self.shared.lock();
            acc.pending.iter().map(|p| p.topic.clone()).collect()
        };
        for topic in wanted {
            let state = self.lookups.entry(topic.clone()).or_insert((0, Some(now)));
            match state.1 {
                Some(at) if at <= now => {
                    state.1 = None;
                    self.spawn_lookup(vec![topic], false);
                }
                Some(at) => *next = earliest(*next, Some(at)),
                None => {}
            }
        }
        if now.duration_since(self.last_refresh) >= Duration::from_secs(30) && !self.refreshing {
            self.last_refresh = now;
            self.refresh_known(now);
        }
    }

    /// Looks up the partition counts of the topics being written.
    fn refresh_known(&mut self, now: Instant) {
        let mut topics: Vec<Arc<str>> = self.parts.keys().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return;
        }
        self.refreshing = true;
        self.recheck_at = Some(now + Duration::from_millis(100));
        self.spawn_lookup(topics, true);
    }

    fn spawn_lookup(&self, topics: Vec<Arc<str>>, refresh: bool) {
        let transport = self.transport.clone();
        let tx = self.tx.clone();
        let span = tracing::debug_span!("kafka_writer_metadata", topics = topics.len());
        tokio::spawn(
            async move {
                let names: Vec<&str> = topics.iter().map(|t| &**t).collect();
                let result = match transport.cluster_for(&names).await {
                    Ok(cluster) => Ok(names.iter().map(|t| cluster.partition_count(t)).collect()),
                    Err(e) => Err(Error::Kafka(e)),
                };
                let _ = tx.send(Outcome::Metadata {
                    topics,
                    refresh,
                    result,
                });
            }
            .instrument(span),
        );
    }

    /// Records the buffer space of done records as free and wakes waiters.
    fn release(&self, records: usize, bytes: usize) {
        if records == 0 {
            return;
        }
        self.shared.lock().release(records, bytes);
        self.shared.space.notify_waiters();
    }

    /// Fails a batch for good.
    fn fail_batch(&mut self, batch: Batch, error: Error) {
        tracing::debug!(topic = %batch.topic, partition = batch.partition, records = batch.records(), error = %error, "batch failed");
        self.shared.batch_failed(&batch, &error);
        self.shared.note_failure(batch.records() as u64, &error);
        // Space first: a caller woken by the delivery finds it free.
        self.release(batch.records(), batch.size);
        batch.complete(Err(error), self.shared.config.on_delivery.as_ref());
    }

    /// Hands an acknowledged batch's records their offsets.
    /// Also acknowledges, with an unknown offset, the partition's batches
    /// waiting for a retry that the broker must have written (see
    /// [`ProducerIdentity::covers`]): a retry could otherwise outlive the
    /// producer state that would recognise it as a duplicate, and be
    /// written twice.
    ///
    /// [`ProducerIdentity::covers`]: crate::identity::ProducerIdentity::covers
    fn ack_batch(&mut self, batch: Batch, base_offset: i64) {
        let mut written = Vec::new();
        if batch.stamp.sequence >= 0 {
            let mut identity = self.shared.identity();
            identity.acked(&batch);
            let part = self
                .parts
                .entry((batch.topic.clone(), batch.partition))
                .or_default();
            let (covered, rest): (Vec<Batch>, Vec<Batch>) = std::mem::take(&mut part.retries)
                .into_iter()
                .partition(|b| identity.covers(b));
            part.retries = rest;
            written = covered;
            while part.queue.front().is_some_and(|b| identity.covers(b)) {
                written.push(part.queue.pop_front().expect("checked"));
            }
        }
        self.complete_acked(batch, base_offset);
        for b in written {
            tracing::debug!(topic = %b.topic, partition = b.partition, "a later batch was acknowledged: this one is written");
            self.complete_acked(b, -1);
        }
    }

    fn complete_acked(&self, batch: Batch, base_offset: i64) {
        let (records, size) = (batch.records(), batch.size);
        self.shared
            .stats
            .acked(records as u64, size as u64, batch.created.elapsed());
        // Space first: a caller woken by the delivery finds it free.
        self.release(records, size);
        batch.complete(Ok(base_offset), self.shared.config.on_delivery.as_ref());
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_picks_the_sooner() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(now), Some(later)), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(Some(now), None), Some(now));
        assert_eq!(earliest(None, None), None);
    }
}
