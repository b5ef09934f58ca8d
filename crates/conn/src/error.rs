//! The crate's one error type: [`Error`], which answers questions
//! ([`Error::is_retriable`], [`Error::code`], [`Error::kind`]) and carries
//! the context a log line needs (broker, API, topic and partition).
//!
//! Retry loops ask the error; they do not match on variants:
//!
//! ```
//! # fn retry(e: &kafkit_conn::Error) -> bool {
//! e.is_retriable()
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use kafkit_protocol::{ApiKey, DecodeError, EncodeError, ErrorCode, VersionRange};

use crate::sasl::SaslError;

/// Which TLS step failed. Returned inside [`ErrorKind::Tls`]; the error's
/// message and source say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The CA file could not be read, holds no certificate, or the system
    /// has no root certificates.
    BadCa,
    /// The client certificate or key could not be read or do not match.
    BadClientCertificate,
    /// The name to verify is not a valid DNS name or IP address.
    InvalidServerName,
    /// The broker's certificate failed verification (unknown issuer,
    /// expired, wrong name, ...). The peer may not be the broker it claims.
    CertificateRejected,
    /// The handshake failed otherwise: the peer does not speak TLS, shares
    /// no protocol version or cipher suite, or rejected us (with TLS 1.3 a
    /// broker that requires a client certificate says so only after the
    /// handshake, so this also covers a missing or unknown client
    /// certificate found while the connection opens).
    Handshake,
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsErrorKind::BadCa => "bad CA certificates",
            TlsErrorKind::BadClientCertificate => "bad client certificate or key",
            TlsErrorKind::InvalidServerName => "invalid server name",
            TlsErrorKind::CertificateRejected => "broker certificate rejected",
            TlsErrorKind::Handshake => "handshake failed",
        })
    }
}

/// What went wrong, without the context. Returned by [`Error::kind`].
///
/// `PartialEq` compares [`ErrorKind::Sasl`] errors by their message, since
/// a [`SaslError`] may wrap a token provider's error, which has no equality.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The socket failed (connect, read or write). The connection is dead.
    Io(std::io::ErrorKind),
    /// Connecting, or waiting for a response, took longer than configured.
    Timeout,
    /// The connection is closed: by [`Conn::close`](crate::Conn::close),
    /// by the broker (end of stream), by the idle timeout, or by an earlier
    /// fatal error on the same connection.
    Closed,
    /// kafkit and the broker share no version of `api`.
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The versions kafkit can send (stable versions only).
        ours: VersionRange,
        /// The versions the broker advertised, `None` if it lacks the API.
        broker: Option<VersionRange>,
    },
    /// The broker answered with an error code.
    Broker(ErrorCode),
    /// A response could not be decoded: the peer is not Kafka, or the
    /// stream is corrupt. The connection is dead.
    Protocol(DecodeError),
    /// A response carried a correlation id that no request is waiting for:
    /// the stream is out of step and the connection is dead.
    Desynchronized {
        /// The correlation id found in the response.
        correlation_id: i32,
    },
    /// A request could not be encoded (nothing was sent).
    Encode(EncodeError),
    /// An invalid argument or configuration (nothing was sent).
    Config(String),
    /// TLS failed: bad certificates or keys in the configuration, or the
    /// handshake with the broker. The kind says which step.
    Tls(TlsErrorKind),
    /// SASL authentication failed while the connection opened: the broker
    /// rejected the credentials or the mechanism, or the exchange broke
    /// down. A failed request during the exchange is reported as that
    /// request's own error (IO, timeout) instead.
    Sasl(SaslError),
}

