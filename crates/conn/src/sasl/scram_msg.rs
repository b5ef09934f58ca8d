//! SCRAM message grammar and key derivation (RFC 5802 §3, §5 and §7), with no
//! session state, so that the client in `scram.rs` and the scripted server in
//! the tests share one definition of each formula.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::SaslError;

/// The hash function behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramAlgorithm {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512 (Kafka's KIP-84; same construction as RFC 7677).
    Sha512,
}

impl ScramAlgorithm {
    /// The SASL mechanism name, e.g. `"SCRAM-SHA-256"`.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramAlgorithm::Sha256 => "SCRAM-SHA-256",
            ScramAlgorithm::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// `H(data)`.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            ScramAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, data),
            ScramAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    /// Whether `HMAC(key, data) == tag`, compared in constant time so a peer
    /// cannot learn the expected signature byte by byte.
    pub(crate) fn verify_hmac(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(data);
            mac.verify_slice(tag).is_ok()
        }
        match self {
            ScramAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, data, tag),
            ScramAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, data, tag),
        }
    }

    /// `SaltedPassword := Hi(password, salt, i)`, which is PBKDF2 with HMAC
    /// and one output block (RFC 5802 §2.2).
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramAlgorithm::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramAlgorithm::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }

    /// The client's proof and the server key, per RFC 5802 §3:
    ///
    /// ```text
    /// ClientKey       := HMAC(SaltedPassword, "Client Key")
    /// StoredKey       := H(ClientKey)
    /// ClientSignature := HMAC(StoredKey, AuthMessage)
    /// ClientProof     := ClientKey XOR ClientSignature
    /// ServerKey       := HMAC(SaltedPassword, "Server Key")
    /// ```
    pub(crate) fn client_proof(self, salted: &[u8], auth_message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted, b"Client Key");
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&stored_key, auth_message);
        let proof = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        (proof, self.hmac(salted, b"Server Key"))
    }
}

/// The parsed server-first-message (RFC 5802 §7).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ServerFirst<'a> {
    /// The combined nonce: the client's nonce followed by the server's.
    pub nonce: &'a str,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// The parsed server-final-message (RFC 5802 §7).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ServerFinal {
    /// `v=`: the server signature.
    Verifier(Vec<u8>),
    /// `e=`: the server's error value, e.g. `invalid-proof`.
    Error(String),
}

/// Escapes a user name into a `saslname`: `=` becomes `=3D` and `,` becomes
/// `=2C` (RFC 5802 §5.1). Kafka applies no SASLprep, so neither do we: the
/// broker compares the escaped bytes with the name it stored.
pub(crate) fn escape_saslname(name: &str) -> Cow<'_, str> {
    if !name.contains(['=', ',']) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.replace('=', "=3D").replace(',', "=2C"))
}

/// A fresh client nonce: 24 random bytes as 32 base64 characters, which are
/// all printable and never `,` (RFC 5802 §7 `c-nonce`).
pub(crate) fn new_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; 24];
    super::random_bytes(&mut bytes)?;
    Ok(BASE64.encode(bytes))
}

/// Base64 as SCRAM uses it (standard alphabet, padded).
pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The value of `attr` if it is `name=value`.
fn value(attr: &str, name: char) -> Option<&str> {
    attr.strip_prefix(name)?.strip_prefix('=')
}

fn text(message: &[u8]) -> Result<&str, SaslError> {
    std::str::from_utf8(message)
        .map_err(|_| SaslError::BadServerMessage("SCRAM message is not UTF-8"))
}

