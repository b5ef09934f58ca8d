//! SASL OAUTHBEARER (RFC 7628; Kafka's KIP-255 and KIP-342 extensions).
//!
//! ```text
//! C: n,,\x01auth=Bearer <token>\x01[key=value\x01]*\x01
//! S: (empty)                 success
//! S: {"status":"invalid_token",...}   failure: the client answers \x01
//! ```
//!
//! Getting the token (from an identity provider, a file, a refresh loop) is
//! the [`TokenProvider`]'s job; this module only puts it on the wire.

use std::error::Error as StdError;
use std::fmt;

use super::{Mechanism, REDACTED, SaslError, Session, Step};

/// An OAuth 2 bearer token and the SASL extensions sent with it.
#[derive(Clone)]
pub struct OAuthToken {
    value: String,
    extensions: Vec<(String, String)>,
}

impl OAuthToken {
    /// A bearer token, typically a JWT, with no extensions.
    pub fn new(value: impl Into<String>) -> Self {
        OAuthToken {
            value: value.into(),
            extensions: Vec::new(),
        }
    }

    /// Adds a SASL extension (KIP-342), e.g. `logicalCluster` for some
    /// hosted Kafka services. Keys are letters only and `auth` is reserved;
    /// values are printable ASCII, space, tab, CR or LF (RFC 7628 §3.1).
    /// Invalid ones fail the authentication with
    /// [`SaslError::InvalidCredentials`].
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }

    /// The token itself.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The extensions, in the order they are sent.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// Encodes the client's initial response, checking the token and the
    /// extensions so that none can inject a separator into the message.
    fn initial_response(&self) -> Result<Vec<u8>, SaslError> {
        // RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        let body = self.value.trim_end_matches('=');
        let b64token = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if !b64token {
            return Err(SaslError::InvalidCredentials(
                "OAUTHBEARER token is empty or not an RFC 6750 b64token",
            ));
        }
        let mut out = format!("n,,\x01auth=Bearer {}\x01", self.value);
        for (i, (key, value)) in self.extensions.iter().enumerate() {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(SaslError::InvalidCredentials(
                    "OAUTHBEARER extension key must be one or more ASCII letters",
                ));
            }
            if key == "auth" || self.extensions[..i].iter().any(|(k, _)| k == key) {
                return Err(SaslError::InvalidCredentials(
                    "OAUTHBEARER extension key is reserved (auth) or repeated",
                ));
            }
            if !value
                .bytes()
                .all(|b| matches!(b, 0x20..=0x7e | b'\t' | b'\r' | b'\n'))
            {
                return Err(SaslError::InvalidCredentials(
                    "OAUTHBEARER extension value has a character RFC 7628 forbids",
                ));
            }
            out.push_str(&format!("{key}={value}\x01"));
        }
        out.push('\x01');
        Ok(out.into_bytes())
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Extension values are not secret by design (KIP-342 notes they are
        // unsigned), but only keys are shown in case a caller puts ids there.
        let keys: Vec<&str> = self.extensions.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OAuthToken")
            .field("value", &REDACTED)
            .field("extensions", &keys)
            .finish()
    }
}

/// Supplies the token for each OAUTHBEARER authentication.
///
/// Called once per authentication, including KIP-368 re-authentication, on
/// the connection's task: it must not block. Fetch and refresh tokens in the
/// background and return the cached one here. Closures returning
/// `Result<OAuthToken, Box<dyn Error + Send + Sync>>` implement it; see
/// [`OAuthBearer::from_fn`].
pub trait TokenProvider: Send + Sync {
    /// The current token.
    fn token(&self) -> Result<OAuthToken, Box<dyn StdError + Send + Sync>>;
}

impl<F> TokenProvider for F
where
    F: Fn() -> Result<OAuthToken, Box<dyn StdError + Send + Sync>> + Send + Sync,
{
    fn token(&self) -> Result<OAuthToken, Box<dyn StdError + Send + Sync>> {
        self()
    }
}

/// The OAUTHBEARER mechanism.
///
/// ```
/// use kafkit_conn::sasl::{Mechanism, OAuthBearer, OAuthToken};
///
/// let oauth = OAuthBearer::from_fn(|| Ok(OAuthToken::new("eyJhbGciOi.payload.sig")));
/// assert_eq!(oauth.name(), "OAUTHBEARER");
/// ```
pub struct OAuthBearer {
    provider: Box<dyn TokenProvider>,
}

impl OAuthBearer {
    /// OAUTHBEARER with tokens from `provider`.
    pub fn new(provider: impl TokenProvider + 'static) -> Self {
        OAuthBearer {
            provider: Box::new(provider),
        }
    }

    /// OAUTHBEARER with tokens from a closure; unlike [`OAuthBearer::new`],
    /// this names the closure's signature, so `Ok(...)` needs no annotation.
    pub fn from_fn<F>(provider: F) -> Self
    where
        F: Fn() -> Result<OAuthToken, Box<dyn StdError + Send + Sync>> + Send + Sync + 'static,
    {
        OAuthBearer::new(provider)
    }
}

impl fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearer")
            .field("token", &REDACTED)
            .finish_non_exhaustive()
    }
}

impl Mechanism for OAuthBearer {
    fn name(&self) -> &str {
        "OAUTHBEARER"
    }

    fn start(&self) -> Result<Box<dyn Session>, SaslError> {
        let token = self
            .provider
            .token()
            .map_err(|e| SaslError::TokenProvider(e.into()))?;
        Ok(Box::new(OAuthSession {
            message: Some(token.initial_response()?),
            sent: false,
        }))
    }
}

