//! Transactions (KIP-98, offsets in transactions KIP-447): the state
//! machine, the state callers and the sender task share, and the public
//! types [`ConsumerGroupMetadata`] and [`TxnOffset`].
//!
//! ```text
//!  Ready --begin--> InTransaction --commit--> Committing --EndTxn(commit)--> Ready
//!                        |                        |
//!                        | a batch, AddPartitions | a batch fails while draining,
//!                        | or TxnOffsetCommit     | EndTxn answers abortable
//!                        | fails                  |
//!                        v                        v
//!                  AbortableError <---------------+
//!                        |
//!   InTransaction --abort--> Aborting --EndTxn(abort) [+ epoch bump]--> Ready
//!   AbortableError --abort--^
//!
//!  fenced, not authorized, unsupported (from any state) --> FatalError, for good
//! ```
//!
//! Files: `mod.rs` (states and transitions, shared state), `version.rs`
//! (the protocol a transaction speaks: v1, or v2 with implicit adds and an
//! epoch bump on every EndTxn, KIP-890), `requests.rs`
//! (building requests, reading answers, which errors are fatal),
//! `coordinator.rs` (the calls to the transaction and group coordinators,
//! with retries), `api.rs` (the `Writer` methods).
//!
//! Invariants (see DESIGN.md): a partition's batch is never sent before its
//! AddPartitionsToTxn succeeded (the sender holds it, `sender/txn.rs`), or
//! under v2 before the transaction is marked started (its Produce adds it); a
//! transaction is committed only after every one of its records is
//! acknowledged (writes are refused from `Committing` on, under the
//! accumulator's lock, then the buffer drains); a record written in one
//! transaction is never sent in another (commit and abort both wait for
//! an empty buffer before the state returns to `Ready`).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::sender::Shared;
use crate::{Error, WriterConfig};
mod api;
pub(crate) mod coordinator;
pub(crate) mod requests;
pub(crate) mod version;

use version::TxnVersion;

pub use kafkit_conn::ConsumerGroupMetadata;

/// One partition's offset to commit in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffset {
    /// The input topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to consume (the last processed offset + 1).
    pub offset: i64,
    /// Optional metadata stored with the offset.
    pub metadata: Option<String>,
}

/// Where the transaction is (see the module docs for the diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Ready,
    InTransaction,
    Committing,
    Aborting,
    AbortableError,
    FatalError,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::InTransaction => "in transaction",
            State::Committing => "committing",
            State::Aborting => "aborting",
            State::AbortableError => "failed (abortable)",
            State::FatalError => "failed (fatal)",
        }
    }

    /// Whether batches may be sent: records of a live transaction.
    pub(crate) fn sends(self) -> bool {
        matches!(self, State::InTransaction | State::Committing)
    }
}

/// What a caller asks of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Begin,
    Write,
    SendOffsets,
    Commit,
    Abort,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Begin => "begin_transaction",
            Op::Write => "writing",
            Op::SendOffsets => "send_offsets_to_transaction",
            Op::Commit => "commit_transaction",
            Op::Abort => "abort_transaction",
        }
    }
}

/// The state `op` moves the transaction to from `state`, or why it is
/// refused. `cause` is the error behind an error state. Pure, so the whole
/// table is unit-tested.
pub(crate) fn next(state: State, op: Op, cause: Option<&Error>) -> Result<State, Error> {
    use {Op as O, State as S};
    let cause = || Box::new(cause.cloned().unwrap_or(Error::TransactionAborted));
    let refused = || Error::TransactionState {
        operation: op.name(),
        state: state.name(),
    };
    match (state, op) {
        // Fatal answers everything with its cause.
        (S::FatalError, _) => Err(Error::Fatal(cause())),
        (S::Ready, O::Begin) => Ok(S::InTransaction),
        (S::Ready, _) => Err(Error::NoTransaction),
        (S::InTransaction, O::Write | O::SendOffsets) => Ok(S::InTransaction),
        (S::InTransaction | S::Committing, O::Commit) => Ok(S::Committing),
        (S::InTransaction | S::AbortableError | S::Aborting, O::Abort) => Ok(S::Aborting),
        // Only abort leaves an abortable error.
        (S::AbortableError, _) => Err(Error::Abortable(cause())),
        _ => Err(refused()),
    }
}

/// The transaction state callers and the sender task share.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) state: State,
    /// The error behind `AbortableError` or `FatalError`.
    pub(crate) cause: Option<Error>,
    /// Counts finished transactions: the sender forgets which partitions
    /// were added when it changes.
    pub(crate) generation: u64,
    /// Partitions or offsets were added: the coordinator knows the
    /// transaction, so it ends with EndTxn (an empty one needs none).
    pub(crate) started: bool,
    /// An AddPartitionsToTxn is in flight (the sender's).
    pub(crate) adding: bool,
    /// The protocol of the current (or next) transaction; changes only
    /// between transactions.
    pub(crate) version: TxnVersion,
    /// The transaction coordinator's `transaction.version` level, as last
    /// seen.
    pub(crate) level: Option<i16>,
}

