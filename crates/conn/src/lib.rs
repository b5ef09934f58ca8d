//! Async Kafka broker connections (in progress).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod sasl;
