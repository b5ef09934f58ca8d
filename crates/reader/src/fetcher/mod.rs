//! [`Fetcher`]: reads assigned partitions from their leaders, one Fetch per
//! broker at a time, prefetching the next answer while the caller reads
//! the current one, with bounded buffering.
//!
//! Files: `config.rs` ([`FetchConfig`]), `state.rs` (what the handle and the
//! driver share), `driver.rs` (the background task: offset lookups, fetch
//! planning by leader, one fetch per broker), `session.rs` (each broker's
//! fetch session, KIP-227), `request.rs` (the Fetch request and sending
//! it), `answer.rs` (a partition's answer: chunks, resets, backoff,
//! errors), `chunk.rs` (one partition's records from one answer, turned
//! into [`Message`]s without per-record allocation, with the
//! read_committed filter), `message_set.rs` (the same path as a public
//! iterator, [`MessageSet`]).

use std::sync::Arc;

use kafkit_conn::Transport;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::offsets::resolve;
use crate::{Error, IsolationLevel, Message, StartOffset, TopicPartition};

mod answer;
mod chunk;
mod config;
mod driver;
mod leader_hint;
mod message_set;
mod partition_stats;
mod plan;
mod request;
mod session;
mod state;
mod telemetry;
mod validate;

pub use config::FetchConfig;
pub use message_set::MessageSet;
pub use partition_stats::PartitionStats;
pub(crate) use telemetry::GroupLabels;

use chunk::Chunk;
use driver::{Driver, close_detached};
use state::Shared;

/// Counters of a [`Fetcher`], from [`Fetcher::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FetchStats {
    /// Fetch responses received.
    pub fetches: u64,
    /// Of those, answers to incremental fetches (KIP-227), which list only
    /// what changed; the rest answered full fetches.
    pub incremental_fetches: u64,
    /// Failed fetches and offset lookups, and partition errors in answers
    /// (most are retried without reaching the caller).
    pub errors: u64,
    /// Record bytes received.
    pub bytes: u64,
    /// Messages handed to the caller.
    pub messages: u64,
    /// Positions reset by the [`OffsetReset`](crate::OffsetReset) policy.
    pub resets: u64,
    /// Positions moved back to where a new leader's log diverged from the
    /// records fetched before the leader changed (KIP-320).
    pub truncations: u64,
    /// Partitions moved to a new leader that a broker named in a fetch
    /// answer (KIP-951), without waiting for a metadata refresh.
    pub leader_hints: u64,
    /// Fetched bytes waiting for the caller now.
    pub buffered_bytes: usize,
    /// The sum of [`Fetcher::lag`] over the partitions whose lag is known.
    pub lag: i64,
}

/// Reads the partitions assigned to it, from their leaders.
///
/// A background task (spawned by [`Fetcher::new`], so call it inside a
/// tokio runtime) resolves start offsets, sends one Fetch per broker at a
/// time, and queues the answers; [`Fetcher::next`] hands out their records
/// one by one, without copying. While the caller reads one answer of a
/// partition, the next is already being fetched; fetching pauses while
/// [`FetchConfig::max_buffered_bytes`] are waiting.
///
/// Leader moves (`NOT_LEADER_OR_FOLLOWER`, `FENCED_LEADER_EPOCH`...) and
/// lost brokers refresh the metadata through the transport and the
/// partition is fetched from its new leader after a backoff, from the same
/// position, once the new leader confirms that its log has not diverged
/// before it (KIP-320: an OffsetForLeaderEpoch lookup, on brokers that
/// allow it). If it has diverged (an unclean election, or records written
/// with acks below all and lost in the failover), the position moves back
/// to where the logs part ([`FetchStats::truncations`]), so no record of
/// the new log is skipped; under `OffsetReset::Error` the partition stops
/// with [`ErrorKind::LogTruncation`](crate::ErrorKind::LogTruncation)
/// instead. An out-of-range position follows [`FetchConfig::offset_reset`].
/// Errors the caller must see (a non-retriable broker error, an offset out
/// of range under `OffsetReset::Error`, a corrupt batch) come out of
/// [`next`](Fetcher::next); the fetcher keeps going afterwards.
///
/// Fetches use incremental fetch sessions (KIP-227, see
/// [`FetchConfig::sessions`]). [`close`](Fetcher::close), or dropping it,
/// stops without blocking and closes the sessions in the background.
#[derive(Debug)]
pub struct Fetcher {
    shared: Arc<Shared>,
    transport: Transport,
    /// `FetchConfig::max_wait`, which bounds closing a session.
    max_wait: std::time::Duration,
    isolation_level: IsolationLevel,
    read_committed: bool,
    /// The chunk being read; not in the shared state, so handing out a
    /// message takes no lock.
    current: Option<Chunk>,
    messages: u64,
    /// Set when the configuration is invalid: every `next` returns it.
    broken: Option<Error>,
    driver: Option<JoinHandle<()>>,
}

