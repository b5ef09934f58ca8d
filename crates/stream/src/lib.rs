//! Exactly-once consume-transform-produce for kafkit: a [`Processor`]
//! reads input topics in a consumer group, runs your function on each
//! record, and writes what it returns to output topics; the outputs and
//! the input offsets are committed in one Kafka transaction, so each input
//! record's outputs appear exactly once to read_committed readers, across
//! crashes, restarts and rebalances. This is the loop of Kafka Streams'
//! exactly-once mode (KIP-98, KIP-129, KIP-447), without the DSL.
//!
//! ```no_run
//! use std::time::Duration;
//! use kafkit_stream::{Output, Processor, RetryPolicy};
//!
//! # async fn example() -> Result<(), kafkit_stream::Error> {
//! let mut processor = Processor::builder(["localhost:9092"])
//!     .group_id("orders-enricher")
//!     .input_topics(["orders"])
//!     .transactional_id("orders-enricher-0")
//!     .retry(RetryPolicy {
//!         attempts: 3,
//!         backoff: Duration::from_millis(100),
//!         dead_letter_topic: Some("orders-dlq".into()),
//!         ..RetryPolicy::default()
//!     })
//!     .commit_every(Duration::from_millis(100))
//!     .build()
//!     .await?;
//!
//! // Any future stops it (a signal, a channel): the open transaction is
//! // committed first. `run` has none.
//! let shutdown = async { tokio::time::sleep(Duration::from_secs(3600)).await };
//! processor
//!     .run_until(shutdown, |order| async move {
//!         let text = std::str::from_utf8(order.value_bytes())?.to_uppercase();
//!         // A filter: return `None` to drop a record; a flat-map: a `Vec`.
//!         Ok::<_, std::str::Utf8Error>(Some(
//!             Output::new("orders-enriched", text).with_key(order.key.clone().unwrap_or_default()),
//!         ))
//!     })
//!     .await?;
//! processor.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **One transaction at a time.** The processor waits for a record,
//!   begins a transaction, runs the function on records and writes their
//!   outputs until [`ProcessorConfig::commit_every`] has passed or
//!   [`ProcessorConfig::max_records_per_txn`] records were taken, then
//!   adds the next offset of every input partition it read to the
//!   transaction (`send_offsets_to_transaction`, with the reader's
//!   generation and member id, KIP-447) and commits. An idle processor
//!   holds no transaction open.
//! - **The reader** is a group reader with isolation read_committed (so
//!   it never processes an aborted output of an upstream processor) and no
//!   commits of its own: offsets reach the group only through
//!   transactions.
//! - **Rebalances.** The reader's rebalance listener records the
//!   partitions revoked or lost. If the open transaction consumed from one
//!   of them, it is aborted instead of committed (their new owner reads
//!   them again from the last committed offsets), and the partitions still
//!   assigned are rewound to where the transaction started reading them.
//!   Partitions assigned, or revoked ones the transaction did not touch,
//!   abort nothing.
//! - **Failures of the function.** A call that fails is retried up to
//!   [`RetryPolicy::attempts`] times with a doubling backoff. Then the
//!   input record goes to [`RetryPolicy::dead_letter_topic`] in the same
//!   transaction, with its key, value and headers and these headers added
//!   ([`dlq_headers`]): `kafkit.dlq.error` (the last error's text),
//!   `kafkit.dlq.topic`, `kafkit.dlq.partition`, `kafkit.dlq.offset` and
//!   `kafkit.dlq.attempts`. Without a dead-letter topic the transaction
//!   is aborted and `run` returns [`Error::Processing`]. Outputs of failed
//!   calls are never written: a call's outputs are written only when it
//!   returns `Ok`.
//! - **Failures of Kafka.** Abortable writer errors (a failed batch, a
//!   TxnOffsetCommit refused after a rebalance) abort the transaction,
//!   rewind its inputs and try again, up to
//!   [`ProcessorConfig::max_consecutive_aborts`] in a row. Fatal ones (a
//!   newer instance with the same transactional id fenced this one) stop
//!   the processor at once ([`Error::is_fatal`]).
//! - **Restarts.** Building a processor builds its transactional writer
//!   first: InitProducerId fences the previous instance with the same
//!   transactional id and aborts its open transaction, so the new
//!   instance starts from the offsets of the last committed transaction.
//! - **Observability.** [`Processor::stats`]; tracing spans
//!   `kafkit_stream_start`, `kafkit_stream_txn` (one per transaction, with
//!   its record count), `kafkit_stream_close`, around the writer's
//!   `kafka_txn_*` and the reader's spans.
//!
//! # Delivery guarantees
//!
//! Exactly once *within Kafka*: for each input record, the outputs of one
//! successful call of the function (or one dead letter) are committed
//! together with the input offset, or nothing is. Consumers of the output
//! topics must read with [`IsolationLevel::ReadCommitted`]
//! (`kafkit_reader`) to see only committed transactions. The function
//! itself may run more than once for a record (retries, and again after
//! an abort or a crash), so side effects outside Kafka (an HTTP call, a
//! database write) are at-least-once: make them idempotent. The cost: a
//! commit (about five requests) per [`ProcessorConfig::commit_every`],
//! and that much extra latency before outputs become visible.
//!
//! [`IsolationLevel::ReadCommitted`]: kafkit_reader::IsolationLevel::ReadCommitted
//!
//! # Cancel safety
//!
//! [`Processor::run`] and [`Processor::run_until`] lose and duplicate
//! nothing when cancelled, but the open transaction's work is redone:
//! dropped midway, the transaction stays open (invisible), and the next
//! `run` aborts it and rewinds the inputs, or finishes its commit if the
//! commit had begun. Prefer `run_until`'s shutdown future, which commits
//! the open transaction and returns. [`Processor::close`] is not cancel
//! safe. `Drop` never blocks: the broker aborts a transaction left open
//! after [`ProcessorConfig::transaction_timeout`], or at once when the
//! next instance with the same transactional id starts.
//!
//! # Features
//!
//! None. Needs a broker with transactions (Kafka 2.5+ for KIP-447's
//! generation checks; tansu works, see the workspace README for its
//! read_committed bug).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod output;
mod processor;
mod txn;

pub use config::{ProcessorBuilder, ProcessorConfig, RetryPolicy};
pub use error::{BoxError, Error};
pub use output::{IntoOutputs, Output, dlq_headers};
pub use processor::{Processor, ProcessorStats};

pub use kafkit_reader::Message;
