//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677; Kafka's KIP-84), and
//! Kafka's `tokenauth` extension for delegation tokens (KIP-48).
//!
//! The exchange, client side:
//!
//! ```text
//! C: n,,n=<user>,r=<c-nonce>[,tokenauth=true]      client-first
//! S: r=<c-nonce><s-nonce>,s=<salt>,i=<iterations>  server-first
//! C: c=biws,r=<c-nonce><s-nonce>,p=<proof>          client-final
//! S: v=<server signature>  or  e=<error>           server-final
//! ```
//!
//! Only the last step can prove the server's identity: the session reports
//! [`Step::Done`] only after the server signature matched. Kafka's broker
//! reports a wrong password as a `SaslAuthenticate` error code rather than
//! `e=invalid-proof`; both end the exchange with a typed error.

use std::fmt;

use super::scram_msg::{self, ServerFinal};
use super::{Mechanism, REDACTED, SaslError, Session, Step};

pub use super::scram_msg::ScramAlgorithm;

/// The smallest iteration count accepted, as in RFC 7677 §4 and Kafka's Java
/// client: fewer would make the salted password cheap to brute-force from a
/// captured exchange.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// A SCRAM mechanism: user name and password for one hash algorithm.
///
/// ```
/// use kafkit_conn::sasl::{Mechanism, Scram};
///
/// let scram = Scram::sha512("alice", "alice-secret");
/// assert_eq!(scram.name(), "SCRAM-SHA-512");
/// // A delegation token authenticates with its id and HMAC (KIP-48).
/// let token = Scram::sha256("token-id", "token-hmac").with_token_auth();
/// assert!(token.token_auth());
/// ```
#[derive(Clone)]
pub struct Scram {
    algorithm: ScramAlgorithm,
    username: String,
    password: String,
    token_auth: bool,
    /// Replaces the random client nonce so tests can replay RFC vectors.
    #[cfg(test)]
    fixed_nonce: Option<String>,
}

impl Scram {
    /// SCRAM credentials for `username` and `password` with `algorithm`.
    pub fn new(
        algorithm: ScramAlgorithm,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Scram {
            algorithm,
            username: username.into(),
            password: password.into(),
            token_auth: false,
            #[cfg(test)]
            fixed_nonce: None,
        }
    }

    /// SCRAM-SHA-256 credentials.
    pub fn sha256(username: impl Into<String>, password: impl Into<String>) -> Self {
        Scram::new(ScramAlgorithm::Sha256, username, password)
    }

    /// SCRAM-SHA-512 credentials.
    pub fn sha512(username: impl Into<String>, password: impl Into<String>) -> Self {
        Scram::new(ScramAlgorithm::Sha512, username, password)
    }

    /// Authenticates with a delegation token (KIP-48): the user name is the
    /// token id, the password is the token's HMAC, and the client-first
    /// message carries the `tokenauth=true` extension.
    pub fn with_token_auth(mut self) -> Self {
        self.token_auth = true;
        self
    }

    /// Whether the `tokenauth=true` extension is sent.
    pub fn token_auth(&self) -> bool {
        self.token_auth
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> ScramAlgorithm {
        self.algorithm
    }

    /// The user name (or delegation token id).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Uses `nonce` instead of a random client nonce, for known-answer tests.
    #[cfg(test)]
    pub(crate) fn with_fixed_nonce(mut self, nonce: &str) -> Self {
        self.fixed_nonce = Some(nonce.to_owned());
        self
    }

    fn nonce(&self) -> Result<String, SaslError> {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_nonce {
            return Ok(nonce.clone());
        }
        scram_msg::new_nonce()
    }
}

impl fmt::Debug for Scram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scram")
            .field("algorithm", &self.algorithm)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("token_auth", &self.token_auth)
            .finish()
    }
}

impl Mechanism for Scram {
    fn name(&self) -> &str {
        self.algorithm.mechanism_name()
    }

    fn start(&self) -> Result<Box<dyn Session>, SaslError> {
        if self.username.is_empty() || self.username.contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "SCRAM user name is empty or contains NUL",
            ));
        }
        let extension = if self.token_auth {
            ",tokenauth=true"
        } else {
            ""
        };
        let client_first_bare = format!(
            "n={},r={}{extension}",
            scram_msg::escape_saslname(&self.username),
            self.nonce()?,
        );
        Ok(Box::new(ScramSession {
            algorithm: self.algorithm,
            password: self.password.clone(),
            client_first_bare,
            state: State::Initial,
        }))
    }
}

