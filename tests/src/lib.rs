//! Test support for kafkit's integration tests: a real broker per test and a
//! tiny blocking client that speaks kafkit-protocol frames over a `TcpStream`.
//!
//! ```no_run
//! use kafkit_tests::{RawClient, TestBroker};
//!
//! let broker = TestBroker::start(); // Apache Kafka on free ports, killed at exit
//! broker.create_topic("greetings", 3);
//! let mut client = RawClient::connect(broker.addr());
//! let metadata = client.topic_metadata("greetings");
//! assert_eq!(metadata.partitions.len(), 3);
//! ```
//!
//! # Brokers
//!
//! [`TestBroker::start`] gives the run's broker: the Apache Kafka node that
//! `cargo xtask test-kafka` starts for the whole suite (passed in
//! `KAFKIT_BROKERS`), or else one node started once per test process from the
//! jars of `cargo xtask install-kafka`. `KAFKIT_TEST_BROKER=tansu` runs the
//! tests against tansu instead, where tests skip only the assertions that one
//! of its known bugs breaks, naming the bug, through
//! [`TestBroker::has_tansu_bug`]. [`KafkaCluster`] starts three nodes for the
//! fault tests, which kill, pause, stop and restart them.
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
mod cluster_scenario;
mod eventually;
mod fault_proxy;
pub mod go_java_peers;
mod group_run;
pub mod kafka;
pub mod leader_move;
pub mod mock_cluster;
mod ops;
mod paced_writes;
pub mod peer;
mod proxy;
mod reliability;
mod supervised;
mod telemetry_sink;
mod tls_proxy;

pub use broker::{BrokerKind, TestBroker, can_start_tansu, tansu_binary, unique_topic};
pub use client::{CLIENT_ID, RawClient, advertised};
pub use cluster_scenario::ClusterScenario;
pub use eventually::{PROPAGATION, eventually};
pub use fault_proxy::{FaultProxy, FaultStats};
pub use go_java_peers::{
    ConsumedRecord, Peer, PeerClient, PeerCommand, PeerHeader, PeerOutput, PeerRecord, ProduceAck,
};
pub use group_run::{Consumed, GroupRun, check_consumed};
pub use kafka::{KafkaCluster, KafkaOptions, Listener, can_start_kafka};
pub use mock_cluster::MockCluster;
pub use paced_writes::{
    Pacing, Written, check_written, expected_partitions, record_key, write_paced,
};
pub use peer::{CONFLUENT_KAFKA, librdkafka_library, librdkafka_python, run_python, venv_dir};
pub use proxy::{ScriptedServer, StallingProxy};
pub use reliability::{Reliability, reliability_full};
pub use telemetry_sink::{Push, TelemetrySink};
pub use tls_proxy::{TestPki, TlsProxy, socat_or_skip};
