use super::*;

const ID: i32 = 4242;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn params(offset: i64) -> Params {
    Params {
        topic_id: Uuid::from_bytes([7; 16]),
        fetch_offset: offset,
        current_leader_epoch: 3,
        log_start_offset: -1,
        max_bytes: 1 << 20,
    }
}

fn next(offsets: &[(i32, i64)]) -> Vec<(TopicPartition, Params)> {
    offsets.iter().map(|&(p, o)| (tp(p), params(o))).collect()
}

/// A session opened by a first full fetch of partitions 0 and 1.
fn open() -> Session {
    let mut s = Session::new(true);
    let first = s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!(
        first,
        Plan {
            session_id: 0,
            epoch: 0,
            listed: vec![true, true],
            forgotten: vec![],
        },
        "the first fetch is full and creates a session"
    );
    assert!(!first.is_incremental());
    assert_eq!(s.answered(ID, false), Answer::Apply { incremental: false });
    assert_eq!(s.id(), Some(ID));
    s
}

fn sorted(s: &Session) -> Vec<TopicPartition> {
    let mut v: Vec<_> = s.partitions().cloned().collect();
    v.sort();
    v
}

#[test]
fn the_first_fetch_creates_a_session_and_the_next_continues_it() {
    let mut s = open();
    assert_eq!(sorted(&s), [tp(0), tp(1)]);
    let plan = s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!((plan.session_id, plan.epoch), (ID, 1));
    assert!(plan.is_incremental());
    assert!(s.in_flight());
    assert_eq!(s.answered(ID, false), Answer::Apply { incremental: true });
    assert!(!s.in_flight());
    let plan = s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!(plan.epoch, 2, "one epoch per answered request");
}

#[test]
fn an_unchanged_assignment_lists_no_partitions() {
    let mut s = open();
    for epoch in 1..=3 {
        let plan = s.plan(&next(&[(1, 20), (0, 10)]), true);
        assert_eq!(plan.epoch, epoch);
        assert_eq!(plan.listed, [false, false]);
        assert!(plan.forgotten.is_empty());
        s.answered(ID, false);
    }
}

#[test]
fn a_changed_field_lists_the_partition() {
    let mut s = open();
    let plan = s.plan(&next(&[(0, 15), (1, 20)]), true);
    assert_eq!(plan.listed, [true, false], "a new fetch offset");
    s.answered(ID, false);
    let plan = s.plan(&next(&[(0, 15), (1, 20)]), true);
    assert_eq!(plan.listed, [false, false], "acknowledged, then unchanged");
    s.answered(ID, false);
    let changes: [fn(&mut Params); 3] = [
        |p| p.current_leader_epoch = 4,
        |p| p.max_bytes = 1,
        |p| p.log_start_offset = 5,
    ];
    for change in changes {
        let mut n = next(&[(0, 15), (1, 20)]);
        change(&mut n[1].1);
        assert_eq!(s.plan(&n, true).listed, [false, true]);
        s.answered(ID, false);
        assert_eq!(s.plan(&n, true).listed, [false, false]);
        s.answered(ID, false);
    }
}

#[test]
fn added_partitions_are_listed_and_removed_ones_forgotten() {
    let mut s = open();
    let plan = s.plan(&next(&[(1, 20), (2, 0)]), true);
    assert_eq!(plan.listed, [false, true]);
    assert_eq!(plan.forgotten, [(tp(0), Uuid::from_bytes([7; 16]))]);
    s.answered(ID, false);
    assert_eq!(sorted(&s), [tp(1), tp(2)]);
    let plan = s.plan(&next(&[(1, 20), (2, 0)]), true);
    assert!(plan.forgotten.is_empty(), "forgotten once");
    assert_eq!(plan.listed, [false, false]);
    s.answered(ID, false);
    let plan = s.plan(&[], true);
    assert_eq!(plan.forgotten.len(), 2, "nothing left to fetch");
    s.answered(ID, false);
    assert_eq!(s.partitions().count(), 0);
}

