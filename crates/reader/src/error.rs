//! The crate's one error type: [`Error`], an [`ErrorKind`] with context
//! (topic, partition, offset), which answers the questions retry loops ask
//! ([`Error::is_retriable`], [`Error::code`], [`Error::kind`]) the way
//! `kafkit_conn::Error` does.
//!
//! Connection-level failures (IO, timeouts, broker error codes, undecodable
//! responses) keep their [`kafkit_conn::Error`], reachable through
//! [`Error::conn`]; the reader adds its own kinds: an offset out of range
//! under [`OffsetReset::Error`](crate::OffsetReset::Error), a closed reader,
//! an invalid configuration, a consumer-group failure, and a corrupt record
//! batch.

use std::fmt;
use std::sync::Arc;

use kafkit_protocol::{DecodeError, ErrorCode};

/// What went wrong, without the context. Returned by [`Error::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection layer failed: IO, timeout, a broker error code, an
    /// unsupported version... The [`kafkit_conn::ErrorKind`] says which;
    /// [`Error::conn`] gives the whole connection error.
    Conn(kafkit_conn::ErrorKind),
    /// The position of a partition is outside the offsets the broker holds
    /// (`OFFSET_OUT_OF_RANGE`) and the reset policy is
    /// [`OffsetReset::Error`](crate::OffsetReset::Error). The partition is
    /// not fetched again until it is sought.
    OffsetOutOfRange,
    /// After a leader change, the new leader's log diverges from the
    /// records fetched before it (KIP-320: an unclean leader election, or
    /// records written with acks below all and lost in the failover), and
    /// the reset policy is [`OffsetReset::Error`](crate::OffsetReset::Error).
    /// The logs agree up to `diverged_at`; [`Error::offset`] is the fetch
    /// position. The partition is not fetched again until it is sought.
    LogTruncation {
        /// The first offset at which the new leader's log may differ.
        diverged_at: i64,
    },
    /// A record batch in a fetch response is corrupt (bad CRC, bad length,
    /// undecodable compressed data). The partition is not fetched again
    /// until it is sought past the batch.
    Corrupt(DecodeError),
    /// The reader or fetcher is closed.
    Closed,
    /// An invalid argument or configuration.
    Config(String),
    /// A consumer-group operation failed on the client side (the broker's
    /// own group error codes are [`ErrorKind::Conn`] with a code).
    Group(String),
}

/// An error from `kafkit-reader`: an [`ErrorKind`] with context.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    conn: Option<kafkit_conn::Error>,
    topic: Option<Arc<str>>,
    partition: Option<i32>,
    offset: Option<i64>,
    message: Option<String>,
}

impl Error {
    /// An error of `kind` without context.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                conn: None,
                topic: None,
                partition: None,
                offset: None,
                message: None,
            }),
        }
    }

    /// An [`ErrorKind::Config`] error.
    pub fn config(why: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config(why.into()))
    }

    /// An [`ErrorKind::Group`] error.
    pub fn group(why: impl Into<String>) -> Error {
        Error::new(ErrorKind::Group(why.into()))
    }

    /// An [`ErrorKind::Closed`] error saying why.
    pub fn closed(why: impl Into<String>) -> Error {
        Error::new(ErrorKind::Closed).with_message(why)
    }

    /// An [`ErrorKind::OffsetOutOfRange`] error for `topic`/`partition`
    /// at `offset`.
    pub fn offset_out_of_range(topic: Arc<str>, partition: i32, offset: i64) -> Error {
        Error::new(ErrorKind::OffsetOutOfRange)
            .with_partition(topic, partition)
            .with_offset(offset)
    }

    /// An [`ErrorKind::LogTruncation`] error for `topic`/`partition`,
    /// fetched up to `offset`, whose log diverged at `diverged_at`.
    pub fn log_truncation(topic: Arc<str>, partition: i32, offset: i64, diverged_at: i64) -> Error {
        Error::new(ErrorKind::LogTruncation { diverged_at })
            .with_partition(topic, partition)
            .with_offset(offset)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The connection error underneath, for [`ErrorKind::Conn`].
    pub fn conn(&self) -> Option<&kafkit_conn::Error> {
        self.inner.conn.as_ref()
    }

    /// The broker's error code: the connection error's, or
    /// `OFFSET_OUT_OF_RANGE` for [`ErrorKind::OffsetOutOfRange`].
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.inner.kind {
            ErrorKind::OffsetOutOfRange => Some(ErrorCode::OFFSET_OUT_OF_RANGE),
            _ => self.inner.conn.as_ref().and_then(kafkit_conn::Error::code),
        }
    }

    /// True when the same operation may succeed if tried again: what
    /// [`kafkit_conn::Error::is_retriable`] says for connection errors.
    /// Reader kinds are not: an out-of-range offset or a corrupt batch
    /// needs a seek, a closed reader stays closed, a bad configuration
    /// stays bad.
    pub fn is_retriable(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Conn(_) => self
                .inner
                .conn
                .as_ref()
                .is_some_and(kafkit_conn::Error::is_retriable),
            _ => false,
        }
    }

    /// The topic the error is about, if any.
    pub fn topic(&self) -> Option<&str> {
        self.inner
            .topic
            .as_deref()
            .or_else(|| self.inner.conn.as_ref()?.topic())
    }

    /// The partition the error is about, if any.
    pub fn partition(&self) -> Option<i32> {
        self.inner
            .partition
            .or_else(|| self.inner.conn.as_ref()?.partition())
    }

    /// The offset the error is about (the position that was out of range,
    /// the batch that was corrupt), if any.
    pub fn offset(&self) -> Option<i64> {
        self.inner.offset
    }

    /// Adds the topic and partition.
    pub fn with_partition(mut self, topic: Arc<str>, partition: i32) -> Error {
        self.inner.topic = Some(topic);
        self.inner.partition = Some(partition);
        self
    }

    /// Adds the offset.
    pub fn with_offset(mut self, offset: i64) -> Error {
        self.inner.offset = Some(offset);
        self
    }

    /// Adds a human-readable detail.
    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.inner.message = Some(message.into());
        self
    }
}

