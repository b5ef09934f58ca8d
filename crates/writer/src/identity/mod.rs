//! The producer's identity (KIP-98, recovery from KIP-360), with one owner:
//! the producer id and epoch, each partition's next sequence and highest
//! acknowledged batch, and the epoch bump. Pure: the sender task and the
//! transaction calls perform what it decides, under `Shared::identity`.
//!
//! The rules it keeps:
//! - A partition's sequence advances by each batch's record count when the
//!   batch is first stamped, in seal order; a retry resends the same bytes
//!   with the same sequence, so a batch the broker already wrote (its answer
//!   was lost) comes back `DUPLICATE_SEQUENCE_NUMBER`, counted as success.
//! - The broker takes a partition's sequences only in order, so an
//!   acknowledged batch covers every earlier batch of the same epoch.
//! - A batch whose sequence is in doubt ([`ProducerIdentity::in_doubt`]:
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER` or `UNKNOWN_PRODUCER_ID` on a
//!   partition's earliest unacked batch, or a stamped batch that failed for
//!   good, a gap the broker would wait on forever) wants a new epoch.
//!   Without a transaction the sender bumps once nothing is in flight; in
//!   one the transaction fails, and its abort bumps. Either way
//!   InitProducerId with the current id and epoch gives the new epoch,
//!   and [`ProducerIdentity::adopt`] restarts every sequence at 0.
//!
//! Files: `mod.rs` (the state and its decisions), `stamp.rs` (writing a
//! stamp into a batch), `init.rs` (InitProducerId, the one entry point
//! for a producer id), `tests.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use kafkit_protocol::ErrorCode;
use tokio::time::Instant;

use crate::Error;
use crate::batch::Batch;
use crate::txn::requests::Key;

mod init;
mod stamp;
#[cfg(test)]
mod tests;

pub(crate) use init::{Init, init_producer_id};
pub(crate) use stamp::{ProducerId, Stamp};

/// Progress of an epoch bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bump {
    Idle,
    /// Wanted; the sender starts it once nothing is in flight, not before
    /// `not_before` (a transaction's abort starts it at once).
    Wanted {
        not_before: Instant,
    },
    /// The sender's InitProducerId is under way.
    Running,
}

/// A partition's sequences under the current epoch.
#[derive(Debug, Default)]
struct Sequences {
    /// The next base sequence to stamp.
    next: i32,
    /// The highest batch acknowledged. Kept across a new epoch: a batch
    /// of the old one it covers is still written.
    acked: Option<Acked>,
    /// A batch of this partition put its sequence in doubt: the
    /// partition's new batches wait for the bump.
    in_doubt: bool,
}

/// A partition's highest acknowledged batch: under which producer id and
/// epoch, and its last record's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acked {
    producer: ProducerId,
    last_sequence: i32,
}

/// The producer id, epoch, sequences and bump of one writer.
#[derive(Debug)]
pub(crate) struct ProducerIdentity {
    producer: ProducerId,
    /// In a transaction the abort bumps the epoch, never the sender.
    transactional: bool,
    partitions: HashMap<Key, Sequences>,
    bump: Bump,
}

/// What a failed batch's error means for its retry and the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The batch may be sent again.
    pub(crate) retry: bool,
    /// Its sequence is in doubt: call [`ProducerIdentity::in_doubt`].
    pub(crate) in_doubt: bool,
}

impl ProducerIdentity {
    pub(crate) fn new(producer: ProducerId, transactional: bool) -> ProducerIdentity {
        ProducerIdentity {
            producer,
            transactional,
            partitions: HashMap::new(),
            bump: Bump::Idle,
        }
    }

    /// The id and epoch batches are stamped with now.
    pub(crate) fn current(&self) -> ProducerId {
        self.producer
    }

    fn idempotent(&self) -> bool {
        !self.producer.is_none()
    }

    /// Takes a producer id and epoch from InitProducerId or EndTxn: the
    /// one way in. A new one restarts every sequence at 0, and ends any
    /// bump. Returns whether it changed.
    pub(crate) fn adopt(&mut self, producer: ProducerId) -> bool {
        self.bump = Bump::Idle;
        if producer == self.producer {
            return false;
        }
        self.producer = producer;
        for sequences in self.partitions.values_mut() {
            sequences.next = 0;
            sequences.in_doubt = false;
        }
        true
    }

    /// Whether `batch` must be (re)stamped before it is sent.
    pub(crate) fn needs_stamp(&self, batch: &Batch) -> bool {
        stamp::needs_stamp(batch, self.producer)
    }

