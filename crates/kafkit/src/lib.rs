//! kafkit: a pure-Rust Apache Kafka client. This crate gathers the layers
//! in one dependency: the async connection ([`conn`]), the producer
//! ([`writer`]), the consumer ([`reader`]), the admin client ([`admin`]),
//! exactly-once processing ([`stream`]) and the sans-IO wire protocol
//! ([`protocol`]), with the types most programs need at the root.
//!
//! ```no_run
//! use kafkit::writer::Message;
//! use kafkit::{Admin, Reader, StartOffset, Writer};
//!
//! # #[cfg(all(feature = "reader", feature = "writer", feature = "admin"))]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let brokers = "localhost:9092";
//!
//! // Create a topic (one result per topic: partial failure is data).
//! let admin = Admin::builder([brokers]).build().await?;
//! for (name, result) in admin.create_topics(&[kafkit::admin::NewTopic::new("greetings", 1)], false).await? {
//!     if let Err(e) = result {
//!         eprintln!("{name}: {e}");
//!     }
//! }
//!
//! // Produce: batched, idempotent (acks=all); the delivery says where it landed.
//! let writer = Writer::builder([brokers]).topic("greetings").build().await?;
//! let delivery = writer.send(Message::new("hello").with_key("user-1")).await?;
//! let landed = delivery.await?;
//! println!("written to partition {} at offset {}", landed.partition, landed.offset);
//! writer.close().await?; // flushes and reports records that failed
//!
//! // Consume it back from the start of partition 0.
//! let mut reader = Reader::builder([brokers])
//!     .partition("greetings", 0)
//!     .start_offset(StartOffset::Earliest)
//!     .build()
//!     .await?;
//! let message = reader.fetch_message().await?;
//! println!("{}@{}: {:?} = {:?}", message.partition, message.offset, message.key, message.value);
//! reader.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! This crate adds no code of its own: each module is one of kafkit's
//! crates, and each documents its behavior in full.
//!
//! - [`writer`] (`kafkit-writer`): [`Writer`] batches records per
//!   partition, sends one request per broker from one background task,
//!   and is idempotent by default (acks=all): retries never reorder or
//!   duplicate. Balancers in the Java client's, sarama's and librdkafka's
//!   shapes.
//! - [`reader`] (`kafkit-reader`): [`Reader`] reads one partition from an
//!   offset or a time, or joins a consumer group (cooperative-sticky by
//!   default) and commits at-most-once (`read_message`) or at-least-once
//!   (`fetch_message` then `commit_messages`); [`reader::Fetcher`] reads
//!   any set of partitions without a group.
//! - [`stream`] (`kafkit-stream`): [`Processor`] consumes input topics in
//!   a group, runs a function on each record and produces its outputs,
//!   committing outputs and input offsets in one transaction
//!   (exactly-once), with retries and a dead-letter topic for records
//!   that keep failing.
//! - [`admin`] (`kafkit-admin`): [`Admin`] routes each call to the broker
//!   that must answer it (controller, coordinator, leaders) and returns
//!   one result per topic, partition or group.
//! - [`conn`] (`kafkit-conn`): [`Conn`] is one pipelined broker
//!   connection with version negotiation, TLS and SASL; [`Transport`] is
//!   the cluster-aware layer (metadata cache, leader and coordinator
//!   lookup, pooled connections, retries) that the writer, reader and
//!   admin client share. One [`Transport`] can serve all three:
//!   `Writer::with_transport`, `Admin::new`.
//! - [`protocol`] (`kafkit-protocol`): every Kafka request and response
//!   at every version, record batches and compression, without IO.
//! - **Errors.** [`Error`] is the connection layer's error, which the
//!   admin client returns as is; [`WriterError`] and [`ReaderError`] wrap
//!   it with their own cases. All three answer `is_retriable()` and
//!   `code()` (the broker's [`ErrorCode`]), which is what retry loops
//!   should ask rather than matching variants.
//!
//! # Delivery guarantees
//!
//! What a crash (of the application, a broker or the network) can do to
//! a record, and which kafkit calls give which guarantee:
//!
//! | guarantee | a crash may | consume with | produce with | costs |
//! | --- | --- | --- | --- | --- |
//! | at-most-once | lose records, never repeat them | [`Reader::read_message`] (commits each record as it is handed out) | [`Writer`] with [`WriterConfig::required_acks`] `None` or `One` (acks=0/1), `max_attempts` 1 | nothing: the fastest; acks=0 does not even wait for the broker |
//! | at-least-once | repeat records, never lose them | [`Reader::fetch_message`], process, then [`Reader::commit_messages`] (or a `commit_interval`) | [`Writer`] as by default: acks=all, idempotent | a commit per batch of records; records processed since the last commit are processed again after a crash |
//! | exactly-once | neither (within Kafka) | [`stream::Processor`], or a read_committed [`Reader`] plus a transactional [`Writer`] with `send_offsets_to_transaction` | a transactional [`Writer`] (`transactional_id`) | a transaction commit (about five requests) per commit period; outputs become visible to read_committed readers only at commit, so latency grows by that period |
//!
//! - At-most-once loses a record handed out just before the crash, which
//!   its commit already covered; acks=0/1 writers lose records a broker
//!   acknowledged (acks=1) or received (acks=0) but did not replicate.
//! - At-least-once: the idempotent writer (the default) makes its own
//!   retries safe (no duplicates, no reordering, KIP-98 sequence
//!   numbers), but a consumer that crashes between processing and
//!   committing processes those records again; make processing
//!   idempotent or deduplicate downstream.
//! - Exactly-once holds for what stays in Kafka: consumers of the outputs
//!   must read with `IsolationLevel::ReadCommitted` (see
//!   [`reader::FetchConfig`]), and side effects outside Kafka done by the
//!   processing function are still at-least-once. A restarted processor
//!   with the same transactional id fences the old one (KIP-98), and
//!   offsets are committed with the reader's group generation, so a
//!   member rebalanced out cannot commit (KIP-447).
//!
//! # Cancel safety
//!
//! As the layer crates document per method. In short: dropping a future
//! never leaves half a request on the wire; reads (`fetch_message`,
//! `read_message`, describe and list calls) are safe to cancel; a dropped
//! write or cluster change may or may not take effect, as if it had
//! failed over the network; records handed to a [`Writer`] belong to it
//! and are sent even if the caller's future is dropped. No `Drop` blocks:
//! `Writer::close` and `Reader::close` are where pending work is finished
//! and errors reported.
//!
//! # Features
//!
//! | feature | default | what it enables |
//! | --- | --- | --- |
//! | `writer` | yes | [`writer`], [`Writer`], [`WriterConfig`], [`WriterError`] |
//! | `reader` | yes | [`reader`], [`Reader`], [`ReaderConfig`], [`ReaderError`], [`StartOffset`] |
//! | `admin` | yes | [`admin`], [`Admin`] |
//! | `stream` | yes | [`stream`], [`Processor`] (enables `reader` and `writer`) |
//! | `tls` | yes | TLS with rustls and its ring provider: `conn::TlsConfig` and `ConnConfig::tls` |
//! | `otel` | no | `otel` (`kafkit-otel`): OpenTelemetry spans and metrics through `otel::KafkitOtel`, a client hook |
//!
//! [`conn`] and [`protocol`] are always there. The `tls` feature forwards
//! to `kafkit-conn/tls`; it can be switched off only together with
//! `writer`, `reader`, `admin` and `stream`, because those crates depend on
//! kafkit-conn with its default features, TLS included. The compression
//! codecs (gzip, snappy, lz4, zstd) are not features of this crate for the
//! same reason: every layer depends on kafkit-protocol with its default
//! features, so all four are always compiled in.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use kafkit_conn as conn;
pub use kafkit_protocol as protocol;