impl From<kafkit_conn::Error> for Error {
    fn from(e: kafkit_conn::Error) -> Error {
        let mut err = Error::new(ErrorKind::Conn(e.kind().clone()));
        err.inner.conn = Some(e);
        err
    }
}

impl From<DecodeError> for Error {
    /// A record batch that does not decode: [`ErrorKind::Corrupt`].
    fn from(e: DecodeError) -> Error {
        Error::new(ErrorKind::Corrupt(e))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Conn(kind) => fmt::Display::fmt(kind, f),
            ErrorKind::OffsetOutOfRange => {
                f.write_str("offset out of range (reset policy is Error: seek to continue)")
            }
            ErrorKind::LogTruncation { diverged_at } => write!(
                f,
                "the new leader's log diverges from the records fetched, from offset \
                 {diverged_at} (reset policy is Error: seek to continue)"
            ),
            ErrorKind::Corrupt(e) => write!(f, "corrupt record batch: {e}"),
            ErrorKind::Closed => f.write_str("reader closed"),
            ErrorKind::Config(why) => write!(f, "invalid configuration: {why}"),
            ErrorKind::Group(why) => write!(f, "consumer group: {why}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        match &i.conn {
            // The connection error already names its kind and context.
            Some(conn) => fmt::Display::fmt(conn, f)?,
            None => fmt::Display::fmt(&i.kind, f)?,
        }
        if let Some(m) = &i.message {
            write!(f, ": {m}")?;
        }
        if let Some(t) = &i.topic {
            write!(f, " [topic {t}")?;
            if let Some(p) = i.partition {
                write!(f, " partition {p}")?;
            }
            if let Some(o) = i.offset {
                write!(f, " offset {o}")?;
            }
            f.write_str("]")?;
        } else if let Some(o) = i.offset {
            write!(f, " [offset {o}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Error")
            .field("kind", &i.kind)
            .field("conn", &i.conn)
            .field("topic", &i.topic)
            .field("partition", &i.partition)
            .field("offset", &i.offset)
            .field("message", &i.message)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ErrorKind::Corrupt(e) => Some(e),
            _ => self
                .inner
                .conn
                .as_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: i16) -> kafkit_conn::Error {
        kafkit_conn::Error::check(ErrorCode(code), None).unwrap_err()
    }

    #[test]
    fn connection_errors_keep_their_code_and_retriability() {
        let e = Error::from(broker(6).with_topic("orders", Some(3)));
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(e.is_retriable());
        assert_eq!((e.topic(), e.partition()), (Some("orders"), Some(3)));
        assert!(matches!(
            e.kind(),
            ErrorKind::Conn(kafkit_conn::ErrorKind::Broker(_))
        ));
        assert!(e.conn().is_some());
        let fatal = Error::from(broker(29)); // TOPIC_AUTHORIZATION_FAILED
        assert!(!fatal.is_retriable());
        let timeout = Error::from(kafkit_conn::Error::new(kafkit_conn::ErrorKind::Timeout));
        assert!(timeout.is_retriable());
        assert_eq!(timeout.code(), None);
    }

    #[test]
    fn offset_out_of_range_names_where_and_is_not_retriable() {
        let e = Error::offset_out_of_range("orders".into(), 2, 42);
        assert_eq!(e.code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
        assert!(!e.is_retriable());
        assert_eq!(e.offset(), Some(42));
        let text = e.to_string();
        for part in ["out of range", "orders", "partition 2", "offset 42"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn log_truncation_names_the_divergence_point() {
        let e = Error::log_truncation("orders".into(), 1, 120, 95);
        assert_eq!(e.kind(), &ErrorKind::LogTruncation { diverged_at: 95 });
        assert!(!e.is_retriable());
        assert_eq!(e.offset(), Some(120));
        let text = e.to_string();
        for part in ["diverges", "offset 95", "orders", "partition 1"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn reader_kinds_are_not_retriable() {
        for e in [
            Error::closed("dropped"),
            Error::config("max_bytes must be positive"),
            Error::group("no group id"),
            Error::from(DecodeError::UnsupportedMagic(7)),
        ] {
            assert!(!e.is_retriable(), "{e}");
            assert_eq!(e.code(), None);
        }
        let corrupt = Error::from(DecodeError::UnsupportedMagic(7));
        assert!(std::error::Error::source(&corrupt).is_some());
        assert!(Error::closed("dropped").to_string().contains("dropped"));
    }
}
