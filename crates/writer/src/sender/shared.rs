//! What callers and the sender task share: the accumulator, the wake-ups,
//! the statistics, the producer identity, the transaction, and the first
//! failure (what `flush` and `close` report).
//!
//! Lock order: the transaction's `Core`, then `identity`, then the
//! accumulator; none is held across an `.await`.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::accumulator::Accumulator;
use crate::batch::{Batch, Completion};
use crate::identity::{ProducerId, ProducerIdentity};
use crate::stats::Stats;
use crate::txn::Txn;
use crate::{Error, WriterConfig};

/// What callers and the sender task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: WriterConfig,
    pub(super) acc: Mutex<Accumulator>,
    /// Wakes the sender: a batch sealed or opened, a flush, a close.
    pub(crate) wake: Notify,
    /// Wakes callers waiting for buffer space (and flushes).
    pub(crate) space: Notify,
    pub(crate) stats: Stats,
    /// Flushes under way: while positive, open batches seal at once.
    pub(crate) flushing: AtomicUsize,
    pub(super) failures: Mutex<(u64, Option<Error>)>,
    /// The producer id, epoch, sequences and bump: the sender stamps and
    /// acknowledges, a transaction's calls read it and adopt new epochs.
    identity: Mutex<ProducerIdentity>,
    /// The transaction, for a writer with a `transactional_id`.
    pub(crate) txn: Option<Txn>,
}

impl Shared {
    pub(crate) fn new(config: WriterConfig) -> Shared {
        let transactional = config.transactional_id.is_some();
        Shared {
            identity: Mutex::new(ProducerIdentity::new(ProducerId::NONE, transactional)),
            txn: Txn::new(&config),
            config,
            acc: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            space: Notify::new(),
            stats: Stats::default(),
            flushing: AtomicUsize::new(0),
            failures: Mutex::new((0, None)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn identity(&self) -> MutexGuard<'_, ProducerIdentity> {
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adopts a producer id and epoch (InitProducerId, or an EndTxn that
    /// bumped it) and shows it in the statistics.
    pub(crate) fn adopt_producer(&self, producer: ProducerId) {
        if self.identity().adopt(producer) {
            tracing::info!(
                producer_id = producer.id,
                epoch = producer.epoch,
                "new producer epoch"
            );
        }
        self.stats.set_producer(producer.id, producer.epoch);
    }

    /// A batch failed for good: a sequence it carried is in doubt (the
    /// next batches need a new epoch), and a transaction fails with it.
    pub(crate) fn batch_failed(&self, batch: &Batch, error: &Error) {
        if batch.encoded.is_some() {
            let now = tokio::time::Instant::now();
            self.identity().in_doubt(&batch.topic, batch.partition, now);
        }
        if let Some(txn) = &self.txn {
            txn.failed(self, error);
        }
    }

    /// Notes `records` failed records for the next flush to report.
    pub(crate) fn note_failure(&self, records: u64, error: &Error) {
        self.stats.failed(records);
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.0 += records;
        f.1 = Some(error.clone());
    }

    /// Takes the failures noted since the last call.
    pub(crate) fn take_failures(&self) -> Result<(), Error> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::take(&mut *f) {
            (failed, Some(last)) if failed > 0 => Err(Error::RecordsFailed {
                failed,
                last: Box::new(last),
            }),
            _ => Ok(()),
        }
    }

    /// Completes a record that never made it into a batch (its topic
    /// unknown, its partition missing, its delivery timeout passed). In a
    /// transaction the record was accepted by `send`, so the transaction
    /// fails with it: a commit must never leave it out silently.
    fn fail_one(&self, topic: &Arc<str>, completion: Completion, error: Error) {
        if let Some(txn) = &self.txn {
            txn.failed(self, &error);
        }
        self.note_failure(1, &error);
        let builder = kafkit_protocol::records::RecordBatchBuilder::new(0);
        let mut batch = Batch::new(0, topic.clone(), -1, builder);
        batch.completions.push(completion);
        batch.complete(Err(error), self.config.on_delivery.as_ref());
    }

    /// Fails records that never made it into a batch ([`fail_one`]
    /// each), whose buffer space the caller already released, and wakes
    /// whoever waits for that space (a send, a flush, a commit's drain).
    ///
    /// [`fail_one`]: Shared::fail_one
    pub(crate) fn fail_unbatched(
        &self,
        records: impl IntoIterator<Item = (Arc<str>, Completion, Error)>,
    ) {
        let mut any = false;
        for (topic, completion, error) in records {
            self.fail_one(&topic, completion, error);
            any = true;
        }
        if any {
            self.space.notify_waiters();
        }
    }

    /// Fails the pending records `select` picks (records that wait for
    /// their topic's metadata) with `error`, giving back their space.
    /// Returns how many there were.
    pub(crate) fn fail_pending(
        &self,
        select: impl FnMut(&crate::accumulator::Pending) -> bool,
        error: &Error,
    ) -> usize {
        let evicted = self.lock().evict_pending(select);
        let count = evicted.len();
        self.fail_unbatched(
            evicted
                .into_iter()
                .map(|p| (p.topic, p.completion, error.clone())),
        );
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_reported_once() {
        let shared = Shared::new(WriterConfig::default());
        shared.take_failures().unwrap();
        shared.note_failure(2, &Error::Closed);
        shared.note_failure(1, &Error::MissingTopic);
        let e = shared.take_failures().unwrap_err();
        assert!(matches!(e, Error::RecordsFailed { failed: 3, .. }), "{e}");
        shared.take_failures().unwrap();
        assert_eq!(shared.stats.snapshot().errors, 3);
    }
}
