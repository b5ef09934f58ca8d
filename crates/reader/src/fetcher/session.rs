//! Fetch sessions (KIP-227), sans-IO: what one broker remembers of our
//! fetches, and therefore what the next Fetch to it must say.
//!
//! The first Fetch to a broker is full (session id 0, epoch 0: "create a
//! session"); the broker answers with a session id. The next requests name
//! that id and the next epoch (1, 2, ..., wrapping past `i32::MAX` to 1)
//! and list only the partitions that are new or whose fields changed since
//! the last answered request; partitions the broker should drop go into
//! `ForgottenTopicsData`. The broker fetches every partition of the session
//! and answers only for those with records or changed metadata: a
//! partition absent from an answer is unchanged.
//!
//! The invariant: outside a request in flight, `acked` holds exactly what
//! the broker caches for the session (each partition's fields as last
//! sent). A request's changes apply only once the broker answered it; any
//! failure (a session error, a top-level error, a lost connection, where
//! the broker may or may not have seen the epoch) makes the next request
//! full, replacing the session (its id with epoch 0, which the broker
//! reads as "close it and create another"). A broker that answers a
//! create with id 0 (sessions disabled, its cache full, a broker before
//! Fetch v7) gets sessionless full fetches (id 0, epoch -1) from then on,
//! as franz-go does.
//!
//! The driver calls [`Session::plan`] when it builds a Fetch, then exactly
//! one of [`Session::answered`] or [`Session::failed`]; one request per
//! broker is in flight at a time.

use std::collections::{HashMap, HashSet};

use kafkit_conn::ErrorCode;
use kafkit_protocol::Uuid;

use crate::TopicPartition;

/// The epoch of a request that creates a session (or replaces one).
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a sessionless request, or of one that closes a session.
pub(crate) const FINAL_EPOCH: i32 = -1;

/// What the broker caches of one partition in a session: the fields of
/// its last `FetchPartition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) topic_id: Uuid,
    pub(crate) fetch_offset: i64,
    pub(crate) current_leader_epoch: i32,
    pub(crate) log_start_offset: i64,
    pub(crate) max_bytes: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The next request is full and creates a session, closing `replace`
    /// (0: none) at the broker.
    Create { replace: i32 },
    /// Open: the next request is incremental, at `epoch`.
    Open { id: i32, epoch: i32 },
    /// No sessions (turned off, or the broker refused one): full requests
    /// with id 0 and the final epoch.
    Off,
}

/// The request in flight: applied to `acked` once it is answered.
#[derive(Debug)]
struct Pending {
    id: i32,
    epoch: i32,
    ids: bool,
    listed: Vec<(TopicPartition, Params)>,
    forgotten: Vec<TopicPartition>,
}

/// What the next Fetch to the broker carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// For each partition given to [`Session::plan`], in order: whether
    /// the request lists it.
    pub(crate) listed: Vec<bool>,
    /// Partitions to remove from the session, with their topic ids.
    pub(crate) forgotten: Vec<(TopicPartition, Uuid)>,
}

impl Plan {
    /// True for an incremental request (only changes listed).
    pub(crate) fn is_incremental(&self) -> bool {
        self.epoch > INITIAL_EPOCH
    }
}

/// What to do with an answer, from [`Session::answered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Apply its partitions; `incremental` when it answered an
    /// incremental request.
    Apply { incremental: bool },
    /// It belongs to no session we know: ignore it (the next request is
    /// full).
    Discard,
}

/// One broker's fetch session; see the module docs.
#[derive(Debug)]
pub(crate) struct Session {
    mode: Mode,
    /// What the broker caches: each partition of the session with its
    /// fields as last sent. Empty unless a session is open.
    acked: HashMap<TopicPartition, Params>,
    /// Whether the session names topics by id (Fetch v13+): a request
    /// that cannot must not continue it.
    ids: bool,
    pending: Option<Pending>,
}

