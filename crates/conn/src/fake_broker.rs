//! Test support: an in-process fake broker for the driver's unit tests.

use bytes::BytesMut;
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::metadata_response::MetadataResponseTopic;
use kafkit_protocol::messages::{
    ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestBody, RequestHeader,
    ResponseBody,
};
use std::sync::{Arc, Mutex};

use kafkit_protocol::{ApiKey, ErrorCode, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// An in-process broker: answers ApiVersions itself and hands every
/// other request to the test, which writes whatever bytes it likes.
pub(crate) struct FakeBroker {
    pub(crate) addr: String,
    requests: mpsc::UnboundedReceiver<(RequestHeader, RequestBody)>,
    pub(crate) replies: mpsc::UnboundedSender<Vec<u8>>,
    /// The version of every ApiVersions request received, in order.
    pub(crate) api_versions_seen: Arc<Mutex<Vec<i16>>>,
}

impl FakeBroker {
    /// A broker that speaks ApiVersions v0-4.
    pub(crate) async fn start() -> FakeBroker {
        FakeBroker::start_with(4).await
    }

    /// A broker that speaks ApiVersions v0 to `max_api_versions`: newer
    /// requests get `UNSUPPORTED_VERSION` in a v0 body (KIP-511).
    pub(crate) async fn start_with(max_api_versions: i16) -> FakeBroker {
        let api_versions_seen = Arc::new(Mutex::new(Vec::new()));
        let seen = api_versions_seen.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let (replies, mut replies_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let own_replies = replies.clone();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (mut reader, mut writer) = socket.into_split();
            tokio::spawn(async move {
                while let Some(bytes) = replies_rx.recv().await {
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            });
            let mut buf = BytesMut::new();
            loop {
                while let Some(frame) = frame::decode_frame(&mut buf, 1 << 20).unwrap() {
                    let (header, body) = frame::decode_request(frame).unwrap();
                    if let RequestBody::ApiVersions(_) = body {
                        let version = header.request_api_version;
                        seen.lock().unwrap().push(version);
                        let mut response = versions(max_api_versions);
                        let mut header = header;
                        if version > max_api_versions {
                            response.error_code = ErrorCode::UNSUPPORTED_VERSION;
                            header.request_api_version = 0;
                        }
                        let answer = answer(&header, ResponseBody::ApiVersions(response));
                        let _ = own_replies.send(answer);
                    } else {
                        let _ = requests_tx.send((header, body));
                    }
                }
                match reader.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        FakeBroker {
            addr,
            requests,
            replies,
            api_versions_seen,
        }
    }

    pub(crate) async fn next(&mut self) -> (RequestHeader, RequestBody) {
        self.requests
            .recv()
            .await
            .expect("the client sent a request")
    }

    /// Waits until the client's connection is gone.
    pub(crate) async fn disconnected(&mut self) {
        while self.requests.recv().await.is_some() {}
    }
}

pub(crate) fn versions(max_api_versions: i16) -> ApiVersionsResponse {
    api_versions_response(
        ErrorCode::NONE,
        &[
            (ApiKey::ApiVersions, 0, max_api_versions),
            (ApiKey::Metadata, 0, 13),
            (ApiKey::Produce, 3, 11),
        ],
    )
}

/// An ApiVersions answer with `code` advertising `(api, min, max)` ranges.
pub(crate) fn api_versions_response(
    code: ErrorCode,
    keys: &[(ApiKey, i16, i16)],
) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: code,
        api_keys: keys
            .iter()
            .map(|&(k, min, max)| ApiVersion {
                api_key: k.as_i16(),
                min_version: min,
                max_version: max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn answer(header: &RequestHeader, body: ResponseBody) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode_response_body(
        &mut buf,
        header.correlation_id,
        header.request_api_version,
        &body,
    )
    .unwrap();
    buf.to_vec()
}

pub(crate) fn metadata_request(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.into()),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

pub(crate) fn metadata_answer(header: &RequestHeader, body: &RequestBody) -> Vec<u8> {
    let RequestBody::Metadata(request) = body else {
        panic!("{body:?}")
    };
    let name = request.topics.as_ref().unwrap()[0].name.clone();
    let response = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name,
            ..Default::default()
        }],
        ..Default::default()
    };
    answer(header, ResponseBody::Metadata(response))
}

pub(crate) fn topic_of(response: &MetadataResponse) -> &str {
    response.topics[0].name.as_deref().unwrap()
}
