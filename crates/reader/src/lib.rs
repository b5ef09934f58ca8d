//! The kafkit consumer (work in progress).
#![forbid(unsafe_code)]

mod error;
mod fetcher;
mod message;
mod offsets;

mod commit;
mod config;
pub mod group;
mod reader;

pub use commit::Committer;
pub use config::{ReaderBuilder, ReaderConfig};
pub use reader::{Reader, ReaderStats};

pub use error::{Error, ErrorKind};
pub use fetcher::{FetchConfig, FetchStats, Fetcher, MessageSet};
pub use message::{Header, HeaderIter, Headers, Message, TimestampType};
pub use offsets::{IsolationLevel, OffsetReset, StartOffset, TopicPartition};
