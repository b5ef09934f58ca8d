//! The kafkit consumer: [`Reader`], in the shape of kafka-go's `Reader`,
//! reading one partition or the partitions a consumer group assigns it,
//! over a prefetching multi-partition [`Fetcher`].
//!
//! ```no_run
//! use std::time::Duration;
//! use kafkit_reader::{Reader, StartOffset};
//!
//! # async fn example() -> Result<(), kafkit_reader::Error> {
//! // A group reader: partitions come from the group, offsets are committed.
//! let mut reader = Reader::builder(["localhost:9092"])
//!     .group_id("billing")
//!     .topics(["orders", "refunds"])
//!     .build()
//!     .await?;
//! for _ in 0..100 {
//!     // At-least-once: process, then commit.
//!     let message = reader.fetch_message().await?;
//!     println!("{}/{}@{}: {:?}", message.topic, message.partition, message.offset, message.value);
//!     reader.commit_messages(&[message]).await?;
//! }
//! println!("lag: {}", reader.lag());
//! reader.close().await?; // commits, leaves the group, reports errors
//!
//! // A partition reader from offset 42.
//! let mut partition = Reader::builder(["localhost:9092"])
//!     .partition("orders", 0)
//!     .start_offset(StartOffset::Offset(42))
//!     .build()
//!     .await?;
//! let first = partition.fetch_message().await?;
//! assert_eq!(first.offset, 42);
//! # let _ = Duration::ZERO;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **Two modes.** A *partition reader* (`topic` + `partition`) starts at
//!   [`ReaderConfig::start_offset`] (an offset, [`StartOffset::Earliest`],
//!   [`StartOffset::Latest`] or a time) and can be moved with
//!   [`Reader::set_offset`] and [`Reader::set_offset_at`]; it commits
//!   nothing. A *group reader* (`group_id` + topics) joins a consumer group
//!   on the classic protocol and reads what the group assigns, starting at
//!   the group's committed offsets, or at
//!   [`ReaderConfig::auto_offset_reset`] where there is none.
//! - **At-most-once or at-least-once.** [`Reader::read_message`] commits a
//!   message's offset as it hands it out (kafka-go's `ReadMessage` with a
//!   `GroupID`): a crash while processing loses that message, never
//!   repeats it. [`Reader::fetch_message`] commits nothing; call
//!   [`Reader::commit_messages`] (or a [`Committer`] from another task)
//!   after processing: a crash repeats what was processed but not
//!   committed, and loses nothing. Per partition the highest committed
//!   offset wins and commits never go backwards; an offset is committed
//!   only once it was handed out (`read_message`) or marked processed.
//! - **Commit timing.** Without [`ReaderConfig::commit_interval`] every
//!   commit is synchronous and its error returned. With it, commits are
//!   marked and sent in batches by a background task. Either way a
//!   revocation commits what was marked before the partition is given up
//!   (if the coordinator refuses, say mid-rebalance, the partition still
//!   goes: the error is logged and counted in the stats, and the next
//!   owner reads from the last commit), and [`Reader::close`] commits,
//!   leaves the group and returns the error.
//! - **Group membership.** FindCoordinator, JoinGroup (with the
//!   member-id-required retry of KIP-394), SyncGroup, Heartbeat and
//!   LeaveGroup run on the coordinator's own connection, and heartbeats
//!   in a background task, so a slow fetch or a slow application never
//!   misses one. The leader runs the assignor every member offers:
//!   [`group::CooperativeStickyAssignor`] by default (KIP-429: members keep
//!   consuming during a rebalance; a partition that moves is revoked by its
//!   owner first, then assigned in a follow-up rebalance), or
//!   `range`, `roundrobin`, `sticky`, or your own [`group::Assignor`]
//!   (closures through [`group::AssignorFn`]). The names and the consumer
//!   protocol's bytes are the Java client's and librdkafka's, so kafkit
//!   and librdkafka members can share a group. Static membership
//!   (KIP-345) through [`ReaderConfig::group_instance_id`].
//! - **Rebalance notifications.** A [`group::RebalanceListener`] (any
//!   `FnMut(&mut Rebalance)`) is told of partitions assigned, revoked and
//!   lost, inside the reader's own call, and can commit or seek.
//! - **Leader changes.** Partitions follow their leaders through the
//!   metadata. After a leader change the position is validated on the new
//!   leader (KIP-320, OffsetForLeaderEpoch): if that log diverged from the
//!   records fetched before (an unclean election, acks=1 records lost in
//!   the failover) reading goes on from where it diverged, so none of the
//!   new log is skipped, or stops with [`ErrorKind::LogTruncation`] under
//!   [`OffsetReset::Error`].
//! - **Rack-aware fetching.** With [`FetchConfig::rack`] (Kafka's
//!   `client.rack`, also [`ReaderBuilder::rack`]) a cluster with a
//!   rack-aware replica selector serves fetches from a replica in the same
//!   rack (KIP-392); any trouble with it sends fetches back to the leader.
//! - **Fetch sessions.** Each broker keeps an incremental fetch session
//!   (KIP-227, [`FetchConfig::sessions`], on by default, off with
//!   [`ReaderBuilder::fetch_sessions`]): after a first full fetch, a fetch
//!   names only the partitions whose position changed and the broker
//!   answers only for those with records or news, which saves bytes and
//!   broker CPU with many partitions. A session error or a lost connection
//!   makes the next fetch full again; unassigning a broker's partitions
//!   and [`Reader::close`] close the session.
//! - **Lag.** [`Reader::lag`] (as of the last fetches, no IO) and
//!   [`Reader::read_lag`] (fresh end offsets) sum over every partition
//!   read, in both modes; [`Reader::stats`] has the counters.
//! - **Streams.** [`Reader::into_stream`] is a `futures_core::Stream`;
//!   [`Reader::into_partition_streams`] gives one ordered stream per
//!   assigned partition, to process partitions in parallel.
//! - Rebalances are applied while the application calls the reader: call
//!   it at least every `rebalance_timeout` (default 30 s), or the group
//!   waits for you (heartbeats keep the session alive meanwhile).
//!
//! # Cancel safety
//!
//! [`Reader::fetch_message`] and [`Reader::read_message`] are cancel safe:
//! a message is taken only when returned (a `read_message` whose commit is
//! interrupted hands the same message out again), and a rebalance
//! interrupted halfway is finished by the next call, so they can sit in a
//! `tokio::select!` or under a timeout. Commits may or may not reach the
//! broker when dropped; what was marked stays marked. [`Reader::close`] is
//! not cancel safe. `Drop` never blocks: it stops the background tasks
//! without leaving the group (the coordinator notices after the session
//! timeout and the partitions are read again from the last commit).
//!
//! # Features
//!
//! No optional features. Compression codecs, TLS and SASL come from
//! `kafkit-protocol` and `kafkit-conn` (set [`ReaderConfig::conn`]).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod fetcher;
mod message;
mod offsets;

mod commit;
mod config;
pub mod group;
mod reader;
mod stream;

pub use commit::Committer;
pub use config::{ReaderBuilder, ReaderConfig};
pub use reader::{ConsumerGroupMetadata, GroupStats, Reader, ReaderStats};
pub use stream::{MessageStream, PartitionStream, PartitionStreams};

pub use error::{Error, ErrorKind};
pub use fetcher::{FetchConfig, FetchStats, Fetcher, MessageSet, PartitionStats};
pub use message::{Header, HeaderIter, Headers, Message, TimestampType};
pub use offsets::{IsolationLevel, OffsetReset, StartOffset, TopicPartition};
