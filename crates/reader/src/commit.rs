//! Offset commits: which offsets are ready to commit, and OffsetCommit.
//!
//! An offset becomes committable only when the application says its
//! record is processed ([`Committer::commit_messages`]), or, for
//! `read_message`, when the record is handed out. Per partition the
//! highest one wins and commits never go backwards: a commit is sent only
//! for partitions whose marked offset is past the committed one, and
//! commits are serialised so an older one can never land after a newer
//! one. Only partitions the member is assigned are tracked; a record of a
//! partition revoked since it was read is not committed (its new owner
//! reads it again: at-least-once). The one commit that may go back is a
//! correction: `read_message`'s commit of a record it then never handed
//! out (the call was dropped) is overridden (see [`Parked`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tracing::Instrument;

use kafkit_conn::ErrorCode;

use crate::group::client::{Generation, GroupClient};
use crate::{Error, Message, TopicPartition};

#[derive(Debug, Default, Clone, Copy)]
struct Part {
    /// The next offset to commit (processed + 1), if any was marked.
    marked: Option<i64>,
    /// The leader epoch of the record before `marked`, when known: sent
    /// with the commit (OffsetCommit v6+) so the partition's next owner
    /// can validate the position against its leader's log (KIP-320).
    marked_epoch: Option<i32>,
    /// What the group has committed (as read at assignment or sent since).
    committed: Option<i64>,
    /// A parked message was dropped unseen while its commit may already
    /// have reached the broker: `marked` goes out with the next commit
    /// even though it is not past `committed`, to take that back.
    resend: bool,
}

/// A message `read_message` handed to its commit but not yet to its
/// caller. Its offset is marked (the commit sends it); if the commit fails
/// or its future is dropped, the message is parked here and the next read
/// hands it out again. Whatever drops it instead (its partition revoked, a
/// seek, `close`) must [`unpark`](Commits::unpark) it first, so that no
/// later commit counts an unseen record as read.
#[derive(Debug)]
pub(crate) struct Parked {
    message: Message,
    tp: TopicPartition,
    /// The partition's mark (and its epoch) before this message's.
    before: (Option<i64>, Option<i32>),
}

impl Parked {
    /// The parked message's partition.
    pub(crate) fn partition(&self) -> &TopicPartition {
        &self.tp
    }
}

