//! Bookkeeping of one open transaction: which input offsets it consumed
//! (what it commits, and where an abort rewinds to), and the partitions
//! the group took away while it was open.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafkit_reader::group::{Rebalance, RebalanceKind};
use kafkit_reader::{Message, TopicPartition};
use kafkit_writer::TxnOffset;

/// The input side of the open transaction.
#[derive(Debug)]
pub(crate) struct TxnState {
    pub(crate) started: Instant,
    /// Input records consumed.
    pub(crate) records: usize,
    /// Outputs and dead letters written.
    pub(crate) outputs: u64,
    pub(crate) dead_letters: u64,
    /// `commit_transaction` was called: a cancelled run must finish the
    /// commit, not abort (the writer may have sent EndTxn already).
    pub(crate) committing: bool,
    /// Per partition: the first offset consumed in this transaction (where
    /// an abort rewinds to) and the next offset to consume (what a commit
    /// sends). Offsets between the position at the start and the first
    /// record are control or aborted records the reader skips anyway, so
    /// rewinding to the first record is rewinding to the start.
    pub(crate) partitions: BTreeMap<TopicPartition, (i64, i64)>,
}

impl TxnState {
    pub(crate) fn new() -> TxnState {
        TxnState {
            started: Instant::now(),
            records: 0,
            outputs: 0,
            dead_letters: 0,
            committing: false,
            partitions: BTreeMap::new(),
        }
    }

    /// Counts `m` as consumed by this transaction.
    pub(crate) fn consume(&mut self, m: &Message) {
        let tp = TopicPartition::new(m.topic.clone(), m.partition);
        let entry = self.partitions.entry(tp).or_insert((m.offset, m.offset));
        entry.1 = m.offset + 1;
        self.records += 1;
    }

    /// Forgets the partitions in `gone` (revoked or lost): this
    /// transaction must neither commit their offsets nor rewind them (if
    /// the group gave one back, the reader already starts it from the
    /// committed offset, which its other owner may have moved past our
    /// first record). True when it had consumed from one of them.
    pub(crate) fn forget(&mut self, gone: &[TopicPartition]) -> bool {
        let before = self.partitions.len();
        self.partitions.retain(|tp, _| !gone.contains(tp));
        self.partitions.len() != before
    }

    /// The offsets to commit with the transaction: the next offset of
    /// each partition consumed.
    pub(crate) fn offsets(&self) -> Vec<TxnOffset> {
        self.partitions
            .iter()
            .map(|(tp, (_, next))| TxnOffset {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                offset: *next,
                metadata: None,
            })
            .collect()
    }

    /// Where each consumed partition must be read again from after an
    /// abort.
    pub(crate) fn rewind_points(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .map(|(tp, (first, _))| (tp.clone(), *first))
            .collect()
    }
}

/// Partitions revoked or lost since the last [`take`](Revocations::take),
/// filled by the rebalance listener inside the reader's calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Revocations(Arc<Mutex<Vec<TopicPartition>>>);

impl Revocations {
    /// The listener to install on the reader: remembers what the group
    /// took away. It commits nothing: offsets go through transactions.
    pub(crate) fn listener(&self) -> impl FnMut(&mut Rebalance<'_>) + Send + 'static {
        let gone = self.0.clone();
        move |r: &mut Rebalance<'_>| {
            if matches!(r.kind(), RebalanceKind::Revoked | RebalanceKind::Lost) {
                tracing::debug!(kind = ?r.kind(), partitions = ?r.partitions(), "inputs taken away");
                lock(&gone).extend_from_slice(r.partitions());
            }
        }
    }

    pub(crate) fn take(&self) -> Vec<TopicPartition> {
        std::mem::take(&mut *lock(&self.0))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, partition: i32, offset: i64) -> Message {
        Message {
            topic: topic.into(),
            partition,
            offset,
            key: None,
            value: None,
            headers: Default::default(),
            timestamp: 0,
            timestamp_type: kafkit_reader::TimestampType::CreateTime,
            leader_epoch: None,
        }
    }

    #[test]
    fn commits_the_next_offset_and_rewinds_to_the_first() {
        let mut t = TxnState::new();
        for (p, o) in [(0, 5), (1, 9), (0, 6), (0, 8)] {
            t.consume(&message("in", p, o));
        }
        assert_eq!(t.records, 4);
        let offsets: Vec<(i32, i64)> = t
            .offsets()
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        assert_eq!(offsets, [(0, 9), (1, 10)]);
        let rewind: Vec<(i32, i64)> = t
            .rewind_points()
            .iter()
            .map(|(tp, o)| (tp.partition, *o))
            .collect();
        assert_eq!(rewind, [(0, 5), (1, 9)]);
        assert!(!t.forget(&[
            TopicPartition::new("in", 2),
            TopicPartition::new("other", 0)
        ]));
        assert!(t.forget(&[TopicPartition::new("in", 1)]));
        let rewind: Vec<i32> = t
            .rewind_points()
            .iter()
            .map(|(tp, _)| tp.partition)
            .collect();
        assert_eq!(rewind, [0], "a forgotten partition is neither rewound");
        assert_eq!(t.offsets().len(), 1, "nor committed");
    }
}