#[cfg(feature = "admin")]
pub use kafkit_admin as admin;
/// OpenTelemetry traces and metrics for writers and readers (`kafkit-otel`).
#[cfg(feature = "otel")]
pub use kafkit_otel as otel;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "reader")]
pub use kafkit_reader as reader;
#[cfg(feature = "stream")]
pub use kafkit_stream as stream;
#[cfg(feature = "writer")]
pub use kafkit_writer as writer;

pub use kafkit_conn::{
    Compression, Conn, ConnConfig, Error, ErrorCode, ErrorKind, Hook, Hooks, MetadataRecovery,
    RequiredAcks, Transport, TransportConfig,
};

#[cfg(feature = "tls")]
pub use kafkit_conn::TlsConfig;

#[cfg(feature = "admin")]
pub use kafkit_admin::{Admin, AdminConfig};

#[cfg(feature = "reader")]
pub use kafkit_reader::{Error as ReaderError, Reader, ReaderConfig, StartOffset};

#[cfg(feature = "writer")]
pub use kafkit_writer::{Error as WriterError, Writer, WriterConfig};

#[cfg(feature = "stream")]
pub use kafkit_stream::Processor;

/// The README's examples, compiled (not run: they need a broker) with
/// the doctests, so that they keep up with the API.
#[cfg(all(
    doctest,
    feature = "reader",
    feature = "writer",
    feature = "admin",
    feature = "stream",
    feature = "otel"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

#[cfg(test)]
mod tests {
    use super::*;

    /// The root names are the layers' own types, not copies: a value from
    /// one path is accepted where the other is expected.
    #[test]
    fn root_types_are_the_layers_types() {
        let conn: kafkit_conn::ConnConfig = ConnConfig::default();
        assert_eq!(conn.client_id.as_deref(), Some("kafkit"));
        let _: conn::TransportConfig = TransportConfig::new(["localhost:9092"]);
        assert_eq!(
            Compression::default(),
            protocol::compression::Compression::None
        );
        assert_eq!(RequiredAcks::default(), conn::RequiredAcks::All);
    }

    #[cfg(all(feature = "writer", feature = "reader", feature = "admin"))]
    #[test]
    fn layer_configs_are_reachable_from_the_root() {
        let w: writer::WriterConfig = WriterConfig::default();
        assert!(w.is_idempotent());
        let r: reader::ReaderConfig = ReaderConfig::default();
        assert_eq!(r.start_offset, StartOffset::Earliest);
        let _: admin::AdminConfig = AdminConfig::default();
        let e: Error = Error::check(ErrorCode::NOT_LEADER_OR_FOLLOWER, None).unwrap_err();
        assert!(WriterError::from(e).is_retriable());
    }

    #[cfg(feature = "stream")]
    #[test]
    fn the_processor_is_reachable_from_the_root() {
        let config = stream::ProcessorConfig {
            brokers: vec!["localhost:9092".into()],
            group_id: "g".into(),
            input_topics: vec!["in".into()],
            transactional_id: "t".into(),
            reader: ReaderConfig::default(),
            writer: WriterConfig::default(),
            ..stream::ProcessorConfig::default()
        };
        config.validate().unwrap();
        let _: stream::ProcessorBuilder = Processor::builder(["localhost:9092"]).config(config);
    }
}