/// What commits share: the reader, [`Committer`] handles and the interval
/// task.
#[derive(Debug)]
pub(crate) struct Commits {
    client: GroupClient,
    generation: Arc<Mutex<Generation>>,
    parts: Mutex<HashMap<TopicPartition, Part>>,
    /// Held across snapshot and request: commits never overtake.
    serial: tokio::sync::Mutex<()>,
    /// `commit_messages` commits at once (no `commit_interval`).
    pub(crate) sync: bool,
    /// How long a caller's commit may wait for a rebalance to finish.
    rebalance_wait: Duration,
    pub(crate) commits: AtomicU64,
    pub(crate) errors: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Commits {
    pub(crate) fn new(
        client: GroupClient,
        generation: Arc<Mutex<Generation>>,
        sync: bool,
        rebalance_wait: Duration,
    ) -> Self {
        Commits {
            client,
            generation,
            parts: Mutex::new(HashMap::new()),
            serial: tokio::sync::Mutex::new(()),
            sync,
            rebalance_wait,
            commits: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub(crate) fn client(&self) -> &GroupClient {
        &self.client
    }

    /// Starts tracking an assigned partition with its committed offset.
    pub(crate) fn track(&self, tp: TopicPartition, committed: Option<i64>) {
        lock(&self.parts).insert(
            tp,
            Part {
                marked: None,
                marked_epoch: None,
                committed,
                resend: false,
            },
        );
    }

    /// Stops tracking partitions (revoked or lost); unsent marks are dropped.
    pub(crate) fn untrack(&self, tps: &[TopicPartition]) {
        let mut parts = lock(&self.parts);
        for tp in tps {
            parts.remove(tp);
        }
    }

    /// Marks `next` (the offset after the last processed record, whose
    /// leader epoch is `epoch` if known) as ready for `tp`. False when
    /// `tp` is not assigned.
    pub(crate) fn mark(&self, tp: &TopicPartition, next: i64, epoch: Option<i32>) -> bool {
        match lock(&self.parts).get_mut(tp) {
            Some(part) => {
                match part.marked {
                    Some(m) if m > next => {}
                    Some(m) if m == next => part.marked_epoch = part.marked_epoch.or(epoch),
                    _ => (part.marked, part.marked_epoch) = (Some(next), epoch),
                }
                true
            }
            None => {
                tracing::debug!(partition = %tp, next, "not assigned: offset not committed");
                false
            }
        }
    }

    /// Marks `message` as handed out by `read_message` and parks it while
    /// its commit runs (see [`Parked`]).
    pub(crate) fn park(&self, message: Message) -> Parked {
        let tp = TopicPartition::new(message.topic.clone(), message.partition);
        let before = lock(&self.parts)
            .get(&tp)
            .map_or((None, None), |p| (p.marked, p.marked_epoch));
        self.mark(&tp, message.offset + 1, message.leader_epoch);
        Parked {
            message,
            tp,
            before,
        }
    }

    /// Takes back the mark of a parked message and returns the message:
    /// the caller never got it, so it must not count as processed. A mark
    /// made since (a listener's, a `commit_messages`) stays. Its dropped
    /// commit may have been on the wire already, so the next commit sends
    /// the highest of the mark before it and the committed offset, never
    /// past the message itself (the message's own offset when there is
    /// neither), overriding it.
    pub(crate) fn unpark(&self, parked: Parked) -> Message {
        let offset = parked.message.offset;
        if let Some(part) = lock(&self.parts).get_mut(&parked.tp) {
            if part.marked == Some(offset + 1) {
                let (before, epoch) = parked.before;
                let marked = restored_mark(before, part.committed, offset);
                part.marked = Some(marked);
                // The epoch belongs to the record before `before` only.
                part.marked_epoch = epoch.filter(|_| before == Some(marked));
                part.resend = true;
            }
        }
        parked.message
    }

    /// Marks every message as processed.
    pub(crate) fn mark_messages(&self, messages: &[Message]) {
        for m in messages {
            self.mark(
                &TopicPartition::new(m.topic.clone(), m.partition),
                m.offset + 1,
                m.leader_epoch,
            );
        }
    }

    /// The committed offset of `tp`, as far as this member knows.
    pub(crate) fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        lock(&self.parts).get(tp)?.committed
    }

    /// Partitions whose marked offset is past the committed one, with the
    /// marked offset and its leader epoch.
    fn dirty(&self, only: Option<&[TopicPartition]>) -> Vec<(TopicPartition, i64, Option<i32>)> {
        lock(&self.parts)
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .filter_map(|(tp, p)| match (p.marked, p.committed) {
                (Some(m), Some(c)) if m <= c && !p.resend => None,
                (Some(m), _) => Some((tp.clone(), m, p.marked_epoch)),
                (None, _) => None,
            })
            .collect()
    }

    /// Commits what is marked and not yet committed (all partitions, or
    /// `only` those), retrying retriable errors.
    ///
    /// Cancel safety: the commit may or may not reach the broker when the
    /// future is dropped; nothing is lost (it stays marked).
    pub(crate) async fn commit_marked(&self, only: Option<&[TopicPartition]>) -> Result<(), Error> {
        self.commit_marked_within(only, None).await
    }

    /// [`commit_marked`](Commits::commit_marked), retrying retriable errors
    /// for as long as `patience` allows (`None`: the transport's usual
    /// five attempts): a final commit on close waits out a coordinator
    /// move instead of giving up after about 2 s.
    ///
    /// Cancel safety: as `commit_marked`.
    pub(crate) async fn commit_marked_within(
        &self,
        only: Option<&[TopicPartition]>,
        patience: Option<Duration>,
    ) -> Result<(), Error> {
        let _serial = self.serial.lock().await;
        let offsets = self.dirty(only);
        if offsets.is_empty() {
            return Ok(());
        }
        let generation = lock(&self.generation).clone();
        let span = tracing::debug_span!(
            "kafka_commit",
            group = %self.client.group_id(),
            generation = generation.generation_id,
            partitions = offsets.len()
        );
        let transport = self.client.transport();
        let attempt = || self.client.commit(&generation, &offsets);
        let result = match patience {
            None => transport.retry(attempt).instrument(span).await,
            Some(patience) => {
                transport
                    .retry_for(patience, attempt)
                    .instrument(span)
                    .await
            }
        };
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                let mut parts = lock(&self.parts);
                for (tp, offset, _) in offsets {
                    if let Some(p) = parts.get_mut(&tp) {
                        p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
                        p.resend = false;
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let e = Error::from(e);
                tracing::warn!(error = %e, "commit failed");
                Err(e)
            }
        }
    }
}

impl Commits {
    /// [`commit_marked`](Commits::commit_marked) for a caller's commit: when
    /// the coordinator refuses it because the group is between generations
    /// (`REBALANCE_IN_PROGRESS`, `ILLEGAL_GENERATION`: the member joined
    /// the next generation but has not synced it yet), it waits until the
    /// membership publishes the next generation, at most `rebalance_wait`,
    /// and commits again. Partitions revoked meanwhile are no longer
    /// tracked, and their revocation committed their marks. Not for
    /// revocations themselves: the membership waits for those before it
    /// can move on, so waiting for it there would wait out the timeout.
    ///
    /// Cancel safety: as `commit_marked`.
    pub(crate) async fn commit_marked_across_rebalance(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Result<(), Error> {
        let before = lock(&self.generation).generation_id;
        let error = match self.commit_marked(only).await {
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION)
                ) =>
            {
                e
            }
            other => return other,
        };
        tracing::debug!(error = %error, "commit refused during a rebalance; waiting for it");
        let deadline = tokio::time::Instant::now() + self.rebalance_wait;
        loop {
            tokio::time::sleep(REBALANCE_POLL).await;
            let now = lock(&self.generation).generation_id;
            if now >= 0 && now != before {
                return self.commit_marked(only).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(error);
            }
        }
    }
}

/// How often a commit waiting out a rebalance looks for the next generation.
const REBALANCE_POLL: Duration = Duration::from_millis(50);

/// Commits offsets of a group reader from anywhere: a cheap `Clone` handle
/// for tasks that process messages apart from the reader (see
/// [`Reader::committer`](crate::Reader::committer)).
#[derive(Debug, Clone)]
pub struct Committer {
    pub(crate) inner: Arc<Commits>,
}

impl Committer {
    /// Marks `messages` as processed; each partition's highest offset wins.
    /// Without a `commit_interval` the offsets are committed before this
    /// returns, and its error returned; with one they go out with the next
    /// periodic commit.
    ///
    /// A message of a partition this member no longer owns is skipped: its
    /// new owner reads it again. A commit the coordinator refuses because
    /// the group is rebalancing waits for the rebalance to finish (at most
    /// the rebalance timeout) and goes out again under the new generation,
    /// instead of failing.
    ///
    /// Cancel safety: once marked, the offsets stay marked; dropping the
    /// future may leave the commit unsent until the next commit.
    pub async fn commit_messages(&self, messages: &[Message]) -> Result<(), Error> {
        self.inner.mark_messages(messages);
        if self.inner.sync {
            let tps: Vec<TopicPartition> = messages
                .iter()
                .map(|m| TopicPartition::new(m.topic.clone(), m.partition))
                .collect();
            self.inner
                .commit_marked_across_rebalance(Some(&tps))
                .await?;
        }
        Ok(())
    }

