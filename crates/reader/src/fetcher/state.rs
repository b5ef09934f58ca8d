//! The state the [`Fetcher`](crate::Fetcher) handle and its background
//! driver share, behind one mutex that is never held across an await:
//! each assigned partition's fetch position, generation and backoff, the
//! queue of fetched chunks waiting for the caller, errors to hand out,
//! the fetch sessions, and counters.
//!
//! **Generations.** Every assign, seek and reset gives the partition a new
//! generation (a counter shared by all partitions, so a partition that is
//! unassigned and assigned again never reuses one). A fetch or offset
//! lookup records the generation it was sent under; an answer whose
//! generation is no longer the partition's is dropped. This is what makes
//! a seek exact even with a fetch in flight.

use kafkit_conn::telemetry::Window;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::chunk::Chunk;
use super::session::Sessions;
use crate::{Error, StartOffset, TopicPartition};

/// Where a partition's fetching stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchState {
    /// Needs its start resolved (ListOffsets) before fetching.
    Resolve(StartOffset),
    /// A ListOffsets lookup is in flight.
    Resolving,
    /// Fetching from this offset.
    At(i64),
    /// The leader changed since the last fetch: an OffsetForLeaderEpoch
    /// lookup checks that the log has not diverged before this fetch
    /// offset (KIP-320) before fetching from it again.
    Validating(i64),
    /// Stopped by an error the caller must act on (an out-of-range offset
    /// under `OffsetReset::Error`, a corrupt batch) until a seek.
    Stopped,
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) generation: u64,
    pub(crate) fetch: FetchState,
    /// The next offset to hand out, once known.
    pub(crate) position: Option<i64>,
    /// The id of the fetch request in flight for it, if any.
    pub(crate) in_flight: Option<u64>,
    /// Not fetched before this instant (backoff after a failure).
    pub(crate) retry_at: Option<Instant>,
    /// Failures in a row, for the exponential backoff.
    pub(crate) failures: u32,
    /// The last high watermark, last stable offset and log start offset a
    /// fetch reported (-1 until one did).
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    /// Leader epochs for KIP-320's position validation.
    pub(crate) epochs: Epochs,
    /// The replica the leader pointed this partition's fetches at
    /// (KIP-392), until its lease runs out or it fails.
    pub(crate) read_replica: Option<ReadReplica>,
}

/// A follower the partition is fetched from instead of its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadReplica {
    pub(crate) broker: i32,
    /// Asked of the leader again after this (Java: `metadata.max.age.ms`),
    /// so a better replica, or the leader's changed mind, is picked up.
    pub(crate) until: Instant,
}

/// What a partition's position is validated with after a leader change.
/// Both are unknown after an assign or seek (nothing to validate then, as
/// in the Java client).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epochs {
    /// The partition leader epoch of the last batch fetched.
    pub(crate) fetched: Option<i32>,
    /// The leader epoch (from the metadata) the position was last fetched
    /// or validated under.
    pub(crate) leader: Option<i32>,
}

impl Epochs {
    /// True when the metadata's `current` leader epoch is newer than the
    /// one the position was fetched under, and a fetched batch's epoch is
    /// known to check against.
    pub(crate) fn needs_validation(&self, current: Option<i32>) -> bool {
        matches!(
            (self.leader, current, self.fetched),
            (Some(seen), Some(now), Some(_)) if now > seen
        )
    }
}

/// Counters the driver keeps (the handle adds its own).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) fetches: u64,
    pub(crate) errors: u64,
    pub(crate) bytes: u64,
    pub(crate) resets: u64,
    /// Positions moved back because the log diverged (KIP-320).
    pub(crate) truncations: u64,
    /// Answers to incremental fetches (KIP-227).
    pub(crate) incremental_fetches: u64,
    /// Leader hints taken (KIP-951).
    pub(crate) leader_hints: u64,
}

/// Everything behind the mutex.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) parts: HashMap<TopicPartition, Part>,
    /// Fetched chunks in arrival order.
    pub(crate) ready: VecDeque<Chunk>,
    /// Errors for the caller, handed out before further messages.
    pub(crate) errors: VecDeque<Error>,
    /// Bytes of queued chunks and of the chunk being read.
    pub(crate) buffered_bytes: usize,
    pub(crate) counters: Counters,
    /// The fetch session with each broker (KIP-227); here rather than in
    /// the driver so that closing the fetcher can close them.
    pub(crate) sessions: Sessions,
    next_generation: u64,
}

