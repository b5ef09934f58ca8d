//! [`Reader`]: the high-level consumer, in kafka-go's shape. A partition
//! reader reads one partition from a start offset; a group reader joins a
//! consumer group and reads what the group assigns it, committing offsets
//! (see the crate docs for the commit modes).

use std::sync::Arc;
use std::time::SystemTime;

use kafkit_conn::telemetry::{ClientKind, ClientTelemetry, TelemetryStats};
use kafkit_conn::{Hooks, Transport, TransportStats};

use crate::commit::{Committer, Parked};
use crate::config::{ReaderBuilder, ReaderConfig};
use crate::fetcher::GroupLabels;
use crate::group::RebalanceListener;
use crate::{Error, FetchStats, Fetcher, Message, PartitionStats, StartOffset, TopicPartition};

mod group;

use group::GroupReader;
pub use group::{ConsumerGroupMetadata, GroupStats};

/// Counters and state of a [`Reader`], from [`Reader::stats`]: what
/// librdkafka's statistics JSON gives, and JSON too with the `serde`
/// feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ReaderStats {
    /// The fetcher's counters (fetches, bytes, buffered bytes, lag).
    pub fetch: FetchStats,
    /// Messages handed to the application.
    pub messages: u64,
    /// Successful OffsetCommit requests.
    pub commits: u64,
    /// Failed OffsetCommit requests (after retries).
    pub commit_errors: u64,
    /// Assignments received from the group.
    pub rebalances: u64,
    /// The current group generation, `None` for a partition reader or
    /// before the first assignment.
    pub generation: Option<i32>,
    /// Partitions read now.
    pub partitions: usize,
    /// Messages between the position and the end of the log, summed over
    /// the partitions read (as [`Reader::lag`]).
    pub lag: i64,
    /// Each partition read: offsets, lag and buffered bytes.
    pub partition_stats: Vec<PartitionStats>,
    /// The group member's state, `None` for a partition reader.
    pub group: Option<GroupStats>,
    /// The connections, per broker: round trips, in-flight requests.
    pub transport: TransportStats,
}

/// The consumer. See the [crate docs](crate) for an example and the
/// semantics of each read and commit call.
///
/// Dropping a reader stops its background tasks without blocking and
/// without leaving the group (the coordinator notices after the session
/// timeout and the partitions are read again from the last commit);
/// [`close`](Reader::close) commits, leaves and reports errors.
#[derive(Debug)]
pub struct Reader {
    transport: Transport,
    fetcher: Fetcher,
    config: ReaderConfig,
    partition: Option<TopicPartition>,
    group: Option<GroupReader>,
    /// A message `read_message` could not commit, handed out again next.
    pending: Option<Parked>,
    messages: u64,
    closed: bool,
    /// `close` ran to its end (a dropped one did not).
    close_finished: bool,
    /// Client telemetry (KIP-714), unless `metrics_push` is off.
    telemetry: Option<ClientTelemetry>,
    /// The transport's hook, told of every message handed out.
    hooks: Hooks,
}

impl Reader {
    /// A builder bootstrapping from `brokers`.
    pub fn builder<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> ReaderBuilder {
        ReaderBuilder::new(brokers)
    }

    /// Validates `config`, connects to the cluster and starts reading: a
    /// partition reader from `start_offset`, a group reader by joining the
    /// group in the background (the first messages come once the group has
    /// assigned partitions).
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn new(config: ReaderConfig) -> Result<Reader, Error> {
        Reader::start(config, None).await
    }

