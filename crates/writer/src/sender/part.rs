//! One partition's sending state, owned by the sender task: its queue,
//! what is in flight and to retry, its next sequence and the highest
//! batch the broker acknowledged.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::batch::Batch;
use crate::idempotence::ProducerId;

/// Sending state of one partition.
#[derive(Debug, Default)]
pub(super) struct Part {
    /// Sealed batches waiting to be sent, in order.
    pub(super) queue: VecDeque<Batch>,
    /// Sent and not answered, in send order.
    pub(super) in_flight: VecDeque<Batch>,
    /// Failed, to resend (in id order) once `in_flight` is empty.
    pub(super) retries: Vec<Batch>,
    /// The next base sequence to stamp.
    pub(super) next_seq: i32,
    /// No new batch may go before the next retry.
    pub(super) retry_at: Option<Instant>,
    /// The highest batch acknowledged: the broker takes sequences only in
    /// order, so every batch below it in the same epoch is written,
    /// whatever its own answer said (or whether one came).
    pub(super) acked: Option<Acked>,
    /// This partition asked for the epoch bump: its batches wait for it.
    pub(super) needs_bump: bool,
}

/// A partition's highest acknowledged batch: under which producer id and
/// epoch, and its last record's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Acked {
    pub(super) producer: ProducerId,
    pub(super) last_sequence: i32,
}

impl Part {
    /// Whether `batch` must already be on the broker (see `acked`).
    pub(super) fn covers(&self, batch: &Batch) -> bool {
        let stamp = batch.stamp;
        batch.encoded.is_some()
            && stamp.sequence >= 0
            && self.acked.is_some_and(|acked| {
                acked.producer == stamp.producer && stamp.sequence <= acked.last_sequence
            })
    }
}
