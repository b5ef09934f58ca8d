//! SASL PLAIN (RFC 4616): the password in one message.
//!
//! PLAIN sends the password in the clear, so use it only over TLS.

use std::fmt;

use super::{Mechanism, REDACTED, SaslError, Session, Step};

/// The PLAIN mechanism: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
///
/// ```
/// use kafkit_conn::sasl::{Mechanism, Plain};
///
/// let plain = Plain::new("alice", "alice-secret");
/// assert_eq!(plain.name(), "PLAIN");
/// assert!(!format!("{plain:?}").contains("alice-secret"));
/// ```
#[derive(Clone)]
pub struct Plain {
    authzid: String,
    username: String,
    password: String,
}

impl Plain {
    /// PLAIN credentials for `username` (the RFC's authcid) with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Plain {
            authzid: String::new(),
            username: username.into(),
            password: password.into(),
        }
    }

    /// Acts as `authzid` after authenticating as the user name.
    ///
    /// Kafka's broker rejects an authzid that differs from the user name, so
    /// this is only useful with brokers or proxies that allow impersonation.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = authzid.into();
        self
    }

    /// The user name (authcid).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Builds the single client message, refusing fields that would change
    /// its meaning (RFC 4616 §2 forbids NUL inside them).
    fn message(&self) -> Result<Vec<u8>, SaslError> {
        if self.authzid.contains('\0') {
            return Err(SaslError::InvalidCredentials("PLAIN authzid contains NUL"));
        }
        if self.username.is_empty() || self.username.contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "PLAIN user name is empty or contains NUL",
            ));
        }
        if self.password.is_empty() || self.password.contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "PLAIN password is empty or contains NUL",
            ));
        }
        let mut out =
            Vec::with_capacity(self.authzid.len() + self.username.len() + self.password.len() + 2);
        out.extend_from_slice(self.authzid.as_bytes());
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(self.password.as_bytes());
        Ok(out)
    }
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plain")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .finish()
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &str {
        "PLAIN"
    }

    fn start(&self) -> Result<Box<dyn Session>, SaslError> {
        // Validate up front so a bad configuration fails before any request.
        let message = self.message()?;
        Ok(Box::new(PlainSession {
            message: Some(message),
            sent: false,
        }))
    }
}

/// One PLAIN exchange: send the message, then accept the server's answer.
struct PlainSession {
    /// The encoded message, taken when sent so the password is not kept.
    message: Option<Vec<u8>>,
    sent: bool,
}

impl fmt::Debug for PlainSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainSession")
            .field("message", &self.message.as_ref().map(|_| REDACTED))
            .field("sent", &self.sent)
            .finish()
    }
}

impl Session for PlainSession {
    fn step(&mut self, server: Option<&[u8]>) -> Result<Step, SaslError> {
        match (self.message.take(), server) {
            (Some(message), None) => {
                self.sent = true;
                Ok(Step::Send(message))
            }
            // Kafka answers PLAIN with empty auth_bytes; a failure arrives as
            // the SaslAuthenticate error code, which the driver reports. Other
            // brokers may add data, which PLAIN gives no meaning, so it is
            // ignored rather than rejected.
            (None, Some(_)) if std::mem::take(&mut self.sent) => Ok(Step::Done),
            (Some(_), Some(_)) => Err(SaslError::OutOfOrder(
                "PLAIN got a server message before sending its own",
            )),
            _ => Err(SaslError::OutOfOrder("PLAIN exchange already finished")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plain: &Plain) -> Vec<u8> {
        let mut session = plain.start().unwrap();
        let Ok(Step::Send(message)) = session.step(None) else {
            panic!("PLAIN must send first");
        };
        assert!(matches!(session.step(Some(b"")), Ok(Step::Done)));
        message
    }

    #[test]
    fn message_is_authzid_nul_authcid_nul_password() {
        assert_eq!(
            run(&Plain::new("tim", "tanstaaftanstaaf")),
            b"\0tim\0tanstaaftanstaaf"
        );
        let with_authzid = Plain::new("Kurt", "xipj3plmq").with_authzid("Ursel");
        assert_eq!(run(&with_authzid), b"Ursel\0Kurt\0xipj3plmq");
        assert_eq!(with_authzid.username(), "Kurt");
    }

    #[test]
    fn utf8_credentials_are_sent_as_utf8() {
        assert_eq!(
            run(&Plain::new("zoë", "pässword")),
            "\0zoë\0pässword".as_bytes()
        );
    }

    #[test]
    fn nul_or_empty_fields_are_rejected_without_quoting_them() {
        for plain in [
            Plain::new("a\0b", "pw"),
            Plain::new("", "pw"),
            Plain::new("alice", ""),
            Plain::new("alice", "sec\0ret"),
            Plain::new("alice", "pw").with_authzid("x\0"),
        ] {
            let err = plain.start().err().expect("must be rejected");
            assert!(matches!(err, SaslError::InvalidCredentials(_)), "{err:?}");
            assert!(!err.to_string().contains("sec"), "{err}");
        }
    }

    #[test]
    fn driving_out_of_order_is_an_error() {
        let plain = Plain::new("alice", "pw");
        let mut early = plain.start().unwrap();
        assert!(matches!(
            early.step(Some(b"")),
            Err(SaslError::OutOfOrder(_))
        ));

        let mut session = plain.start().unwrap();
        session.step(None).unwrap();
        assert!(matches!(session.step(Some(b"")), Ok(Step::Done)));
        assert!(matches!(
            session.step(Some(b"")),
            Err(SaslError::OutOfOrder(_))
        ));
        assert!(matches!(session.step(None), Err(SaslError::OutOfOrder(_))));
    }

    #[test]
    fn server_data_after_plain_is_ignored() {
        let mut session = Plain::new("alice", "pw").start().unwrap();
        session.step(None).unwrap();
        assert!(matches!(session.step(Some(b"welcome")), Ok(Step::Done)));
    }

    #[test]
    fn session_debug_hides_the_password() {
        let session = PlainSession {
            message: Some(b"\0alice\0hunter2-secret".to_vec()),
            sent: false,
        };
        let shown = format!("{session:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains(REDACTED),
            "{shown}"
        );
    }
}
