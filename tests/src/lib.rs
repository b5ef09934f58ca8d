//! Test support for kafkit's integration tests: a real broker per test and a
//! tiny blocking client that speaks kafkit-protocol frames over a `TcpStream`.
//!
//! ```no_run
//! use kafkit_tests::{RawClient, TestBroker};
//!
//! let broker = TestBroker::start(); // tansu on a free port, killed on drop
//! broker.create_topic("greetings", 3);
//! let mut client = RawClient::connect(broker.addr());
//! let metadata = client.topic_metadata("greetings");
//! assert_eq!(metadata.partitions.len(), 3);
//! ```
//!
//! # Brokers
//!
//! [`TestBroker::start`] starts tansu (a Kafka-compatible broker, installed
//! by `cargo xtask install-tansu` at `<workspace>/.tools/tansu`, or named by
//! `KAFKIT_TANSU`) with in-memory storage. `KAFKIT_BROKERS=host:port,...`
//! points the tests at an external cluster instead, such as
//! `docker/docker-compose.yml`'s Apache Kafka. Tests that meet one of tansu's
//! known bugs skip only that assertion, naming the bug, through
//! [`TestBroker::has_tansu_bug`].
//!
//! # Client
//!
//! [`RawClient`] sends one request at a time over a blocking `TcpStream`,
//! framed by `kafkit_protocol::frame`, at the highest version both sides
//! speak ([`RawClient::send`]) or at an explicit one ([`RawClient::request`]).
//! Its methods for topics, metadata, offsets, produce and fetch live in
//! `ops.rs`. It panics on any failure: in a test, that is the failure.

mod broker;
mod client;
mod fault_proxy;
pub mod mock_cluster;
mod ops;
pub mod peer;
mod proxy;
mod tls_proxy;

pub use broker::{TestBroker, can_start_tansu, tansu_binary, unique_topic};
pub use client::{CLIENT_ID, RawClient, advertised};
pub use fault_proxy::{FaultProxy, FaultStats, Reliability, reliability_full};
pub use mock_cluster::MockCluster;
pub use peer::{CONFLUENT_KAFKA, librdkafka_library, librdkafka_python, run_python, venv_dir};
pub use proxy::{ScriptedServer, StallingProxy};
pub use tls_proxy::{TestPki, TlsProxy, socat_or_skip};