/// The shared half: state plus the two wake-ups.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Driver -> caller: a chunk or an error was queued.
    pub(crate) data_ready: Notify,
    /// Caller -> driver: the assignment, a position or the buffer changed.
    pub(crate) wake_driver: Notify,
    /// Answered fetches' round trips in microseconds, since client
    /// telemetry last took them (`fetch.manager.fetch.latency`).
    pub(crate) fetch_latency: Window,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Assigns `tp` from `start`; an assigned partition is sought instead.
    pub(crate) fn assign(&mut self, tp: TopicPartition, start: StartOffset) {
        if self.parts.contains_key(&tp) {
            self.seek(&tp, start);
            return;
        }
        let generation = self.generation();
        let (fetch, position) = initial(start);
        self.parts.insert(
            tp,
            Part {
                generation,
                fetch,
                position,
                in_flight: None,
                retry_at: None,
                failures: 0,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                epochs: Epochs::default(),
                read_replica: None,
            },
        );
    }

    /// Forgets `tp` and drops its queued chunks.
    pub(crate) fn unassign(&mut self, tp: &TopicPartition) {
        if self.parts.remove(tp).is_some() {
            self.drop_queued(tp);
        }
    }

    /// Moves `tp` to `start`: queued chunks are dropped, answers in flight
    /// will be (new generation), a stop or backoff is lifted. Returns false
    /// if `tp` is not assigned.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, start: StartOffset) -> bool {
        let generation = self.generation();
        let Some(part) = self.parts.get_mut(tp) else {
            return false;
        };
        part.generation = generation;
        (part.fetch, part.position) = initial(start);
        part.retry_at = None;
        part.failures = 0;
        part.epochs = Epochs::default();
        self.drop_queued(tp);
        true
    }

    /// Has `tp`, about to fetch from `offset` for the first time since it
    /// was assigned or sought, validated against `epoch` (the leader epoch
    /// of the record before `offset`, as a commit recorded it) before it
    /// fetches: as after a leader change, under any leader epoch the
    /// metadata names.
    pub(crate) fn validate_from(&mut self, tp: &TopicPartition, offset: i64, epoch: i32) {
        if let Some(part) = self.parts.get_mut(tp) {
            if part.fetch == FetchState::At(offset) && part.epochs == Epochs::default() {
                part.epochs = Epochs {
                    fetched: Some(epoch),
                    leader: Some(-1),
                };
            }
        }
    }

    /// Resets `tp` to `start` after an out-of-range answer.
    pub(crate) fn reset(&mut self, tp: &TopicPartition, start: StartOffset) {
        self.counters.resets += 1;
        self.seek(tp, start);
    }

    fn drop_queued(&mut self, tp: &TopicPartition) {
        let mut freed = 0;
        self.ready.retain(|c| {
            let keep = &c.tp != tp;
            if !keep {
                freed += c.bytes;
            }
            keep
        });
        self.buffered_bytes -= freed;
    }

    /// The part for `tp` if its generation is still `generation`.
    pub(crate) fn current(&mut self, tp: &TopicPartition, generation: u64) -> Option<&mut Part> {
        self.parts
            .get_mut(tp)
            .filter(|p| p.generation == generation)
    }

    /// Takes the next chunk to read, dropping stale ones.
    pub(crate) fn pop_chunk(&mut self) -> Option<Chunk> {
        while let Some(chunk) = self.ready.pop_front() {
            match self.current(&chunk.tp, chunk.generation) {
                Some(_) => return Some(chunk),
                None => self.buffered_bytes -= chunk.bytes,
            }
        }
        None
    }

    /// Settles a chunk the caller finished (or abandoned): frees its bytes
    /// and, if still current, moves the partition's position to where the
    /// caller got to.
    pub(crate) fn finish_chunk(&mut self, chunk: &Chunk) {
        self.buffered_bytes -= chunk.bytes;
        if let Some(part) = self.current(&chunk.tp, chunk.generation) {
            part.position = Some(chunk.position);
        }
    }

    /// Stops fetching `tp` (if still at `generation`) at its position:
    /// prefetched chunks are dropped, and only a seek resumes it.
    pub(crate) fn stop(&mut self, tp: &TopicPartition, generation: u64) {
        let Some(position) = self.current(tp, generation).and_then(|p| p.position) else {
            return;
        };
        self.seek(tp, StartOffset::Offset(position));
        if let Some(part) = self.parts.get_mut(tp) {
            part.fetch = FetchState::Stopped;
        }
    }

    /// Notes a failure of `tp` (if still at `generation`): backs off.
    /// Returns when it may be fetched again, for the driver's timer: a
    /// backoff nothing wakes the driver for is a partition never fetched
    /// again.
    pub(crate) fn back_off(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        backoff: impl Fn(u32) -> std::time::Duration,
    ) -> Option<Instant> {
        let part = self.current(tp, generation)?;
        part.failures = part.failures.saturating_add(1);
        let at = Instant::now() + backoff(part.failures);
        part.retry_at = Some(at);
        Some(at)
    }
}

fn initial(start: StartOffset) -> (FetchState, Option<i64>) {
    match start {
        StartOffset::Offset(o) => (FetchState::At(o), Some(o)),
        other => (FetchState::Resolve(other), None),
    }
}