impl Session {
    /// A session that will be created by the first fetch, or, with
    /// `enabled` false, none at all.
    pub(crate) fn new(enabled: bool) -> Session {
        Session {
            mode: if enabled {
                Mode::Create { replace: 0 }
            } else {
                Mode::Off
            },
            acked: HashMap::new(),
            ids: false,
            pending: None,
        }
    }

    /// The id of the open session, if one is.
    pub(crate) fn id(&self) -> Option<i32> {
        match self.mode {
            Mode::Open { id, .. } => Some(id),
            _ => None,
        }
    }

    /// True while a planned request awaits its answer.
    pub(crate) fn in_flight(&self) -> bool {
        self.pending.is_some()
    }

    /// The partitions the broker holds in the session.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.acked.keys()
    }

    /// Plans the next request, which is to fetch exactly `next` (each
    /// partition once), naming topics by id when `ids`.
    pub(crate) fn plan(&mut self, next: &[(TopicPartition, Params)], ids: bool) -> Plan {
        if self.pending.is_some() {
            // The last request's outcome never came: assume the worst.
            self.failed(None);
        }
        if let Mode::Open { id, .. } = self.mode {
            let moved = next.iter().any(|(tp, p)| {
                self.acked
                    .get(tp)
                    .is_some_and(|old| old.topic_id != p.topic_id)
            });
            if ids != self.ids || moved {
                // A recreated topic, or a request that cannot name topics
                // the way the session does: start over.
                self.reset(id);
            }
        }
        let (id, epoch) = match self.mode {
            Mode::Create { replace } => (replace, INITIAL_EPOCH),
            Mode::Open { id, epoch } => (id, epoch),
            Mode::Off => (0, FINAL_EPOCH),
        };
        let incremental = epoch > INITIAL_EPOCH;
        let mut listed = Vec::with_capacity(next.len());
        let mut pending = Pending {
            id,
            epoch,
            ids,
            listed: Vec::new(),
            forgotten: Vec::new(),
        };
        for (tp, params) in next {
            let changed = !incremental || self.acked.get(tp) != Some(params);
            listed.push(changed);
            if changed && epoch != FINAL_EPOCH {
                pending.listed.push((tp.clone(), *params));
            }
        }
        let mut forgotten = Vec::new();
        if incremental {
            let kept: HashSet<&TopicPartition> = next.iter().map(|(tp, _)| tp).collect();
            for (tp, params) in &self.acked {
                if !kept.contains(tp) {
                    forgotten.push((tp.clone(), params.topic_id));
                    pending.forgotten.push(tp.clone());
                }
            }
        }
        self.pending = Some(pending);
        Plan {
            session_id: id,
            epoch,
            listed,
            forgotten,
        }
    }

    /// The broker answered the planned request without a top-level error,
    /// naming `session_id`; `throttled_empty` when the answer is empty
    /// because the broker throttles us (KIP-219: then it creates no
    /// session).
    pub(crate) fn answered(&mut self, session_id: i32, throttled_empty: bool) -> Answer {
        let Some(pending) = self.pending.take() else {
            return Answer::Apply { incremental: false };
        };
        match pending.epoch {
            FINAL_EPOCH => Answer::Apply { incremental: false },
            INITIAL_EPOCH => {
                self.acked.clear();
                if session_id > 0 {
                    self.mode = Mode::Open {
                        id: session_id,
                        epoch: next_epoch(INITIAL_EPOCH),
                    };
                    self.ids = pending.ids;
                    self.acked.extend(pending.listed);
                } else if throttled_empty {
                    self.mode = Mode::Create { replace: 0 };
                } else {
                    // Sessions disabled, its cache full, or a broker that
                    // predates them: no more tries.
                    self.mode = Mode::Off;
                }
                Answer::Apply { incremental: false }
            }
            epoch if session_id == pending.id => {
                for tp in &pending.forgotten {
                    self.acked.remove(tp);
                }
                self.acked.extend(pending.listed);
                self.mode = Mode::Open {
                    id: pending.id,
                    epoch: next_epoch(epoch),
                };
                Answer::Apply { incremental: true }
            }
            _ if session_id == 0 => {
                // The broker ended the session; this answer still stands.
                self.reset(0);
                Answer::Apply { incremental: true }
            }
            _ => {
                self.reset(pending.id);
                Answer::Discard
            }
        }
    }

    /// The planned request failed: the broker answered with the top-level
    /// error `code`, or (`None`) the request or its connection failed.
    /// Returns true when the error was a session error of an incremental
    /// request, which the next (full) request fixes at once: no backoff.
    pub(crate) fn failed(&mut self, code: Option<ErrorCode>) -> bool {
        let Some(pending) = self.pending.take() else {
            return false;
        };
        if self.mode == Mode::Off {
            return false;
        }
        let replace = if code == Some(ErrorCode::FETCH_SESSION_ID_NOT_FOUND) {
            0
        } else {
            pending.id
        };
        self.reset(replace);
        pending.epoch > INITIAL_EPOCH
            && matches!(
                code,
                Some(
                    ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                        | ErrorCode::INVALID_FETCH_SESSION_EPOCH
                        | ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR
                )
            )
    }

    /// Forgets the session and returns its id for a closing request (the
    /// id with the final epoch), if the broker may hold one. The next
    /// request creates a new session.
    pub(crate) fn close(&mut self) -> Option<i32> {
        let id = match self.mode {
            Mode::Open { id, .. } => id,
            Mode::Create { replace } if replace > 0 => replace,
            Mode::Create { .. } | Mode::Off => return None,
        };
        self.pending = None;
        self.reset(0);
        Some(id)
    }

    fn reset(&mut self, replace: i32) {
        self.mode = Mode::Create { replace };
        self.acked.clear();
    }
}

