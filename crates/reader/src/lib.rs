//! The kafkit consumer (work in progress).
#![forbid(unsafe_code)]

mod error;
mod fetcher;
mod message;
mod offsets;

pub mod group;

pub use error::{Error, ErrorKind};
pub use fetcher::{FetchConfig, FetchStats, Fetcher};
pub use message::{Header, HeaderIter, Headers, Message, TimestampType};
pub use offsets::{IsolationLevel, OffsetReset, StartOffset, TopicPartition};