impl Part {
    /// The offset the lag is measured against: the last stable offset
    /// under read_committed, else the high watermark.
    pub(crate) fn end_offset(&self, read_committed: bool) -> Option<i64> {
        let end = if read_committed && self.last_stable_offset >= 0 {
            self.last_stable_offset
        } else {
            self.high_watermark
        };
        (end >= 0).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn chunk(state: &mut State, tp: &TopicPartition, bytes: usize) {
        let generation = state.parts[tp].generation;
        let data = Bytes::from(vec![0u8; bytes]);
        state
            .ready
            .push_back(Chunk::new(tp.clone(), generation, 0, 0, data, None));
        state.buffered_bytes += bytes;
    }

    #[test]
    fn seek_drops_queued_chunks_and_changes_the_generation() {
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(42));
        s.assign(tp(1), StartOffset::Earliest);
        assert_eq!(s.parts[&tp(0)].position, Some(42));
        assert_eq!(
            s.parts[&tp(1)].fetch,
            FetchState::Resolve(StartOffset::Earliest)
        );
        chunk(&mut s, &tp(0), 10);
        chunk(&mut s, &tp(1), 5);
        let before = s.parts[&tp(0)].generation;
        assert!(s.seek(&tp(0), StartOffset::Offset(7)));
        assert_ne!(s.parts[&tp(0)].generation, before);
        assert_eq!(s.buffered_bytes, 5);
        assert_eq!(s.parts[&tp(0)].fetch, FetchState::At(7));
        assert!(!s.seek(&tp(9), StartOffset::Latest));
        let next = s.pop_chunk().unwrap();
        assert_eq!(next.tp, tp(1));
    }

    #[test]
    fn stale_chunks_are_skipped_and_freed() {
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(0));
        chunk(&mut s, &tp(0), 10);
        // Unassigned and assigned again: a new generation.
        let stale = s.ready.pop_front().unwrap();
        s.unassign(&tp(0));
        s.assign(tp(0), StartOffset::Offset(0));
        s.ready.push_back(stale);
        assert!(s.pop_chunk().is_none());
        assert_eq!(s.buffered_bytes, 0);
    }

    #[test]
    fn backoff_grows_with_failures_and_a_seek_clears_it() {
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(0));
        let generation = s.parts[&tp(0)].generation;
        let f = |n: u32| std::time::Duration::from_millis(100 * u64::from(n));
        s.back_off(&tp(0), generation, f);
        s.back_off(&tp(0), generation, f);
        assert_eq!(s.parts[&tp(0)].failures, 2);
        s.back_off(&tp(0), generation + 100, f);
        assert_eq!(s.parts[&tp(0)].failures, 2, "stale generations are ignored");
        s.seek(&tp(0), StartOffset::Offset(3));
        assert_eq!(s.parts[&tp(0)].failures, 0);
        assert!(s.parts[&tp(0)].retry_at.is_none());
    }

    #[test]
    fn a_newer_leader_epoch_needs_validation_once_a_batch_epoch_is_known() {
        let mut e = Epochs::default();
        assert!(!e.needs_validation(Some(5)), "nothing fetched yet");
        e.leader = Some(4);
        assert!(!e.needs_validation(Some(5)), "no batch epoch to check");
        e.fetched = Some(4);
        assert!(e.needs_validation(Some(5)));
        assert!(!e.needs_validation(Some(4)), "same leader epoch");
        assert!(!e.needs_validation(Some(3)), "stale metadata");
        assert!(!e.needs_validation(None), "no epoch (an old broker)");
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(0));
        s.parts.get_mut(&tp(0)).unwrap().epochs = e;
        s.seek(&tp(0), StartOffset::Offset(9));
        assert_eq!(
            s.parts[&tp(0)].epochs,
            Epochs::default(),
            "a seek forgets them"
        );
    }

    #[test]
    fn a_committed_epoch_is_validated_before_the_first_fetch() {
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(40));
        s.validate_from(&tp(0), 40, 3);
        assert!(s.parts[&tp(0)].epochs.needs_validation(Some(3)));
        assert!(s.parts[&tp(0)].epochs.needs_validation(Some(0)));
        assert!(
            !s.parts[&tp(0)].epochs.needs_validation(None),
            "no epochs at all"
        );
        // Moved elsewhere (a listener's seek): nothing to validate there.
        s.assign(tp(1), StartOffset::Offset(7));
        s.validate_from(&tp(1), 40, 3);
        assert_eq!(s.parts[&tp(1)].epochs, Epochs::default());
    }

    #[test]
    fn lag_is_measured_against_the_lso_under_read_committed() {
        let mut s = State::default();
        s.assign(tp(0), StartOffset::Offset(0));
        let part = s.parts.get_mut(&tp(0)).unwrap();
        assert_eq!(part.end_offset(false), None);
        part.high_watermark = 10;
        part.last_stable_offset = 8;
        assert_eq!(part.end_offset(false), Some(10));
        assert_eq!(part.end_offset(true), Some(8));
    }
}
