//! The sender's side of a transaction: no batch of a partition goes before
//! the partition joined the transaction (AddPartitionsToTxn), all the
//! partitions waiting to join go in one request, and once the transaction
//! is aborting or failed, batches not yet sent fail instead of going. Under
//! transaction version 2 a Produce adds its partitions itself: batches go
//! at once, and the first request marks the transaction started (so it
//! ends with EndTxn) before it leaves.

use std::collections::HashSet;
use std::sync::Arc;

use kafkit_protocol::{ApiKey, ErrorCode};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Outcome, Sender};
use crate::Error;
use crate::txn::Txn;
use crate::txn::coordinator::Ctx;
use crate::txn::requests::{self, Key, Verdict};
use crate::txn::version::TxnVersion;

/// What the sender knows of the current transaction.
#[derive(Debug, Default)]
pub(super) struct TxnSend {
    /// The transaction (`Core::generation`) `added` belongs to.
    generation: u64,
    /// Partitions that joined the current transaction: their batches go.
    pub(super) added: HashSet<Key>,
    /// Partitions with batches to send that have not joined yet, found by
    /// the last dispatch.
    pub(super) wanted: HashSet<Key>,
    /// An AddPartitionsToTxn is in flight.
    adding: bool,
    /// The current transaction's protocol.
    pub(super) version: Option<TxnVersion>,
    /// Under v2: a Produce of this transaction went out, and the
    /// transaction is marked started.
    marked: bool,
    /// Failed AddPartitionsToTxn attempts in a row, and when to try again.
    attempts: u32,
    retry_at: Option<Instant>,
}

impl Sender {
    /// Catches up with the transaction (a new one) and fails
    /// unsent batches of one that is aborting or failed. Returns whether
    /// batches may be sent now (always, without transactions).
    pub(super) fn txn_sync(&mut self) -> bool {
        let Some(txn) = self.shared.txn.as_ref() else {
            return true;
        };
        let (sends, generation, error, version) = {
            let core = txn.lock();
            let error = Txn::state_error(&core);
            let sends = core.state.sends();
            (sends, core.generation, error, core.version)
        };
        let t = self.txn_send.get_or_insert_with(TxnSend::default);
        if t.generation != generation {
            t.generation = generation;
            t.added.clear();
            t.wanted.clear();
            t.attempts = 0;
            t.retry_at = None;
            t.marked = false;
        }
        t.version = Some(version);
        if let Some(error) = error {
            self.fail_unsent(error);
            return false;
        }
        sends
    }

    /// Fails every batch and pending record not in flight with `error`.
    fn fail_unsent(&mut self, error: Error) {
        let mut unsent = Vec::new();
        for part in self.parts.values_mut() {
            unsent.append(&mut part.retries);
            unsent.extend(part.queue.drain(..));
            part.retry_at = None;
        }
        for batch in unsent {
            self.fail_batch(batch, error.clone());
        }
        self.shared.fail_pending(|_| true, &error);
    }

    /// Sends one AddPartitionsToTxn for every partition waiting to join,
    /// unless one is in flight or backing off. Returns when to look again.
    pub(super) fn txn_add_partitions(&mut self, now: Instant) -> Option<Instant> {
        let t = self.txn_send.as_mut()?;
        if t.wanted.is_empty() || t.adding {
            return None;
        }
        if let Some(at) = t.retry_at {
            if at > now {
                return Some(at);
            }
            t.retry_at = None;
        }
        let mut partitions: Vec<Key> = t.wanted.drain().collect();
        partitions.sort();
        t.adding = true;
        let generation = t.generation;
        if let Some(txn) = self.shared.txn.as_ref() {
            txn.lock().adding = true;
        }
        let (shared, transport, tx) =
            (self.shared.clone(), self.transport.clone(), self.tx.clone());
        let producer = self.shared.identity().current();
        let span = tracing::debug_span!("kafka_txn_add_partitions", partitions = partitions.len());
        tokio::spawn(
            async move {
                let Some(txn) = shared.txn.as_ref() else {
                    return;
                };
                let ctx = Ctx {
                    transport: &transport,
                    config: &shared.config,
                    id: &txn.id,
                };
                let result = ctx.add_partitions(producer, &partitions).await;
                let _ = tx.send(Outcome::PartitionsAdded {
                    generation,
                    partitions,
                    result,
                });
            }
            .instrument(span),
        );
        None
    }