#[test]
fn changes_count_only_once_answered() {
    let mut s = open();
    s.plan(&next(&[(0, 15)]), true);
    // Lost (a connection error): the broker may or may not have seen it.
    assert!(!s.failed(None));
    let plan = s.plan(&next(&[(0, 15)]), true);
    assert_eq!(
        (plan.session_id, plan.epoch),
        (ID, 0),
        "full, replacing the session"
    );
    assert_eq!(plan.listed, [true]);
    assert!(plan.forgotten.is_empty());
    assert_eq!(
        s.answered(ID + 1, false),
        Answer::Apply { incremental: false }
    );
    assert_eq!(s.id(), Some(ID + 1));
    assert_eq!(sorted(&s), [tp(0)]);
}

#[test]
fn session_errors_make_the_next_fetch_full() {
    for (code, replace) in [
        (ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 0),
        (ErrorCode::INVALID_FETCH_SESSION_EPOCH, ID),
        (ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR, ID),
    ] {
        let mut s = open();
        s.plan(&next(&[(0, 10), (1, 20)]), true);
        assert!(s.failed(Some(code)), "{code:?}: a session error");
        assert_eq!(s.id(), None);
        assert_eq!(s.partitions().count(), 0);
        let plan = s.plan(&next(&[(0, 10), (1, 20)]), true);
        assert_eq!((plan.session_id, plan.epoch), (replace, 0), "{code:?}");
        assert_eq!(plan.listed, [true, true]);
    }
    // Other failures reset the session too, but are not session errors.
    let mut s = open();
    s.plan(&next(&[(0, 10)]), true);
    assert!(!s.failed(Some(ErrorCode::UNKNOWN_SERVER_ERROR)));
    assert_eq!(s.plan(&next(&[(0, 10)]), true).epoch, 0);
    // A failed create is retried, replacing the same session.
    assert!(!s.failed(None));
    assert_eq!(s.plan(&next(&[(0, 10)]), true).session_id, ID);
}

#[test]
fn the_epoch_wraps_past_i32_max_to_1() {
    let mut s = open();
    s.mode = Mode::Open {
        id: ID,
        epoch: i32::MAX,
    };
    assert_eq!(s.plan(&next(&[(0, 10), (1, 20)]), true).epoch, i32::MAX);
    s.answered(ID, false);
    let plan = s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!(plan.epoch, 1, "0 and -1 are never incremental epochs");
    assert!(plan.is_incremental());
    assert_eq!(next_epoch(1), 2);
}

#[test]
fn a_broker_that_refuses_sessions_gets_sessionless_fetches() {
    let mut s = Session::new(true);
    s.plan(&next(&[(0, 10)]), true);
    assert_eq!(s.answered(0, false), Answer::Apply { incremental: false });
    for _ in 0..3 {
        let plan = s.plan(&next(&[(0, 10)]), true);
        assert_eq!((plan.session_id, plan.epoch), (0, FINAL_EPOCH));
        assert_eq!(plan.listed, [true], "every partition, every time");
        assert!(!s.failed(Some(ErrorCode::INVALID_FETCH_SESSION_EPOCH)));
    }
    assert_eq!(s.close(), None, "nothing to close");
    // Turned off by the configuration: the same from the start.
    let mut off = Session::new(false);
    let plan = off.plan(&next(&[(0, 10)]), false);
    assert_eq!((plan.session_id, plan.epoch), (0, FINAL_EPOCH));
    assert_eq!(off.answered(0, false), Answer::Apply { incremental: false });
    assert_eq!(off.partitions().count(), 0);
}

#[test]
fn a_throttled_create_is_tried_again() {
    let mut s = Session::new(true);
    s.plan(&next(&[(0, 10)]), true);
    // KIP-219: throttled, the broker answers empty and creates nothing.
    s.answered(0, true);
    let plan = s.plan(&next(&[(0, 10)]), true);
    assert_eq!((plan.session_id, plan.epoch), (0, 0));
    s.answered(ID, false);
    assert_eq!(s.id(), Some(ID));
}

