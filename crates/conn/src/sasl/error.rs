//! [`SaslError`]: why an exchange failed, never quoting a client secret.

use std::error::Error as StdError;
use std::sync::Arc;

use kafkit_protocol::ErrorCode;

/// Why a SASL exchange failed.
///
/// No variant carries a password or a token: messages from the server are
/// kept (they help diagnose a rejection), client secrets are not. Cheap to
/// clone, so a connection can hand one failure to every waiting request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server's message does not follow the mechanism's grammar.
    #[error("malformed SASL server message: {0}")]
    BadServerMessage(&'static str),
    /// The SCRAM server nonce does not extend the nonce the client sent
    /// (RFC 5802 §5.1), so the message does not belong to this exchange.
    #[error("SCRAM server nonce does not extend the client nonce")]
    InvalidNonce,
    /// The SCRAM iteration count is below the minimum of 4096 that RFC 7677
    /// recommends and Kafka's Java client enforces.
    #[error("SCRAM iteration count {iterations} is below the minimum of {minimum}")]
    IterationCount {
        /// The count the server asked for.
        iterations: u32,
        /// The smallest count accepted.
        minimum: u32,
    },
    /// The SCRAM server sent a mandatory extension (`m=`), which the client
    /// must reject (RFC 5802 §5.1).
    #[error("SCRAM server requires an unsupported mandatory extension")]
    UnsupportedExtension,
    /// The SCRAM server signature is wrong: the peer does not know the
    /// credentials, so it is not the server it claims to be.
    #[error(
        "SCRAM server signature does not match: the server could not prove it knows the credentials"
    )]
    ServerSignatureMismatch,
    /// The server ended the exchange with an error of its own: a SCRAM
    /// `e=` value such as `invalid-proof`, or an OAUTHBEARER error JSON.
    #[error("SASL server reported an error: {0}")]
    Server(String),
    /// The configured credentials cannot be encoded for this mechanism (for
    /// example a NUL in a PLAIN user name). The reason never quotes them.
    #[error("invalid SASL credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The OAUTHBEARER token provider failed.
    #[error("OAUTHBEARER token provider failed")]
    TokenProvider(#[source] Arc<dyn StdError + Send + Sync>),
    /// The operating system could not supply random bytes for a nonce.
    #[error("could not generate a SASL nonce: {0}")]
    Random(String),
    /// [`Session::step`](super::Session::step) was called out of order (again after the exchange
    /// ended, or without a server message mid-exchange).
    #[error("SASL session driven out of order: {0}")]
    OutOfOrder(&'static str),
    /// A `SaslHandshake` or `SaslAuthenticate` request failed on the
    /// connection itself (IO, timeout, unsupported version); see
    /// [`authenticate`](super::authenticate).
    #[error("SASL request failed")]
    Connection(#[source] crate::Error),
    /// The broker does not enable the mechanism (`SaslHandshake` error
    /// `UNSUPPORTED_SASL_MECHANISM`).
    #[error("broker does not enable SASL mechanism {mechanism} (enabled: {enabled:?})")]
    UnsupportedMechanism {
        /// The mechanism the client asked for.
        mechanism: String,
        /// The mechanisms the broker enables.
        enabled: Vec<String>,
    },
    /// The broker failed a `SaslHandshake` or `SaslAuthenticate` request.
    #[error("broker rejected SASL authentication ({code}): {}", message.as_deref().unwrap_or("no message"))]
    Rejected {
        /// The response's error code, usually `SASL_AUTHENTICATION_FAILED`.
        code: ErrorCode,
        /// The response's error message.
        message: Option<String>,
    },
}

/// Fills a nonce buffer from the operating system's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), SaslError> {
    getrandom::fill(buf).map_err(|e| SaslError::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2-Very-Secret";
    const TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXRva2Vu";

    #[test]
    fn every_error_message_is_free_of_secrets() {
        let errors = [
            SaslError::BadServerMessage("missing salt"),
            SaslError::InvalidNonce,
            SaslError::IterationCount {
                iterations: 1,
                minimum: 4096,
            },
            SaslError::UnsupportedExtension,
            SaslError::ServerSignatureMismatch,
            SaslError::Server("invalid-proof".into()),
            SaslError::InvalidCredentials("user name contains NUL"),
            SaslError::TokenProvider(Arc::from(Box::<dyn StdError + Send + Sync>::from(
                "idp down",
            ))),
            SaslError::Random("no entropy".into()),
            SaslError::OutOfOrder("exchange already finished"),
            SaslError::Connection(crate::Error::new(crate::ErrorKind::Timeout)),
            SaslError::UnsupportedMechanism {
                mechanism: "PLAIN".into(),
                enabled: vec!["SCRAM-SHA-512".into()],
            },
            SaslError::Rejected {
                code: ErrorCode(58),
                message: None,
            },
        ];
        for e in errors {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(PASSWORD) && !text.contains(TOKEN), "{text}");
        }
    }

    #[test]
    fn rejected_displays_code_and_message() {
        let e = SaslError::Rejected {
            code: ErrorCode(58),
            message: Some("Authentication failed".into()),
        };
        assert!(e.to_string().contains("Authentication failed"), "{e}");
        let bare = SaslError::Rejected {
            code: ErrorCode(58),
            message: None,
        };
        assert!(bare.to_string().contains("no message"), "{bare}");
    }

    #[test]
    fn random_bytes_fill_the_buffer() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