    /// An AddPartitionsToTxn answer: partitions that joined may send; a
    /// retriable error backs off; anything else fails the transaction.
    pub(super) fn on_partitions_added(
        &mut self,
        generation: u64,
        partitions: Vec<Key>,
        result: Result<Vec<(Key, ErrorCode)>, kafkit_conn::Error>,
    ) {
        let Some(t) = self.txn_send.as_mut() else {
            return;
        };
        t.adding = false;
        let mut worst: Option<(Verdict, kafkit_conn::Error)> = None;
        let mut joined = 0;
        match result {
            Ok(results) => {
                for ((topic, partition), code) in results {
                    let Err(e) = kafkit_conn::Error::check(code, None) else {
                        if t.generation == generation {
                            t.added.insert((topic, partition));
                        }
                        joined += 1;
                        continue;
                    };
                    let e = e
                        .with_topic(&topic, Some(partition))
                        .with_api(ApiKey::AddPartitionsToTxn);
                    // Not attempted because another partition failed.
                    let verdict = if code == ErrorCode::OPERATION_NOT_ATTEMPTED {
                        Verdict::Retry
                    } else {
                        requests::verdict(ApiKey::AddPartitionsToTxn, &e)
                    };
                    if worst.as_ref().is_none_or(|(v, _)| rank(verdict) > rank(*v)) {
                        worst = Some((verdict, e));
                    }
                }
            }
            Err(e) => {
                let verdict = requests::verdict(ApiKey::AddPartitionsToTxn, &e);
                worst = Some((verdict, e));
            }
        }
        tracing::debug!(
            asked = partitions.len(),
            joined,
            "AddPartitionsToTxn answered"
        );
        match worst {
            None => t.attempts = 0,
            Some((Verdict::Retry, e)) => {
                self.transport.on_error(&e);
                t.attempts += 1;
                let delay = self.shared.config.retry_delay(t.attempts);
                tracing::debug!(error = %e, ?delay, "AddPartitionsToTxn will be retried");
                t.retry_at = Some(Instant::now() + delay);
            }
            Some((_, e)) => {
                let error = requests::wrap(ApiKey::AddPartitionsToTxn, e);
                if let Some(txn) = self.shared.txn.as_ref() {
                    txn.failed(&self.shared, &error);
                }
            }
        }
        if let Some(txn) = self.shared.txn.as_ref() {
            let mut core = txn.lock();
            core.adding = false;
            core.started |= joined > 0;
        }
        if let Some(txn) = self.shared.txn.as_ref() {
            txn.changed.notify_waiters();
        }
    }

    /// Whether a partition's batches may go: it joined the transaction, its
    /// Produce adds it (transaction version 2), or there is none. Otherwise
    /// it is noted for the next AddPartitionsToTxn.
    pub(super) fn txn_joined(txn: Option<&mut TxnSend>, topic: &Arc<str>, partition: i32) -> bool {
        let Some(t) = txn else { return true };
        if t.version.is_some_and(TxnVersion::implicit_add) {
            return true;
        }
        let key = (topic.clone(), partition);
        if t.added.contains(&key) {
            return true;
        }
        t.wanted.insert(key);
        false
    }

    /// A Produce of the transaction is about to go: under v2 it adds its
    /// partitions, so the transaction must end with EndTxn even if the
    /// answer is lost. The protocol the request is built for.
    pub(super) fn txn_producing(&mut self) -> Option<TxnVersion> {
        let t = self.txn_send.as_mut()?;
        let version = t.version?;
        if version.implicit_add() && !t.marked {
            t.marked = true;
            if let Some(txn) = self.shared.txn.as_ref() {
                txn.lock().started = true;
            }
        }
        Some(version)
    }
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Retry => 0,
        Verdict::Abortable => 1,
        Verdict::Fatal => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_partitions_go_at_once_v1_partitions_wait_to_join() {
        let topic: Arc<str> = Arc::from("t");
        let mut t = TxnSend {
            version: Some(TxnVersion::V2),
            ..TxnSend::default()
        };
        assert!(Sender::txn_joined(Some(&mut t), &topic, 0));
        assert!(t.wanted.is_empty(), "nothing for AddPartitionsToTxn");
        t.version = Some(TxnVersion::V1);
        assert!(!Sender::txn_joined(Some(&mut t), &topic, 0));
        assert_eq!(t.wanted.len(), 1);
        t.added.insert((topic.clone(), 0));
        assert!(Sender::txn_joined(Some(&mut t), &topic, 0));
        assert!(Sender::txn_joined(None, &topic, 0), "no transaction");
    }
}