/// A transactional writer's transaction.
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) id: Arc<str>,
    core: Mutex<Core>,
    /// Wakes callers waiting for the sender (an AddPartitions answer).
    pub(crate) changed: Notify,
    /// One commit, abort or send_offsets at a time.
    pub(crate) op: tokio::sync::Mutex<()>,
}

impl Txn {
    pub(crate) fn new(config: &WriterConfig) -> Option<Txn> {
        let id = config.transactional_id.clone()?;
        Some(Txn {
            id,
            core: Mutex::new(Core {
                state: State::Ready,
                cause: None,
                generation: 0,
                started: false,
                adding: false,
                version: TxnVersion::V1,
                level: None,
            }),
            changed: Notify::new(),
            op: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to `state` (with `cause` for error states) and opens or closes
    /// the accumulator to writes accordingly, under its lock: a write
    /// either lands before the state changes or is refused.
    pub(crate) fn set_state(
        &self,
        core: &mut Core,
        shared: &Shared,
        state: State,
        cause: Option<Error>,
    ) {
        if core.state != state {
            tracing::debug!(
                from = core.state.name(),
                to = state.name(),
                "transaction state"
            );
        }
        core.state = state;
        if cause.is_some() || !matches!(state, State::AbortableError | State::FatalError) {
            core.cause = cause;
        }
        let refuse = next(state, Op::Write, core.cause.as_ref()).err();
        shared.lock().refuse = refuse;
        shared.wake.notify_one();
    }

    /// A batch (or an AddPartitionsToTxn for it) failed: the transaction
    /// becomes abortable, or fatal on a fencing or authorization error.
    /// (A batch that carried a sequence also put it in doubt: the sender
    /// tells the producer identity, and the abort bumps the epoch.)
    pub(crate) fn failed(&self, shared: &Shared, error: &Error) {
        let mut core = self.lock();
        let fatal = requests::is_fatal_error(error);
        let to = match core.state {
            _ if fatal => State::FatalError,
            State::InTransaction | State::Committing => State::AbortableError,
            // Aborting, or already failed: the error changes nothing.
            _ => return,
        };
        if core.state == State::FatalError {
            return;
        }
        tracing::warn!(error = %error, to = to.name(), "transaction failed");
        let cause = match error {
            Error::Abortable(cause) | Error::Fatal(cause) => (**cause).clone(),
            e => e.clone(),
        };
        self.set_state(&mut core, shared, to, Some(cause));
    }

    /// The error a failed transaction hands its unsent records and callers.
    pub(crate) fn state_error(core: &Core) -> Option<Error> {
        match core.state {
            State::Aborting => Some(Error::TransactionAborted),
            State::AbortableError | State::FatalError => {
                next(core.state, Op::Write, core.cause.as_ref()).err()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::identity::ProducerId;
    use kafkit_protocol::ErrorCode;
    use kafkit_protocol::records::RecordBatchBuilder;

    /// A transactional writer's shared state, with a producer id.
    fn shared() -> Shared {
        let shared = Shared::new(WriterConfig {
            transactional_id: Some(Arc::from("t")),
            ..WriterConfig::default()
        });
        shared.adopt_producer(ProducerId { id: 7, epoch: 0 });
        shared
    }

    /// A batch of partition t/0, stamped with a sequence when `stamped`.
    fn batch(shared: &Shared, stamped: bool) -> Batch {
        let mut builder = RecordBatchBuilder::new(0);
        builder.append(0, None, Some(b"v"), &[]).unwrap();
        let mut batch = Batch::new(1, Arc::from("t"), 0, builder);
        if stamped {
            shared.identity().stamp(&mut batch).unwrap();
        }
        batch
    }

    const ALL: [State; 6] = [
        State::Ready,
        State::InTransaction,
        State::Committing,
        State::Aborting,
        State::AbortableError,
        State::FatalError,
    ];

    #[test]
    fn the_happy_path_goes_round() {
        let s = next(State::Ready, Op::Begin, None).unwrap();
        assert_eq!(s, State::InTransaction);
        assert_eq!(next(s, Op::Write, None).unwrap(), State::InTransaction);
        assert_eq!(
            next(s, Op::SendOffsets, None).unwrap(),
            State::InTransaction
        );
        let s = next(s, Op::Commit, None).unwrap();
        assert_eq!(s, State::Committing);
        // A cancelled commit resumes.
        assert_eq!(next(s, Op::Commit, None).unwrap(), State::Committing);
        assert_eq!(
            next(State::InTransaction, Op::Abort, None).unwrap(),
            State::Aborting
        );
        // A cancelled abort resumes.
        assert_eq!(
            next(State::Aborting, Op::Abort, None).unwrap(),
            State::Aborting
        );
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let begin_twice = next(State::InTransaction, Op::Begin, None).unwrap_err();
        assert!(matches!(
            begin_twice,
            Error::TransactionState {
                operation: "begin_transaction",
                state: "in transaction"
            }
        ));
        for op in [Op::Write, Op::SendOffsets, Op::Commit, Op::Abort] {
            assert!(matches!(
                next(State::Ready, op, None),
                Err(Error::NoTransaction)
            ));
        }
        for op in [Op::Begin, Op::Write, Op::SendOffsets, Op::Abort] {
            let e = next(State::Committing, op, None).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::TransactionState {
                        state: "committing",
                        ..
                    }
                ),
                "{op:?}: {e}"
            );
        }
        for op in [Op::Begin, Op::Write, Op::SendOffsets, Op::Commit] {
            let e = next(State::Aborting, op, None).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::TransactionState {
                        state: "aborting",
                        ..
                    }
                ),
                "{op:?}: {e}"
            );
        }
    }

    #[test]
    fn an_abortable_error_allows_only_abort() {
        let cause = Error::broker(ErrorCode::ILLEGAL_GENERATION, None);
        for op in [Op::Begin, Op::Write, Op::SendOffsets, Op::Commit] {
            let e = next(State::AbortableError, op, Some(&cause)).unwrap_err();
            assert!(e.is_abortable(), "{op:?}: {e}");
            assert_eq!(e.code(), Some(ErrorCode::ILLEGAL_GENERATION));
        }
        assert_eq!(
            next(State::AbortableError, Op::Abort, Some(&cause)).unwrap(),
            State::Aborting
        );
    }

    #[test]
    fn a_fatal_error_refuses_everything() {
        let cause = Error::broker(ErrorCode::PRODUCER_FENCED, None);
        for op in [Op::Begin, Op::Write, Op::SendOffsets, Op::Commit, Op::Abort] {
            let e = next(State::FatalError, op, Some(&cause)).unwrap_err();
            assert!(e.is_fatal(), "{op:?}: {e}");
            assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED));
        }
    }