/// One OAUTHBEARER exchange.
struct OAuthSession {
    /// The initial response, taken when sent so the token is not kept.
    message: Option<Vec<u8>>,
    sent: bool,
}

impl fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSession")
            .field("message", &self.message.as_ref().map(|_| REDACTED))
            .field("sent", &self.sent)
            .finish()
    }
}

impl Session for OAuthSession {
    fn step(&mut self, server: Option<&[u8]>) -> Result<Step, SaslError> {
        match (self.message.take(), server, std::mem::take(&mut self.sent)) {
            (Some(message), None, _) => {
                self.sent = true;
                Ok(Step::Send(message))
            }
            (None, Some([]), true) => Ok(Step::Done),
            // RFC 7628 §3.2.2: on failure the server sends an error JSON
            // (status, scope, openid-configuration) and the client must answer
            // with a lone 0x01 before the server fails the exchange. Kafka's
            // broker then returns only a generic SASL_AUTHENTICATION_FAILED,
            // so the JSON is the useful error.
            (None, Some(json), true) => Ok(Step::Abort {
                message: vec![0x01],
                error: SaslError::Server(String::from_utf8_lossy(json).into_owned()),
            }),
            (Some(_), Some(_), _) => Err(SaslError::OutOfOrder(
                "OAUTHBEARER got a server message before sending the token",
            )),
            _ => Err(SaslError::OutOfOrder(
                "OAUTHBEARER exchange already finished",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";

    fn first(oauth: &OAuthBearer) -> (Box<dyn Session>, Vec<u8>) {
        let mut session = oauth.start().unwrap();
        match session.step(None) {
            Ok(Step::Send(message)) => (session, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn initial_response_follows_rfc_7628() {
        let oauth = OAuthBearer::from_fn(|| Ok(OAuthToken::new(JWT)));
        let (mut session, message) = first(&oauth);
        assert_eq!(
            message,
            format!("n,,\x01auth=Bearer {JWT}\x01\x01").as_bytes()
        );
        assert!(matches!(session.step(Some(b"")), Ok(Step::Done)));
        assert!(matches!(
            session.step(Some(b"")),
            Err(SaslError::OutOfOrder(_))
        ));
    }

    #[test]
    fn extensions_follow_the_token_in_order() {
        let oauth = OAuthBearer::from_fn(|| {
            Ok(OAuthToken::new("abc==")
                .with_extension("logicalCluster", "lkc-1")
                .with_extension("traceId", "a b\tc"))
        });
        let (_, message) = first(&oauth);
        assert_eq!(
            message,
            b"n,,\x01auth=Bearer abc==\x01logicalCluster=lkc-1\x01traceId=a b\tc\x01\x01"
        );
    }

    #[test]
    fn server_error_json_is_answered_with_0x01_then_surfaced() {
        let oauth = OAuthBearer::from_fn(|| Ok(OAuthToken::new(JWT)));
        let (mut session, _) = first(&oauth);
        let json = br#"{"status":"invalid_token","scope":"kafka"}"#;
        match session.step(Some(json)) {
            Ok(Step::Abort { message, error }) => {
                assert_eq!(message, [0x01]);
                assert!(matches!(&error, SaslError::Server(m) if m.contains("invalid_token")));
                assert!(!error.to_string().contains(JWT));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            session.step(Some(b"")),
            Err(SaslError::OutOfOrder(_))
        ));
    }

    #[test]
    fn invalid_tokens_and_extensions_are_rejected_without_quoting_them() {
        let bad = [
            OAuthToken::new(""),
            OAuthToken::new("secret\x01auth=Bearer x"),
            OAuthToken::new("has space"),
            OAuthToken::new("=secret"),
            OAuthToken::new("ok").with_extension("auth", "secret"),
            OAuthToken::new("ok").with_extension("k1", "secret"),
            OAuthToken::new("ok").with_extension("", "secret"),
            OAuthToken::new("ok").with_extension("k", "sec\x01ret"),
            OAuthToken::new("ok")
                .with_extension("k", "a")
                .with_extension("k", "secret"),
        ];
        for token in bad {
            let oauth = OAuthBearer::from_fn(move || Ok(token.clone()));
            let err = oauth.start().err().expect("must be rejected");
            assert!(matches!(err, SaslError::InvalidCredentials(_)), "{err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn provider_failures_are_typed() {
        let oauth = OAuthBearer::from_fn(|| Err("identity provider unreachable".into()));
        let err = oauth.start().err().unwrap();
        assert!(matches!(err, SaslError::TokenProvider(_)));
        let source = StdError::source(&err).unwrap();
        assert!(source.to_string().contains("unreachable"));
    }

    #[test]
    fn trait_objects_and_structs_provide_tokens() {
        struct Fixed;
        impl TokenProvider for Fixed {
            fn token(&self) -> Result<OAuthToken, Box<dyn StdError + Send + Sync>> {
                Ok(OAuthToken::new("fixed"))
            }
        }
        let (_, message) = first(&OAuthBearer::new(Fixed));
        assert!(message.starts_with(b"n,,\x01auth=Bearer fixed\x01"));
    }

    #[test]
    fn debug_hides_the_token() {
        let token = OAuthToken::new(JWT).with_extension("traceId", "1");
        let oauth = OAuthBearer::from_fn(move || Ok(token.clone()));
        let live = OAuthSession {
            message: Some(format!("auth=Bearer {JWT}").into_bytes()),
            sent: false,
        };
        let shown = format!("{oauth:?} {live:?} {:?}", OAuthToken::new(JWT));
        assert!(!shown.contains(JWT) && shown.contains(REDACTED), "{shown}");
        assert!(
            shown.contains("traceId") || shown.contains("OAuthToken"),
            "{shown}"
        );
    }
}
