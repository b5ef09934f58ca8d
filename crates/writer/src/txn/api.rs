//! The transaction calls of [`Writer`]: begin, send offsets, commit, abort,
//! and ending an open transaction on close.

use tokio::time::Instant;
use tracing::Instrument;

use super::coordinator::Ctx;
use super::version::after_end;
use super::{ConsumerGroupMetadata, Op, State, Txn, TxnOffset, next};
use crate::identity::{Init, ProducerId, init_producer_id};
use crate::writer::Flushing;
use crate::{Error, Writer};

impl Writer {
    fn txn(&self, operation: &'static str) -> Result<&Txn, Error> {
        self.shared.txn.as_ref().ok_or(Error::TransactionState {
            operation,
            state: "not transactional",
        })
    }

    fn ctx<'a>(&'a self, txn: &'a Txn) -> Ctx<'a> {
        Ctx {
            transport: &self.transport,
            config: &self.shared.config,
            id: &txn.id,
        }
    }

    /// Starts a transaction: records written from now until
    /// [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction) belong to it. Nothing
    /// is sent to the broker yet: each partition joins the transaction
    /// (AddPartitionsToTxn) when its first batch is about to go.
    ///
    /// The broker aborts a transaction left open longer than
    /// [`transaction_timeout`](crate::WriterConfig::transaction_timeout).
    ///
    /// Errors: [`Error::TransactionState`] when a transaction is already
    /// open or the writer has no `transactional_id`; the pending
    /// [`is_abortable`](Error::is_abortable) error until the failed
    /// transaction is aborted; an [`is_fatal`](Error::is_fatal) one after
    /// the writer was fenced.
    pub fn begin_transaction(&self) -> Result<(), Error> {
        let txn = self.txn("begin_transaction")?;
        let _span = tracing::debug_span!("kafka_txn_begin", id = &*txn.id).entered();
        let mut core = txn.lock();
        let to = next(core.state, Op::Begin, core.cause.as_ref())?;
        txn.set_state(&mut core, &self.shared, to, None);
        Ok(())
    }