    pub(crate) async fn start(
        config: ReaderConfig,
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<Reader, Error> {
        config.validate()?;
        let transport = Transport::connect(config.transport_config()).await?;
        let mut fetcher = Fetcher::new(transport.clone(), config.fetch.clone());
        let (partition, group) = if config.is_group() {
            (
                None,
                Some(GroupReader::start(&transport, &config, listener)),
            )
        } else {
            let topic = config.topic.clone().expect("validated");
            let tp = TopicPartition::new(topic, config.partition.expect("validated"));
            fetcher.assign(vec![(tp.clone(), config.start_offset)]);
            (Some(tp), None)
        };
        let telemetry = config.metrics_push.then(|| {
            let group = config.group_id.clone().map(|group_id| GroupLabels {
                group_id,
                instance_id: config.group_instance_id.clone(),
            });
            let source = Arc::new(fetcher.metrics_source(group));
            ClientTelemetry::start(&transport, ClientKind::Consumer, source)
        });
        tracing::debug!(config = ?config, "reader started");
        Ok(Reader {
            hooks: transport.hooks().clone(),
            transport,
            fetcher,
            config,
            partition,
            group,
            pending: None,
            messages: 0,
            closed: false,
            close_finished: false,
            telemetry,
        })
    }

    /// What the reader's client telemetry (KIP-714) did: `None` with
    /// `metrics_push` off.
    pub fn telemetry(&self) -> Option<TelemetryStats> {
        self.telemetry.as_ref().map(ClientTelemetry::stats)
    }

    /// The configuration.
    pub fn config(&self) -> &ReaderConfig {
        &self.config
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::closed("the reader is closed"));
        }
        Ok(())
    }

    /// The next message, without committing anything: mark it processed
    /// with [`commit_messages`](Reader::commit_messages) once done with it
    /// (at-least-once). In group mode this is also where rebalances are
    /// applied and the rebalance listener runs.
    ///
    /// Cancel safety: safe. A message is taken only when returned; a
    /// rebalance interrupted halfway is finished by the next call.
    pub async fn fetch_message(&mut self) -> Result<Message, Error> {
        // The buffered case returns straight from the fetcher: every layer
        // a `Message` passes through is a copy of it.
        if let Some(result) = self.try_buffered() {
            return result;
        }
        self.next(true)
            .await
            .map(|m| m.expect("waits for a message"))
    }

    /// A buffered message when nothing else is due (no rebalance event to
    /// apply, no message parked by `read_message`): taken synchronously,
    /// skipping the event pump and the select of [`next`](Reader::next).
    #[inline]
    fn try_buffered(&mut self) -> Option<Result<Message, Error>> {
        if self.closed
            || self.pending.is_some()
            || !self.group.as_ref().is_none_or(GroupReader::is_settled)
        {
            return None;
        }
        let result = self.fetcher.try_next();
        if let Some(Ok(message)) = &result {
            self.handed_out(message);
        }
        result
    }

    /// Counts a message handed to the caller and tells the hook.
    #[inline]
    fn handed_out(&mut self, message: &Message) {
        self.messages += 1;
        if let Some(hook) = self.hooks.get() {
            let mut record = message.as_consume_record();
            record.group = self.config.group_id.as_deref();
            record.client_id = self.transport.client_id();
            hook.on_consume_record(&record);
        }
    }

    /// Returns a message, or with `wait_message` false `None` right after
    /// a rebalance was applied (for the per-partition streams).
    pub(crate) async fn next(&mut self, wait_message: bool) -> Result<Option<Message>, Error> {
        self.check_open()?;
        loop {
            if let Some(result) = self.try_buffered() {
                return result.map(Some);
            }
            if let Some(g) = self.group.as_mut().filter(|g| !g.is_settled()) {
                // Boxed: applying an event awaits commits and offset
                // lookups, whose futures would make this one (moved
                // whole by every timeout or select around a call) several
                // kilobytes. One allocation per rebalance event.
                let applied = Box::pin(g.pump(&mut self.fetcher, &mut self.pending)).await?;
                if applied && !wait_message {
                    return Ok(None);
                }
            }
            if let Some(parked) = self.pending.take() {
                // Unmarked as it is handed out: `read_message` marks it
                // again, `fetch_message` leaves it to the caller's commit.
                return Ok(Some(self.unpark(parked)));
            }
            let message = match &mut self.group {
                Some(g) => tokio::select! {
                    waited = g.wait_event() => { waited?; continue; }
                    m = self.fetcher.next() => m?,
                },
                None => self.fetcher.next().await?,
            };
            self.handed_out(&message);
            return Ok(Some(message));
        }
    }

    /// Applies the group's pending rebalance events without reading.
    /// True when one was applied.
    pub(crate) async fn apply_rebalances(&mut self) -> Result<bool, Error> {
        self.check_open()?;
        match &mut self.group {
            Some(g) => g.pump(&mut self.fetcher, &mut self.pending).await,
            None => Ok(false),
        }
    }

    /// The next message; in group mode its offset is committed as it is
    /// handed out (synchronously, or with the next periodic commit when a
    /// `commit_interval` is set): *at-most-once*, as kafka-go's
    /// `ReadMessage` with a `GroupID`. If that commit fails, the error is
    /// returned and the same message comes back from the next call.
    ///
    /// Cancel safety: safe; dropped during the commit, the message is
    /// handed out again by the next call.
    pub async fn read_message(&mut self) -> Result<Message, Error> {
        let message = self.fetch_message().await?;
        let Some(g) = &self.group else {
            return Ok(message);
        };
        if !g.commits.sync {
            // The next periodic commit sends it.
            g.commits.mark_messages(std::slice::from_ref(&message));
            return Ok(message);
        }
        // Parked while committing: a cancelled or failed commit hands it
        // out again. Boxed, as in `next`: the commit's future is large,
        // and a synchronous commit is a round trip anyway.
        let parked = g.commits.park(message.clone());
        let tp = parked.partition().clone();
        self.pending = Some(parked);
        let g = self.group.as_ref().expect("group mode");
        Box::pin(g.commit_partition(tp)).await?;
        self.pending = None;
        Ok(message)
    }

    /// Marks `messages` processed (the highest offset of each partition
    /// wins; commits never go backwards) and, without a `commit_interval`,
    /// commits them before returning. Group mode only.
    ///
    /// Cancel safety: as [`Committer::commit_messages`].
    pub async fn commit_messages(&mut self, messages: &[Message]) -> Result<(), Error> {
        self.check_open()?;
        self.committer()?.commit_messages(messages).await
    }

    /// A handle that commits for this reader from other tasks (group mode).
    pub fn committer(&self) -> Result<Committer, Error> {
        match &self.group {
            Some(g) => Ok(Committer {
                inner: g.commits.clone(),
            }),
            None => Err(Error::config("commits need a group_id")),
        }
    }

    /// Partition mode: continue from `offset` (buffered messages are
    /// dropped).
    pub fn set_offset(&mut self, offset: i64) -> Result<(), Error> {
        self.seek_partition(StartOffset::Offset(offset))
    }

    /// Partition mode: continue from the first message at or after `time`
    /// (ListOffsets by timestamp).
    pub fn set_offset_at(&mut self, time: SystemTime) -> Result<(), Error> {
        self.seek_partition(StartOffset::Timestamp(time))
    }

    fn seek_partition(&mut self, start: StartOffset) -> Result<(), Error> {
        let tp = self
            .partition
            .clone()
            .ok_or_else(|| Error::config("set_offset is for partition readers; use seek"))?;
        self.seek(&tp, start)
    }

    /// Continues `tp`, which must be read now, from `start`.
    pub fn seek(&mut self, tp: &TopicPartition, start: StartOffset) -> Result<(), Error> {
        self.check_open()?;
        if !self.fetcher.assignment().contains(tp) {
            return Err(Error::config(format!(
                "{tp} is not assigned to this reader"
            )));
        }
        if let Some(parked) = self.pending.take() {
            self.unpark(parked);
        }
        self.fetcher.seek(tp, start);
        Ok(())
    }

    /// Takes back the mark of a message `read_message` parked (only group
    /// readers park).
    fn unpark(&self, parked: Parked) -> Message {
        let g = self
            .group
            .as_ref()
            .expect("only group readers park messages");
        g.commits.unpark(parked)
    }

    /// Group mode: the group, generation and member id as of now, for a
    /// transactional writer's `send_offsets_to_transaction` (KIP-447);
    /// `None` for a partition reader. Before the first join the generation
    /// is `-1` and the member id empty.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.group.as_ref().map(GroupReader::metadata)
    }

    /// Partition mode: the offset of the next message, `None` until known.
    pub fn offset(&self) -> Option<i64> {
        self.fetcher.position(self.partition.as_ref()?)
    }

    /// The partitions read now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match &self.group {
            Some(g) => g.assignment.clone(),
            None => self.partition.iter().cloned().collect(),
        }
    }

    /// Messages between the position and the end of the log, summed over
    /// the partitions read, as of the last fetches (no IO). Partitions not
    /// fetched yet count 0.
    pub fn lag(&self) -> i64 {
        self.fetcher.stats().lag
    }

    /// [`lag`](Reader::lag) from a fresh end offset (ListOffsets) of each
    /// partition read. A partition whose position is unknown yet counts
    /// from its committed offset, else not at all.
    ///
    /// Cancel safety: safe (read-only requests).
    pub async fn read_lag(&self) -> Result<i64, Error> {
        let isolation = self.config.fetch.isolation_level;
        let mut lag = 0;
        for tp in self.assignment() {
            let position = self
                .fetcher
                .position(&tp)
                .or_else(|| self.group.as_ref().and_then(|g| g.commits.committed(&tp)));
            let Some(position) = position else { continue };
            let end = crate::offsets::resolve(&self.transport, &tp, StartOffset::Latest, isolation)
                .await?;
            lag += (end - position).max(0);
        }
        Ok(lag)
    }

    /// Counters and state.
    pub fn stats(&self) -> ReaderStats {
        let fetch = self.fetcher.stats();
        let (commits, commit_errors) = self.group.as_ref().map_or((0, 0), |g| g.commit_counts());
        ReaderStats {
            fetch,
            messages: self.messages,
            commits,
            commit_errors,
            rebalances: self.group.as_ref().map_or(0, |g| g.rebalances),
            generation: self
                .group
                .as_ref()
                .map(|g| g.generation_id)
                .filter(|g| *g >= 0),
            partitions: self.assignment().len(),
            lag: fetch.lag,
            partition_stats: self.fetcher.partition_stats(),
            group: self.group.as_ref().map(GroupReader::stats),
            transport: self.transport.stats(),
        }
    }

    /// Stops reading and closes the fetch sessions with the brokers (best
    /// effort, in the background; see [`Fetcher::close`]). In group mode:
    /// runs the listener for the revocation of every partition, commits
    /// what is marked, and leaves the group
    /// (a static member does not leave, KIP-345), returning the commit
    /// error, else the LeaveGroup error. The commit and the LeaveGroup
    /// each retry retriable errors (a coordinator that moved or is
    /// loading, a dead connection) for up to 30 s, the Java consumer's
    /// default close timeout. A member whose first JoinGroup is
    /// still unanswered waits for that answer, at most the session
    /// timeout, so that it can leave instead of stalling the group's
    /// rebalance until the coordinator expires it. Later calls fail with a
    /// closed error; closing again returns `Ok`, or, if the first `close`
    /// was dropped before it finished, a closed error saying so.
    ///
    /// Cancel safety: not cancel safe: dropped halfway, the reader is
    /// closed but the commit or LeaveGroup may not have been sent.
    pub async fn close(&mut self) -> Result<(), Error> {
        if self.closed {
            if self.close_finished {
                return Ok(());
            }
            return Err(Error::closed(
                "an earlier close() was dropped before it finished: \
                 its commit or LeaveGroup may not have been sent",
            ));
        }
        self.closed = true;
        // Before the final commit: a parked message was never handed out.
        if let Some(parked) = self.pending.take() {
            self.unpark(parked);
        }
        let result = match &mut self.group {
            Some(g) => g.close(&mut self.fetcher).await,
            None => Ok(()),
        };
        let assigned = self.fetcher.assignment();
        self.fetcher.unassign(&assigned);
        // Stops fetching and closes the fetch sessions (in the background).
        self.fetcher.close();
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.close().await;
        }
        self.close_finished = true;
        tracing::debug!(ok = result.is_ok(), "reader closed");
        result
    }
}
