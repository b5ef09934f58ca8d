//! `--stats DURATION`: a JSON snapshot of the client's statistics on
//! stderr every DURATION (one object per line), as librdkafka's
//! `statistics.interval.ms` gives: per-broker round trips, per-partition
//! offsets and lag, the group's state, the producer's buffer and id.

use std::time::Duration;

use serde::Serialize;
use tokio::time::{Interval, MissedTickBehavior};

/// When to print the next snapshot; never without `--stats`.
pub struct StatsTicker {
    interval: Option<Interval>,
}

impl StatsTicker {
    /// Prints every `every`, the first after one `every` has passed.
    pub fn new(every: Option<Duration>) -> StatsTicker {
        let interval = every.map(|every| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        StatsTicker { interval }
    }

    /// Resolves when a snapshot is due; pending forever without `--stats`.
    ///
    /// Cancel safety: safe (`Interval::tick` is).
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Prints one snapshot as a line of JSON on stderr, under `kind`
/// ("reader", "fetcher" or "writer").
pub fn print(kind: &str, stats: &impl Serialize) {
    let line = serde_json::json!({ "stats": kind, "at_ms": now_ms(), "snapshot": stats });
    eprintln!("{line}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The partition consumer's snapshot: the fetcher's counters, each
/// partition, and the connections.
#[derive(Serialize)]
pub struct FetcherSnapshot {
    pub fetch: kafkit_reader::FetchStats,
    pub partitions: Vec<kafkit_reader::PartitionStats>,
    pub transport: kafkit_conn::TransportStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_only_when_asked() {
        let mut off = StatsTicker::new(None);
        let never = tokio::time::timeout(Duration::from_secs(3600), off.tick()).await;
        assert!(never.is_err(), "no --stats, no snapshot");
        let mut on = StatsTicker::new(Some(Duration::from_secs(5)));
        let start = tokio::time::Instant::now();
        on.tick().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        on.tick().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[test]
    fn a_writer_snapshot_is_json_with_its_fields() {
        let value = serde_json::to_value(kafkit_writer::WriterStats::default()).unwrap();
        for field in [
            "records",
            "latency",
            "buffered_bytes",
            "producer_id",
            "transport",
        ] {
            assert!(value.get(field).is_some(), "{field} in {value}");
        }
        assert_eq!(value["latency"]["count"], 0);
        assert!(value["latency"]["p99_us"].is_null());
    }
}