/// Where a [`ScramSession`] is in the exchange.
enum State {
    /// Nothing sent yet.
    Initial,
    /// client-first sent; waiting for server-first.
    SentFirst,
    /// client-final sent; the server must prove it knows the credentials.
    SentFinal {
        server_key: Vec<u8>,
        auth_message: Vec<u8>,
    },
    /// Done, or failed: every further step is out of order.
    Finished,
}

/// One SCRAM exchange.
struct ScramSession {
    algorithm: ScramAlgorithm,
    /// Cleared once the proof is computed; the session needs it no longer.
    password: String,
    /// `n=<saslname>,r=<c-nonce>[,extensions]`, part of the AuthMessage.
    client_first_bare: String,
    state: State,
}

impl fmt::Debug for ScramSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::SentFirst => "SentFirst",
            State::SentFinal { .. } => "SentFinal",
            State::Finished => "Finished",
        };
        f.debug_struct("ScramSession")
            .field("algorithm", &self.algorithm)
            .field("password", &REDACTED)
            .field("client_first_bare", &self.client_first_bare)
            .field("state", &state)
            .finish()
    }
}

impl ScramSession {
    /// Answers server-first with client-final.
    fn client_final(&mut self, server_first: &[u8]) -> Result<Step, SaslError> {
        let parsed = scram_msg::parse_server_first(server_first)?;
        let client_nonce = self
            .client_first_bare
            .split(',')
            .nth(1)
            .and_then(|r| r.strip_prefix("r="))
            .unwrap_or_default();
        // The server must append its own part: a nonce that merely equals
        // ours, or differs, would let a replayed exchange pass.
        if parsed.nonce.len() <= client_nonce.len() || !parsed.nonce.starts_with(client_nonce) {
            return Err(SaslError::InvalidNonce);
        }
        if parsed.iterations < MIN_SCRAM_ITERATIONS {
            return Err(SaslError::IterationCount {
                iterations: parsed.iterations,
                minimum: MIN_SCRAM_ITERATIONS,
            });
        }
        // `biws` is base64("n,,"): no channel binding and no authzid.
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let mut auth_message = Vec::with_capacity(
            self.client_first_bare.len() + server_first.len() + without_proof.len() + 2,
        );
        auth_message.extend_from_slice(self.client_first_bare.as_bytes());
        auth_message.push(b',');
        auth_message.extend_from_slice(server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(without_proof.as_bytes());

        let password = std::mem::take(&mut self.password);
        let salted =
            self.algorithm
                .salted_password(password.as_bytes(), &parsed.salt, parsed.iterations);
        let (proof, server_key) = self.algorithm.client_proof(&salted, &auth_message);
        let message = format!("{without_proof},p={}", scram_msg::b64(&proof));
        self.state = State::SentFinal {
            server_key,
            auth_message,
        };
        Ok(Step::Send(message.into_bytes()))
    }
}

impl Session for ScramSession {
    fn step(&mut self, server: Option<&[u8]>) -> Result<Step, SaslError> {
        // Any error leaves the session Finished.
        match (std::mem::replace(&mut self.state, State::Finished), server) {
            (State::Initial, None) => {
                self.state = State::SentFirst;
                Ok(Step::Send(
                    format!("n,,{}", self.client_first_bare).into_bytes(),
                ))
            }
            (State::SentFirst, Some(server_first)) => self.client_final(server_first),
            (
                State::SentFinal {
                    server_key,
                    auth_message,
                },
                Some(server_final),
            ) => match scram_msg::parse_server_final(server_final)? {
                ServerFinal::Error(error) => Err(SaslError::Server(error)),
                ServerFinal::Verifier(signature)
                    if self
                        .algorithm
                        .verify_hmac(&server_key, &auth_message, &signature) =>
                {
                    Ok(Step::Done)
                }
                ServerFinal::Verifier(_) => Err(SaslError::ServerSignatureMismatch),
            },
            (State::Finished, _) => Err(SaslError::OutOfOrder("SCRAM exchange already finished")),
            (_, None) => Err(SaslError::OutOfOrder("SCRAM needs the server's message")),
            (State::Initial, Some(_)) => Err(SaslError::OutOfOrder(
                "SCRAM got a server message before client-first",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scram_exchange_tests::exchange;
    use super::*;

    #[test]
    fn client_first_escapes_the_name_and_adds_tokenauth() {
        let scram = Scram::sha512("a=b,c", "pw")
            .with_token_auth()
            .with_fixed_nonce("abc");
        let mut session = scram.start().unwrap();
        let Ok(Step::Send(first)) = session.step(None) else {
            panic!("SCRAM must send client-first");
        };
        assert_eq!(first, b"n,,n=a=3Db=2Cc,r=abc,tokenauth=true");
    }

    #[test]
    fn random_nonces_differ_between_sessions() {
        let scram = Scram::sha256("user", "pw");
        let first = |s: &Scram| match s.start().unwrap().step(None) {
            Ok(Step::Send(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_ne!(first(&scram), first(&scram));
    }

    const FIRST: &str = "r=abcSERVER,s=c2FsdA==,i=4096";

    #[test]
    fn nonce_that_does_not_extend_ours_is_rejected() {
        let scram = Scram::sha256("user", "pw").with_fixed_nonce("abc");
        for server in [
            "r=abc,s=c2FsdA==,i=4096",
            "r=xyzSERVER,s=c2FsdA==,i=4096",
            "r=ab,s=c2FsdA==,i=4096",
        ] {
            assert!(
                matches!(exchange(&scram, &[server]), Err(SaslError::InvalidNonce)),
                "{server}"
            );
        }
        assert!(exchange(&scram, &[FIRST]).is_ok());
    }

    #[test]
    fn iteration_counts_below_4096_are_rejected() {
        let scram = Scram::sha256("user", "pw").with_fixed_nonce("abc");
        let err = exchange(&scram, &["r=abcS,s=c2FsdA==,i=4095"]).unwrap_err();
        assert!(matches!(
            err,
            SaslError::IterationCount {
                iterations: 4095,
                minimum: 4096
            }
        ));
    }

    #[test]
    fn server_final_errors_and_bad_signatures_are_typed() {
        let scram = Scram::sha256("user", "pw").with_fixed_nonce("abc");
        let err = exchange(&scram, &[FIRST, "e=invalid-proof"]).unwrap_err();
        assert!(matches!(err, SaslError::Server(e) if e == "invalid-proof"));
        let err = exchange(&scram, &[FIRST, "v=AAAA"]).unwrap_err();
        assert!(matches!(err, SaslError::ServerSignatureMismatch));
        let err = exchange(&scram, &["m=must,r=abcS,s=c2FsdA==,i=4096"]).unwrap_err();
        assert!(matches!(err, SaslError::UnsupportedExtension));
    }

    #[test]
    fn out_of_order_steps_and_bad_names_are_errors() {
        let scram = Scram::sha256("user", "pw").with_fixed_nonce("abc");
        let mut early = scram.start().unwrap();
        assert!(matches!(
            early.step(Some(b"x")),
            Err(SaslError::OutOfOrder(_))
        ));
        let mut session = scram.start().unwrap();
        session.step(None).unwrap();
        assert!(matches!(session.step(None), Err(SaslError::OutOfOrder(_))));
        assert!(matches!(
            session.step(Some(FIRST.as_bytes())),
            Err(SaslError::OutOfOrder(_))
        ));
        for name in ["", "a\0b"] {
            let err = Scram::sha256(name, "pw").start().err().unwrap();
            assert!(matches!(err, SaslError::InvalidCredentials(_)));
        }
    }

    #[test]
    fn session_debug_hides_the_password_at_every_state() {
        let scram = Scram::sha256("user", "hunter2-secret").with_fixed_nonce("abc");
        let mut session = ScramSession {
            algorithm: ScramAlgorithm::Sha256,
            password: "hunter2-secret".into(),
            client_first_bare: "n=user,r=abc".into(),
            state: State::Initial,
        };
        for server in [None, Some(FIRST.as_bytes()), Some(b"v=AAAA".as_slice())] {
            let shown = format!("{session:?} {scram:?}");
            assert!(
                !shown.contains("hunter2") && shown.contains(REDACTED),
                "{shown}"
            );
            let outcome = format!("{:?}", session.step(server));
            assert!(!outcome.contains("hunter2"), "{outcome}");
        }
    }
}