/// Parses `[reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]`.
///
/// Unknown trailing extensions are ignored, as RFC 5802 §5.1 asks; a
/// mandatory extension (`m=`) is refused.
pub(crate) fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, SaslError> {
    let mut attrs = text(message)?.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::UnsupportedExtension);
    }
    // Not in the RFC grammar, but some servers fail this early with `e=`.
    if let Some(error) = value(first, 'e') {
        return Err(SaslError::Server(error.to_owned()));
    }
    let nonce = value(first, 'r').ok_or(SaslError::BadServerMessage(
        "server-first-message lacks the nonce (r=)",
    ))?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(SaslError::BadServerMessage(
            "server nonce is empty or not printable",
        ));
    }
    let salt = attrs
        .next()
        .and_then(|a| value(a, 's'))
        .ok_or(SaslError::BadServerMessage(
            "server-first-message lacks the salt (s=)",
        ))?;
    let salt = BASE64
        .decode(salt)
        .map_err(|_| SaslError::BadServerMessage("salt is not base64"))?;
    if salt.is_empty() {
        return Err(SaslError::BadServerMessage("salt is empty"));
    }
    let iterations =
        attrs
            .next()
            .and_then(|a| value(a, 'i'))
            .ok_or(SaslError::BadServerMessage(
                "server-first-message lacks the iteration count (i=)",
            ))?;
    let iterations = iterations
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| iterations.parse::<u32>().ok())
        .flatten()
        .ok_or(SaslError::BadServerMessage(
            "iteration count is not a number",
        ))?;
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// Parses `(server-error / verifier) ["," extensions]`.
pub(crate) fn parse_server_final(message: &[u8]) -> Result<ServerFinal, SaslError> {
    let first = text(message)?.split(',').next().unwrap_or_default();
    if let Some(error) = value(first, 'e') {
        return Ok(ServerFinal::Error(error.to_owned()));
    }
    let verifier = value(first, 'v').ok_or(SaslError::BadServerMessage(
        "server-final-message has neither a verifier (v=) nor an error (e=)",
    ))?;
    let signature = BASE64
        .decode(verifier)
        .map_err(|_| SaslError::BadServerMessage("server signature is not base64"))?;
    Ok(ServerFinal::Verifier(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escapes_equals_and_comma() {
        assert_eq!(escape_saslname("user"), "user");
        assert!(matches!(escape_saslname("user"), Cow::Borrowed(_)));
        assert_eq!(escape_saslname("a=b,c"), "a=3Db=2Cc");
        // `=` is escaped first so the `=` of `=2C` is not escaped again.
        assert_eq!(escape_saslname(",="), "=2C=3D");
    }

    #[test]
    fn server_first_parses_rfc_7677_message() {
        let msg = b"r=abc%def,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let parsed = parse_server_first(msg).unwrap();
        assert_eq!(parsed.nonce, "abc%def");
        assert_eq!(parsed.salt.len(), 16);
        assert_eq!(parsed.iterations, 4096);
        // Trailing extensions are ignored.
        let extended = parse_server_first(b"r=n,s=c2FsdA==,i=4096,x=ext").unwrap();
        assert_eq!(extended.iterations, 4096);
    }

    #[test]
    fn server_first_rejects_missing_or_malformed_fields() {
        for msg in [
            &b""[..],
            b"s=c2FsdA==,i=4096",
            b"r=n,i=4096",
            b"r=n,s=c2FsdA==",
            b"r=n,s=c2FsdA==,i=",
            b"r=n,s=c2FsdA==,i=+4096",
            b"r=n,s=c2FsdA==,i=-1",
            b"r=n,s=c2FsdA==,i=99999999999",
            b"r=n,s=!!!,i=4096",
            b"r=n,s=,i=4096",
            b"r=,s=c2FsdA==,i=4096",
            b"r=n n,s=c2FsdA==,i=4096",
            b"i=4096,s=c2FsdA==,r=n",
            b"r=n,s=c2FsdA==,i=4096\xff",
        ] {
            let err = parse_server_first(msg).unwrap_err();
            assert!(
                matches!(err, SaslError::BadServerMessage(_)),
                "{msg:?}: {err:?}"
            );
        }
    }

    #[test]
    fn server_first_rejects_mandatory_extensions_and_reports_errors() {
        assert!(matches!(
            parse_server_first(b"m=ext,r=n,s=c2FsdA==,i=4096"),
            Err(SaslError::UnsupportedExtension)
        ));
        assert!(matches!(
            parse_server_first(b"e=unknown-user"),
            Err(SaslError::Server(e)) if e == "unknown-user"
        ));
    }

    #[test]
    fn server_final_is_a_verifier_or_an_error() {
        assert_eq!(
            parse_server_final(b"v=AAEC").unwrap(),
            ServerFinal::Verifier(vec![0, 1, 2])
        );
        assert_eq!(
            parse_server_final(b"v=AAEC,x=ext").unwrap(),
            ServerFinal::Verifier(vec![0, 1, 2])
        );
        assert_eq!(
            parse_server_final(b"e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
        for msg in [&b""[..], b"x=1", b"v=!!", b"\xff"] {
            assert!(matches!(
                parse_server_final(msg),
                Err(SaslError::BadServerMessage(_))
            ));
        }
    }

    #[test]
    fn nonces_are_fresh_and_printable_without_commas() {
        let (a, b) = (new_nonce().unwrap(), new_nonce().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
    }

    #[test]
    fn verify_hmac_checks_length_and_content() {
        for alg in [ScramAlgorithm::Sha256, ScramAlgorithm::Sha512] {
            let tag = alg.hmac(b"key", b"data");
            assert!(alg.verify_hmac(b"key", b"data", &tag));
            assert!(!alg.verify_hmac(b"key", b"data", &tag[1..]));
            let mut wrong = tag.clone();
            wrong[0] ^= 1;
            assert!(!alg.verify_hmac(b"key", b"data", &wrong));
        }
    }
}
