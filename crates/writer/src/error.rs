//! The crate's one error type: [`Error`]. Retry loops and callers ask it
//! questions ([`Error::is_retriable`], [`Error::code`], and for
//! transactions [`Error::is_fatal`] and [`Error::is_abortable`]) rather
//! than match on variants.

use std::sync::Arc;
use std::time::Duration;

use kafkit_protocol::{EncodeError, ErrorCode};

/// An error from the writer: why a record, a write or the writer failed.
///
/// Cheap to clone (one failed batch hands the same error to each of its
/// records).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message names a topic and the writer has one too; kafkit does
    /// not guess which one is meant.
    #[error("the message names topic {message:?} but the writer is bound to topic {writer:?}")]
    AmbiguousTopic {
        /// The writer-wide topic.
        writer: Arc<str>,
        /// The message's topic.
        message: String,
    },
    /// Neither the message nor the writer names a topic.
    #[error("the message names no topic and the writer has none")]
    MissingTopic,
    /// The buffer (`buffer_bytes` or `max_buffered_records`) is full and the
    /// call does not wait (see [`Writer::try_send`](crate::Writer::try_send)).
    #[error("the writer's buffer is full ({records} records, {bytes} bytes buffered)")]
    BufferFull {
        /// Records buffered when the write was refused.
        records: usize,
        /// Bytes buffered when the write was refused.
        bytes: usize,
    },
    /// One record is larger than `max_message_bytes`.
    #[error("a record of about {size} bytes exceeds max_message_bytes ({max})")]
    MessageTooLarge {
        /// The record's estimated encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An explicit partition the topic does not have.
    #[error("topic {topic:?} has no partition {partition} ({count} partitions)")]
    NoSuchPartition {
        /// The topic.
        topic: Arc<str>,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },
    /// The writer is closed (or closing): nothing more is accepted.
    #[error("the writer is closed")]
    Closed,
    /// The record was not acknowledged within `delivery_timeout`.
    #[error("no acknowledgement within the delivery timeout ({0:?})")]
    DeliveryTimeout(Duration),
    /// An invalid configuration, found by [`WriterBuilder::build`](crate::WriterBuilder::build).
    #[error("invalid writer configuration: {0}")]
    Config(String),
    /// The record could not be encoded (nothing was sent).
    #[error("encoding the record batch failed: {0}")]
    Encode(#[from] EncodeError),
    /// A broker or connection error: the broker's error code for the
    /// partition, or the connection failure, with topic, partition and
    /// broker context. After `max_attempts` this is the last error seen.
    #[error(transparent)]
    Kafka(#[from] kafkit_conn::Error),
    /// A write, or a transaction call, on a transactional writer with no
    /// transaction open: call
    /// [`begin_transaction`](crate::Writer::begin_transaction) first. Also
    /// the answer to `commit`/`abort` without a transaction.
    #[error("no transaction is open: call begin_transaction first")]
    NoTransaction,
    /// A transaction call the writer's transaction state does not allow
    /// (`begin_transaction` twice, a write while committing, a transaction
    /// call on a writer without `transactional_id`...). Nothing was done.
    #[error("{operation} is not allowed while the transaction is {state}")]
    TransactionState {
        /// The call that was refused.
        operation: &'static str,
        /// The state it found (`ready`, `in transaction`, `committing`,
        /// `aborting`, `failed (abortable)`, `failed (fatal)`, `not
        /// transactional`).
        state: &'static str,
    },
    /// The record was not sent because its transaction was aborted
    /// ([`abort_transaction`](crate::Writer::abort_transaction), or the
    /// transaction had already failed).
    #[error("the record's transaction was aborted before it was sent")]
    TransactionAborted,
    /// The current transaction failed; the writer is fine. Only
    /// [`abort_transaction`](crate::Writer::abort_transaction) is allowed
    /// next, after which a new transaction may begin. Holds the cause.
    #[error("the transaction failed and must be aborted: {0}")]
    Abortable(Box<Error>),
    /// The writer can no longer write transactionally (fenced by a newer
    /// instance with the same `transactional_id`, not authorized, the
    /// broker lacks a needed API): drop it and build a new one. Holds the
    /// cause.
    #[error("the transactional writer failed for good: {0}")]
    Fatal(Box<Error>),
    /// [`flush`](crate::Writer::flush) or [`close`](crate::Writer::close):
    /// some records written since the previous flush failed; each one's own
    /// error went to its caller. `last` is the latest of them.
    #[error("{failed} records failed since the last flush; the latest error: {last}")]
    RecordsFailed {
        /// How many records failed.
        failed: u64,
        /// The latest failure.
        last: Box<Error>,
    },
}

impl Error {
    /// True when the same write may succeed if tried again later: broker
    /// errors Kafka marks retriable, connection failures, a full buffer and
    /// a delivery timeout.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::BufferFull { .. } | Error::DeliveryTimeout(_) => true,
            Error::Kafka(e) => e.is_retriable(),
            Error::RecordsFailed { last, .. } => last.is_retriable(),
            _ => false,
        }
    }

    /// True when a transactional writer is unusable: it was fenced
    /// (`PRODUCER_FENCED`, or `INVALID_PRODUCER_EPOCH` on a transactional
    /// request) by a newer writer with the same `transactional_id`, is not
    /// authorized (`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`), or the broker
    /// does not support what transactions need (`UNSUPPORTED_VERSION`).
    /// Drop the writer and build a new one.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Fatal(_) => true,
            Error::RecordsFailed { last, .. } => last.is_fatal(),
            _ => false,
        }
    }

    /// True when the current transaction failed but the writer is fine:
    /// call [`abort_transaction`](crate::Writer::abort_transaction), then
    /// begin again (and redo the transaction's work).
    pub fn is_abortable(&self) -> bool {
        match self {
            Error::Abortable(_) => true,
            Error::RecordsFailed { last, .. } => last.is_abortable(),
            _ => false,
        }
    }

    /// The broker's error code, when a broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kafka(e) => e.code(),
            Error::RecordsFailed { last, .. } => last.code(),
            Error::Abortable(cause) | Error::Fatal(cause) => cause.code(),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn broker(code: ErrorCode, message: Option<&str>) -> Error {
        Error::Kafka(kafkit_conn::Error::from_code_with_message(code, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_answer_questions() {
        let e = Error::broker(ErrorCode::NOT_LEADER_OR_FOLLOWER, None);
        assert!(e.is_retriable());
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        let e = Error::broker(ErrorCode::MESSAGE_TOO_LARGE, Some("too big"));
        assert!(!e.is_retriable());
        assert!(e.to_string().contains("too big"), "{e}");
        assert!(!Error::MissingTopic.is_retriable());
        assert!(
            Error::BufferFull {
                records: 1,
                bytes: 2
            }
            .is_retriable()
        );
        let wrapped = Error::RecordsFailed {
            failed: 3,
            last: Box::new(Error::broker(ErrorCode::REQUEST_TIMED_OUT, None)),
        };
        assert_eq!(wrapped.code(), Some(ErrorCode::REQUEST_TIMED_OUT));
        assert!(wrapped.to_string().starts_with("3 records failed"));
    }

    #[test]
    fn transaction_errors_say_what_to_do_next() {
        let fenced = Error::Fatal(Box::new(Error::broker(ErrorCode::PRODUCER_FENCED, None)));
        assert!(fenced.is_fatal() && !fenced.is_abortable() && !fenced.is_retriable());
        assert_eq!(fenced.code(), Some(ErrorCode::PRODUCER_FENCED));
        let failed = Error::Abortable(Box::new(Error::broker(ErrorCode::ILLEGAL_GENERATION, None)));
        assert!(failed.is_abortable() && !failed.is_fatal());
        assert_eq!(failed.code(), Some(ErrorCode::ILLEGAL_GENERATION));
        let wrapped = Error::RecordsFailed {
            failed: 1,
            last: Box::new(failed),
        };
        assert!(wrapped.is_abortable());
        // A plain broker error is neither: only the transaction decides.
        let plain = Error::broker(ErrorCode::PRODUCER_FENCED, None);
        assert!(!plain.is_fatal() && !plain.is_abortable());
        let misuse = Error::TransactionState {
            operation: "begin_transaction",
            state: "in transaction",
        };
        assert_eq!(
            misuse.to_string(),
            "begin_transaction is not allowed while the transaction is in transaction"
        );
    }

    #[test]
    fn error_stays_small() {
        // Kept in a per-record result vector: keep it a few words.
        assert!(std::mem::size_of::<Error>() <= 48);
    }
}