impl Fetcher {
    /// A fetcher with nothing assigned, reading through `transport`.
    ///
    /// An invalid `config` (see [`FetchConfig::validate`]) makes every
    /// [`next`](Fetcher::next) fail with that error.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (it spawns its background task).
    pub fn new(transport: Transport, config: FetchConfig) -> Fetcher {
        let shared = Arc::new(Shared::default());
        shared.lock().sessions = session::Sessions::new(config.sessions);
        let (max_wait, isolation_level) = (config.max_wait, config.isolation_level);
        let read_committed = isolation_level == IsolationLevel::ReadCommitted;
        let (broken, driver) = match config.validate() {
            Ok(()) => {
                let span = tracing::debug_span!("fetcher");
                let driver = Driver::new(transport.clone(), config, shared.clone());
                (None, Some(tokio::spawn(driver.run().instrument(span))))
            }
            Err(e) => (Some(e), None),
        };
        Fetcher {
            shared,
            transport,
            max_wait,
            isolation_level,
            read_committed,
            current: None,
            messages: 0,
            broken,
            driver,
        }
    }

    /// Adds partitions, each read from its start. A partition already
    /// assigned is sought to the new start instead.
    pub fn assign(&mut self, partitions: Vec<(TopicPartition, StartOffset)>) {
        self.assign_committed(partitions, &[]);
    }

    /// [`assign`](Fetcher::assign), where each of `committed` (a partition,
    /// its committed offset and the leader epoch the commit recorded) that
    /// starts at that offset is validated against that epoch before its
    /// first fetch (KIP-320). One lock for both, so the driver never
    /// fetches such a partition unvalidated.
    pub(crate) fn assign_committed(
        &mut self,
        partitions: Vec<(TopicPartition, StartOffset)>,
        committed: &[(TopicPartition, i64, i32)],
    ) {
        {
            let mut st = self.shared.lock();
            for (tp, start) in partitions {
                if self.current.as_ref().is_some_and(|c| c.tp == tp) {
                    let chunk = self.current.take().expect("checked");
                    st.finish_chunk(&chunk);
                }
                tracing::debug!(%tp, ?start, "assigned");
                st.assign(tp, start);
            }
            for (tp, offset, epoch) in committed {
                st.validate_from(tp, *offset, *epoch);
            }
        }
        self.shared.wake_driver.notify_one();
    }

    /// Removes partitions; their buffered data is dropped and answers in
    /// flight for them are ignored.
    pub fn unassign(&mut self, partitions: &[TopicPartition]) {
        {
            let mut st = self.shared.lock();
            for tp in partitions {
                if self.current.as_ref().is_some_and(|c| &c.tp == tp) {
                    let chunk = self.current.take().expect("checked");
                    st.finish_chunk(&chunk);
                }
                tracing::debug!(%tp, "unassigned");
                st.unassign(tp);
            }
        }
        self.shared.wake_driver.notify_one();
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut out: Vec<TopicPartition> = self.shared.lock().parts.keys().cloned().collect();
        out.sort();
        out
    }

