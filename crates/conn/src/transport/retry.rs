//! [`Backoff`]: capped exponential backoff with jitter, and
//! [`retry`], the loop that asks each error whether to try again.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

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
    /// The overall time budget, counted from the first attempt: no new
    /// attempt starts if its backoff delay would end past it (an attempt in
    /// flight is never cut short, so cancel safety stays the attempt's).
    /// Default 60 s, Java's `default.api.timeout.ms`: with the default
    /// 30 s request timeout, five attempts could otherwise take minutes.
    /// `None`: only `max_attempts` limits.
    pub deadline: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.2,
            max_attempts: 5,
            deadline: Some(Duration::from_secs(60)),
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
pub(crate) fn random_unit() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / (f64::from(u32::MAX) + 1.0))
}

/// Runs `attempt` until it succeeds, fails with an error that is not
/// [retriable](Error::is_retriable), uses up `backoff.max_attempts`, or would
/// start past `backoff.deadline`; between attempts it calls `on_retry` with
/// the error (to refresh metadata, say) and sleeps for the backoff delay.
/// Returns the last error. Each attempt runs in a `kafka_attempt` tracing
/// span (attempt number) and each failure is logged with its delay.
///
/// Cancel safety: safe if `attempt`'s futures are; dropping it stops
/// retrying.
pub async fn retry<T, F, Fut>(
    backoff: &Backoff,
    attempt: F,
    on_retry: impl FnMut(&Error),
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retry_with_jitter(backoff, random_unit, attempt, on_retry).await
}

/// [`retry`] with the jitter source injected, so tests can pin it.
pub(crate) async fn retry_with_jitter<T, F, Fut>(
    backoff: &Backoff,
    mut jitter: impl FnMut() -> f64,
    mut attempt: F,
    mut on_retry: impl FnMut(&Error),
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let attempts = backoff.max_attempts.max(1);
    let started = tokio::time::Instant::now();
    let mut n = 0;
    loop {
        let span = tracing::debug_span!("kafka_attempt", attempt = n + 1, max = attempts);
        let error = match attempt().instrument(span).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if !error.is_retriable() {
            tracing::debug!(error = %error, attempt = n + 1, "not retriable");
            return Err(error);
        }
        if n + 1 >= attempts {
            tracing::debug!(error = %error, attempt = n + 1, "out of attempts");
            return Err(error);
        }
        let delay = backoff.delay(n, jitter());
        if backoff
            .deadline
            .is_some_and(|deadline| started.elapsed() + delay > deadline)
        {
            tracing::debug!(error = %error, attempt = n + 1, "past the retry deadline");
            return Err(error);
        }
        tracing::debug!(error = %error, attempt = n + 1, ?delay, "retrying");
        on_retry(&error);
        tokio::time::sleep(delay).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, ErrorKind};
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
                        Error::check(ErrorCode::NOT_LEADER_OR_FOLLOWER, None).map(|()| 0)
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
                async { Error::check(ErrorCode::TOPIC_ALREADY_EXISTS, None) }
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

    /// The gaps between attempts, with time paused and the jitter drawn
    /// from `jitter`, for attempts that always fail with a retriable error.
    async fn gaps(backoff: &Backoff, jitter: impl FnMut() -> f64) -> Vec<Duration> {
        let times = std::cell::RefCell::new(Vec::new());
        let _ = retry_with_jitter(
            backoff,
            jitter,
            || {
                times.borrow_mut().push(tokio::time::Instant::now());
                async { Err::<(), _>(Error::new(ErrorKind::Timeout)) }
            },
            |_| {},
        )
        .await;
        let times = times.into_inner();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_sequence_doubles_to_the_cap_within_the_jitter() {
        let b = Backoff {
            max_attempts: 7,
            deadline: None,
            ..Default::default()
        };
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        // Lowest jitter: 0.8 x; highest: 1.2 x (unit just below 1).
        assert_eq!(gaps(&b, || 0.0).await, ms(&[80, 160, 320, 640, 800, 800]));
        assert_eq!(
            gaps(&b, || 0.5).await,
            ms(&[100, 200, 400, 800, 1000, 1000])
        );
        let high = gaps(&b, || 0.999_999).await;
        let cap = ms(&[120, 240, 480, 960, 1200, 1200]);
        assert_eq!(high.len(), cap.len());
        for (gap, cap) in high.iter().zip(&cap) {
            assert!(
                gap <= cap && *gap >= cap.mul_f64(0.99),
                "{gap:?} vs {cap:?}"
            );
        }
        // Random jitter (what `retry` draws) stays within the same bounds.
        let random = gaps(&b, random_unit).await;
        for ((gap, low), high) in random
            .iter()
            .zip(ms(&[80, 160, 320, 640, 800, 800]))
            .zip(&cap)
        {
            assert!(
                *gap >= low && gap <= high,
                "{gap:?} outside {low:?}..{high:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_past_the_deadline() {
        let b = Backoff {
            max_attempts: 100,
            deadline: Some(Duration::from_secs(25)),
            ..Default::default()
        };
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let e = retry_with_jitter(
            &b,
            || 0.5,
            || {
                calls.set(calls.get() + 1);
                async {
                    // Each attempt waits out a 10 s request timeout.
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Err::<(), _>(Error::new(ErrorKind::Timeout))
                }
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Timeout);
        // Attempts at 0 s, 10.1 s and 20.3 s; a fourth would start at 30.7 s.
        assert_eq!(calls.get(), 3);
        assert!(start.elapsed() <= Duration::from_secs(31));
    }
}