impl PartialEq for ErrorKind {
    fn eq(&self, other: &Self) -> bool {
        use ErrorKind as K;
        match (self, other) {
            (K::Io(a), K::Io(b)) => a == b,
            (K::Timeout, K::Timeout) | (K::Closed, K::Closed) => true,
            (
                K::UnsupportedVersion { api, ours, broker },
                K::UnsupportedVersion {
                    api: a,
                    ours: o,
                    broker: b,
                },
            ) => (api, ours, broker) == (a, o, b),
            (K::Broker(a), K::Broker(b)) => a == b,
            (K::Protocol(a), K::Protocol(b)) => a == b,
            (K::Desynchronized { correlation_id: a }, K::Desynchronized { correlation_id: b }) => {
                a == b
            }
            (K::Encode(a), K::Encode(b)) => a == b,
            (K::Config(a), K::Config(b)) => a == b,
            (K::Tls(a), K::Tls(b)) => a == b,
            (K::Sasl(a), K::Sasl(b)) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
                    && a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

impl Eq for ErrorKind {}

/// An error from `kafkit-conn`: an [`ErrorKind`] with context.
///
/// Cheap to clone (a connection's fatal error is handed to every request
/// that was waiting on it).
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    broker: Option<String>,
    api: Option<ApiKey>,
    topic: Option<String>,
    partition: Option<i32>,
    message: Option<String>,
    source: Option<Arc<std::io::Error>>,
}

impl Error {
    /// An error of `kind` without context.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                broker: None,
                api: None,
                topic: None,
                partition: None,
                message: None,
                source: None,
            }),
        }
    }

    pub(crate) fn io(e: std::io::Error) -> Error {
        let mut err = Error::new(ErrorKind::Io(e.kind()));
        err.inner.source = Some(Arc::new(e));
        err
    }

    pub(crate) fn closed(why: &str) -> Error {
        Error::new(ErrorKind::Closed).with_message(why)
    }

    pub(crate) fn config(why: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config(why.into()))
    }

    /// The [`ErrorKind::Broker`] error of `code`, for a code a client
    /// decided on (a leader missing from the metadata is
    /// `LEADER_NOT_AVAILABLE`) or one an answer carried and
    /// [`check`](Error::check) already found not to be `NONE`.
    /// [`ErrorCode::NONE`] is not an error and becomes
    /// `UNKNOWN_SERVER_ERROR`.
    pub fn from_code(code: ErrorCode) -> Error {
        let code = match code {
            ErrorCode::NONE => ErrorCode::UNKNOWN_SERVER_ERROR,
            code => code,
        };
        Error::new(ErrorKind::Broker(code))
    }

    /// [`from_code`](Error::from_code) with the broker's `message`, when
    /// an answer carried one (an empty one counts as none).
    pub fn from_code_with_message(code: ErrorCode, message: Option<&str>) -> Error {
        let err = Error::from_code(code);
        match message {
            Some(m) if !m.is_empty() => err.with_message(m),
            _ => err,
        }
    }

    /// `Ok(())` for [`ErrorCode::NONE`], else a [`ErrorKind::Broker`] error
    /// carrying the broker's `message` when it sent one. Takes a response's
    /// `error_code` and `error_message` fields as they are.
    pub fn check(code: ErrorCode, message: Option<&str>) -> Result<(), Error> {
        match code {
            ErrorCode::NONE => Ok(()),
            code => Err(Error::from_code_with_message(code, message)),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The broker's error code, for [`ErrorKind::Broker`] errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self.inner.kind {
            ErrorKind::Broker(code) => Some(code),
            _ => None,
        }
    }

    /// True when the same request may succeed if retried, possibly on a new
    /// connection: IO errors, timeouts, closed connections and the broker
    /// codes Kafka marks retriable. Decode, encode, version and
    /// configuration errors are not: retrying repeats them.
    pub fn is_retriable(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Io(_) | ErrorKind::Timeout | ErrorKind::Closed => true,
            ErrorKind::Broker(code) => code.is_retriable(),
            _ => false,
        }
    }

    /// True when this error killed the connection it happened on (IO,
    /// decode, desynchronisation, closed): a caller must dial again.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Io(_)
                | ErrorKind::Closed
                | ErrorKind::Protocol(_)
                | ErrorKind::Desynchronized { .. }
        )
    }

    /// The broker address the error happened on, if known.
    pub fn broker(&self) -> Option<&str> {
        self.inner.broker.as_deref()
    }

    /// The API of the request that failed, if any.
    pub fn api(&self) -> Option<ApiKey> {
        self.inner.api
    }

    /// The topic the error is about, if any.
    pub fn topic(&self) -> Option<&str> {
        self.inner.topic.as_deref()
    }

    /// The partition the error is about, if any.
    pub fn partition(&self) -> Option<i32> {
        self.inner.partition
    }

    /// The IO error underneath, for [`ErrorKind::Io`] errors.
    #[cfg(feature = "tls")]
    pub(crate) fn io_source(&self) -> Option<&std::io::Error> {
        self.inner.source.as_deref()
    }

    /// Adds the broker address (kept if already set).
    pub fn with_broker(mut self, broker: &str) -> Error {
        self.inner.broker.get_or_insert_with(|| broker.to_owned());
        self
    }

    /// Adds the API of the failed request (kept if already set).
    pub fn with_api(mut self, api: ApiKey) -> Error {
        self.inner.api.get_or_insert(api);
        self
    }

    /// Adds the topic and, when known, the partition.
    pub fn with_topic(mut self, topic: &str, partition: Option<i32>) -> Error {
        self.inner.topic = Some(topic.to_owned());
        self.inner.partition = partition;
        self
    }

    /// Adds a human-readable detail (such as the broker's error message).
    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.inner.message = Some(message.into());
        self
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::io(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::new(ErrorKind::Protocol(e))
    }
}

