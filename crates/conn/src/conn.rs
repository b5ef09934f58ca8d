//! [`Conn`]: the cheap, cloneable handle to one broker connection.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::{ApiKey, Request, frame};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::driver::{Command, Driver, Shared, Stats};
use crate::versions::{self, BrokerVersions};
use crate::{ConnConfig, Error, ErrorKind};

/// One connection to one Kafka broker.
///
/// `Conn` is a handle: cloning it is cheap and every clone talks to the same
/// socket. A driver task owns the socket; requests from all clones are
/// pipelined on it (each is written without waiting for earlier responses)
/// and answers are matched by correlation id. The task stops when the last
/// handle is dropped, on [`close`](Conn::close), on the idle timeout, or on
/// the first IO or decode error; from then on [`is_closed`](Conn::is_closed)
/// is true and every request fails with the error that killed it.
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Conn {
    /// Connects to `addr` (`host:port`) with the default [`ConnConfig`] and
    /// negotiates API versions.
    ///
    /// Cancel safety: dropping the future closes the half-open connection.
    pub async fn dial(addr: impl fmt::Display) -> Result<Conn, Error> {
        Conn::dial_with(addr, ConnConfig::default()).await
    }

    /// Connects to `addr` with `config`: TCP connect (within
    /// `connect_timeout`), then ApiVersions (within `request_timeout`).
    ///
    /// Cancel safety: dropping the future closes the half-open connection.
    pub async fn dial_with(addr: impl fmt::Display, config: ConnConfig) -> Result<Conn, Error> {
        config.validate()?;
        let addr = addr.to_string();
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(&addr)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(Error::io(e).with_broker(&addr)),
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout)
                        .with_message(format!(
                            "connect took longer than {:?}",
                            config.connect_timeout
                        ))
                        .with_broker(&addr));
                }
            };
        stream
            .set_nodelay(config.nodelay)
            .map_err(|e| Error::io(e).with_broker(&addr))?;
        let timeout = config.request_timeout;
        let shared = Arc::new(Shared::new(addr, config));
        let (commands, receiver) = mpsc::unbounded_channel();
        Driver::spawn(stream, shared.clone(), receiver);
        let conn = Conn { shared, commands };
        versions::negotiate(&conn, timeout).await?;
        tracing::debug!(broker = %conn.addr(), "connected");
        Ok(conn)
    }

    /// The address this connection was dialled with.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &ConnConfig {
        &self.shared.config
    }

    /// True once the connection can carry no more requests (closed, idle
    /// timeout, or a fatal IO/decode error). Dial again to recover.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// A snapshot of this connection's counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The version ranges the broker advertised.
    pub fn broker_versions(&self) -> &BrokerVersions {
        self.shared
            .versions
            .get()
            .expect("versions are negotiated before a Conn is handed out")
    }

    /// The highest version of `api` both kafkit and the broker speak, or an
    /// [`UnsupportedVersion`](ErrorKind::UnsupportedVersion) error naming
    /// the API and both ranges.
    pub fn version_for(&self, api: ApiKey) -> Result<i16, Error> {
        self.broker_versions()
            .version_for(api)
            .map_err(|e| e.with_broker(self.addr()))
    }

    /// Sends `body` at the highest common version and returns the decoded
    /// response. Error codes inside the response are data, returned as-is.
    ///
    /// An acks=0 [`ProduceRequest`] gets no response from the broker: the
    /// future resolves with `R::Response::default()` once the request is
    /// written.
    ///
    /// Cancel safety: safe. Dropping the future before the request is
    /// handed to the driver sends nothing; after that the driver still
    /// writes the whole frame and discards the response.
    pub async fn request<R: Request + 'static>(&self, body: R) -> Result<R::Response, Error> {
        let version = self.version_for(R::API_KEY)?;
        self.send(version, &body, Duration::ZERO).await
    }

    /// [`request`](Conn::request) at an explicit `version`: the escape
    /// hatch for testing brokers or pinning a version. The version is not
    /// checked against the broker's range.
    ///
    /// Cancel safety: as [`request`](Conn::request).
    pub async fn request_at<R: Request + 'static>(
        &self,
        version: i16,
        body: R,
    ) -> Result<R::Response, Error> {
        self.send(version, &body, Duration::ZERO).await
    }

    /// Stops taking requests, waits for the in-flight ones to be answered
    /// (at most `request_timeout`), and closes the socket. Returns the error
    /// that killed the connection, if one did.
    ///
    /// Cancel safety: safe; the connection closes anyway.
    pub async fn close(&self) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Close(ack)).is_err() {
            return self.dead_result();
        }
        match done.await {
            Ok(result) => result.map_err(|e| e.with_broker(self.addr())),
            Err(_) => self.dead_result(),
        }
    }

    fn dead_result(&self) -> Result<(), Error> {
        let e = self.shared.closed_error();
        match e.kind() {
            ErrorKind::Closed => Ok(()),
            _ => Err(e),
        }
    }

    /// Sends a typed request with `extra` added to the request timeout and
    /// decodes the answer; a response that does not decode kills the
    /// connection (the stream can no longer be trusted).
    pub(crate) async fn send<R: Request + 'static>(
        &self,
        version: i16,
        body: &R,
        extra: Duration,
    ) -> Result<R::Response, Error> {
        let timeout = self.shared.config.request_timeout.map(|t| t + extra);
        let frame = self.roundtrip_typed(version, body, timeout).await?;
        if frame.is_empty() {
            return Ok(R::Response::default());
        }
        frame::decode_response::<R::Response>(frame, R::API_KEY, version)
            .map(|(_, response)| response)
            .map_err(|e| {
                let e = Error::from(e).with_api(R::API_KEY);
                self.poison(e.clone());
                e.with_broker(self.addr())
            })
    }

    /// Encodes `body` and exchanges it for its raw response frame.
    pub(crate) async fn roundtrip_typed<R: Request + 'static>(
        &self,
        version: i16,
        body: &R,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let expects_response = (body as &dyn Any)
            .downcast_ref::<ProduceRequest>()
            .is_none_or(|p| p.acks != 0);
        let client_id = self.shared.config.client_id.as_deref();
        let encode =
            |buf: &mut BytesMut, id| frame::encode_request(buf, id, client_id, version, body);
        self.roundtrip(R::API_KEY, version, expects_response, timeout, encode)
            .await
    }

    /// The one path every request takes: permit, correlation id, encode,
    /// hand to the driver, wait. Traced and counted.
    async fn roundtrip(
        &self,
        api: ApiKey,
        version: i16,
        expects_response: bool,
        timeout: Option<Duration>,
        encode: impl FnOnce(&mut BytesMut, i32) -> Result<(), kafkit_protocol::EncodeError>,
    ) -> Result<Bytes, Error> {
        let counters = &self.shared.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!(
            "kafka_request",
            api = %api,
            version,
            broker = %self.shared.addr,
            correlation_id = tracing::field::Empty,
        );
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        let result = self
            .exchange(api, expects_response, deadline, encode)
            .instrument(span.clone())
            .await;
        let latency_us = start.elapsed().as_micros() as u64;
        let _entered = span.enter();
        match &result {
            Ok(frame) => tracing::debug!(latency_us, bytes = frame.len(), "response"),
            Err(error) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if matches!(error.kind(), ErrorKind::Timeout) {
                    counters.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(latency_us, %error, "request failed");
            }
        }
        result.map_err(|e| e.with_api(api).with_broker(&self.shared.addr))
    }

    async fn exchange(
        &self,
        api: ApiKey,
        expects_response: bool,
        deadline: Option<Instant>,
        encode: impl FnOnce(&mut BytesMut, i32) -> Result<(), kafkit_protocol::EncodeError>,
    ) -> Result<Bytes, Error> {
        if self.shared.is_closed() {
            return Err(self.shared.closed_error());
        }
        let within = |what: &'static str| {
            move |_| {
                Error::new(ErrorKind::Timeout).with_message(format!("no response to {api} {what}"))
            }
        };
        let permit = self.shared.in_flight.clone().acquire_owned();
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d, permit)
                .await
                .map_err(within("while waiting for an in-flight slot"))?,
            None => permit.await,
        }
        .map_err(|_| self.shared.closed_error())?;
        let correlation_id = self.shared.correlation_id();
        tracing::Span::current().record("correlation_id", correlation_id);
        let mut buf = BytesMut::new();
        encode(&mut buf, correlation_id)?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Request {
            correlation_id,
            frame: buf.freeze(),
            expects_response,
            reply,
            permit,
        };
        if self.commands.send(command).is_err() {
            return Err(self.shared.closed_error());
        }
        // On timeout the driver keeps the correlation entry (and the
        // in-flight slot): a late response is read and discarded, which
        // keeps the stream in step. A broker that never answers at all
        // eventually uses up `max_in_flight` and every request times out,
        // which is the signal to dial again.
        let answer = match deadline {
            Some(d) => tokio::time::timeout_at(d, answer)
                .await
                .map_err(within("in time"))?,
            None => answer.await,
        };
        match answer {
            Ok(result) => result,
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Kills the connection with `error` (a response failed to decode).
    pub(crate) fn poison(&self, error: Error) {
        self.shared.mark_closed(error.clone());
        let _ = self.commands.send(Command::Fail(error));
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::messages::api_versions_response::ApiVersion;
    use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafkit_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafkit_protocol::messages::{
        ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestBody, RequestHeader,
        ResponseBody,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An in-process broker: answers ApiVersions itself and hands every
    /// other request to the test, which writes whatever bytes it likes.
    struct FakeBroker {
        addr: String,
        requests: mpsc::UnboundedReceiver<(RequestHeader, RequestBody)>,
        replies: mpsc::UnboundedSender<Vec<u8>>,
    }

    impl FakeBroker {
        async fn start() -> FakeBroker {
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
                            let answer = answer(&header, ResponseBody::ApiVersions(versions()));
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
            }
        }

        async fn next(&mut self) -> (RequestHeader, RequestBody) {
            self.requests
                .recv()
                .await
                .expect("the client sent a request")
        }
    }

    fn versions() -> ApiVersionsResponse {
        let keys = [
            (ApiKey::ApiVersions, 0, 4),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::Produce, 3, 11),
        ];
        ApiVersionsResponse {
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

    fn answer(header: &RequestHeader, body: ResponseBody) -> Vec<u8> {
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

    fn metadata_request(topic: &str) -> MetadataRequest {
        MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn metadata_answer(header: &RequestHeader, body: &RequestBody) -> Vec<u8> {
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

    fn topic_of(response: &MetadataResponse) -> &str {
        response.topics[0].name.as_deref().unwrap()
    }

    #[tokio::test]
    async fn responses_in_any_order_reach_their_callers() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        assert_eq!(conn.version_for(ApiKey::Metadata).unwrap(), 12);
        let (a, b) = (conn.clone(), conn.clone());
        let first = tokio::spawn(async move { a.request(metadata_request("a")).await });
        let second = tokio::spawn(async move { b.request(metadata_request("b")).await });
        let one = broker.next().await;
        let two = broker.next().await;
        // Pipelined: both requests arrived before either was answered.
        broker
            .replies
            .send(metadata_answer(&two.0, &two.1))
            .unwrap();
        broker
            .replies
            .send(metadata_answer(&one.0, &one.1))
            .unwrap();
        assert_eq!(topic_of(&first.await.unwrap().unwrap()), "a");
        assert_eq!(topic_of(&second.await.unwrap().unwrap()), "b");
        let stats = conn.stats();
        assert_eq!((stats.requests, stats.responses, stats.errors), (3, 3, 0));
    }

    #[tokio::test]
    async fn acks_zero_produce_resolves_once_written() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let produce = ProduceRequest {
            acks: 0,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = conn.request(produce).await.unwrap();
        assert!(response.responses.is_empty());
        let (header, _) = broker.next().await;
        assert_eq!(header.request_api_key, ApiKey::Produce.as_i16());
        // The stream is still in step: no response was expected.
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("after")).await }
        });
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        assert_eq!(topic_of(&pending.await.unwrap().unwrap()), "after");
    }

    #[tokio::test]
    async fn an_undecodable_response_kills_the_connection() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("x")).await }
        });
        let (header, _) = broker.next().await;
        // The right correlation id, then a body too short to be Metadata.
        let mut bad = BytesMut::new();
        bad.extend_from_slice(&6i32.to_be_bytes());
        bad.extend_from_slice(&header.correlation_id.to_be_bytes());
        bad.extend_from_slice(&[0, 0]);
        broker.replies.send(bad.to_vec()).unwrap();
        let e = pending.await.unwrap().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e:?}");
        assert_eq!(e.api(), Some(ApiKey::Metadata));
        assert!(conn.is_closed());
        let later = conn.request(metadata_request("y")).await.unwrap_err();
        assert!(matches!(later.kind(), ErrorKind::Protocol(_)), "{later:?}");
    }

    #[tokio::test]
    async fn an_unknown_correlation_id_is_desynchronization() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("x")).await }
        });
        let (mut header, body) = broker.next().await;
        header.correlation_id += 1000;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        let e = pending.await.unwrap().unwrap_err();
        let expected = ErrorKind::Desynchronized {
            correlation_id: header.correlation_id,
        };
        assert_eq!(e.kind(), &expected);
        assert!(!e.is_retriable() && e.is_connection_error());
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn close_waits_for_requests_in_flight() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("slow")).await }
        });
        let (header, body) = broker.next().await;
        let closing = tokio::spawn({
            let conn = conn.clone();
            async move { conn.close().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(conn.is_closed(), "close refuses new requests at once");
        let refused = conn.request(metadata_request("late")).await.unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::Closed);
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        assert_eq!(topic_of(&pending.await.unwrap().unwrap()), "slow");
        closing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_api_the_broker_lacks_fails_before_sending() {
        let broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let e = conn
            .request(kafkit_protocol::messages::FetchRequest::default())
            .await
            .unwrap_err();
        match e.kind() {
            ErrorKind::UnsupportedVersion { api, broker, .. } => {
                assert_eq!((*api, *broker), (ApiKey::Fetch, None));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(conn.stats().requests, 1, "only ApiVersions was sent");
    }

    #[tokio::test]
    async fn a_timed_out_request_keeps_the_connection() {
        let mut broker = FakeBroker::start().await;
        let config = ConnConfig {
            request_timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        };
        let conn = Conn::dial_with(&broker.addr, config).await.unwrap();
        let e = conn.request(metadata_request("slow")).await.unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Timeout);
        assert_eq!(e.api(), Some(ApiKey::Metadata));
        // The late answer is read and dropped; the next one is matched.
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        let next = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("next")).await }
        });
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        assert_eq!(topic_of(&next.await.unwrap().unwrap()), "next");
        assert!(!conn.is_closed());
    }
}
