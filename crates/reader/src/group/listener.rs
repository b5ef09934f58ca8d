//! Rebalance notifications: [`RebalanceListener`] (closures implement it)
//! gets a [`Rebalance`] for each change of the assignment, through which it
//! can commit offsets and seek. Listeners run inside the reader's own call
//! (`fetch_message`, `read_message`, `close`), so they never race with the
//! application's reads; what they ask for is applied right after they
//! return (commits synchronously, before a revocation completes).

use crate::{Message, StartOffset, TopicPartition};

/// What happened to the partitions of a [`Rebalance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceKind {
    /// They are now this member's; reading starts at their committed
    /// offsets (or `auto_offset_reset`) unless the listener seeks.
    Assigned,
    /// They are being taken away in an orderly rebalance, or the reader
    /// is closing: commits still work, and marked offsets are committed
    /// right after the listener returns.
    Revoked,
    /// They were taken away without notice (the member was fenced or its
    /// session expired): another member may own them already, so nothing
    /// can be committed for them.
    Lost,
}

/// One change of the assignment, handed to a [`RebalanceListener`].
#[derive(Debug)]
pub struct Rebalance<'a> {
    pub(crate) kind: RebalanceKind,
    pub(crate) partitions: &'a [TopicPartition],
    pub(crate) assignment: &'a [TopicPartition],
    pub(crate) generation: i32,
    pub(crate) committed: Vec<(TopicPartition, Option<i64>)>,
    pub(crate) commits: Vec<(TopicPartition, i64)>,
    pub(crate) seeks: Vec<(TopicPartition, StartOffset)>,
}

impl Rebalance<'_> {
    /// Assigned, revoked or lost.
    pub fn kind(&self) -> RebalanceKind {
        self.kind
    }
    /// The partitions that changed.
    pub fn partitions(&self) -> &[TopicPartition] {
        self.partitions
    }
    /// The whole assignment after this change.
    pub fn assignment(&self) -> &[TopicPartition] {
        self.assignment
    }
    /// The group generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// The group's committed offset of `tp` (one of
    /// [`partitions`](Rebalance::partitions)), `None` if it has none.
    pub fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.committed
            .iter()
            .find(|(t, _)| t == tp)
            .and_then(|(_, o)| *o)
    }
    /// Commits `messages` as processed (highest offset per partition wins),
    /// right after the listener returns. Ignored for lost partitions.
    pub fn commit_messages(&mut self, messages: &[Message]) {
        for m in messages {
            self.commit_offset(
                TopicPartition::new(m.topic.clone(), m.partition),
                m.offset + 1,
            );
        }
    }
    /// Commits `next` (the offset to resume from) for `tp`.
    pub fn commit_offset(&mut self, tp: TopicPartition, next: i64) {
        if self.kind != RebalanceKind::Lost {
            self.commits.push((tp, next));
        }
    }
    /// Starts reading an assigned partition at `start` instead of its
    /// committed offset. Only meaningful for [`RebalanceKind::Assigned`].
    pub fn seek(&mut self, tp: TopicPartition, start: StartOffset) {
        self.seeks.push((tp, start));
    }
}

/// Told about every rebalance. Any `FnMut(&mut Rebalance<'_>) + Send`
/// closure is one.
///
/// ```
/// use kafkit_reader::group::{Rebalance, RebalanceKind, RebalanceListener};
///
/// let listener = |r: &mut Rebalance<'_>| {
///     if r.kind() == RebalanceKind::Assigned {
///         println!("now reading {:?}", r.partitions());
///     }
/// };
/// fn takes(_: impl RebalanceListener) {}
/// takes(listener);
/// ```
pub trait RebalanceListener: Send + 'static {
    /// Called once per change, inside the reader's call.
    fn on_rebalance(&mut self, rebalance: &mut Rebalance<'_>);
}

impl<F> RebalanceListener for F
where
    F: FnMut(&mut Rebalance<'_>) + Send + 'static,
{
    fn on_rebalance(&mut self, rebalance: &mut Rebalance<'_>) {
        self(rebalance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_partitions_cannot_be_committed() {
        let tp = TopicPartition::new("t", 0);
        let parts = [tp.clone()];
        let mut r = Rebalance {
            kind: RebalanceKind::Lost,
            partitions: &parts,
            assignment: &[],
            generation: 3,
            committed: vec![(tp.clone(), Some(5))],
            commits: vec![],
            seeks: vec![],
        };
        r.commit_offset(tp.clone(), 9);
        assert!(r.commits.is_empty());
        assert_eq!(r.committed(&tp), Some(5));
        r.kind = RebalanceKind::Revoked;
        r.commit_offset(tp.clone(), 9);
        assert_eq!(r.commits, vec![(tp, 9)]);
    }
}