    /// Commits every marked offset now, whatever the `commit_interval`.
    ///
    /// Cancel safety: as [`commit_messages`](Committer::commit_messages).
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.commit_marked(None).await
    }
}

/// What a parked message at `offset` leaves marked when it is dropped
/// unseen: the highest of the mark before it and the committed offset,
/// never past the message; the message's own offset with neither.
fn restored_mark(before: Option<i64>, committed: Option<i64>, offset: i64) -> i64 {
    before
        .into_iter()
        .chain(committed)
        .max()
        .map_or(offset, |o| o.min(offset))
}

/// Commits what is marked every `interval` until the [`Commits`] go away.
pub(crate) fn spawn_interval(
    commits: &Arc<Commits>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let weak: Weak<Commits> = Arc::downgrade(commits);
    let span = tracing::debug_span!("kafka_commit_interval", ?interval);
    tokio::spawn(
        async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(commits) = weak.upgrade() else {
                    return;
                };
                // Errors are kept for close() and stats; the offsets stay
                // marked and go out with the next tick.
                let _ = commits.commit_marked(None).await;
            }
        }
        .instrument(span),
    )
}

#[cfg(test)]
mod tests {
    use super::restored_mark;

    #[test]
    fn a_dropped_parked_message_restores_the_mark_before_it_never_past_it() {
        assert_eq!(restored_mark(Some(5), Some(3), 5), 5);
        assert_eq!(
            restored_mark(Some(4), Some(5), 9),
            5,
            "the commit is not undone"
        );
        assert_eq!(
            restored_mark(None, Some(12), 9),
            9,
            "never past the message"
        );
        assert_eq!(restored_mark(None, None, 9), 9);
    }
}
