//! SASL authentication mechanisms, sans-IO.
//!
//! A [`Mechanism`] is configuration (user name, password, token source). Each
//! authentication starts a fresh [`Session`], a small state machine that turns
//! the server's last message into the client's next one. Nothing here touches
//! the network or a clock, so the same session works for the first
//! authentication and for KIP-368 re-authentication, and every mechanism is
//! tested against scripted peers.
//!
//! # Driving a session over Kafka
//!
//! Kafka wraps SASL in two requests (KIP-152); [`authenticate`] runs them
//! over a [`Conn`](crate::Conn):
//!
//! 1. `SaslHandshake` (v1) names [`Mechanism::name`]; the broker answers with
//!    the mechanisms it enables.
//! 2. Each [`Step::Send`] becomes one `SaslAuthenticate` request whose
//!    `auth_bytes` are the message; the response's `auth_bytes` are passed to
//!    the next [`Session::step`] call. A response with a non-zero `error_code`
//!    ends the exchange with [`SaslError::Rejected`]; a [`Step::Abort`]
//!    message is sent and its response ignored before reporting the error.
//! 3. The last successful `SaslAuthenticate` response (v1+) carries
//!    `session_lifetime_ms` (KIP-368): the driver re-authenticates with a
//!    fresh [`Mechanism::start`] before it runs out.
//!
//! ```
//! use kafkit_conn::sasl::{Mechanism, Plain, Step};
//!
//! let plain = Plain::new("alice", "alice-secret");
//! let mut session = plain.start()?;
//! let mut server: Option<Vec<u8>> = None;
//! loop {
//!     match session.step(server.as_deref())? {
//!         // A real driver sends `bytes` in SaslAuthenticate; a PLAIN broker
//!         // answers with empty auth_bytes.
//!         Step::Send(bytes) => {
//!             assert_eq!(bytes, b"\0alice\0alice-secret");
//!             server = Some(Vec::new());
//!         }
//!         Step::Abort { error, .. } => return Err(error),
//!         Step::Done => break,
//!     }
//! }
//! # Ok::<(), kafkit_conn::sasl::SaslError>(())
//! ```
//!
//! Handshake v0, where raw SASL tokens follow without `SaslAuthenticate`
//! framing, predates Kafka 1.0 and is not supported.
//!
//! # Credentials
//!
//! Passwords and tokens never appear in `Debug` output or in error messages;
//! the types that hold them print `"<redacted>"`.

use std::fmt;

mod error;
mod handshake;
mod oauth;
mod plain;
mod scram;
mod scram_msg;

#[cfg(test)]
mod scram_exchange_tests;

pub use error::SaslError;
pub(crate) use error::random_bytes;
pub use handshake::{Authenticated, authenticate};
pub use oauth::{OAuthBearer, OAuthToken, TokenProvider};
pub use plain::Plain;
pub use scram::{MIN_SCRAM_ITERATIONS, Scram, ScramAlgorithm};

/// Text printed in place of a password or token.
pub(crate) const REDACTED: &str = "<redacted>";

/// A SASL mechanism: the configuration from which sessions start.
///
/// Implement it for mechanisms kafkit does not ship (GSSAPI, AWS_MSK_IAM, ...);
/// [`FnMechanism`] builds one from a closure.
pub trait Mechanism: Send + Sync + fmt::Debug {
    /// The IANA mechanism name sent in `SaslHandshake`, e.g. `"SCRAM-SHA-512"`.
    fn name(&self) -> &str;

    /// Starts one authentication exchange.
    ///
    /// Called once per connection and again for each KIP-368
    /// re-authentication, so a session never reuses a nonce or a stale token.
    fn start(&self) -> Result<Box<dyn Session>, SaslError>;
}

/// One client-side authentication exchange.
///
/// Closures `FnMut(Option<&[u8]>) -> Result<Step, SaslError>` implement it.
pub trait Session: Send {
    /// Returns the client's next move given the server's last message.
    ///
    /// `server` is `None` on the first call and `Some(auth_bytes)` after each
    /// server response. After [`Step::Done`] or an error the exchange is over;
    /// calling again yields [`SaslError::OutOfOrder`].
    fn step(&mut self, server: Option<&[u8]>) -> Result<Step, SaslError>;
}

impl<F> Session for F
where
    F: FnMut(Option<&[u8]>) -> Result<Step, SaslError> + Send,
{
    fn step(&mut self, server: Option<&[u8]>) -> Result<Step, SaslError> {
        self(server)
    }
}

/// The client's next move in a SASL exchange.
///
/// `Debug` shows message lengths only: a PLAIN or OAUTHBEARER message holds
/// the password or token.
pub enum Step {
    /// Send these bytes to the server (one `SaslAuthenticate` request) and
    /// call [`Session::step`] with its answer.
    Send(Vec<u8>),
    /// Send these bytes to finish the exchange as the mechanism requires, then
    /// fail with `error` whatever the server answers.
    ///
    /// OAUTHBEARER uses it: after the server's error JSON the client must send
    /// a lone `0x01` (RFC 7628 §3.2.3), and the broker then fails the request
    /// with a generic code; `error` carries the server's actual reason.
    Abort {
        /// The final client message.
        message: Vec<u8>,
        /// The error to report once `message` is sent.
        error: SaslError,
    },
    /// Authentication succeeded (and, for SCRAM, the server proved that it
    /// knows the credentials). Nothing more is sent.
    Done,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send(message) => write!(f, "Send(<{} bytes>)", message.len()),
            Step::Abort { message, error } => f
                .debug_struct("Abort")
                .field("message", &format_args!("<{} bytes>", message.len()))
                .field("error", error)
                .finish(),
            Step::Done => f.write_str("Done"),
        }
    }
}