/// A fetcher's sessions, by broker id, each with the address its last
/// fetch went to (where a closing request goes).
#[derive(Debug)]
pub(crate) struct Sessions {
    enabled: bool,
    /// Set by [`Sessions::close_all`]: the fetcher is closing, nothing
    /// more is fetched.
    closed: bool,
    brokers: HashMap<i32, (String, Session)>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(true)
    }
}

/// A session to close: (broker id, address, session id).
pub(crate) type Closing = (i32, String, i32);

impl Sessions {
    /// No sessions yet; with `enabled` false, every fetch is sessionless.
    pub(crate) fn new(enabled: bool) -> Sessions {
        Sessions {
            enabled,
            closed: false,
            brokers: HashMap::new(),
        }
    }

    /// The session with `broker`, reached at `addr`, made on first use;
    /// `None` once [`close_all`](Sessions::close_all) ran.
    pub(crate) fn open(&mut self, broker: i32, addr: &str) -> Option<&mut Session> {
        if self.closed {
            return None;
        }
        let enabled = self.enabled;
        let entry = self
            .brokers
            .entry(broker)
            .or_insert_with(|| (addr.to_owned(), Session::new(enabled)));
        if entry.0 != addr {
            entry.0 = addr.to_owned();
        }
        Some(&mut entry.1)
    }

    /// The session with `broker`, if any.
    pub(crate) fn get(&mut self, broker: i32) -> Option<&mut Session> {
        self.brokers.get_mut(&broker).map(|(_, s)| s)
    }

    /// Closes the sessions `idle` picks (given the broker and its session)
    /// and returns what to send to close them at their brokers.
    pub(crate) fn close_where(
        &mut self,
        mut idle: impl FnMut(i32, &Session) -> bool,
    ) -> Vec<Closing> {
        let mut out = Vec::new();
        for (&broker, (addr, session)) in &mut self.brokers {
            if idle(broker, session) {
                if let Some(id) = session.close() {
                    out.push((broker, addr.clone(), id));
                }
            }
        }
        out
    }

    /// Closes every session for good: no fetch follows.
    pub(crate) fn close_all(&mut self) -> Vec<Closing> {
        self.closed = true;
        self.close_where(|_, _| true)
    }
}

/// The epoch after `epoch`: 1 follows `i32::MAX` (0 and -1 mean create
/// and close).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

#[cfg(test)]
mod tests;
