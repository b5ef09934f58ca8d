//! kafkit: a pure-Rust Apache Kafka client (facade; work in progress).
#![forbid(unsafe_code)]
pub use kafkit_conn as conn;
