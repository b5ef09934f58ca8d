//! Every step of the telemetry cycle, with time passed in.

use super::*;

const ID: Uuid = Uuid::from_bytes([7; 16]);

fn answer(requested: &[&str], interval_ms: i32) -> GetTelemetrySubscriptionsResponse {
    GetTelemetrySubscriptionsResponse {
        client_instance_id: ID,
        subscription_id: 42,
        accepted_compression_types: vec![4, 3, 1, 2],
        push_interval_ms: interval_ms,
        telemetry_max_bytes: 1 << 20,
        delta_temporality: true,
        requested_metrics: requested.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn failed(code: ErrorCode) -> GetTelemetrySubscriptionsResponse {
    GetTelemetrySubscriptionsResponse {
        error_code: code,
        ..Default::default()
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// A telemetry that got `requested` at interval 10 s, with its first push
/// due at 10 s (jitter 0.5).
fn subscribed(start: Instant, requested: &[&str]) -> Telemetry {
    let mut t = Telemetry::new(start);
    assert_eq!(t.next(start), Step::Subscribe(Uuid::ZERO));
    t.on_subscription(start, Answer::Answered(&answer(requested, 10_000)), 0.5);
    t
}

#[test]
fn the_first_request_asks_with_the_zero_id_and_keeps_the_assigned_one() {
    let start = Instant::now();
    let mut t = subscribed(start, &["*"]);
    assert_eq!(t.instance(), ID);
    let s = t.subscription().unwrap();
    assert_eq!(
        (s.id, s.codec, s.interval, s.delta),
        (42, Compression::Zstd, 10 * SECOND, true)
    );
    assert_eq!(s.selector, Selector::All);
    // A later answer naming another id does not replace it.
    let mut other = answer(&["*"], 10_000);
    other.client_instance_id = Uuid::from_bytes([9; 16]);
    t.on_subscription(start, Answer::Answered(&other), 0.0);
    assert_eq!(t.instance(), ID);
}

#[test]
fn the_first_push_waits_half_to_one_and_a_half_intervals_then_one_interval() {
    let start = Instant::now();
    for (jitter, first) in [(0.0, 5), (0.5, 10), (0.999, 14)] {
        let mut t = Telemetry::new(start);
        t.next(start);
        t.on_subscription(start, Answer::Answered(&answer(&["*"], 10_000)), jitter);
        match t.next(start) {
            Step::Wait(at) => assert_eq!((at - start).as_secs(), first, "jitter {jitter}"),
            other => panic!("{other:?}"),
        }
    }
    let mut t = subscribed(start, &["org.apache.kafka.producer."]);
    let due = start + 10 * SECOND;
    assert_eq!(t.next(due - SECOND), Step::Wait(due));
    assert_eq!(
        t.next(due),
        Step::Push {
            instance: ID,
            terminating: false
        }
    );
    assert_eq!(t.next(due), Step::Answer, "one request at a time");
    t.on_push(due + SECOND, Answer::Answered(ErrorCode::NONE));
    assert_eq!(t.next(due + SECOND), Step::Wait(due + 11 * SECOND));
}

#[test]
fn requested_metrics_select_by_prefix_star_or_empty_prefix() {
    assert_eq!(Selector::from_requested(&[]), Selector::Nothing);
    assert_eq!(Selector::from_requested(&["*".into()]), Selector::All);
    assert_eq!(Selector::from_requested(&["".into()]), Selector::All);
    let some = Selector::from_requested(&["org.apache.kafka.producer.".into(), "x".into()]);
    assert!(some.wants("org.apache.kafka.producer.node.request.latency.avg"));
    assert!(some.wants("xyz"));
    assert!(!some.wants("org.apache.kafka.consumer.fetch.manager.fetch.latency.avg"));
    assert!(!Selector::Nothing.wants("x"));
    assert!(Selector::All.wants("anything"));
}

#[test]
fn a_subscription_without_metrics_is_asked_for_again_after_its_interval() {
    let start = Instant::now();
    let mut t = subscribed(start, &[]);
    assert_eq!(t.next(start), Step::Wait(start + 10 * SECOND));
    assert_eq!(t.next(start + 10 * SECOND), Step::Subscribe(ID));
}

#[test]
fn the_broker_must_assign_an_instance_id() {
    let start = Instant::now();
    let mut t = Telemetry::new(start);
    t.next(start);
    let mut zero = answer(&["*"], 1000);
    zero.client_instance_id = Uuid::ZERO;
    t.on_subscription(start, Answer::Answered(&zero), 0.5);
    assert!(t.is_disabled());
    assert_eq!(t.next(start), Step::Done);
}

#[test]
fn errors_ask_again_now_later_or_turn_telemetry_off() {
    let start = Instant::now();
    let later = start + 10 * SECOND;
    for (code, want) in [
        (ErrorCode::UNKNOWN_SUBSCRIPTION_ID, Step::Subscribe(ID)),
        (ErrorCode::UNSUPPORTED_COMPRESSION_TYPE, Step::Subscribe(ID)),
        (
            ErrorCode::TELEMETRY_TOO_LARGE,
            Step::Wait(later + 10 * SECOND),
        ),
        (
            ErrorCode::THROTTLING_QUOTA_EXCEEDED,
            Step::Wait(later + 10 * SECOND),
        ),
        (ErrorCode::INVALID_REQUEST, Step::Done),
        (ErrorCode::INVALID_RECORD, Step::Done),
        (ErrorCode::UNSUPPORTED_VERSION, Step::Done),
        (ErrorCode::UNKNOWN_SERVER_ERROR, Step::Done),
    ] {
        let mut t = subscribed(start, &["*"]);
        assert!(matches!(t.next(later), Step::Push { .. }));
        t.on_push(later, Answer::Answered(code));
        assert_eq!(t.next(later), want, "{code:?}");
    }
}

#[test]
fn subscription_errors_follow_the_same_rules() {
    let start = Instant::now();
    let mut t = Telemetry::new(start);
    t.next(start);
    t.on_subscription(
        start,
        Answer::Answered(&failed(ErrorCode::THROTTLING_QUOTA_EXCEEDED)),
        0.5,
    );
    assert_eq!(t.next(start), Step::Wait(start + DEFAULT_INTERVAL));
    t.next(start + DEFAULT_INTERVAL);
    t.on_subscription(
        start,
        Answer::Answered(&failed(ErrorCode::INVALID_REQUEST)),
        0.5,
    );
    assert_eq!(t.next(start), Step::Done);
}

#[test]
fn a_failed_exchange_asks_again_after_the_interval() {
    let start = Instant::now();
    let mut t = Telemetry::new(start);
    t.next(start);
    t.on_subscription(start, Answer::Failed, 0.5);
    assert_eq!(t.next(start), Step::Wait(start + DEFAULT_INTERVAL));

    let mut t = subscribed(start, &["*"]);
    let due = start + 10 * SECOND;
    t.next(due);
    t.on_push(due, Answer::Failed);
    assert_eq!(t.next(due), Step::Wait(due + 10 * SECOND));
    assert_eq!(t.next(due + 10 * SECOND), Step::Subscribe(ID));
}

#[test]
fn close_sends_one_terminating_push_at_once_and_nothing_after() {
    let start = Instant::now();
    let mut t = subscribed(start, &["*"]);
    t.close();
    assert_eq!(
        t.next(start),
        Step::Push {
            instance: ID,
            terminating: true
        },
        "not waiting for the interval"
    );
    t.on_push(start, Answer::Answered(ErrorCode::INVALID_REQUEST));
    assert_eq!(t.next(start), Step::Done);
    assert!(!t.is_disabled(), "terminated, not disabled");
}

#[test]
fn close_during_a_push_sends_the_terminating_one_after_its_answer() {
    let start = Instant::now();
    let mut t = subscribed(start, &["*"]);
    let due = start + 10 * SECOND;
    assert!(matches!(
        t.next(due),
        Step::Push {
            terminating: false,
            ..
        }
    ));
    t.close();
    assert_eq!(t.next(due), Step::Answer);
    t.on_push(due, Answer::Answered(ErrorCode::NONE));
    assert_eq!(
        t.next(due),
        Step::Push {
            instance: ID,
            terminating: true
        }
    );
    t.on_push(due, Answer::Failed);
    assert_eq!(t.next(due), Step::Done);
}

#[test]
fn close_without_metrics_to_push_sends_nothing() {
    let start = Instant::now();
    let mut never = Telemetry::new(start);
    never.close();
    assert_eq!(never.next(start), Step::Done, "no subscription yet");

    let mut empty = subscribed(start, &[]);
    empty.close();
    assert_eq!(empty.next(start), Step::Done);

    let mut asking = Telemetry::new(start);
    asking.next(start);
    asking.close();
    asking.on_subscription(start, Answer::Answered(&answer(&[], 1000)), 0.5);
    assert_eq!(asking.next(start), Step::Done);
}

#[test]
fn odd_subscription_values_fall_back_to_defaults() {
    let start = Instant::now();
    let mut t = Telemetry::new(start);
    t.next(start);
    let mut odd = answer(&["*"], -5);
    odd.accepted_compression_types = vec![-1, 99, 2];
    odd.telemetry_max_bytes = -1;
    t.on_subscription(start, Answer::Answered(&odd), 0.5);
    let s = t.subscription().unwrap();
    assert_eq!(s.interval, DEFAULT_INTERVAL);
    assert_eq!(s.codec, Compression::Snappy, "the first one known");
    assert_eq!(s.max_bytes, 0);
    let mut none = answer(&["*"], 1000);
    none.accepted_compression_types = vec![];
    t.on_subscription(start, Answer::Answered(&none), 0.5);
    assert_eq!(t.subscription().unwrap().codec, Compression::None);
}
