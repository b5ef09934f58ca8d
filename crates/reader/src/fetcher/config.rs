//! [`FetchConfig`]: how much a [`Fetcher`](crate::Fetcher) asks for, how
//! long the broker may wait, how much it buffers, and what it does with
//! out-of-range offsets and transactions.

use std::time::Duration;

use crate::{Error, IsolationLevel, OffsetReset};

/// Settings of a [`Fetcher`](crate::Fetcher). Each field documents its
/// default and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// The bytes a fetch waits for (up to [`max_wait`](Self::max_wait))
    /// before the broker answers. Default 1 (Kafka's `fetch.min.bytes`):
    /// answer as soon as anything is there, for the lowest latency. Raise
    /// it to trade latency for fewer, larger fetches.
    pub min_bytes: usize,
    /// The most bytes one fetch response may carry, over all its
    /// partitions. Default 50 MiB (Kafka's `fetch.max.bytes`). The broker
    /// still returns a first batch that is larger (KIP-74), so progress
    /// never stalls.
    pub max_bytes: usize,
    /// The most bytes one partition contributes to a fetch response.
    /// Default 1 MiB (Kafka's `max.partition.fetch.bytes`): bounds the
    /// memory one busy partition takes and keeps partitions fair.
    pub max_partition_bytes: usize,
    /// How long the broker may hold a fetch waiting for
    /// [`min_bytes`](Self::min_bytes). Default 500 ms (Kafka's
    /// `fetch.max.wait.ms`): an idle partition costs two requests a second.
    /// It must be shorter than the connections' `request_timeout`.
    pub max_wait: Duration,
    /// How many fetched bytes may wait for the caller before fetching
    /// pauses. Default 64 MiB. Fetching resumes as the caller reads; the
    /// buffer can exceed the bound by at most one response per broker
    /// ([`max_bytes`](Self::max_bytes)), since a fetch in flight is not
    /// cancelled. Messages the caller still holds are not counted.
    pub max_buffered_bytes: usize,
    /// Which records are returned. Default
    /// [`IsolationLevel::ReadUncommitted`], Kafka's default.
    pub isolation_level: IsolationLevel,
    /// What happens when a position is out of range. Default
    /// [`OffsetReset::Earliest`] (see there why).
    pub offset_reset: OffsetReset,
    /// The first wait before a partition that failed (a moved leader, a
    /// lost broker, a broker error) is fetched again; it doubles with each
    /// failure in a row up to [`max_retry_backoff`](Self::max_retry_backoff).
    /// Default 100 ms (Kafka's `retry.backoff.ms`): long enough for a
    /// metadata refresh to land, short enough not to be noticed.
    pub retry_backoff: Duration,
    /// The longest wait between retries of a failing partition. Default
    /// 5 s: a partition whose broker is down does not spin.
    pub max_retry_backoff: Duration,
    /// The rack (availability zone) this consumer runs in: Kafka's
    /// `client.rack` (KIP-392). A cluster with a rack-aware
    /// `replica.selector.class` then points each partition's fetches at a
    /// replica in the same rack, which saves cross-zone traffic; a group
    /// member also names it in its subscription (KIP-881). Default `None`:
    /// every fetch goes to the leader, as in Kafka.
    pub rack: Option<String>,
    /// Incremental fetch sessions (KIP-227), as the Java client and
    /// franz-go use them. Default on: after a first full fetch, a broker
    /// remembers the partitions fetched from it; later fetches name only
    /// the partitions whose position (or leader epoch) changed, and the
    /// broker answers only for partitions with records or news, so a
    /// consumer of many partitions sends far fewer bytes per fetch. A
    /// broker that refuses a session (sessions disabled with
    /// `max.incremental.fetch.session.cache.slots=0`, its cache full, or a
    /// broker older than Fetch v7) gets full fetches from then on. Off,
    /// every fetch is full (session id 0, epoch -1), as before KIP-227.
    pub sessions: bool,
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            min_bytes: 1,
            max_bytes: 50 << 20,
            max_partition_bytes: 1 << 20,
            max_wait: Duration::from_millis(500),
            max_buffered_bytes: 64 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
            offset_reset: OffsetReset::Earliest,
            retry_backoff: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(5),
            rack: None,
            sessions: true,
        }
    }
}

impl FetchConfig {
    /// Checks the rules that span fields and the wire's limits (sizes are
    /// `int32` on the wire, waits are milliseconds in an `int32`).
    pub fn validate(&self) -> Result<(), Error> {
        let wire = i32::MAX as usize;
        if self.max_bytes == 0 || self.max_bytes > wire {
            return Err(Error::config("max_bytes must be in 1..=i32::MAX"));
        }
        if self.max_partition_bytes == 0 || self.max_partition_bytes > wire {
            return Err(Error::config("max_partition_bytes must be in 1..=i32::MAX"));
        }
        if self.min_bytes > wire {
            return Err(Error::config("min_bytes must be at most i32::MAX"));
        }
        if self.max_wait.as_millis() > i32::MAX as u128 {
            return Err(Error::config("max_wait must fit in i32 milliseconds"));
        }
        if self.max_buffered_bytes == 0 {
            return Err(Error::config("max_buffered_bytes must be positive"));
        }
        if self.retry_backoff.is_zero() || self.max_retry_backoff < self.retry_backoff {
            return Err(Error::config(
                "retry_backoff must be positive and at most max_retry_backoff",
            ));
        }
        Ok(())
    }

    /// The wait before retry number `failures` (1 for the first).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.max_retry_backoff)
    }

    pub(crate) fn wire_i32(n: usize) -> i32 {
        i32::try_from(n).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_kafka() {
        let c = FetchConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_partition_bytes, 1_048_576);
        assert_eq!(c.max_bytes, 52_428_800);
        assert_eq!(c.max_wait, Duration::from_millis(500));
        assert!(c.sessions, "fetch sessions on, as in the Java client");
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let bad = [
            FetchConfig {
                max_bytes: 0,
                ..Default::default()
            },
            FetchConfig {
                max_partition_bytes: usize::MAX,
                ..Default::default()
            },
            FetchConfig {
                max_buffered_bytes: 0,
                ..Default::default()
            },
            FetchConfig {
                retry_backoff: Duration::from_secs(10),
                ..Default::default()
            },
            FetchConfig {
                max_wait: Duration::from_secs(u64::MAX / 4),
                ..Default::default()
            },
        ];
        for c in bad {
            let e = c.validate().unwrap_err();
            assert!(matches!(e.kind(), crate::ErrorKind::Config(_)), "{e}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = FetchConfig::default();
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(4), Duration::from_millis(800));
        assert_eq!(c.backoff(60), Duration::from_secs(5));
    }
}