impl From<SaslError> for Error {
    /// A request that failed during the exchange keeps its own kind (a
    /// timeout stays retriable); everything else is [`ErrorKind::Sasl`].
    fn from(e: SaslError) -> Error {
        match e {
            SaslError::Connection(mut inner) => {
                inner
                    .inner
                    .message
                    .get_or_insert_with(|| "during SASL authentication".to_owned());
                inner
            }
            e => Error::new(ErrorKind::Sasl(e)),
        }
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::new(ErrorKind::Encode(e))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(kind) => write!(f, "I/O error ({kind})"),
            ErrorKind::Timeout => f.write_str("timed out"),
            ErrorKind::Closed => f.write_str("connection closed"),
            ErrorKind::UnsupportedVersion { api, ours, broker } => {
                write!(
                    f,
                    "no common version of {api}: kafkit speaks v{}-{}, ",
                    ours.min, ours.max
                )?;
                match broker {
                    Some(b) => write!(f, "the broker v{}-{}", b.min, b.max),
                    None => f.write_str("the broker does not support it"),
                }
            }
            ErrorKind::Broker(code) => match code.name() {
                Some(name) => write!(f, "broker error {name} ({})", code.0),
                None => write!(f, "broker error {}", code.0),
            },
            ErrorKind::Protocol(e) => write!(f, "malformed response (is the peer Kafka?): {e}"),
            ErrorKind::Desynchronized { correlation_id } => write!(
                f,
                "response with unknown correlation id {correlation_id}: stream out of step"
            ),
            ErrorKind::Encode(e) => write!(f, "cannot encode request: {e}"),
            ErrorKind::Config(why) => write!(f, "invalid configuration: {why}"),
            ErrorKind::Tls(kind) => write!(f, "TLS: {kind}"),
            ErrorKind::Sasl(e) => write!(f, "SASL authentication failed: {e}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        fmt::Display::fmt(&i.kind, f)?;
        if let Some(m) = &i.message {
            write!(f, ": {m}")?;
        }
        if let Some(api) = i.api {
            write!(f, " ({api}")?;
            if let Some(b) = &i.broker {
                write!(f, " to {b}")?;
            }
            f.write_str(")")?;
        } else if let Some(b) = &i.broker {
            write!(f, " (broker {b})")?;
        }
        if let Some(t) = &i.topic {
            write!(f, " [topic {t}")?;
            if let Some(p) = i.partition {
                write!(f, " partition {p}")?;
            }
            f.write_str("]")?;
        }
        if let Some(source) = &i.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Error")
            .field("kind", &i.kind)
            .field("broker", &i.broker)
            .field("api", &i.api)
            .field("topic", &i.topic)
            .field("partition", &i.partition)
            .field("message", &i.message)
            .field("source", &i.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_codes_answer_retriable_and_code() {
        let e = Error::check(ErrorCode(6), None).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(e.is_retriable());
        let e = Error::check(ErrorCode(36), Some("topic exists")).unwrap_err();
        assert!(!e.is_retriable());
        assert!(e.to_string().contains("topic exists"), "{e}");
        assert!(Error::check(ErrorCode(0), Some("ignored")).is_ok());
    }

    #[test]
    fn connection_failures_are_retriable_decode_errors_are_not() {
        let io = Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(io.is_retriable() && io.is_connection_error());
        assert!(std::error::Error::source(&io).is_some());
        assert!(Error::new(ErrorKind::Timeout).is_retriable());
        assert!(Error::closed("idle").is_retriable());
        let decode = Error::from(DecodeError::UnknownApiKey(999));
        assert!(!decode.is_retriable() && decode.is_connection_error());
        assert_eq!(decode.code(), None);
        assert!(!Error::config("bad").is_retriable());
    }

    #[test]
    fn display_carries_context() {
        let e = Error::check(ErrorCode(3), None)
            .unwrap_err()
            .with_broker("127.0.0.1:9092")
            .with_api(ApiKey::Produce)
            .with_topic("orders", Some(2));
        let text = e.to_string();
        for part in [
            "UNKNOWN_TOPIC_OR_PARTITION",
            "127.0.0.1:9092",
            "orders",
            "partition 2",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert_eq!(e.topic(), Some("orders"));
        assert_eq!(e.partition(), Some(2));
        assert_eq!(e.api(), Some(ApiKey::Produce));
        assert_eq!(e.broker(), Some("127.0.0.1:9092"));
    }

    #[test]
    fn unsupported_version_names_both_ranges() {
        let e = Error::new(ErrorKind::UnsupportedVersion {
            api: ApiKey::Fetch,
            ours: VersionRange::new(4, 18),
            broker: Some(VersionRange::new(0, 3)),
        });
        let text = e.to_string();
        assert!(text.contains("v4-18") && text.contains("v0-3"), "{text}");
        assert!(!e.is_retriable());
    }

    #[test]
    fn sasl_kinds_compare_by_variant_and_message() {
        let nonce = ErrorKind::Sasl(SaslError::InvalidNonce);
        assert_eq!(nonce, ErrorKind::Sasl(SaslError::InvalidNonce));
        assert_ne!(nonce, ErrorKind::Sasl(SaslError::ServerSignatureMismatch));
        assert_ne!(nonce, ErrorKind::Timeout);
        assert!(!Error::new(nonce).is_retriable());
    }

    #[test]
    fn a_request_failing_mid_sasl_keeps_its_own_kind() {
        let e = Error::from(SaslError::Connection(Error::new(ErrorKind::Timeout)));
        assert_eq!(e.kind(), &ErrorKind::Timeout);
        assert!(e.is_retriable());
        assert!(e.to_string().contains("during SASL authentication"), "{e}");
        let rejected = Error::from(SaslError::Rejected {
            code: ErrorCode::SASL_AUTHENTICATION_FAILED,
            message: Some("bad password".into()),
        });
        assert!(matches!(rejected.kind(), ErrorKind::Sasl(_)));
        assert!(rejected.to_string().contains("bad password"), "{rejected}");
    }

    #[test]
    fn tls_kinds_display_the_failed_step() {
        let e = Error::new(ErrorKind::Tls(TlsErrorKind::CertificateRejected));
        assert_eq!(e.to_string(), "TLS: broker certificate rejected");
        assert!(!e.is_retriable());
    }
}
