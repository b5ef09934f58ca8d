//! The kafkit producer: a batching, idempotent and optionally
//! transactional [`Writer`] in the shape of kafka-go's, over kafkit-conn's
//! [`Transport`](kafkit_conn::Transport).
//!
//! ```no_run
//! use kafkit_writer::{Message, Writer};
//!
//! # async fn example() -> Result<(), kafkit_writer::Error> {
//! let writer = Writer::builder(["localhost:9092"]).topic("greetings").build().await?;
//!
//! // One record, synchronously: where did it land?
//! let delivery = writer.send(Message::new("hello").with_key("user-1")).await?;
//! let meta = delivery.await?;
//! println!("partition {} offset {}", meta.partition, meta.offset);
//!
//! // Many records, one result each (partial failure is data).
//! let batch: Vec<Message> = (0..1000).map(|i| Message::new(format!("record {i}"))).collect();
//! for result in writer.write_messages(&batch).await? {
//!     result?;
//! }
//! writer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **Batching.** Each record is encoded straight into its partition's open
//!   record batch (magic 2) under one short lock; no per-record allocation
//!   beyond what the caller's API asks for. A batch seals at
//!   [`WriterConfig::batch_size`] records, [`WriterConfig::batch_bytes`]
//!   bytes or after [`WriterConfig::linger`]; one background task sends
//!   sealed batches, one ProduceRequest per broker with at most one batch
//!   per partition, at most [`WriterConfig::max_in_flight`] requests per
//!   broker, on the transport's pooled produce connection.
//! - **Partitions.** An explicit [`Message::partition`] wins; otherwise the
//!   [`Balancer`] picks. The default hashes keys with murmur2 as the Java
//!   client does and keeps keyless records sticky per batch (KIP-480/794);
//!   [`Hash`](struct@Hash), [`ReferenceHash`] (sarama), [`Crc32`] (librdkafka
//!   `consistent`), [`Murmur2`], [`RoundRobin`], [`LeastBytes`] and any
//!   closure are available.
//! - **Topics.** A writer-wide [`WriterConfig::topic`] or a topic on each
//!   message, never both: a message naming a topic on a writer that has
//!   one fails with [`Error::AmbiguousTopic`]. Records of a topic whose
//!   metadata is not known yet wait in the buffer while it is looked up.
//! - **Backpressure.** Records count against [`WriterConfig::buffer_bytes`]
//!   and [`WriterConfig::max_buffered_records`] from write to
//!   acknowledgement. A full buffer makes `send`, `produce` and
//!   `write_messages` wait, and `try_send`/`try_produce` fail with
//!   [`Error::BufferFull`]; a leader election or an unreachable broker never
//!   blocks a caller otherwise.
//! - **Idempotence** (on by default with acks=all): a producer id from
//!   InitProducerId, per-partition sequence numbers, up to 5 requests in
//!   flight with order kept. A failed batch is retried with the same bytes
//!   and sequence after a capped exponential backoff, ahead of every later
//!   batch of its partition; `DUPLICATE_SEQUENCE_NUMBER` counts as success;
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER` and `UNKNOWN_PRODUCER_ID` on a
//!   partition's earliest unacked batch bump the epoch (KIP-360) and re-stamp the
//!   unacked batches. Retries never reorder or duplicate. Without
//!   idempotence retries may reorder when `max_in_flight > 1`.
//! - **Failures.** A batch fails after [`WriterConfig::max_attempts`] or
//!   [`WriterConfig::delivery_timeout`], or at once on an error that is not
//!   retriable; each record gets the error, with topic, partition and
//!   broker. [`Writer::flush`] and [`Writer::close`] report how many
//!   records failed since the last flush.
//! - **Observability.** [`Writer::stats`]: records, bytes, batches,
//!   requests, retries, errors, epoch bumps, transactions committed and
//!   aborted, and a log-bucket latency histogram. Tracing spans:
//!   `kafka_writer` (the task), `kafka_produce` (each request: broker,
//!   batches, records), `kafka_writer_metadata`, `kafka_init_producer_id`,
//!   and the `kafka_txn_*` spans below.
//!
//! # Transactions
//!
//! A writer built with [`WriterBuilder::transactional_id`] writes only
//! inside transactions (KIP-98): everything written between
//! [`Writer::begin_transaction`] and [`Writer::commit_transaction`] becomes
//! visible to read_committed readers at once, or (after
//! [`Writer::abort_transaction`]) never. With
//! [`Writer::send_offsets_to_transaction`] the input offsets of a
//! consume-transform-produce loop commit in the same transaction, which
//! makes the loop exactly-once.
//!
//! ```no_run
//! use kafkit_writer::{ConsumerGroupMetadata, Message, TxnOffset, Writer};
//!
//! # async fn example() -> Result<(), kafkit_writer::Error> {
//! let writer = Writer::builder(["localhost:9092"])
//!     .topic("totals")
//!     .transactional_id("totals-processor-0")
//!     .build()
//!     .await?;
//! let group = ConsumerGroupMetadata::new("totals-processor");
//! loop {
//!     writer.begin_transaction()?;
//!     let result = async {
//!         writer.send(Message::new("42").with_key("user-1")).await?;
//!         let consumed = [TxnOffset { topic: "orders".into(), partition: 0, offset: 1000, metadata: None }];
//!         writer.send_offsets_to_transaction(&consumed, &group).await?;
//!         writer.commit_transaction().await
//!     }
//!     .await;
//!     match result {
//!         Ok(()) => break,
//!         // Fenced by a newer instance, or not authorized: give up.
//!         Err(e) if e.is_fatal() => return Err(e),
//!         // The transaction failed; abort it and do the work again.
//!         Err(e) if e.is_abortable() => writer.abort_transaction().await?,
//!         Err(e) => return Err(e),
//!     }
//! }
//! writer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! - **Building** a transactional writer finds the transaction coordinator
//!   and calls InitProducerId with the id: any older writer with the same
//!   id is fenced (its next transactional call fails
//!   [fatally](Error::is_fatal)) and its open transaction aborted.
//! - **Partitions join** a transaction (AddPartitionsToTxn) just before
//!   their first batch is sent; every partition waiting at that moment
//!   joins in one request, and no batch of a partition is sent before its
//!   request succeeded.
//! - **Commit** refuses further writes, sends what is buffered, waits until
//!   every record of the transaction is acknowledged, then ends the
//!   transaction (EndTxn). **Abort** fails the records not sent yet with
//!   [`Error::TransactionAborted`], waits for those in flight, then ends it.
//! - **Errors.** Fencing (`PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH`),
//!   `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` and a broker without the
//!   needed versions are [fatal](Error::is_fatal): build a new writer. A
//!   failed batch, a stale group generation on the offset commit and the
//!   like are [abortable](Error::is_abortable): only `abort_transaction`
//!   is allowed next, then the writer works again. A batch whose sequence
//!   may be lost fails the transaction rather than bumping the epoch inside
//!   it; the abort then bumps it (KIP-360, Kafka 2.5+).
//!   `CONCURRENT_TRANSACTIONS`, `COORDINATOR_LOAD_IN_PROGRESS` and
//!   `NOT_COORDINATOR` are retried.
//! - **Timeout.** The broker aborts a transaction open longer than
//!   [`WriterConfig::transaction_timeout`] (default 60 s).
//! - **Misuse** (`begin` twice, writing or committing outside a
//!   transaction) is a typed error: [`Error::NoTransaction`],
//!   [`Error::TransactionState`].
//! - [`Writer::close`] aborts an open transaction; dropping the writer
//!   leaves it to the broker's timeout (Drop never blocks).
//! - Tracing spans: `kafka_txn_begin`, `kafka_txn_commit`,
//!   `kafka_txn_abort`, `kafka_txn_send_offsets`, `kafka_txn_end`,
//!   `kafka_txn_add_partitions`, and `kafka_init_producer_id` (with the
//!   `txn_id` field) for the transactional id.
//!
//! # Which call to use
//!
//! From fastest to most convenient, all waiting only for buffer space:
//! [`Writer::write_messages`] (one lock per 512 records and one allocation
//! per call; await it for every result), [`Writer::produce`] (fire and
//! forget, outcome to the [`WriterBuilder::on_delivery`] callback, no
//! allocation), and [`Writer::send`] (a [`Delivery`] future per record,
//! costing a oneshot channel each). Measured with `examples/throughput.rs`
//! (1M 100-byte records, 6 partitions, acks=all, linger 5 ms, tansu on the
//! same 2-core machine): about 0.27-0.33 us of client CPU per record with
//! `write_messages` in chunks of 10,000, 0.36-0.41 us with `produce`, and
//! 0.6-0.8 us with `send` (most of the difference is the per-record
//! oneshot and holding a million `Delivery`s).
//!
//! # Cancel safety
//!
//! Records belong to the writer once a write call has put them in the
//! buffer: dropping a [`Delivery`] or a `write_messages` future does not
//! unsend them. `send` and `produce` are safe to cancel (before they return,
//! nothing was written); `write_messages` may have written a prefix when
//! dropped while waiting for buffer space. `flush` and `close` are safe to
//! cancel. Dropping the [`Writer`] never blocks: its task sends what is
//! buffered and stops. `commit_transaction` and `abort_transaction` are
//! safe to cancel: the writer stays committing (or aborting) and the next
//! call of the same method resumes; `send_offsets_to_transaction` is not
//! (the offsets may or may not be in the transaction: call it again or
//! abort). Each public async fn documents its own.
//!
//! # Features
//!
//! None of its own: the four codecs ([`WriterConfig::compression`]) come
//! from kafkit-protocol's default features.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod accumulator;
pub mod balancer;
mod batch;
mod builder;
mod config;
mod error;
mod hooked;
mod identity;
mod message;
mod sender;
mod stats;
mod telemetry;
mod txn;
mod writer;

pub use balancer::{
    Balancer, Crc32, DefaultBalancer, Hash, LeastBytes, Murmur2, ReferenceHash, RoundRobin, Sticky,
};
pub use builder::WriterBuilder;
pub use config::{DeliveryCallback, WriterConfig};
pub use error::Error;
pub use kafkit_conn::latency::LatencyHistogram;
pub use message::{DeliveryReport, Header, Message, RecordMetadata};
pub use stats::WriterStats;
pub use txn::{ConsumerGroupMetadata, TxnOffset};
pub use writer::{Delivery, Writer};

pub use kafkit_conn::{Compression, ErrorCode, RequiredAcks};
