//! Latency histograms: [`LatencyRecorder`] (live atomics, recorded on the
//! hot path without a lock) and [`LatencyHistogram`] (a snapshot with
//! quantiles). Connections record round trips with them, writers their
//! records' write-to-acknowledgement times.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Log buckets: bucket `i` counts latencies below `2^i` microseconds (the
/// last one everything longer), so 1 µs to about 35 minutes in 32
/// counters.
pub const LATENCY_BUCKETS: usize = 32;

/// The live counters of a histogram; see the [module docs](self).
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    sum_us: AtomicU64,
}

impl LatencyRecorder {
    /// Records one latency.
    #[inline]
    pub fn record(&self, latency: Duration) {
        self.record_n(latency, 1);
    }

    /// Records `n` events of the same latency (a batch's records).
    pub fn record_n(&self, latency: Duration, n: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(us)].fetch_add(n, Relaxed);
        self.sum_us.fetch_add(us.saturating_mul(n), Relaxed);
    }

    /// What it counted so far.
    pub fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

pub(crate) fn bucket(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(LATENCY_BUCKETS - 1)
}

/// A log-bucket histogram of latencies: bucket `i` counts events whose
/// latency was below `2^i` microseconds (and at least `2^(i-1)`).
///
/// With the `serde` feature it serialises as its count, mean and 50th,
/// 90th and 99th percentiles in microseconds, then the buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// The per-bucket event counts.
    pub buckets: [u64; LATENCY_BUCKETS],
    /// The sum of all latencies, in microseconds.
    pub sum_us: u64,
}

impl LatencyHistogram {
    /// Events counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The mean latency, `None` before any event.
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
        Some(Duration::from_micros(1u64 << (LATENCY_BUCKETS - 1)))
    }

    /// Adds `other`'s events to these (two connections to one broker).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let us = |d: Option<Duration>| d.map(|d| d.as_micros() as u64);
        let mut st = s.serialize_struct("LatencyHistogram", 6)?;
        st.serialize_field("count", &self.count())?;
        st.serialize_field("mean_us", &us(self.mean()))?;
        st.serialize_field("p50_us", &us(self.quantile(0.5)))?;
        st.serialize_field("p90_us", &us(self.quantile(0.9)))?;
        st.serialize_field("p99_us", &us(self.quantile(0.99)))?;
        st.serialize_field("buckets", &self.buckets)?;
        st.end()
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
        assert_eq!(bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn quantiles_means_and_merges() {
        let r = LatencyRecorder::default();
        r.record_n(Duration::from_micros(700), 90);
        r.record_n(Duration::from_millis(30), 10);
        let mut h = r.snapshot();
        assert_eq!(h.count(), 100);
        // 700 us is in the bucket below 1024 us; 30 ms below 32768 us.
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(1024)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(32768)));
        assert_eq!(h.mean(), Some(Duration::from_micros(3630)));
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
        let other = LatencyRecorder::default();
        other.record(Duration::from_micros(3));
        h.merge(&other.snapshot());
        assert_eq!(h.count(), 101);
        assert_eq!(h.quantile(0.0), Some(Duration::from_micros(4)));
    }
}
