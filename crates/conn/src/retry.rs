//! [`Backoff`]: capped exponential backoff with jitter, and
//! [`retry`], the loop that asks each error whether to try again.

use std::future::Future;
use std::time::Duration;

use crate::Error;

/// How long to wait between attempts: `initial * 2^n`, capped at `max`,
/// each delay spread by ±`jitter` so that many clients that failed together
/// do not retry together (the thundering herd KIP-580 describes).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The first delay. Default 100 ms, Java's `retry.backoff.ms`.
    pub initial: Duration,
    /// The largest delay. Default 1 s, Java's `retry.backoff.max.ms`
    /// (KIP-580).
    pub max: Duration,
    /// The relative spread of each delay, in `0.0..=1.0`. Default 0.2, as
    /// in Java's clients.
    pub jitter: f64,
    /// How many attempts in all, the first included. Default 5: with the
    /// delays above, about 2 s of trying, long enough for a leader election
    /// and short enough that a real outage surfaces quickly. At least 1.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.2,
            max_attempts: 5,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (0 for the first),
    /// before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay after failed attempt `attempt`, with jitter from `unit`,
    /// a number in `0.0..1.0` (random in [`retry`]).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        let spread = 1.0 - jitter + 2.0 * jitter * unit.clamp(0.0, 1.0);
        self.base_delay(attempt).mul_f64(spread)
    }
}

/// A random number in `0.0..1.0`; 0.5 (no jitter) if the OS has none.
fn random_unit() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / (f64::from(u32::MAX) + 1.0))
}

/// Runs `attempt` until it succeeds, fails with an error that is not
/// [retriable](Error::is_retriable), or `backoff.max_attempts` are used;
/// between attempts it calls `on_retry` with the error (to refresh metadata,
/// say) and sleeps for the backoff delay. Returns the last error.
///
/// Cancel safety: safe if `attempt`'s futures are; dropping it stops
/// retrying.
pub async fn retry<T, F, Fut>(
    backoff: &Backoff,
    mut attempt: F,
    mut on_retry: impl FnMut(&Error),
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let attempts = backoff.max_attempts.max(1);
    let mut n = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retriable() && n + 1 < attempts => {
                let delay = backoff.delay(n, random_unit());
                tracing::debug!(error = %e, attempt = n + 1, ?delay, "retrying");
                on_retry(&e);
                tokio::time::sleep(delay).await;
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::cell::Cell;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff::default();
        let base: Vec<u128> = (0..6).map(|n| b.base_delay(n).as_millis()).collect();
        assert_eq!(base, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.base_delay(u32::MAX), b.max);
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(80));
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert!(b.delay(0, 0.999_999) <= Duration::from_millis(120));
        for _ in 0..100 {
            let d = b.delay(2, random_unit());
            assert!(d >= Duration::from_millis(320) && d <= Duration::from_millis(480));
        }
    }

    fn fast() -> Backoff {
        Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn retries_retriable_errors_then_succeeds() {
        let calls = Cell::new(0);
        let retried = Cell::new(0);
        let result = retry(
            &fast(),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Error::check(6, None).map(|()| 0) // NOT_LEADER_OR_FOLLOWER
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| retried.set(retried.get() + 1),
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(retried.get(), 2);
    }

    #[tokio::test]
    async fn stops_at_a_fatal_error_or_the_attempt_limit() {
        let calls = Cell::new(0);
        let fatal = retry(
            &fast(),
            || {
                calls.set(calls.get() + 1);
                async { Error::check(36, None) } // TOPIC_ALREADY_EXISTS
            },
            |_| {},
        )
        .await;
        assert!(fatal.is_err());
        assert_eq!(calls.get(), 1);

        calls.set(0);
        let exhausted = retry(
            &fast(),
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(Error::new(ErrorKind::Timeout)) }
            },
            |_| {},
        )
        .await;
        assert_eq!(exhausted.unwrap_err().kind(), &ErrorKind::Timeout);
        assert_eq!(calls.get(), 5);
    }
}
