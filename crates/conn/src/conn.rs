//! [`Conn`]: the cheap, cloneable handle to one broker connection.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kafkit_protocol::{ApiKey, Request};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::driver::{Command, Driver, Reader, Shared, Stats, Writer};
use crate::hooks::ConnectEvent;
use crate::sasl;
use crate::versions::{self, BrokerVersions};
use crate::{ConnConfig, Error, ErrorKind, Hooks};

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
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
}

impl Conn {
    /// Connects to `addr` (`host:port`) with the default [`ConnConfig`] and
    /// negotiates API versions.
    ///
    /// Cancel safety: dropping the future closes the half-open connection.
    pub async fn dial(addr: impl fmt::Display) -> Result<Conn, Error> {
        Conn::dial_with(addr, ConnConfig::default()).await
    }

    /// Connects to `addr` with `config`: TCP connect and, with
    /// [`ConnConfig::tls`], the TLS handshake (together within
    /// `connect_timeout`), then ApiVersions (within `request_timeout`), then
    /// SASL authentication with [`ConnConfig::sasl`].
    ///
    /// Errors: [`ErrorKind::Tls`] when the handshake fails or the broker's
    /// certificate is rejected, [`ErrorKind::Sasl`] when authentication is.
    ///
    /// Cancel safety: dropping the future closes the half-open connection.
    pub async fn dial_with(addr: impl fmt::Display, config: ConnConfig) -> Result<Conn, Error> {
        config.validate()?;
        let addr = addr.to_string();
        let hooks = config.hooks.clone();
        let start = Instant::now();
        let result = Conn::dial_validated(addr.clone(), config).await;
        report_connect(&hooks, &addr, start, &result);
        result
    }

    async fn dial_validated(addr: String, config: ConnConfig) -> Result<Conn, Error> {
        let timeout = config.connect_timeout;
        let halves = match tokio::time::timeout(timeout, Conn::connect(&addr, &config)).await {
            Ok(halves) => halves.map_err(|e| e.with_broker(&addr))?,
            Err(_) => {
                return Err(Error::new(ErrorKind::Timeout)
                    .with_message(format!("connect took longer than {timeout:?}"))
                    .with_broker(&addr));
            }
        };
        Conn::open(halves, addr, config).await
    }