    /// Makes `group`'s consumed `offsets` part of the transaction
    /// (AddOffsetsToTxn on the transaction coordinator, then TxnOffsetCommit
    /// on the group's coordinator; TxnOffsetCommit alone where the broker
    /// enables transaction version 2): they are committed with the
    /// transaction's records, or not at all. `group` should come from the
    /// reader (generation and member id), so a member that was rebalanced
    /// out cannot commit (`ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`,
    /// `FENCED_INSTANCE_ID` make the transaction
    /// [abortable](Error::is_abortable)).
    ///
    /// Cancel safety: not cancel safe. Dropped midway, the offsets may or
    /// may not be part of the transaction: abort it, or call again with
    /// the same offsets (a second commit of the same offsets is harmless).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[TxnOffset],
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        let txn = self.txn("send_offsets_to_transaction")?;
        let span = tracing::info_span!(
            "kafka_txn_send_offsets",
            id = &*txn.id,
            group = %group.group_id,
            offsets = offsets.len()
        );
        async move {
            let _op = txn.op.lock().await;
            let version = {
                let core = txn.lock();
                next(core.state, Op::SendOffsets, core.cause.as_ref())?;
                core.version
            };
            let producer = self.shared.identity().current();
            if offsets.is_empty() {
                return Ok(());
            }
            let started = || txn.lock().started = true;
            let result = self
                .ctx(txn)
                .send_offsets(producer, group, offsets, version, started)
                .await;
            if let Err(e) = &result {
                self.transaction_failed(txn, e);
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Commits the transaction: sends every buffered record of it and waits
    /// until each one is acknowledged, then asks the coordinator to commit
    /// (EndTxn), which writes the commit markers. Writes are refused from
    /// the moment it is called. When a record of the transaction failed,
    /// nothing is committed and the error is
    /// [abortable](Error::is_abortable): call
    /// [`abort_transaction`](Self::abort_transaction).
    ///
    /// Cancel safety: safe. Dropped, the writer stays in the committing
    /// state (writes refused) and the next `commit_transaction` resumes
    /// where this one stopped; records keep going meanwhile. An error that
    /// is neither fatal nor abortable (the coordinator stayed unreachable)
    /// leaves it committing too: call it again.
    pub async fn commit_transaction(&self) -> Result<(), Error> {
        let txn = self.txn("commit_transaction")?;
        let span = tracing::info_span!("kafka_txn_commit", id = &*txn.id);
        async move {
            let _op = txn.op.lock().await;
            {
                let mut core = txn.lock();
                let to = next(core.state, Op::Commit, core.cause.as_ref())?;
                txn.set_state(&mut core, &self.shared, to, None);
            }
            self.drain(txn).await;
            let (producer, started, version) = {
                let core = txn.lock();
                if let Some(e) = Txn::state_error(&core) {
                    return Err(e);
                }
                let producer = self.shared.identity().current();
                (producer, core.started, core.version)
            };
            if started {
                match self.ctx(txn).end_txn(producer, true, version).await {
                    Ok(answer) => self.ended(txn, answer),
                    Err(e) => {
                        self.transaction_failed(txn, &e);
                        return Err(e);
                    }
                }
            }
            // Moving to transaction version 2 takes a new epoch.
            self.bump_if_required(txn).await?;
            self.finish(txn);
            self.shared.stats.transaction(true);
            tracing::debug!("transaction committed");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Aborts the transaction: its records not sent yet fail with
    /// [`Error::TransactionAborted`], those in flight are waited for, then
    /// the coordinator aborts it (EndTxn), writing abort markers so that
    /// read_committed readers skip its records. Also the way out of an
    /// [abortable](Error::is_abortable) error. When a batch of the
    /// transaction failed after it was sent, the producer epoch is bumped
    /// afterwards (InitProducerId with the current epoch, KIP-360, Kafka
    /// 2.5+; on older brokers that is a fatal error), since its sequence
    /// number may or may not be on the broker.
    ///
    /// Cancel safety: safe. Dropped, the writer stays aborting (writes
    /// refused) and the next `abort_transaction` resumes; so does a call
    /// that failed with an error neither fatal nor abortable.
    pub async fn abort_transaction(&self) -> Result<(), Error> {
        let txn = self.txn("abort_transaction")?;
        let span = tracing::info_span!("kafka_txn_abort", id = &*txn.id);
        async move {
            let _op = txn.op.lock().await;
            {
                let mut core = txn.lock();
                let to = next(core.state, Op::Abort, core.cause.as_ref())?;
                txn.set_state(&mut core, &self.shared, to, None);
            }
            self.drain(txn).await;
            let (producer, started, version) = {
                let core = txn.lock();
                if core.state == State::FatalError {
                    return Err(Txn::state_error(&core).expect("fatal"));
                }
                let producer = self.shared.identity().current();
                (producer, core.started, core.version)
            };
            if started {
                match self.ctx(txn).end_txn(producer, false, version).await {
                    // Under v2 the coordinator bumped the epoch: no lost
                    // sequence is left to bump for.
                    Ok(answer) => self.ended(txn, answer),
                    Err(e) if e.is_fatal() => {
                        self.transaction_failed(txn, &e);
                        return Err(e);
                    }
                    // The coordinator lost the producer: a new epoch
                    // (which aborts whatever is open) recovers.
                    Err(e) if e.is_abortable() => {
                        tracing::debug!(error = %e, "EndTxn(abort) failed; bumping the epoch instead");
                        let mut core = txn.lock();
                        self.shared.identity().require_bump(Instant::now());
                        core.started = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.bump_if_required(txn).await?;
            self.finish(txn);
            self.shared.stats.transaction(false);
            tracing::debug!("transaction aborted");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// `close()`'s part: aborts an open (or failed) transaction, finishes a
    /// commit that was cancelled midway.
    pub(crate) async fn end_open_transaction(&self) -> Result<(), Error> {
        let Some(txn) = self.shared.txn.as_ref() else {
            return Ok(());
        };
        let state = txn.lock().state;
        match state {
            State::InTransaction | State::AbortableError | State::Aborting => {
                tracing::info!(
                    id = &*txn.id,
                    "closing with an open transaction: aborting it"
                );
                self.abort_transaction().await
            }
            State::Committing => self.commit_transaction().await,
            State::Ready | State::FatalError => Ok(()),
        }
    }

    /// Seals every open batch and waits until the buffer is empty and no
    /// AddPartitionsToTxn is in flight.
    async fn drain(&self, txn: &Txn) {
        let _flushing = Flushing::start(&self.shared);
        loop {
            let space = self.shared.space.notified();
            let changed = txn.changed.notified();
            tokio::pin!(space, changed);
            space.as_mut().enable();
            changed.as_mut().enable();
            // One lock at a time: `set_state` takes the transaction's lock
            // then the accumulator's.
            let empty = self.shared.lock().is_empty();
            if empty && !txn.lock().adding {
                return;
            }
            tokio::select! {
                () = space => {}
                () = changed => {}
            }
        }
    }

    /// EndTxn succeeded: the next transaction's producer (under v2 the
    /// epoch the coordinator bumped to), protocol and pending bump.
    fn ended(&self, txn: &Txn, (answered, level): (Option<ProducerId>, Option<i16>)) {
        let mut core = txn.lock();
        let (current, bump_required) = {
            let identity = self.shared.identity();
            (identity.current(), identity.bump_required())
        };
        let level = level.or(core.level);
        let next = after_end(core.version, current, answered, level, bump_required);
        if next.producer != current {
            self.shared.adopt_producer(next.producer);
        }
        if next.bump_required {
            self.shared.identity().require_bump(Instant::now());
        }
        if next.version != core.version {
            tracing::info!(
                from = core.version.name(),
                to = next.version.name(),
                "transaction version changes"
            );
        }
        core.started = false;
        core.version = next.version;
        core.level = level;
    }

    /// A client-side epoch bump (InitProducerId with the current producer,
    /// KIP-360) when the producer identity wants one: after a lost
    /// sequence, or to move to transaction version 2. A failure that is not
    /// retriable is fatal.
    async fn bump_if_required(&self, txn: &Txn) -> Result<(), Error> {
        let current = {
            let identity = self.shared.identity();
            if !identity.bump_required() {
                return Ok(());
            }
            identity.current()
        };
        let result = init_producer_id(&self.transport, &self.shared.config, Some(current)).await;
        match result {
            Ok(Init { producer, level }) => {
                self.shared.adopt_producer(producer);
                if level.is_some() {
                    txn.lock().level = level;
                }
                self.shared.stats.epoch_bump();
                Ok(())
            }
            Err(e) if e.is_retriable() => Err(e),
            Err(e) => {
                let fatal = match e {
                    Error::Fatal(_) => e,
                    Error::Abortable(cause) => Error::Fatal(cause),
                    e => Error::Fatal(Box::new(e)),
                };
                self.transaction_failed(txn, &fatal);
                Err(fatal)
            }
        }
    }

    /// Moves a transaction that a call failed to its error state (fatal or
    /// abortable errors only: after a retriable one the call may be tried
    /// again).
    fn transaction_failed(&self, txn: &Txn, error: &Error) {
        if error.is_fatal() || error.is_abortable() {
            txn.failed(&self.shared, error);
        }
    }

    /// The transaction is over: back to ready, with the sender forgetting
    /// which partitions were added.
    fn finish(&self, txn: &Txn) {
        // Records that failed in this transaction were reported to their
        // callers and made the transaction fail (commit and abort say
        // so): a later flush or close has nothing to add about them.
        let _ = self.shared.take_failures();
        let mut core = txn.lock();
        core.started = false;
        core.generation += 1;
        txn.set_state(&mut core, &self.shared, State::Ready, None);
    }
}
