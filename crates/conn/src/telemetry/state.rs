//! The client telemetry state machine (KIP-714), sans-IO: which request
//! comes next (GetTelemetrySubscriptions or PushTelemetry), when, and
//! what each answer does. The task in `task.rs` only performs its steps.
//!
//! The cycle: a subscription is asked for (with the zero instance id the
//! first time; the broker assigns one, kept for the client's life), then
//! metrics are pushed once per interval, the first push after a random
//! 0.5 to 1.5 intervals so that clients started together spread out. A
//! subscription that requests nothing is asked for again after its
//! interval. Closing sends one last push marked terminating, if a
//! subscription requested metrics, and nothing after it.
//!
//! Errors, as the Java client handles them: UNKNOWN_SUBSCRIPTION_ID and
//! UNSUPPORTED_COMPRESSION_TYPE ask for the subscription again at once;
//! TELEMETRY_TOO_LARGE and THROTTLING_QUOTA_EXCEEDED after the interval;
//! a failed exchange (a lost connection, a timeout) after the interval
//! too, from another broker if the task finds one; any other error code
//! (INVALID_REQUEST, INVALID_RECORD, UNSUPPORTED_VERSION, ...) turns
//! telemetry off for good.

use std::time::Duration;

use kafkit_protocol::compression::Compression;
use kafkit_protocol::messages::GetTelemetrySubscriptionsResponse;
use kafkit_protocol::{ErrorCode, Uuid};
use tokio::time::Instant;

/// The interval when a broker names none, and the wait after a failure
/// before any subscription is known: KIP-714's default.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Which metrics a subscription asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    /// None: nothing is pushed until the subscription changes.
    Nothing,
    /// Every metric (`*`, or an empty prefix).
    All,
    /// Metrics whose full name starts with one of these.
    Prefixes(Vec<String>),
}

impl Selector {
    fn from_requested(requested: &[String]) -> Selector {
        if requested.is_empty() {
            Selector::Nothing
        } else if requested.iter().any(|p| p == "*" || p.is_empty()) {
            Selector::All
        } else {
            Selector::Prefixes(requested.to_vec())
        }
    }

    /// True when the metric named `name` is to be pushed.
    pub(crate) fn wants(&self, name: &str) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All => true,
            Selector::Prefixes(prefixes) => prefixes.iter().any(|p| name.starts_with(p.as_str())),
        }
    }
}

/// A subscription as the broker answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub(crate) id: i32,
    /// The first accepted codec this build has; none if the list is empty.
    pub(crate) codec: Compression,
    pub(crate) interval: Duration,
    /// The most compressed bytes the broker takes in one push.
    pub(crate) max_bytes: usize,
    /// Sums as deltas since the previous push, or cumulative.
    pub(crate) delta: bool,
    pub(crate) selector: Selector,
}

impl Subscription {
    fn from_answer(answer: &GetTelemetrySubscriptionsResponse) -> Subscription {
        let codec = answer
            .accepted_compression_types
            .iter()
            .filter_map(|&id| u8::try_from(id).ok())
            .filter_map(|id| Compression::from_id(id).ok())
            .next()
            .unwrap_or(Compression::None);
        let interval = u64::try_from(answer.push_interval_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map_or(DEFAULT_INTERVAL, Duration::from_millis);
        Subscription {
            id: answer.subscription_id,
            codec,
            interval,
            max_bytes: usize::try_from(answer.telemetry_max_bytes).unwrap_or(0),
            delta: answer.delta_temporality,
            selector: Selector::from_requested(&answer.requested_metrics),
        }
    }
}

/// Where the cycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ask for the subscription at this time.
    Subscribe(Instant),
    /// A GetTelemetrySubscriptions is in flight.
    Subscribing,
    /// Push at this time.
    Push(Instant),
    /// A PushTelemetry is in flight (the terminating one, if true).
    Pushing(bool),
    /// The terminating push was answered, or there was nothing to push
    /// at close: nothing more is sent.
    Terminated,
    /// An error the client cannot recover from turned telemetry off.
    Disabled,
}

/// What the task does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing before this time (or before an answer or a close).
    Wait(Instant),
    /// Wait for the answer in flight.
    Answer,
    /// Send GetTelemetrySubscriptions with this instance id.
    Subscribe(Uuid),
    /// Collect and send a PushTelemetry.
    Push { instance: Uuid, terminating: bool },
    /// Telemetry is over: terminated after a close, or disabled.
    Done,
}

/// How an exchange ended, as the state machine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer<T> {
    /// The broker answered.
    Answered(T),
    /// No answer: the connection failed or the request timed out.
    Failed,
}