#[test]
fn a_changed_topic_id_or_naming_starts_over() {
    let mut s = open();
    let mut n = next(&[(0, 10), (1, 20)]);
    n[0].1.topic_id = Uuid::from_bytes([8; 16]);
    let plan = s.plan(&n, true);
    assert_eq!((plan.session_id, plan.epoch), (ID, 0), "a recreated topic");
    s.answered(ID, false);
    let plan = s.plan(&n, false);
    assert_eq!(
        (plan.session_id, plan.epoch),
        (ID, 0),
        "names instead of ids"
    );
}

#[test]
fn odd_answers_never_continue_a_session() {
    // The broker ended the session: the answer stands, the next is full.
    let mut s = open();
    s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!(s.answered(0, false), Answer::Apply { incremental: true });
    assert_eq!(s.plan(&next(&[(0, 10)]), true).session_id, 0);
    // An answer naming another session is not ours to apply.
    let mut s = open();
    s.plan(&next(&[(0, 10), (1, 20)]), true);
    assert_eq!(s.answered(ID + 9, false), Answer::Discard);
    assert_eq!(s.plan(&next(&[(0, 10)]), true).epoch, 0);
    // A request whose outcome never came is treated as failed.
    let mut s = open();
    s.plan(&next(&[(0, 11)]), true);
    let plan = s.plan(&next(&[(0, 11)]), true);
    assert_eq!((plan.session_id, plan.epoch), (ID, 0));
    // An answer with nothing planned changes nothing.
    let mut s = open();
    assert_eq!(s.answered(ID, false), Answer::Apply { incremental: false });
    assert_eq!(s.plan(&next(&[(0, 10), (1, 20)]), true).epoch, 1);
}

#[test]
fn closing_forgets_the_session() {
    let mut s = open();
    assert_eq!(s.close(), Some(ID));
    assert_eq!(s.partitions().count(), 0);
    assert_eq!(s.close(), None, "closed once");
    let plan = s.plan(&next(&[(0, 10)]), true);
    assert_eq!((plan.session_id, plan.epoch), (0, 0), "a new session");
    // A session waiting to be replaced after a failure is closed too.
    let mut s = open();
    s.plan(&next(&[(0, 10)]), true);
    s.failed(None);
    assert_eq!(s.close(), Some(ID));
    assert_eq!(Session::new(true).close(), None, "never created");
}

#[test]
fn sessions_are_per_broker_and_close_all_ends_fetching() {
    let mut all = Sessions::new(true);
    let one = all.open(1, "a:9092").unwrap();
    one.plan(&next(&[(0, 10)]), true);
    one.answered(ID, false);
    let two = all.open(2, "b:9092").unwrap();
    assert_eq!(two.plan(&next(&[(1, 0)]), true).epoch, 0, "its own session");
    two.answered(ID + 1, false);
    // Broker 1 moved: the closing request goes where it is now.
    all.open(1, "c:9092").unwrap();
    let idle = all.close_where(|broker, _| broker == 1);
    assert_eq!(idle, [(1, "c:9092".to_owned(), ID)]);
    assert_eq!(all.get(1).unwrap().id(), None);
    assert_eq!(all.get(2).unwrap().id(), Some(ID + 1));
    assert!(all.close_where(|broker, _| broker == 1).is_empty(), "once");
    assert_eq!(all.close_all(), [(2, "b:9092".to_owned(), ID + 1)]);
    assert!(all.open(2, "b:9092").is_none(), "nothing fetched after");
    let mut off = Sessions::new(false);
    let plan = off.open(1, "a:9092").unwrap().plan(&next(&[(0, 1)]), true);
    assert_eq!((plan.session_id, plan.epoch), (0, FINAL_EPOCH));
}
