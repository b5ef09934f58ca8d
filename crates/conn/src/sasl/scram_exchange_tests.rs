//! Full SCRAM exchanges: the RFC 7677 test vector, a SHA-512 known answer
//! derived independently, and runs against a scripted server.
//!
//! The scripted peer follows the server side of RFC 5802 §3 and §5: it
//! stores only `StoredKey` and `ServerKey` (as Kafka's broker does, KIP-84),
//! recovers the client key from the proof, and checks it against
//! `StoredKey`. It shares the hash primitives with the client, which the two
//! known answers check independently; its message handling is written from
//! the RFC, not from the client.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Mechanism, SaslError, Scram, ScramAlgorithm, Step};

/// Runs a client through scripted server messages, returning what it sent.
pub(crate) fn exchange(scram: &Scram, server: &[&str]) -> Result<Vec<String>, SaslError> {
    let mut session = scram.start()?;
    let mut sent = Vec::new();
    let mut input: Option<&[u8]> = None;
    for reply in server.iter().map(|s| Some(s.as_bytes())).chain([None]) {
        match session.step(input)? {
            Step::Send(m) => sent.push(String::from_utf8(m).unwrap()),
            Step::Done => return Ok(sent),
            Step::Abort { error, .. } => return Err(error),
        }
        input = reply;
    }
    Ok(sent)
}

#[test]
fn rfc_7677_sha256_test_vector() {
    // RFC 7677 §3, verbatim.
    let scram = Scram::sha256("user", "pencil").with_fixed_nonce("rOprNGfwEbeRWgbNEkqO");
    let sent = exchange(
        &scram,
        &[
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ],
    )
    .unwrap();
    assert_eq!(
        sent,
        [
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ]
    );
}

/// Independently derived with Python's hashlib and hmac:
///
/// ```text
/// import hashlib, hmac, base64
/// h, it, salt = "sha512", 4096, b"kafkit-salt-0001"
/// cn, sn = "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j"
/// cfb = "n=kafkit,r=" + cn
/// sf = f"r={cn}{sn},s={base64.b64encode(salt).decode()},i={it}"
/// am = f"{cfb},{sf},c=biws,r={cn}{sn}".encode()
/// sp = hashlib.pbkdf2_hmac(h, b"correct horse", salt, it)
/// ck = hmac.new(sp, b"Client Key", h).digest()
/// cs = hmac.new(hashlib.new(h, ck).digest(), am, h).digest()
/// proof = bytes(a ^ b for a, b in zip(ck, cs))
/// ss = hmac.new(hmac.new(sp, b"Server Key", h).digest(), am, h).digest()
/// print(base64.b64encode(proof).decode(), base64.b64encode(ss).decode())
/// ```
#[test]
fn sha512_known_answer() {
    let scram =
        Scram::sha512("kafkit", "correct horse").with_fixed_nonce("fyko+d2lbbFgONRv9qkxdawL");
    let sent = exchange(
        &scram,
        &[
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=a2Fma2l0LXNhbHQtMDAwMQ==,i=4096",
            "v=GqQ19a/NsB87ceGvaLT2poVprDZNQl3kHNko6hesfQ4t5+Yxk8BnbQfSp/fms3uTiLcYWw4A92MUs87+eMacZg==",
        ],
    )
    .unwrap();
    assert_eq!(sent[0], "n,,n=kafkit,r=fyko+d2lbbFgONRv9qkxdawL");
    assert_eq!(
        sent[1],
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=4IGr5+mYCWJYL4gyYJKrGa7k4q62AiU4sewK1r3UzRHVoW0IA13pJ2p36Sd6nnam64s4IsDhZ+3+VbsAY3PC7A=="
    );
}

/// What a SCRAM server stores for a user.
struct Credential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Credential {
    fn new(alg: ScramAlgorithm, password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = alg.salted_password(password.as_bytes(), salt, iterations);
        Credential {
            salt: salt.to_vec(),
            iterations,
            stored_key: alg.hash(&alg.hmac(&salted, b"Client Key")),
            server_key: alg.hmac(&salted, b"Server Key"),
        }
    }
}

/// How the peer misbehaves, if at all.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    Honest,
    /// Accepts any proof and signs with keys it guessed: an impostor.
    Impostor,
    /// Echoes the client nonce without adding its own.
    NoServerNonce,
}

pub(super) struct Peer {
    alg: ScramAlgorithm,
    /// The saslname the peer knows, already escaped.
    saslname: &'static str,
    expect_token_auth: bool,
    credential: Credential,
    script: Script,
    /// client-first-bare and server-first, kept for the AuthMessage.
    transcript: Option<(String, String)>,
}

impl Peer {
    pub(super) fn new(alg: ScramAlgorithm, saslname: &'static str, password: &str) -> Self {
        Peer {
            alg,
            saslname,
            expect_token_auth: false,
            credential: Credential::new(alg, password, b"peer-salt-42", 4096),
            script: Script::Honest,
            transcript: None,
        }
    }

    pub(super) fn respond(&mut self, client: &[u8]) -> String {
        let client = std::str::from_utf8(client).unwrap();
        match self.transcript.take() {
            None => self.server_first(client),
            Some((bare, first)) => self.server_final(client, &bare, &first),
        }
    }

