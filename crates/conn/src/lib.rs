//! Async connections to Kafka brokers: one [`Conn`] per broker socket, in
//! the shape of kafka-go's low-level `Conn`, over the sans-IO
//! `kafkit-protocol` crate.
//!
//! ```no_run
//! use kafkit_conn::{Conn, Message, TopicConfig, dial_leader};
//!
//! # async fn example() -> Result<(), kafkit_conn::Error> {
//! // Create a topic through the controller.
//! let conn = Conn::dial("localhost:9092").await?;
//! let controller = Conn::dial(conn.controller().await?.addr()).await?;
//! for result in controller.create_topics(&[TopicConfig::new("greetings", 3)]).await? {
//!     result.result?;
//! }
//!
//! // Produce three messages to partition 0, then read them back.
//! let mut partition = dial_leader("localhost:9092", "greetings", 0).await?;
//! let base = partition
//!     .write_messages(&[Message::new("one"), Message::new("two"), Message::new("three")])
//!     .await?;
//! partition.seek(base.unwrap_or(0));
//! for record in partition.read_batch(1, 1 << 20).await? {
//!     let record = record?;
//!     println!("{}: {:?}", record.offset, record.value);
//! }
//!
//! // Any generated message, at the highest version both sides speak.
//! let metadata = conn.request(kafkit_conn::messages::MetadataRequest::default()).await?;
//! println!("{} brokers", metadata.brokers.len());
//! partition.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **One driver task per connection.** [`Conn`] is a cheap `Clone`
//!   handle; a tokio task owns the socket. Requests from every clone are
//!   *pipelined*: each is written without waiting for earlier answers, at
//!   most [`ConnConfig::max_in_flight`] at once (later ones wait in the
//!   client). Answers are matched by correlation id, so callers may wait in
//!   any order. An answer with an unknown correlation id means the stream
//!   is out of step: the connection dies with
//!   [`ErrorKind::Desynchronized`].
//! - **Versions are negotiated.** [`Conn::dial`] sends ApiVersions (v4,
//!   falling back to the version an older broker names, then v0) and keeps
//!   the broker's ranges. [`Conn::request`] uses the highest version both
//!   sides speak, never one Kafka marks unstable, or fails with
//!   [`ErrorKind::UnsupportedVersion`] naming the API and both ranges;
//!   [`Conn::request_at`] pins a version.
//! - **Errors are typed and answer questions.** [`Error::is_retriable`],
//!   [`Error::code`] and [`Error::is_connection_error`] are what retry loops
//!   ask; errors carry the broker, API, topic and partition. Error codes
//!   *inside* a response are data for [`Conn::request`]; the kafka-go style
//!   calls turn them into errors, or into per-topic results where a call
//!   can partly fail ([`Conn::create_topics`]).
//! - **A connection dies once and stays dead.** After an IO error, a
//!   response that does not decode, an oversized frame (see
//!   [`ConnConfig::max_response_size`]: nothing is allocated for it), the
//!   broker closing the socket, the idle timeout or [`Conn::close`], every
//!   pending and later request fails with the error that killed it, and
//!   [`Conn::is_closed`] is true. Recovery is dialling again (reconnecting
//!   is the cluster layer's job).
//! - **Timeouts.** Connect ([`ConnConfig::connect_timeout`]), per request
//!   ([`ConnConfig::request_timeout`], plus a fetch's own max wait) and idle
//!   ([`ConnConfig::idle_timeout`]). A request that times out fails with
//!   [`ErrorKind::Timeout`] but does *not* kill the connection: its
//!   correlation entry is kept, so a late answer is read and discarded and
//!   the stream stays in step. A broker that never answers again uses up
//!   the in-flight slots, and every request then times out.
//! - **acks=0.** A `ProduceRequest` with `acks = 0` gets no answer from the
//!   broker; its future resolves once the request is written. Brokers that
//!   answer it anyway (tansu does) are tolerated: the answer names a request
//!   we sent, so it is discarded rather than taken for a desynchronised
//!   stream.
//! - **Observability.** Every request runs in a `kafka_request` tracing
//!   span (api, version, broker, correlation id) with a debug event giving
//!   its latency and error; [`Conn::stats`] reads atomic counters of
//!   requests, responses, errors, timeouts and bytes.
//!
//! # Transport
//!
//! [`Transport`] is the cluster-aware layer above [`Conn`] that the reader,
//! writer and admin crates share: it bootstraps from several addresses,
//! caches the metadata of the topics in use (a background task refreshes it
//! every [`TransportConfig::metadata_max_age`]; leadership and connection
//! errors reported to [`Transport::on_error`] refresh it soon, no more often
//! than [`TransportConfig::metadata_min_age`], with concurrent callers
//! sharing one request; an answer with an older leader epoch never replaces
//! a newer one, KIP-320), finds partition leaders and group or transaction
//! coordinators, and pools one [`Conn`] per broker and [`Purpose`], so a
//! long fetch poll never delays a produce or a heartbeat; brokers that leave
//! the cluster lose their connections. [`Transport::retry`] and
//! [`Transport::on_leader`] retry what [`Error::is_retriable`] allows, with
//! capped exponential [`Backoff`] and jitter, within an attempt limit and a
//! deadline.
//!
//! # Cancel safety
//!
//! Only the driver task writes to the socket, and it writes whole frames,
//! so dropping a request future never leaves half a frame on the wire.
//! Dropped before the request reached the driver, nothing is sent; after,
//! the request is still sent whole and its answer read and discarded.
//! Reading requests are therefore safe to cancel; a dropped produce or admin
//! request may or may not take effect. Each public async fn documents its
//! own cancel safety. `Drop` never blocks: when the last handle goes, the
//! driver task stops; [`Conn::close`] instead waits for in-flight requests
//! and reports how the connection ended.
//!
//! # TLS and SASL
//!
//! Both are settings of [`ConnConfig`], so every connection a [`Transport`]
//! dials (through [`TransportConfig::conn`]) uses them too.
//!
//! **TLS** ([`ConnConfig::tls`], the default `tls` feature) uses rustls with
//! the ring provider. A [`TlsConfig`] trusts the system roots or a CA file,
//! may present a client certificate (mutual TLS), and verifies the host part
//! of the dialled address unless [`TlsConfigBuilder::server_name`] names
//! another. Certificates and keys are read once, by
//! [`TlsConfigBuilder::build`]; the handshake runs right after the TCP
//! connect, within [`ConnConfig::connect_timeout`]. Failures are
//! [`ErrorKind::Tls`] with a [`TlsErrorKind`]: a bad CA file, a bad client
//! certificate, a broker certificate that fails verification, or a failed
//! handshake (including a broker that rejects the client certificate,
//! which TLS 1.3 reports only after the handshake: it is recognised while
//! the connection opens).
//!
//! ```no_run
//! use kafkit_conn::{Conn, ConnConfig, TlsConfig};
//!
//! # async fn example() -> Result<(), kafkit_conn::Error> {
//! let tls = TlsConfig::builder()
//!     .ca_file("/etc/kafka/ca.pem")
//!     .client_cert_files("/etc/kafka/client.pem", "/etc/kafka/client.key")
//!     .build()?;
//! let config = ConnConfig { tls: Some(tls), ..Default::default() };
//! let conn = Conn::dial_with("kafka-1.example.com:9093", config).await?;
//! # Ok(())
//! # }
//! ```
//!
//! **SASL** ([`ConnConfig::sasl`]) runs `SaslHandshake` and
//! `SaslAuthenticate` (KIP-152) right after version negotiation, before
//! [`Conn::dial_with`] returns: PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER
//! ship in [`sasl`], and any [`sasl::Mechanism`] plugs in. A rejection is
//! [`ErrorKind::Sasl`]; no error or `Debug` output quotes a secret. When
//! the broker limits the session (KIP-368, `connections.max.reauth.ms`),
//! the connection retires at 85% of the lifetime: it stops taking requests
//! (they fail with a retriable [`ErrorKind::Closed`]), answers those in
//! flight and closes, and [`Transport`] dials and authenticates a fresh
//! one. kafkit does not re-authenticate in place, which would need the
//! driver to hold back other requests during the exchange.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kafkit_conn::{Conn, ConnConfig, sasl::Scram};
//!
//! # async fn example() -> Result<(), kafkit_conn::Error> {
//! let config = ConnConfig {
//!     sasl: Some(Arc::new(Scram::sha512("alice", "alice-secret"))),
//!     ..Default::default()
//! };
//! let conn = Conn::dial_with("kafka-1.example.com:9093", config).await?;
//! println!("{:?}", conn.sasl_session());
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `tls` (default): [`TlsConfig`] and [`ConnConfig::tls`], with rustls
//!   and its ring provider (not aws-lc-rs, which needs a C toolchain and
//!   cmake). Without it, [`Conn::from_stream`] still runs a connection over
//!   any stream the caller has connected.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod conn;
mod driver;
mod error;
mod exchange;
#[cfg(test)]
mod fake_broker;
pub mod hooks;
pub mod latency;
mod ops_cluster;
mod ops_fetch;
mod ops_offsets;
mod ops_partition;
mod outbox;
pub mod sasl;
mod shared_types;
pub mod telemetry;
#[cfg(feature = "tls")]
mod tls;
mod topic_name;
mod transport;
mod versions;

pub use config::ConnConfig;
pub use conn::Conn;
pub use driver::Stats;
pub use error::{Error, ErrorKind, TlsErrorKind};
pub use hooks::{Hook, Hooks};
pub use ops_cluster::{Broker, Partition, TopicConfig, TopicResult};
pub use ops_fetch::Batch;
pub use ops_partition::{Message, PartitionConn, RequiredAcks, dial_leader, dial_leader_with};
pub use shared_types::{ConsumerGroupMetadata, IntoTopic, IsolationLevel, TopicPartition};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConfigBuilder};
pub use topic_name::{MAX_TOPIC_NAME_LEN, validate_topic_name};
pub use transport::{
    AnswerEndpoint, Backoff, BrokerStats, Cluster, CoordinatorKey, LeaderHint, MetadataRecovery,
    Purpose, Transport, TransportConfig, TransportStats, retry,
};

pub use kafkit_protocol::compression::Compression;
pub use kafkit_protocol::records::Record;
pub use kafkit_protocol::{ApiKey, ErrorCode, Request, messages};
pub use versions::{BrokerVersions, CLIENT_SOFTWARE_NAME, CLIENT_SOFTWARE_VERSION};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