    /// Stamps `batch`, if it needs it, with the current producer and its
    /// partition's next sequence, which advances by its record count.
    pub(crate) fn stamp(&mut self, batch: &mut Batch) -> Result<(), Error> {
        if !self.needs_stamp(batch) {
            return Ok(());
        }
        let seq = self.sequences(batch).next;
        stamp::stamp(batch, self.producer, seq)?;
        let sequences = self.sequences(batch);
        sequences.next = stamp::next_sequence(seq, batch.records());
        Ok(())
    }

    /// `batch` was acknowledged: it may be the partition's highest.
    pub(crate) fn acked(&mut self, batch: &Batch) {
        let stamp = batch.stamp;
        if stamp.sequence < 0 {
            return;
        }
        let last = stamp.sequence.saturating_add(batch.records() as i32 - 1);
        let sequences = self.sequences(batch);
        let higher = sequences
            .acked
            .is_none_or(|acked| acked.producer != stamp.producer || last > acked.last_sequence);
        if higher {
            sequences.acked = Some(Acked {
                producer: stamp.producer,
                last_sequence: last,
            });
        }
    }

    /// Whether `batch` must already be on the broker: a later batch of its
    /// partition, same epoch, was acknowledged, whatever its own answer
    /// said (or whether one came).
    pub(crate) fn covers(&self, batch: &Batch) -> bool {
        let stamp = batch.stamp;
        batch.encoded.is_some()
            && stamp.sequence >= 0
            && self
                .partitions
                .get(&(batch.topic.clone(), batch.partition))
                .and_then(|s| s.acked)
                .is_some_and(|acked| {
                    acked.producer == stamp.producer && stamp.sequence <= acked.last_sequence
                })
    }

    /// The verdict on a batch that failed with `code` (`retriable`: the
    /// error is retriable in itself). `earlier_unacked`: an earlier batch
    /// of the partition is in flight or waits for a retry. Behind one, a
    /// sequence error is expected (the broker never saw the sequence it
    /// follows) and a retry in order fixes it; on the earliest batch it
    /// means the broker lost the sequence, and only a new epoch recovers.
    /// In a transaction that fails the batch (and the transaction),
    /// never a silent bump.
    pub(crate) fn verdict(
        &self,
        code: Option<ErrorCode>,
        retriable: bool,
        earlier_unacked: bool,
    ) -> Verdict {
        let sequence_error = matches!(
            code,
            Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER | ErrorCode::UNKNOWN_PRODUCER_ID)
        );
        let lost = self.idempotent() && sequence_error && !earlier_unacked;
        Verdict {
            retry: (sequence_error && !(self.transactional && lost)) || retriable,
            in_doubt: lost && !self.transactional,
        }
    }

    /// The one failure entry point: a stamped batch of `topic`/`partition`
    /// failed, or its sequence was lost; it may or may not be on the
    /// broker, so the next batches need a new epoch. Nothing without
    /// idempotence.
    pub(crate) fn in_doubt(&mut self, topic: &Arc<str>, partition: i32, now: Instant) {
        if !self.idempotent() {
            return;
        }
        let key = (topic.clone(), partition);
        self.partitions.entry(key).or_default().in_doubt = true;
        self.require_bump(now);
    }

    /// A new epoch is needed before the next transaction (moving to
    /// transaction version 2, or EndTxn lost the producer).
    pub(crate) fn require_bump(&mut self, now: Instant) {
        if self.bump == Bump::Idle {
            self.bump = Bump::Wanted { not_before: now };
        }
    }

    /// Whether a new epoch is wanted or coming.
    pub(crate) fn bump_required(&self) -> bool {
        self.bump != Bump::Idle
    }

    /// The bump the sender performs: none in a transaction, where the
    /// abort (or commit) bumps.
    pub(crate) fn sender_bump(&self) -> Bump {
        if self.transactional {
            Bump::Idle
        } else {
            self.bump
        }
    }

    /// Whether a partition's batches wait for the bump.
    pub(crate) fn waits_for_bump(&self, topic: &Arc<str>, partition: i32) -> bool {
        self.partitions
            .get(&(topic.clone(), partition))
            .is_some_and(|s| s.in_doubt)
    }

    /// The sender starts its InitProducerId: the producer to bump.
    pub(crate) fn start_bump(&mut self) -> ProducerId {
        self.bump = Bump::Running;
        self.producer
    }

    /// The sender's InitProducerId failed: tried again at `retry_at`.
    pub(crate) fn bump_failed(&mut self, retry_at: Instant) {
        self.bump = Bump::Wanted {
            not_before: retry_at,
        };
    }

    fn sequences(&mut self, batch: &Batch) -> &mut Sequences {
        let key = (batch.topic.clone(), batch.partition);
        self.partitions.entry(key).or_default()
    }
}
