//! Counters and a latency histogram: [`Stats`] (the live atomics) and
//! [`WriterStats`] (a snapshot).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kafkit_conn::latency::{LatencyHistogram, LatencyRecorder};
use kafkit_conn::telemetry::Window;

/// The live counters, updated once per batch (never per record).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    records: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    epoch_bumps: AtomicU64,
    leader_hints: AtomicU64,
    commits: AtomicU64,
    aborts: AtomicU64,
    latency: LatencyRecorder,
    /// The producer id and epoch in use (-1 when not idempotent), set by
    /// the sender whenever they change (rarely: a lock is cheap).
    producer: std::sync::Mutex<(i64, i16)>,
    /// Batches' time from creation to their first send, in microseconds,
    /// since client telemetry last took it (`record.queue.time`).
    pub(crate) queue_time: Window,
    /// Produce answers' throttle times in milliseconds, likewise
    /// (`produce.throttle.time`).
    pub(crate) throttle: Window,
}

impl Stats {
    /// A batch of `records` records and `bytes` bytes was acknowledged
    /// `latency` after its first record was written.
    pub(crate) fn acked(&self, records: u64, bytes: u64, latency: Duration) {
        self.records.fetch_add(records, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.latency.record_n(latency, records);
    }

    /// The sender now writes with producer `id` at `epoch`.
    pub(crate) fn set_producer(&self, id: i64, epoch: i16) {
        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = (id, epoch);
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn failed(&self, records: u64) {
        self.errors.fetch_add(records, Relaxed);
    }

    pub(crate) fn epoch_bump(&self) {
        self.epoch_bumps.fetch_add(1, Relaxed);
    }

    /// A failed batch went to the leader a broker named (KIP-951).
    pub(crate) fn leader_hint(&self) {
        self.leader_hints.fetch_add(1, Relaxed);
    }

    /// A transaction ended: committed, or aborted.
    pub(crate) fn transaction(&self, committed: bool) {
        let counter = if committed {
            &self.commits
        } else {
            &self.aborts
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        let (producer_id, producer_epoch) =
            *self.producer.lock().unwrap_or_else(|e| e.into_inner());
        WriterStats {
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            batches: self.batches.load(Relaxed),
            requests: self.requests.load(Relaxed),
            retries: self.retries.load(Relaxed),
            errors: self.errors.load(Relaxed),
            epoch_bumps: self.epoch_bumps.load(Relaxed),
            leader_hints: self.leader_hints.load(Relaxed),
            transactions_committed: self.commits.load(Relaxed),
            transactions_aborted: self.aborts.load(Relaxed),
            latency: self.latency.snapshot(),
            producer_id,
            producer_epoch,
            ..WriterStats::default()
        }
    }
}

/// A snapshot of a writer's counters and state, from
/// [`Writer::stats`](crate::Writer::stats): what librdkafka's statistics
/// JSON gives, and JSON too with the `serde` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct WriterStats {
    /// Records acknowledged.
    pub records: u64,
    /// Uncompressed record bytes acknowledged.
    pub bytes: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Produce requests sent (retries included).
    pub requests: u64,
    /// Batches sent again after a retriable error.
    pub retries: u64,
    /// Records that failed for good.
    pub errors: u64,
    /// Producer epoch bumps (idempotence recovery, or after an aborted
    /// transaction whose batch failed).
    pub epoch_bumps: u64,
    /// Batches retried at once on the new leader that the old one named in
    /// its answer (KIP-951), with no metadata refresh and no backoff.
    pub leader_hints: u64,
    /// Transactions committed (a transactional writer).
    pub transactions_committed: u64,
    /// Transactions aborted (a transactional writer).
    pub transactions_aborted: u64,
    /// Write-to-acknowledgement latency of acknowledged records.
    pub latency: LatencyHistogram,
    /// Records written and not yet acknowledged or failed, now.
    pub buffered_records: usize,
    /// Their estimated bytes (what `buffer_bytes` bounds).
    pub buffered_bytes: usize,
    /// The producer id the writer writes with (-1 when not idempotent, or
    /// before InitProducerId answered).
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// A transactional writer's transaction state (`ready`, `in
    /// transaction`, `committing`, `aborting`, `failed (abortable)`,
    /// `failed (fatal)`); `None` for other writers.
    pub transaction_state: Option<&'static str>,
    /// The connections, per broker: round trips, in-flight requests.
    pub transport: kafkit_conn::TransportStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_and_quantiles() {
        let s = Stats::default();
        s.acked(90, 9000, Duration::from_micros(700));
        s.acked(10, 1000, Duration::from_millis(30));
        s.retry();
        s.failed(2);
        s.request();
        let snap = s.snapshot();
        assert_eq!((snap.records, snap.bytes, snap.batches), (100, 10_000, 2));
        assert_eq!((snap.retries, snap.errors, snap.requests), (1, 2, 1));
        assert_eq!(snap.latency.count(), 100);
        // 700 us is in the bucket below 1024 us; 30 ms below 32768 us.
        assert_eq!(
            snap.latency.quantile(0.5),
            Some(Duration::from_micros(1024))
        );
        assert_eq!(
            snap.latency.quantile(0.99),
            Some(Duration::from_micros(32768))
        );
        assert_eq!(snap.latency.mean(), Some(Duration::from_micros(3630)));
    }
}