    #[test]
    fn only_a_live_transaction_takes_writes_and_sends() {
        for s in ALL {
            let writes = next(s, Op::Write, None).is_ok();
            assert_eq!(writes, s == State::InTransaction, "{s:?}");
            assert_eq!(
                s.sends(),
                matches!(s, State::InTransaction | State::Committing)
            );
        }
    }

    #[test]
    fn failures_move_a_live_transaction_to_an_error_state() {
        let shared = shared();
        let txn = shared.txn.as_ref().unwrap();
        {
            let mut core = txn.lock();
            txn.set_state(&mut core, &shared, State::InTransaction, None);
        }
        assert!(shared.lock().refuse.is_none());
        let timeout = Error::broker(ErrorCode::REQUEST_TIMED_OUT, None);
        shared.batch_failed(&batch(&shared, true), &timeout);
        assert!(shared.identity().bump_required());
        {
            let core = txn.lock();
            assert_eq!(core.state, State::AbortableError);
            assert!(Txn::state_error(&core).unwrap().is_abortable());
        }
        assert!(shared.lock().refuse.as_ref().unwrap().is_abortable());
        // Fencing beats an abortable error.
        let fenced = Error::broker(ErrorCode::PRODUCER_FENCED, None);
        shared.batch_failed(&batch(&shared, false), &fenced);
        assert_eq!(txn.lock().state, State::FatalError);
        let refuse = shared.lock().refuse.clone().unwrap();
        assert!(refuse.is_fatal());
        assert_eq!(refuse.code(), Some(ErrorCode::PRODUCER_FENCED));
    }

    #[test]
    fn failures_while_aborting_only_ask_for_an_epoch_bump() {
        let shared = shared();
        let txn = shared.txn.as_ref().unwrap();
        {
            let mut core = txn.lock();
            txn.set_state(&mut core, &shared, State::Aborting, None);
        }
        // An unsent batch failed by the abort: no sequence, nothing to do.
        shared.batch_failed(&batch(&shared, false), &Error::TransactionAborted);
        assert!(!shared.identity().bump_required());
        // A resent batch failed by the abort: its sequence may be written.
        shared.batch_failed(&batch(&shared, true), &Error::TransactionAborted);
        assert!(shared.identity().bump_required());
        // The sender never bumps inside a transaction: the abort does.
        assert_eq!(shared.identity().sender_bump(), crate::identity::Bump::Idle);
        let core = txn.lock();
        assert_eq!(core.state, State::Aborting);
        assert!(matches!(
            Txn::state_error(&core),
            Some(Error::TransactionAborted)
        ));
        drop(core);
        assert!(matches!(
            shared.lock().refuse,
            Some(Error::TransactionState {
                state: "aborting",
                ..
            })
        ));
    }

    #[test]
    fn group_metadata_without_a_member_checks_nothing() {
        let g = ConsumerGroupMetadata::new("g");
        assert_eq!((g.generation_id, g.member_id.as_str()), (-1, ""));
    }
}
