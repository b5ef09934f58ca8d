//! A malicious broker: a tiny TCP server that answers ApiVersions correctly
//! and then answers the next request with a crafted frame (a huge or
//! negative size, an array claiming two billion elements, a wrong
//! correlation id, a frame cut short). Each one is a typed error from
//! `Conn`, within the request timeout: no panic, no hang, no huge
//! allocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafkit_conn::{Conn, ConnConfig, ErrorKind};
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::{ApiVersionsResponse, MetadataRequest, RequestBody, ResponseBody};
use kafkit_protocol::{ApiKey, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the raw bytes answering a request with this correlation id.
type Craft = Arc<dyn Fn(i32) -> Vec<u8> + Send + Sync>;

/// Every API at the versions kafkit speaks.
fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: (0..100)
            .filter_map(ApiKey::from_i16)
            .map(|k| {
                let range = k.request_versions();
                ApiVersion {
                    api_key: k as i16,
                    min_version: range.min,
                    max_version: range.max,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// Starts the malicious broker; returns its address.
async fn malicious(craft: Craft, close_after: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let craft = craft.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(f)) = frame::decode_frame(&mut buf, 1 << 24) {
                        let Ok((header, body)) = frame::decode_request(f) else {
                            return;
                        };
                        let out = match body {
                            RequestBody::ApiVersions(_) => {
                                let mut out = BytesMut::new();
                                let answer = ResponseBody::ApiVersions(api_versions());
                                let v = header.request_api_version;
                                frame::encode_response_body(
                                    &mut out,
                                    header.correlation_id,
                                    v,
                                    &answer,
                                )
                                .unwrap();
                                out.to_vec()
                            }
                            _ => craft(header.correlation_id),
                        };
                        if socket.write_all(&out).await.is_err() {
                            return;
                        }
                        if close_after && !matches!(body, RequestBody::ApiVersions(_)) {
                            return; // dropping the socket closes it
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

/// Dials the broker and sends one Metadata request; returns its error and
/// how long it took to come.
async fn metadata_error(craft: Craft, close_after: bool) -> (kafkit_conn::Error, Duration) {
    let addr = malicious(craft, close_after).await;
    let config = ConnConfig {
        request_timeout: Some(TIMEOUT),
        connect_timeout: TIMEOUT,
        max_response_size: 1 << 20,
        ..Default::default()
    };
    let conn = Conn::dial_with(&addr, config)
        .await
        .expect("ApiVersions is answered well");
    let start = Instant::now();
    let answer = tokio::time::timeout(TIMEOUT * 3, conn.request(MetadataRequest::default()))
        .await
        .expect("the malicious answer does not hang the request");
    let e = answer.expect_err("a malicious answer is an error");
    (e, start.elapsed())
}

fn frame_of(size: i32, rest: &[u8]) -> Vec<u8> {
    let mut out = size.to_be_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

#[tokio::test]
async fn a_huge_frame_size_is_refused_before_allocating() {
    let (e, took) = metadata_error(Arc::new(|_| frame_of(i32::MAX, &[0; 8])), false).await;
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e}");
    assert!(
        took < TIMEOUT,
        "refused at once, not after a timeout: {took:?}"
    );
    assert!(e.is_connection_error() || !e.is_retriable(), "{e}");
}

#[tokio::test]
async fn a_negative_frame_size_is_a_protocol_error() {
    let (e, took) = metadata_error(Arc::new(|_| frame_of(-5, &[0; 8])), false).await;
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e}");
    assert!(took < TIMEOUT, "{took:?}");
}

#[tokio::test]
async fn an_array_claiming_two_billion_elements_is_a_decode_error() {
    // The correlation id, then Metadata's brokers array (v12: compact, so
    // the tagged-field byte first) claiming i32::MAX entries in 5 bytes.
    let craft = |id: i32| {
        let mut body = BytesMut::new();
        body.put_i32(id);
        body.put_u8(0); // header tagged fields
        body.put_i32(0); // throttle_time_ms
        body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // varint ~2^31
        frame_of(body.len() as i32, &body)
    };
    let (e, took) = metadata_error(Arc::new(craft), false).await;
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e}");
    assert!(took < TIMEOUT, "{took:?}");
}

#[tokio::test]
async fn nesting_deeper_than_the_frame_is_a_decode_error() {
    // Arrays inside arrays, each claiming one element, running off the end
    // of the frame: decoding stops at the frame's end with an error.
    let craft = |id: i32| {
        let mut body = BytesMut::new();
        body.put_i32(id);
        body.put_u8(0);
        body.put_i32(0);
        body.put_slice(&[2; 4096]);
        frame_of(body.len() as i32, &body)
    };
    let (e, took) = metadata_error(Arc::new(craft), false).await;
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e}");
    assert!(took < TIMEOUT, "{took:?}");
}

#[tokio::test]
async fn a_wrong_correlation_id_is_an_error_not_a_mixup() {
    let craft = |id: i32| {
        let mut body = BytesMut::new();
        body.put_i32(id.wrapping_add(1000));
        body.put_slice(&[0; 16]);
        frame_of(body.len() as i32, &body)
    };
    let (e, took) = metadata_error(Arc::new(craft), false).await;
    assert!(
        matches!(e.kind(), ErrorKind::Protocol(_)) || e.is_connection_error(),
        "{e}"
    );
    assert!(took < TIMEOUT * 2, "{took:?}");
}

#[tokio::test]
async fn a_truncated_frame_then_close_is_a_connection_error() {
    let craft = |id: i32| {
        let mut out = 100i32.to_be_bytes().to_vec();
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
        out
    };
    let (e, took) = metadata_error(Arc::new(craft), true).await;
    assert!(e.is_connection_error(), "{e}");
    assert!(took < TIMEOUT, "{took:?}");
}