impl<T> Answer<T> {
    /// The answer by reference.
    pub(crate) fn as_ref(&self) -> Answer<&T> {
        match self {
            Answer::Answered(t) => Answer::Answered(t),
            Answer::Failed => Answer::Failed,
        }
    }
}

/// The telemetry of one client.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    phase: Phase,
    instance: Uuid,
    subscription: Option<Subscription>,
    closing: bool,
}

impl Telemetry {
    /// Starts with a subscription request at `now`.
    pub(crate) fn new(now: Instant) -> Telemetry {
        Telemetry {
            phase: Phase::Subscribe(now),
            instance: Uuid::ZERO,
            subscription: None,
            closing: false,
        }
    }

    /// The client instance id the broker assigned (zero until then).
    pub(crate) fn instance(&self) -> Uuid {
        self.instance
    }

    /// The current subscription, once a broker answered one.
    pub(crate) fn subscription(&self) -> Option<&Subscription> {
        self.subscription.as_ref()
    }

    /// True once telemetry was turned off by an error.
    pub(crate) fn is_disabled(&self) -> bool {
        self.phase == Phase::Disabled
    }

    /// The next step at `now`; a request step moves the phase to in
    /// flight, so the caller must report its answer.
    pub(crate) fn next(&mut self, now: Instant) -> Step {
        match self.phase {
            Phase::Subscribe(_) if self.closing => {
                self.phase = Phase::Terminated;
                Step::Done
            }
            Phase::Subscribe(at) if at > now => Step::Wait(at),
            Phase::Subscribe(_) => {
                self.phase = Phase::Subscribing;
                Step::Subscribe(self.instance)
            }
            Phase::Push(at) if at > now && !self.closing => Step::Wait(at),
            Phase::Push(_) => {
                let terminating = self.closing;
                self.phase = Phase::Pushing(terminating);
                Step::Push {
                    instance: self.instance,
                    terminating,
                }
            }
            Phase::Subscribing | Phase::Pushing(_) => Step::Answer,
            Phase::Terminated | Phase::Disabled => Step::Done,
        }
    }

    /// The client is closing: the next push, now, is the terminating one
    /// (if a subscription requested metrics), and nothing follows it.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    /// A GetTelemetrySubscriptions answer arrived at `now`; `jitter`, in
    /// `0.0..1.0`, places the first push between 0.5 and 1.5 intervals.
    pub(crate) fn on_subscription(
        &mut self,
        now: Instant,
        answer: Answer<&GetTelemetrySubscriptionsResponse>,
        jitter: f64,
    ) {
        let answer = match answer {
            Answer::Answered(answer) => answer,
            Answer::Failed => return self.retry_later(now),
        };
        if answer.error_code != ErrorCode::NONE {
            return self.on_error(now, answer.error_code);
        }
        if self.instance.is_zero() {
            if answer.client_instance_id.is_zero() {
                // The broker must assign one: a client cannot push without.
                self.phase = Phase::Disabled;
                return;
            }
            self.instance = answer.client_instance_id;
        }
        let subscription = Subscription::from_answer(answer);
        let interval = subscription.interval;
        self.phase = if subscription.selector == Selector::Nothing {
            if self.closing {
                Phase::Terminated
            } else {
                Phase::Subscribe(now + interval)
            }
        } else {
            Phase::Push(now + interval.mul_f64(0.5 + jitter.clamp(0.0, 1.0)))
        };
        self.subscription = Some(subscription);
    }

    /// A PushTelemetry answer (its error code) arrived at `now`.
    pub(crate) fn on_push(&mut self, now: Instant, answer: Answer<ErrorCode>) {
        if self.phase == Phase::Pushing(true) {
            // Whatever the answer, nothing follows a terminating push.
            self.phase = Phase::Terminated;
            return;
        }
        match answer {
            Answer::Failed => self.retry_later(now),
            Answer::Answered(ErrorCode::NONE) => {
                let interval = self.interval();
                self.phase = Phase::Push(now + interval);
            }
            Answer::Answered(code) => self.on_error(now, code),
        }
    }

    fn on_error(&mut self, now: Instant, code: ErrorCode) {
        self.phase = match code {
            ErrorCode::UNKNOWN_SUBSCRIPTION_ID | ErrorCode::UNSUPPORTED_COMPRESSION_TYPE => {
                Phase::Subscribe(now)
            }
            ErrorCode::TELEMETRY_TOO_LARGE | ErrorCode::THROTTLING_QUOTA_EXCEEDED => {
                Phase::Subscribe(now + self.interval())
            }
            _ => Phase::Disabled,
        };
    }

    fn retry_later(&mut self, now: Instant) {
        self.phase = Phase::Subscribe(now + self.interval());
    }

    fn interval(&self) -> Duration {
        self.subscription
            .as_ref()
            .map_or(DEFAULT_INTERVAL, |s| s.interval)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
