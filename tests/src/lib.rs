//! Test support for kafkit's integration tests: a real broker per test and a
//! tiny blocking client that speaks kafkit-protocol frames over a `TcpStream`.
//!
//! ```no_run
//! use kafkit_tests::TestBroker;
//!
//! let broker = TestBroker::start(); // tansu on a free port, killed on drop
//! broker.create_topic("greetings", 3);
//! println!("bootstrap: {}", broker.bootstrap());
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

mod broker;
mod client;
mod ops;

pub use broker::{TestBroker, tansu_binary, unique_topic};
pub use client::{CLIENT_ID, RawClient, advertised};
