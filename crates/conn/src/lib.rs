//! Async Kafka broker connections (in progress).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod conn;
mod driver;
mod error;
mod ops_cluster;
mod ops_fetch;
mod ops_partition;
pub mod sasl;
mod versions;

pub use config::ConnConfig;
pub use conn::Conn;
pub use driver::Stats;
pub use error::{Error, ErrorKind};
pub use ops_cluster::{Broker, Partition, TopicConfig, TopicResult};
pub use ops_fetch::Batch;
pub use ops_partition::{Message, PartitionConn, RequiredAcks, dial_leader, dial_leader_with};

pub use kafkit_protocol::compression::Compression;
pub use kafkit_protocol::records::Record;
pub use kafkit_protocol::{ApiKey, ErrorCode, Request, messages};
pub use versions::{BrokerVersions, CLIENT_SOFTWARE_NAME, CLIENT_SOFTWARE_VERSION};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