    /// True when `tp` is assigned.
    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.shared.lock().parts.contains_key(tp)
    }

    /// Moves `tp` to `offset`: the next message of `tp` that
    /// [`next`](Fetcher::next) returns is the one at that offset (or the
    /// first after it, on compacted topics). Buffered data of `tp` is
    /// dropped; a partition stopped by an error resumes. Does nothing if
    /// `tp` is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, offset: StartOffset) {
        {
            let mut st = self.shared.lock();
            let chunk = match &self.current {
                Some(c) if &c.tp == tp => self.current.take(),
                _ => None,
            };
            if !st.seek(tp, offset) {
                tracing::debug!(%tp, "seek of an unassigned partition ignored");
            }
            if let Some(chunk) = chunk {
                st.finish_chunk(&chunk);
            }
        }
        self.shared.wake_driver.notify_one();
    }

    /// The next message of any assigned partition, waiting for one.
    ///
    /// Messages of one partition come in offset order; partitions are
    /// interleaved answer by answer. With nothing assigned (or every
    /// partition stopped by an error) it waits until there is. Errors the caller must see come out
    /// here, before later messages; the fetcher keeps going afterwards.
    ///
    /// Cancel safety: safe. The only wait is for the background task to
    /// queue data; a message is taken from the buffer only when it is
    /// returned, so dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(result) = self.try_next() {
                return result;
            }
            if self.driver.as_ref().is_none_or(JoinHandle::is_finished) {
                return Err(Error::closed("the fetcher's background task stopped"));
            }
            self.shared
                .data_ready
                .notified()
                .instrument(tracing::trace_span!("fetcher_wait"))
                .await;
        }
    }

    /// The next message if one is buffered, without waiting: `None` when
    /// the buffer is empty. The same messages and errors, in the same
    /// order, as [`next`](Fetcher::next), which is this plus the wait; a
    /// tight loop over buffered messages costs least through this one.
    pub fn try_next(&mut self) -> Option<Result<Message, Error>> {
        if let Some(e) = &self.broken {
            return Some(Err(e.clone()));
        }
        loop {
            if let Some(chunk) = &mut self.current {
                match chunk.next_message() {
                    Some(Ok(message)) => {
                        self.messages += 1;
                        return Some(Ok(message));
                    }
                    Some(Err(e)) => {
                        self.settle_current(true);
                        return Some(Err(e));
                    }
                    None => self.settle_current(false),
                }
            }
            let mut st = self.shared.lock();
            if let Some(e) = st.errors.pop_front() {
                return Some(Err(e));
            }
            self.current = Some(st.pop_chunk()?);
        }
    }

    /// Settles the chunk just read: frees its bytes, records the position,
    /// and on `failed` stops its partition until a seek.
    fn settle_current(&mut self, failed: bool) {
        let Some(chunk) = self.current.take() else {
            return;
        };
        let mut st = self.shared.lock();
        st.finish_chunk(&chunk);
        if failed {
            st.stop(&chunk.tp, chunk.generation);
        }
        drop(st);
        self.shared.wake_driver.notify_one();
    }

    /// The next offset of `tp` to hand out, `None` if `tp` is not assigned
    /// or its start is still being looked up.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        if let Some(chunk) = self.current.as_ref().filter(|c| &c.tp == tp) {
            return Some(chunk.position);
        }
        self.shared.lock().parts.get(tp)?.position
    }

    /// How far `tp`'s position is behind the end of its log: the high
    /// watermark (the last stable offset under read_committed) from the
    /// last fetch, minus the position. `None` until a fetch reported it.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let position = self.position(tp)?;
        let end = self
            .shared
            .lock()
            .parts
            .get(tp)?
            .end_offset(self.read_committed)?;
        Some((end - position).max(0))
    }

    /// Asks the partition's leader for the end of the log now (ListOffsets
    /// latest: the high watermark, or the last stable offset under
    /// read_committed) and returns how far `tp`'s position is behind it
    /// (kafka-go's `ReadLag`). Unlike [`lag`](Fetcher::lag) it needs no
    /// fetch to have answered, and costs a request.
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn read_lag(&self, tp: &TopicPartition) -> Result<i64, Error> {
        let position = self.position(tp).ok_or_else(|| {
            Error::config("read_lag: the partition is not assigned or its start is unresolved")
                .with_partition(tp.topic.clone(), tp.partition)
        })?;
        let end = resolve(
            &self.transport,
            tp,
            StartOffset::Latest,
            self.isolation_level,
        )
        .await?;
        Ok((end - position).max(0))
    }

    /// The high watermark of `tp` from the last fetch, if any.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        let hw = self.shared.lock().parts.get(tp)?.high_watermark;
        (hw >= 0).then_some(hw)
    }

    /// Counters and the total lag.
    pub fn stats(&self) -> FetchStats {
        let st = self.shared.lock();
        let c = st.counters;
        let mut lag = 0;
        for (tp, part) in &st.parts {
            let position = match self.current.as_ref().filter(|c| &c.tp == tp) {
                Some(chunk) => Some(chunk.position),
                None => part.position,
            };
            if let (Some(position), Some(end)) = (position, part.end_offset(self.read_committed)) {
                lag += (end - position).max(0);
            }
        }
        FetchStats {
            fetches: c.fetches,
            incremental_fetches: c.incremental_fetches,
            errors: c.errors,
            bytes: c.bytes,
            messages: self.messages,
            resets: c.resets,
            truncations: c.truncations,
            leader_hints: c.leader_hints,
            buffered_bytes: st.buffered_bytes,
            lag,
        }
    }

    /// Stops fetching for good, without blocking: [`next`](Fetcher::next)
    /// hands out what is buffered, then fails with a closed error; a task
    /// of its own closes each fetch session (its id, the final epoch) so
    /// brokers free them now, best effort (until the answer, `max_wait`
    /// plus a few seconds, or the runtime's end). Closing again is a no-op.
    pub fn close(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
        // Under the lock: a driver step still running plans no fetch after.
        let closing = self.shared.lock().sessions.close_all();
        close_detached(&self.transport, closing, self.max_wait);
    }
}

impl Drop for Fetcher {
    /// [`close`](Fetcher::close); never blocks.
    fn drop(&mut self) {
        self.close();
    }
}
