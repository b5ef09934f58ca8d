//! Counters and a latency histogram: [`Stats`] (the live atomics) and
//! [`WriterStats`] (a snapshot).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kafkit_conn::telemetry::Window;

/// Latency buckets: bucket `i` counts latencies below `2^i` microseconds
/// (the last one everything longer), so 1 us to about 35 minutes in 32
/// counters.
const BUCKETS: usize = 32;

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
    latency: [AtomicU64; BUCKETS],
    latency_sum_us: AtomicU64,
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
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency[bucket(us)].fetch_add(records, Relaxed);
        self.latency_sum_us
            .fetch_add(us.saturating_mul(records), Relaxed);
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
            latency: LatencyHistogram {
                buckets: std::array::from_fn(|i| self.latency[i].load(Relaxed)),
                sum_us: self.latency_sum_us.load(Relaxed),
            },
        }
    }
}

fn bucket(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(BUCKETS - 1)
}

/// A snapshot of a writer's counters, from [`Writer::stats`](crate::Writer::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

/// A log-bucket histogram of latencies: bucket `i` counts records whose
/// latency was below `2^i` microseconds (and at least `2^(i-1)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// The per-bucket record counts.
    pub buckets: [u64; BUCKETS],
    /// The sum of all latencies, in microseconds.
    pub sum_us: u64,
}

impl LatencyHistogram {
    /// Records counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The mean latency, `None` before any record.
    pub fn mean(&self) -> Option<Duration> {
        let n = self.count();
        (n > 0).then(|| Duration::from_micros(self.sum_us / n))
    }

    /// An upper bound of the `q` quantile (`0.0..=1.0`): the top of the
    /// bucket it falls in, so at most twice the true value.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(1u64 << i));
            }
        }
        Some(Duration::from_micros(1u64 << (BUCKETS - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_log_buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(1023), 10);
        assert_eq!(bucket(1024), 11);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

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
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }
}
