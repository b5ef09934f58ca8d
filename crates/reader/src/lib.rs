//! The kafkit consumer (work in progress).
#![forbid(unsafe_code)]

mod error;
mod message;
mod offsets;

pub mod group;

pub use error::{Error, ErrorKind};
pub use message::{Header, HeaderIter, Headers, Message, TimestampType};
pub use offsets::{IsolationLevel, OffsetReset, StartOffset, TopicPartition};
