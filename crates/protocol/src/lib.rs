//! Sans-IO implementation of the Apache Kafka wire protocol.
//!
//! Crate docs are completed at the end of the issue.

#![warn(missing_docs)]

pub mod codec;
pub mod compression;
mod error;
pub mod frame;
mod message;
pub mod messages;
pub mod records;

pub use codec::{TaggedFields, Uuid};
pub use error::{DecodeError, EncodeError};
pub use message::{Message, Request, Response, VersionRange};
pub use messages::{ApiKey, ErrorCode};
