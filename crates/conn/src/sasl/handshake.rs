//! [`authenticate`]: drives a [`Mechanism`] over a [`Conn`] with
//! `SaslHandshake` v1 and `SaslAuthenticate` (KIP-152), and reports the
//! session lifetime the broker grants (KIP-368).
//!
//! This is the only IO in the SASL module; the mechanisms stay sans-IO.

use std::time::Duration;

use bytes::Bytes;
use kafkit_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafkit_protocol::{ApiKey, ErrorCode, VersionRange};

use super::{Mechanism, SaslError, Step};
use crate::{Conn, Error, ErrorKind};

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authenticated {
    /// The mechanism used.
    pub mechanism: String,
    /// How long the broker keeps the session (KIP-368,
    /// `connections.max.reauth.ms`): re-authenticate before it runs out or
    /// the broker closes the connection. `None` when the broker sets no limit
    /// or predates `SaslAuthenticate` v1.
    pub session_lifetime: Option<Duration>,
}

/// Authenticates `conn` with `mechanism`.
///
/// Run it right after [`Conn::dial`] and before any other request: a SASL
/// listener accepts only ApiVersions and SASL requests until authentication
/// succeeds. Call it again, with the same mechanism, to re-authenticate
/// before [`Authenticated::session_lifetime`] ends; each call starts a fresh
/// session (new nonce, current token).
///
/// Errors: [`SaslError::UnsupportedMechanism`] when the broker does not
/// enable the mechanism, [`SaslError::Rejected`] with the broker's code and
/// message (a wrong password is `SASL_AUTHENTICATION_FAILED`), the
/// mechanism's own errors, and [`SaslError::Connection`] when a request
/// itself fails. After any error the connection is not authenticated and
/// should be closed.
///
/// Cancel safety: not cancel safe. Each request is written whole, but
/// dropping the future between steps leaves the broker mid-exchange, so the
/// connection must then be closed.
pub async fn authenticate(
    conn: &Conn,
    mechanism: &dyn Mechanism,
) -> Result<Authenticated, SaslError> {
    let name = mechanism.name().to_owned();
    // v0 means raw SASL tokens without SaslAuthenticate framing (pre-1.0
    // brokers); this driver speaks only v1.
    let version = conn
        .version_for(ApiKey::SaslHandshake)
        .map_err(SaslError::Connection)?;
    if version < 1 {
        let unsupported = Error::new(ErrorKind::UnsupportedVersion {
            api: ApiKey::SaslHandshake,
            ours: VersionRange::new(1, 1),
            broker: conn.broker_versions().range(ApiKey::SaslHandshake),
        })
        .with_broker(conn.addr());
        return Err(SaslError::Connection(unsupported));
    }
    let handshake = conn
        .request_at(
            1,
            SaslHandshakeRequest {
                mechanism: name.clone(),
            },
        )
        .await
        .map_err(SaslError::Connection)?;
    match handshake.error_code {
        ErrorCode::NONE => {}
        ErrorCode::UNSUPPORTED_SASL_MECHANISM => {
            return Err(SaslError::UnsupportedMechanism {
                mechanism: name,
                enabled: handshake.mechanisms,
            });
        }
        code => {
            return Err(SaslError::Rejected {
                code,
                message: None,
            });
        }
    }

    let mut session = mechanism.start()?;
    let mut server: Option<Bytes> = None;
    let mut session_lifetime = None;
    loop {
        let (message, abort) = match session.step(server.as_deref())? {
            Step::Send(message) => (message, None),
            Step::Abort { message, error } => (message, Some(error)),
            Step::Done => break,
        };
        let response = conn
            .request(SaslAuthenticateRequest {
                auth_bytes: Bytes::from(message),
                ..Default::default()
            })
            .await;
        // The mechanism already knows why the exchange failed; the broker's
        // answer to the closing message is a generic failure (or nothing, if
        // it hung up).
        if let Some(error) = abort {
            return Err(error);
        }
        let response = response.map_err(SaslError::Connection)?;
        if response.error_code.is_err() {
            return Err(SaslError::Rejected {
                code: response.error_code,
                message: response.error_message,
            });
        }
        // Kafka sends the lifetime with the last response; zero means none.
        session_lifetime = u64::try_from(response.session_lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        server = Some(response.auth_bytes);
    }
    Ok(Authenticated {
        mechanism: name,
        session_lifetime,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafkit_protocol::frame;
    use kafkit_protocol::messages::api_versions_response::ApiVersion;
    use kafkit_protocol::messages::{
        ApiVersionsResponse, RequestBody, ResponseBody, SaslAuthenticateResponse,
        SaslHandshakeResponse,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::sasl::scram_exchange_tests::Peer;
    use crate::sasl::{OAuthBearer, OAuthToken, Plain, Scram, ScramAlgorithm};

    /// A broker for one connection: it answers ApiVersions itself (with
    /// SaslHandshake up to `handshake_max`) and every other request with
    /// `script`.
    async fn broker<F>(handshake_max: i16, mut script: F) -> String
    where
        F: FnMut(RequestBody) -> ResponseBody + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let apis = [
            (ApiKey::ApiVersions, 0, 4),
            (ApiKey::SaslHandshake, 0, handshake_max),
            (ApiKey::SaslAuthenticate, 0, 2),
        ];
        let versions = ApiVersionsResponse {
            api_keys: apis
                .iter()
                .map(|&(api, min, max)| ApiVersion {
                    api_key: api.as_i16(),
                    min_version: min,
                    max_version: max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            loop {
                let Some(request) = frame::decode_frame(&mut buf, 1 << 20).unwrap() else {
                    match socket.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    }
                };
                let (header, body) = frame::decode_request(request).unwrap();
                let response = match body {
                    RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(versions.clone()),
                    other => script(other),
                };
                let mut out = BytesMut::new();
                let (id, version) = (header.correlation_id, header.request_api_version);
                frame::encode_response_body(&mut out, id, version, &response).unwrap();
                if socket.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
        addr
    }

    fn handshake_ok(request: &RequestBody, mechanism: &str) -> ResponseBody {
        let RequestBody::SaslHandshake(handshake) = request else {
            panic!("expected SaslHandshake, got {request:?}");
        };
        assert_eq!(handshake.mechanism, mechanism);
        ResponseBody::SaslHandshake(SaslHandshakeResponse {
            error_code: ErrorCode::NONE,
            mechanisms: vec![mechanism.to_owned()],
        })
    }

    fn auth_bytes(request: RequestBody) -> Bytes {
        match request {
            RequestBody::SaslAuthenticate(a) => a.auth_bytes,
            other => panic!("expected SaslAuthenticate, got {other:?}"),
        }
    }

    fn auth_response(bytes: &[u8], error_code: ErrorCode, lifetime_ms: i64) -> ResponseBody {
        ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
            error_code,
            error_message: error_code
                .is_err()
                .then(|| "Authentication failed".to_owned()),
            auth_bytes: Bytes::copy_from_slice(bytes),
            session_lifetime_ms: lifetime_ms,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn plain_authenticates_and_reports_the_session_lifetime() {
        let mut first = true;
        let addr = broker(1, move |request| {
            if std::mem::take(&mut first) {
                return handshake_ok(&request, "PLAIN");
            }
            assert_eq!(auth_bytes(request), &b"\0alice\0alice-secret"[..]);
            auth_response(b"", ErrorCode::NONE, 60_000)
        })
        .await;
        let conn = Conn::dial(&addr).await.unwrap();
        let done = authenticate(&conn, &Plain::new("alice", "alice-secret"))
            .await
            .unwrap();
        assert_eq!(done.mechanism, "PLAIN");
        assert_eq!(done.session_lifetime, Some(Duration::from_secs(60)));
    }

    #[tokio::test]
    async fn scram_sha512_runs_both_round_trips_through_the_broker() {
        let mut peer = Peer::new(ScramAlgorithm::Sha512, "alice", "alice-secret");
        let mut first = true;
        let addr = broker(1, move |request| {
            if std::mem::take(&mut first) {
                return handshake_ok(&request, "SCRAM-SHA-512");
            }
            let reply = peer.respond(&auth_bytes(request));
            auth_response(reply.as_bytes(), ErrorCode::NONE, 0)
        })
        .await;
        let conn = Conn::dial(&addr).await.unwrap();
        let done = authenticate(&conn, &Scram::sha512("alice", "alice-secret"))
            .await
            .unwrap();
        assert_eq!(done.session_lifetime, None);
    }

    #[tokio::test]
    async fn unsupported_mechanism_lists_what_the_broker_enables() {
        let addr = broker(1, |_| {
            ResponseBody::SaslHandshake(SaslHandshakeResponse {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                mechanisms: vec!["SCRAM-SHA-512".into()],
            })
        })
        .await;
        let conn = Conn::dial(&addr).await.unwrap();
        let err = authenticate(&conn, &Plain::new("a", "b"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SaslError::UnsupportedMechanism { mechanism, enabled }
                if mechanism == "PLAIN" && enabled == &["SCRAM-SHA-512"]),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn wrong_password_is_the_brokers_error_code_and_message() {
        let mut first = true;
        let addr = broker(1, move |request| {
            if std::mem::take(&mut first) {
                return handshake_ok(&request, "PLAIN");
            }
            auth_response(b"", ErrorCode::SASL_AUTHENTICATION_FAILED, 0)
        })
        .await;
        let conn = Conn::dial(&addr).await.unwrap();
        let err = authenticate(&conn, &Plain::new("alice", "wrong-secret"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SaslError::Rejected { code, message: Some(m) }
                if *code == ErrorCode::SASL_AUTHENTICATION_FAILED && m == "Authentication failed"),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("wrong-secret"));
    }

    #[tokio::test]
    async fn oauth_error_json_is_acknowledged_then_reported() {
        let json = br#"{"status":"invalid_token"}"#;
        let mut calls = 0;
        let addr = broker(1, move |request| {
            calls += 1;
            match calls {
                1 => handshake_ok(&request, "OAUTHBEARER"),
                2 => auth_response(json, ErrorCode::NONE, 0),
                _ => {
                    assert_eq!(auth_bytes(request), &[0x01][..]);
                    auth_response(b"", ErrorCode::SASL_AUTHENTICATION_FAILED, 0)
                }
            }
        })
        .await;
        let conn = Conn::dial(&addr).await.unwrap();
        let oauth = OAuthBearer::from_fn(|| Ok(OAuthToken::new("expired.jwt.token")));
        let err = authenticate(&conn, &oauth).await.unwrap_err();
        assert!(
            matches!(&err, SaslError::Server(m) if m.contains("invalid_token")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn handshake_v0_only_brokers_are_refused_before_sending() {
        let addr = broker(0, |request| panic!("nothing should be sent: {request:?}")).await;
        let conn = Conn::dial(&addr).await.unwrap();
        let err = authenticate(&conn, &Plain::new("a", "b"))
            .await
            .unwrap_err();
        let SaslError::Connection(e) = &err else {
            panic!("{err:?}");
        };
        assert!(
            matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }),
            "{e:?}"
        );
    }

    /// SASL at dial ([`ConnConfig::sasl`]), against the scripted peer above:
    /// tansu's SCRAM needs persistent storage (see the report in DESIGN.md).
    fn with_sasl(mechanism: impl Mechanism + 'static) -> crate::ConnConfig {
        crate::ConnConfig {
            sasl: Some(std::sync::Arc::new(mechanism)),
            ..Default::default()
        }
    }

    fn scram_broker_script(lifetime_ms: i64) -> impl FnMut(RequestBody) -> ResponseBody + Send {
        let mut peer = Peer::new(ScramAlgorithm::Sha512, "alice", "alice-secret");
        let mut first = true;
        move |request| {
            if std::mem::take(&mut first) {
                return handshake_ok(&request, "SCRAM-SHA-512");
            }
            let reply = peer.respond(&auth_bytes(request));
            auth_response(reply.as_bytes(), ErrorCode::NONE, lifetime_ms)
        }
    }

    #[tokio::test]
    async fn sasl_scram_against_scripted_peer_authenticates_at_dial() {
        let addr = broker(1, scram_broker_script(60_000)).await;
        let config = with_sasl(Scram::sha512("alice", "alice-secret"));
        let text = format!("{config:?}");
        assert!(!text.contains("alice-secret"), "{text}");
        let conn = Conn::dial_with(&addr, config).await.unwrap();
        let session = conn.sasl_session().expect("authenticated at dial");
        assert_eq!(session.mechanism, "SCRAM-SHA-512");
        assert_eq!(session.session_lifetime, Some(Duration::from_secs(60)));
        assert!(!conn.is_closed());
    }

    #[tokio::test]
    async fn sasl_wrong_password_against_scripted_peer_fails_the_dial_with_a_sasl_error() {
        let addr = broker(1, scram_broker_script(0)).await;
        let config = with_sasl(Scram::sha512("alice", "wrong-secret"));
        let err = Conn::dial_with(&addr, config).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Sasl(_)), "{err:?}");
        assert!(!err.is_retriable());
        assert_eq!(err.broker(), Some(addr.as_str()));
        assert!(!format!("{err} {err:?}").contains("wrong-secret"));
    }

    #[tokio::test]
    async fn sasl_unsupported_mechanism_at_dial_names_the_enabled_ones() {
        let addr = broker(1, |_| {
            ResponseBody::SaslHandshake(SaslHandshakeResponse {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                mechanisms: vec!["SCRAM-SHA-512".into()],
            })
        })
        .await;
        let err = Conn::dial_with(&addr, with_sasl(Plain::new("a", "b")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Sasl(SaslError::UnsupportedMechanism { .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("SCRAM-SHA-512"), "{err}");
    }

    #[tokio::test]
    async fn sasl_session_lifetime_against_scripted_peer_retires_the_connection_before_expiry() {
        // The broker grants 2 s: the connection retires at 85%, 1.7 s.
        let addr = broker(1, scram_broker_script(2_000)).await;
        let config = with_sasl(Scram::sha512("alice", "alice-secret"));
        let conn = Conn::dial_with(&addr, config).await.unwrap();
        assert!(
            !conn.is_closed(),
            "retires only near the end of the session"
        );
        let retired = async {
            while !conn.is_closed() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), retired)
            .await
            .expect("the connection retired before its session expired");
        let err = conn
            .request_at(12, kafkit_protocol::messages::MetadataRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Closed);
        assert!(err.is_retriable(), "a pool dials again");
        assert!(err.to_string().contains("KIP-368"), "{err}");
        // Retiring is a clean close, not a failure.
        conn.close().await.unwrap();
    }
}
