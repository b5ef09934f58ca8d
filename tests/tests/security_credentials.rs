//! Credentials never leak: a SASL password or an OAuth token appears neither
//! in the `Debug` output of any config that carries it (mechanism,
//! `ConnConfig`, `TransportConfig`, `ReaderConfig`) nor in
//! the error a failed authentication returns. And TLS, once asked for,
//! verifies certificates unless told otherwise explicitly.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafkit_conn::sasl::{Mechanism, OAuthBearer, OAuthToken, Plain, Scram};
use kafkit_conn::{Conn, ConnConfig, ErrorCode, TlsConfig, TransportConfig};
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::{
    ApiVersionsResponse, RequestBody, ResponseBody, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafkit_protocol::{ApiKey, frame};
use kafkit_reader::ReaderConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASSWORD: &str = "hunter2-PASSWORD-SECRET";
const TOKEN: &str = "eyJhbGciOi.TOKEN-SECRET.sig";

fn mechanisms() -> Vec<Arc<dyn Mechanism>> {
    vec![
        Arc::new(Plain::new("alice", PASSWORD)),
        Arc::new(Scram::sha256("alice", PASSWORD)),
        Arc::new(Scram::sha512("alice", PASSWORD)),
        Arc::new(OAuthBearer::from_fn(|| {
            Ok(OAuthToken::new(TOKEN).with_extension("traceId", "abc"))
        })),
    ]
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
    assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
    assert!(!text.contains("SECRET"), "{what} shows a secret: {text}");
}

#[test]
fn debug_output_of_every_config_hides_passwords_and_tokens() {
    assert_clean("OAuthToken", &format!("{:?}", OAuthToken::new(TOKEN)));
    for sasl in mechanisms() {
        let conn = ConnConfig {
            sasl: Some(sasl.clone()),
            ..Default::default()
        };
        assert_clean("a mechanism", &format!("{sasl:?}"));
        assert_clean("ConnConfig", &format!("{conn:?} {conn:#?}"));
        let mut transport = TransportConfig::new(["localhost:9092"]);
        transport.conn = conn.clone();
        assert_clean("TransportConfig", &format!("{transport:?}"));
        let reader = ReaderConfig {
            conn: conn.clone(),
            ..Default::default()
        };
        assert_clean("ReaderConfig", &format!("{reader:?}"));
    }
}

/// A broker that answers ApiVersions and the SASL handshake, then refuses
/// every authentication.
async fn refusing_broker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(f)) = frame::decode_frame(&mut buf, 1 << 20) {
                        let Ok((header, body)) = frame::decode_request(f) else {
                            return;
                        };
                        let answer = match body {
                            RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(versions()),
                            RequestBody::SaslHandshake(_) => {
                                ResponseBody::SaslHandshake(SaslHandshakeResponse {
                                    mechanisms: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                                        .map(String::from)
                                        .into(),
                                    ..Default::default()
                                })
                            }
                            RequestBody::SaslAuthenticate(_) => {
                                ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                                    error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
                                    error_message: Some("Authentication failed".into()),
                                    ..Default::default()
                                })
                            }
                            _ => return,
                        };
                        let mut out = BytesMut::new();
                        let v = header.request_api_version;
                        frame::encode_response_body(&mut out, header.correlation_id, v, &answer)
                            .unwrap();
                        if socket.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    match socket.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

fn versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: (0..100)
            .filter_map(ApiKey::from_i16)
            .map(|k| ApiVersion {
                api_key: k as i16,
                min_version: k.request_versions().min,
                max_version: k.request_versions().max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_refused_authentication_names_no_credential() {
    let addr = refusing_broker().await;
    for sasl in mechanisms() {
        let config = ConnConfig {
            sasl: Some(sasl.clone()),
            request_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let e = tokio::time::timeout(Duration::from_secs(10), Conn::dial_with(&addr, config))
            .await
            .expect("a refusal does not hang")
            .expect_err("the broker refuses everyone");
        assert!(
            !e.is_retriable(),
            "bad credentials are not worth retrying: {e}"
        );
        assert_clean("the error", &format!("{e} {e:?}"));
    }
}

#[test]
fn tls_verifies_certificates_unless_explicitly_told_not_to() {
    // Plaintext unless TLS is configured (a Kafka listener's default) ...
    assert!(ConnConfig::default().tls.is_none());
    // ... and a TLS config verifies by default ...
    let default = TlsConfig::builder().build().unwrap();
    assert!(
        format!("{default:?}").contains("danger_accept_invalid_certs: false"),
        "{default:?}"
    );
    // ... until the one explicitly named switch turns verification off.
    let off = TlsConfig::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert!(
        format!("{off:?}").contains("danger_accept_invalid_certs: true"),
        "{off:?}"
    );
}