    /// The TCP connect and, if configured, the TLS handshake.
    async fn connect(addr: &str, config: &ConnConfig) -> Result<(Reader, Writer), Error> {
        let stream = TcpStream::connect(addr).await.map_err(Error::io)?;
        stream.set_nodelay(config.nodelay).map_err(Error::io)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            let stream = crate::tls::connect(tls, stream, addr).await?;
            let (reader, writer) = tokio::io::split(stream);
            return Ok((Box::new(reader), Box::new(writer)));
        }
        // TCP halves need no lock between them, unlike `tokio::io::split`.
        let (reader, writer) = stream.into_split();
        Ok((Box::new(reader), Box::new(writer)))
    }

    /// Opens a connection over a `stream` the caller has already connected
    /// (a TLS stream, a proxy tunnel, a Unix socket), then negotiates
    /// versions as [`dial_with`](Conn::dial_with) does. `addr` names the
    /// broker in errors and traces. `connect_timeout`, `nodelay` and `tls`
    /// are the caller's business here; [`ConnConfig::sasl`] still
    /// authenticates.
    ///
    /// Cancel safety: dropping the future closes the stream.
    pub async fn from_stream<S>(
        stream: S,
        addr: impl fmt::Display,
        config: ConnConfig,
    ) -> Result<Conn, Error>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        config.validate()?;
        let (reader, writer) = tokio::io::split(stream);
        let addr = addr.to_string();
        let hooks = config.hooks.clone();
        let start = Instant::now();
        let result = Conn::open((Box::new(reader), Box::new(writer)), addr.clone(), config).await;
        report_connect(&hooks, &addr, start, &result);
        result
    }

    /// Starts the driver on `halves`, runs the ApiVersions handshake and,
    /// if configured, SASL authentication.
    async fn open(
        halves: (Reader, Writer),
        addr: String,
        config: ConnConfig,
    ) -> Result<Conn, Error> {
        let timeout = config.request_timeout;
        let shared = Arc::new(Shared::new(addr, config));
        let (commands, receiver) = mpsc::unbounded_channel();
        Driver::spawn(halves, shared.clone(), receiver);
        let conn = Conn { shared, commands };
        // On failure `conn` is dropped here, which stops the driver.
        if let Err(e) = versions::negotiate(&conn, timeout).await {
            return Err(conn.opening_error(e));
        }
        if let Some(mechanism) = conn.shared.config.sasl.clone() {
            let session = sasl::authenticate(&conn, mechanism.as_ref())
                .await
                .map_err(|e| conn.opening_error(Error::from(e)))?;
            if let Some(at) = conn.shared.set_session(session) {
                // The driver is waiting on the socket and its channel, not
                // on `Shared`: tell it when to retire.
                let _ = conn.commands.send(Command::RetireAt(at));
            }
        }
        tracing::debug!(broker = %conn.addr(), "connected");
        Ok(conn)
    }

    /// A TLS 1.3 broker that rejects our client certificate says so only
    /// after the client finished its handshake, so the rejection arrives as
    /// an IO error on the first request: name it as the TLS error it is.
    fn opening_error(&self, e: Error) -> Error {
        #[cfg(feature = "tls")]
        let e = crate::tls::classify(e);
        e.with_broker(self.addr())
    }

    /// The address this connection was dialled with.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The SASL session, when [`ConnConfig::sasl`] authenticated this
    /// connection: the mechanism and the session lifetime the broker granted
    /// (KIP-368).
    pub fn sasl_session(&self) -> Option<&sasl::Authenticated> {
        self.shared.session.get()
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

    /// True when `self` and `other` are handles to the same connection.
    pub fn same_connection(&self, other: &Conn) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Requests sent and not answered yet, those that timed out included
    /// (their slots are held until a late answer comes, see
    /// [`ConnConfig::max_in_flight`](crate::ConnConfig)): how loaded, or
    /// how stuck, the broker is on this connection.
    pub fn in_flight(&self) -> usize {
        self.config()
            .max_in_flight
            .saturating_sub(self.shared.in_flight.available_permits())
    }

    /// A snapshot of this connection's counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.in_flight())
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
    /// An acks=0 [`ProduceRequest`](crate::messages::ProduceRequest) gets no response from the broker: the
    /// future resolves with `R::Response::default()` once the request is
    /// written.
    ///
    /// Cancel safety: safe. Dropping the future before the request is
    /// handed to the driver sends nothing; after that the driver still
    /// writes the whole frame and discards the response.
    pub async fn request<R: Request>(&self, body: R) -> Result<R::Response, Error> {
        let version = self.version_for(R::API_KEY)?;
        self.send(version, &body, Duration::ZERO).await
    }

    /// [`request`](Conn::request) at an explicit `version`: the escape
    /// hatch for testing brokers or pinning a version. The version is not
    /// checked against the broker's range.
    ///
    /// Cancel safety: as [`request`](Conn::request).
    pub async fn request_at<R: Request>(
        &self,
        version: i16,
        body: R,
    ) -> Result<R::Response, Error> {
        self.send(version, &body, Duration::ZERO).await
    }

    /// [`request`](Conn::request) whose timeout is the request timeout
    /// plus `extra`: for requests the broker may hold on purpose, such as a
    /// JoinGroup that waits up to the group's rebalance timeout.
    ///
    /// Cancel safety: as [`request`](Conn::request).
    pub async fn request_with_extra_timeout<R: Request>(
        &self,
        body: R,
        extra: Duration,
    ) -> Result<R::Response, Error> {
        let version = self.version_for(R::API_KEY)?;
        self.send(version, &body, extra).await
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

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// Tells the hook, if any, how a dial ended.
fn report_connect(hooks: &Hooks, broker: &str, start: Instant, result: &Result<Conn, Error>) {
    if let Some(hook) = hooks.get() {
        hook.on_connect(&ConnectEvent {
            broker,
            duration: start.elapsed(),
            error: result.as_ref().err(),
        });
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
    use crate::fake_broker::*;
    use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafkit_protocol::messages::{ProduceRequest, ResponseBody};

    #[tokio::test]
    async fn responses_in_any_order_reach_their_callers() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        assert_eq!(conn.version_for(ApiKey::Metadata).unwrap(), 13);
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
        // Kafka sends nothing for acks=0; tansu answers anyway. That answer
        // names a request we sent, so it is dropped, not a desync.
        let spurious = answer(&header, ResponseBody::Produce(Default::default()));
        broker.replies.send(spurious).unwrap();
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
    async fn an_older_broker_negotiates_apiversions_down() {
        let broker = FakeBroker::start_with(2).await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        assert_eq!(*broker.api_versions_seen.lock().unwrap(), [4, 2]);
        assert_eq!(conn.version_for(ApiKey::ApiVersions).unwrap(), 2);
        assert_eq!(conn.version_for(ApiKey::Produce).unwrap(), 11);
        assert_eq!(conn.stats().requests, 2);
    }

    #[tokio::test]
    async fn dropping_the_last_handle_stops_the_driver() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let clone = conn.clone();
        drop(conn);
        assert!(!clone.is_closed(), "a clone keeps the connection open");
        drop(clone);
        tokio::time::timeout(Duration::from_secs(10), broker.disconnected())
            .await
            .expect("the driver closed the socket");
    }

    #[tokio::test]
    async fn a_connection_over_a_caller_supplied_stream() {
        let mut broker = FakeBroker::start().await;
        let stream = TcpStream::connect(&broker.addr).await.unwrap();
        let conn = Conn::from_stream(stream, "tunnel", ConnConfig::default())
            .await
            .unwrap();
        assert_eq!(conn.addr(), "tunnel");
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("tunnelled")).await }
        });
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        assert_eq!(topic_of(&pending.await.unwrap().unwrap()), "tunnelled");
        conn.close().await.unwrap();
    }
}