/// A custom [`Mechanism`] made from a name and a closure that starts sessions.
///
/// ```
/// use kafkit_conn::sasl::{FnMechanism, Mechanism, Session, Step};
///
/// let anonymous = FnMechanism::new("ANONYMOUS", || {
///     let mut sent = false;
///     let session = move |_server: Option<&[u8]>| {
///         if std::mem::replace(&mut sent, true) {
///             Ok(Step::Done)
///         } else {
///             Ok(Step::Send(b"trace".to_vec()))
///         }
///     };
///     Ok(Box::new(session) as Box<dyn Session>)
/// });
/// assert_eq!(anonymous.name(), "ANONYMOUS");
/// ```
pub struct FnMechanism<F> {
    name: String,
    start: F,
}

impl<F> FnMechanism<F>
where
    F: Fn() -> Result<Box<dyn Session>, SaslError> + Send + Sync,
{
    /// A mechanism called `name` whose sessions come from `start`.
    pub fn new(name: impl Into<String>, start: F) -> Self {
        FnMechanism {
            name: name.into(),
            start,
        }
    }
}

impl<F> fmt::Debug for FnMechanism<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnMechanism")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> Mechanism for FnMechanism<F>
where
    F: Fn() -> Result<Box<dyn Session>, SaslError> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&self) -> Result<Box<dyn Session>, SaslError> {
        (self.start)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2-Very-Secret";
    const TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXRva2Vu";

    fn mechanisms() -> Vec<Box<dyn Mechanism>> {
        vec![
            Box::new(Plain::new("alice", PASSWORD)),
            Box::new(Scram::sha256("alice", PASSWORD)),
            Box::new(Scram::sha512("alice", PASSWORD).with_token_auth()),
            Box::new(OAuthBearer::from_fn(|| {
                Ok(OAuthToken::new(TOKEN).with_extension("traceId", "42"))
            })),
        ]
    }

    #[test]
    fn debug_output_never_contains_credentials() {
        for mechanism in mechanisms() {
            let shown = format!("{mechanism:?} {mechanism:#?}");
            assert!(
                !shown.contains(PASSWORD) && !shown.contains(TOKEN),
                "{shown}"
            );
            assert!(shown.contains(REDACTED), "{shown}");
        }
        let token = OAuthToken::new(TOKEN);
        assert!(!format!("{token:?}").contains(TOKEN));
        // Sessions are checked in their own modules, where their concrete
        // types are visible; the errors every mechanism can produce are here.
    }

    #[test]
    fn session_errors_never_contain_credentials() {
        for mechanism in mechanisms() {
            for server in [&b"e=invalid-proof"[..], b"garbage", b"r=x,s=,i=1", b"\x01"] {
                let mut session = mechanism.start().unwrap();
                let first = format!("{:?}", session.step(None));
                let outcome = session.step(Some(server));
                let mut shown = format!("{first} {outcome:?}");
                match outcome {
                    Err(e) | Ok(Step::Abort { error: e, .. }) => shown.push_str(&e.to_string()),
                    Ok(_) => {}
                }
                assert!(
                    !shown.contains(PASSWORD) && !shown.contains(TOKEN),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn closures_are_sessions_and_fn_mechanisms_start_them() {
        let mechanism = FnMechanism::new("X-ECHO", || {
            let session = |server: Option<&[u8]>| match server {
                None => Ok(Step::Send(b"hello".to_vec())),
                Some(b"hello") => Ok(Step::Done),
                Some(_) => Err(SaslError::BadServerMessage("not an echo")),
            };
            Ok(Box::new(session) as Box<dyn Session>)
        });
        assert_eq!(mechanism.name(), "X-ECHO");
        assert!(format!("{mechanism:?}").contains("X-ECHO"));
        let mut session = mechanism.start().unwrap();
        assert!(matches!(session.step(None), Ok(Step::Send(m)) if m == b"hello"));
        assert!(matches!(session.step(Some(b"hello")), Ok(Step::Done)));
        assert!(matches!(
            session.step(Some(b"nope")),
            Err(SaslError::BadServerMessage(_))
        ));
    }

    #[test]
    fn step_debug_shows_lengths_not_bytes() {
        let send = Step::Send(b"\0alice\0pw".to_vec());
        assert_eq!(format!("{send:?}"), "Send(<9 bytes>)");
        let abort = Step::Abort {
            message: vec![1],
            error: SaslError::InvalidNonce,
        };
        assert_eq!(
            format!("{abort:?}"),
            "Abort { message: <1 bytes>, error: InvalidNonce }"
        );
        assert_eq!(format!("{:?}", Step::Done), "Done");
    }
}