    fn server_first(&mut self, client_first: &str) -> String {
        let bare = client_first.strip_prefix("n,,").expect("gs2 header n,,");
        let mut attrs = bare.split(',');
        assert_eq!(attrs.next(), Some(format!("n={}", self.saslname).as_str()));
        let client_nonce = attrs.next().unwrap().strip_prefix("r=").unwrap();
        let extensions: Vec<&str> = attrs.collect();
        let expected: &[&str] = if self.expect_token_auth {
            &["tokenauth=true"]
        } else {
            &[]
        };
        assert_eq!(extensions, expected);

        let server_nonce = if self.script == Script::NoServerNonce {
            ""
        } else {
            "%srv)Nonce$9"
        };
        let first = format!(
            "r={client_nonce}{server_nonce},s={},i={}",
            BASE64.encode(&self.credential.salt),
            self.credential.iterations
        );
        self.transcript = Some((bare.to_owned(), first.clone()));
        first
    }

    fn server_final(&self, client_final: &str, bare: &str, first: &str) -> String {
        let (without_proof, proof) = client_final.rsplit_once(",p=").expect("proof last");
        let nonce = first.split(',').next().unwrap();
        assert_eq!(without_proof, format!("c=biws,{nonce}"));
        let auth_message = format!("{bare},{first},{without_proof}");

        let proof = BASE64.decode(proof).unwrap();
        let signature = self
            .alg
            .hmac(&self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let valid = proof.len() == signature.len()
            && self.alg.hash(&client_key) == self.credential.stored_key;
        if !valid && self.script != Script::Impostor {
            return "e=invalid-proof".to_owned();
        }
        let verifier = self
            .alg
            .hmac(&self.credential.server_key, auth_message.as_bytes());
        format!("v={}", BASE64.encode(verifier))
    }
}

/// Drives `client` against `peer` until the client finishes.
fn run(client: &Scram, peer: &mut Peer) -> Result<(), SaslError> {
    let mut session = client.start()?;
    let mut reply: Option<String> = None;
    for _ in 0..4 {
        match session.step(reply.as_deref().map(str::as_bytes))? {
            Step::Send(message) => reply = Some(peer.respond(&message)),
            Step::Done => return Ok(()),
            Step::Abort { error, .. } => return Err(error),
        }
    }
    panic!("SCRAM did not finish in two round trips");
}

const ALGORITHMS: [ScramAlgorithm; 2] = [ScramAlgorithm::Sha256, ScramAlgorithm::Sha512];

#[test]
fn full_exchange_succeeds_for_both_hashes() {
    for alg in ALGORITHMS {
        let mut peer = Peer::new(alg, "alice", "alice-secret");
        run(&Scram::new(alg, "alice", "alice-secret"), &mut peer).unwrap();
    }
}

#[test]
fn reauthentication_starts_a_fresh_exchange() {
    let scram = Scram::sha512("alice", "alice-secret");
    let mut peer = Peer::new(ScramAlgorithm::Sha512, "alice", "alice-secret");
    run(&scram, &mut peer).unwrap();
    run(&scram, &mut peer).unwrap();
}

#[test]
fn escaped_names_and_delegation_tokens_authenticate() {
    for alg in ALGORITHMS {
        let mut peer = Peer::new(alg, "ops=3Dteam=2Ceu", "pw");
        run(&Scram::new(alg, "ops=team,eu", "pw"), &mut peer).unwrap();

        let mut peer = Peer::new(alg, "tokenid-1", "token-hmac");
        peer.expect_token_auth = true;
        run(
            &Scram::new(alg, "tokenid-1", "token-hmac").with_token_auth(),
            &mut peer,
        )
        .unwrap();
    }
}

#[test]
fn wrong_password_is_reported_as_the_servers_error() {
    for alg in ALGORITHMS {
        let mut peer = Peer::new(alg, "alice", "alice-secret");
        let err = run(&Scram::new(alg, "alice", "wrong-guess"), &mut peer).unwrap_err();
        assert!(
            matches!(&err, SaslError::Server(e) if e == "invalid-proof"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("wrong-guess"));
    }
}

#[test]
fn impostor_server_fails_the_signature_check() {
    for alg in ALGORITHMS {
        // The impostor does not know alice's password, so it cannot sign.
        let mut peer = Peer::new(alg, "alice", "what-the-impostor-guessed");
        peer.script = Script::Impostor;
        let err = run(&Scram::new(alg, "alice", "alice-secret"), &mut peer).unwrap_err();
        assert!(matches!(err, SaslError::ServerSignatureMismatch), "{err:?}");
    }
}

#[test]
fn weak_or_replayed_server_first_is_refused() {
    let mut peer = Peer::new(ScramAlgorithm::Sha256, "alice", "pw");
    peer.script = Script::NoServerNonce;
    let err = run(&Scram::sha256("alice", "pw"), &mut peer).unwrap_err();
    assert!(matches!(err, SaslError::InvalidNonce), "{err:?}");

    let mut peer = Peer::new(ScramAlgorithm::Sha256, "alice", "pw");
    peer.credential = Credential::new(ScramAlgorithm::Sha256, "pw", b"salt", 1024);
    let err = run(&Scram::sha256("alice", "pw"), &mut peer).unwrap_err();
    assert!(
        matches!(
            err,
            SaslError::IterationCount {
                iterations: 1024,
                ..
            }
        ),
        "{err:?}"
    );
}
