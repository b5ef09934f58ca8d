//! [`RawClient`]: a tiny blocking client that sends kafkit-protocol frames
//! over a `TcpStream`, one request at a time.
//!
//! It exists to test the protocol crate against a real broker before the
//! async connection crate exists. It panics on every failure, with the
//! request and broker in the message, because in a test a failure to talk to
//! the broker is the test failing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame;
use kafkit_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafkit_protocol::{ErrorCode, Request, VersionRange};

/// The client id every test request carries.
pub const CLIENT_ID: &str = "kafkit-tests";
/// The largest response frame the client accepts (fetches in tests are small).
const MAX_FRAME: usize = 64 << 20;
/// How long a request may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking connection to one broker.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    addr: SocketAddr,
    next_correlation_id: i32,
    /// Received bytes not yet split into frames.
    received: BytesMut,
    /// The broker's version range per API key, once asked.
    broker_versions: Option<HashMap<i16, VersionRange>>,
}

impl RawClient {
    /// Connects to `addr`.
    ///
    /// # Panics
    ///
    /// If the connection fails.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to the broker at {addr}: {e}"));
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set_read_timeout");
        stream
            .set_write_timeout(Some(TIMEOUT))
            .expect("set_write_timeout");
        stream.set_nodelay(true).expect("set_nodelay");
        RawClient {
            stream,
            addr,
            next_correlation_id: 1,
            received: BytesMut::new(),
            broker_versions: None,
        }
    }

    /// Sends `body` at `version` and returns the broker's response, after
    /// checking that the response answers this request (correlation id).
    ///
    /// # Panics
    ///
    /// If the request cannot be encoded, the connection fails, or the
    /// response does not decode.
    pub fn request<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let addr = self.addr;
        let what = || format!("{} v{version} to {addr}", R::NAME);

        let mut out = BytesMut::new();
        frame::encode_request(&mut out, correlation_id, Some(CLIENT_ID), version, body)
            .unwrap_or_else(|e| panic!("cannot encode {}: {e}", what()));
        self.stream
            .write_all(&out)
            .unwrap_or_else(|e| panic!("cannot send {}: {e}", what()));

        let response = self
            .read_frame()
            .unwrap_or_else(|e| panic!("no response to {}: {e}", what()));
        let (response_correlation_id, body) =
            frame::decode_response::<R::Response>(response, R::API_KEY, version)
                .unwrap_or_else(|e| panic!("cannot decode the response to {}: {e}", what()));
        assert_eq!(
            response_correlation_id,
            correlation_id,
            "the response to {} answers another request",
            what()
        );
        body
    }

    /// Sends `body` at the highest version both kafkit and the broker speak.
    pub fn send<R: Request>(&mut self, body: &R) -> R::Response {
        let version = self.version::<R>();
        self.request(version, body)
    }

    /// The highest version of `R` that both kafkit and the broker support.
    ///
    /// # Panics
    ///
    /// If the broker does not advertise the API, or the ranges do not overlap.
    pub fn version<R: Request>(&mut self) -> i16 {
        let broker = self
            .broker_versions()
            .get(&R::API_KEY.as_i16())
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "the broker at {} does not advertise {}",
                    self.addr,
                    R::API_KEY
                )
            });
        R::VERSIONS
            .intersect(&broker)
            .unwrap_or_else(|| {
                panic!(
                    "{}: kafkit speaks {:?}, the broker {broker:?}: no common version",
                    R::API_KEY,
                    R::VERSIONS
                )
            })
            .max
    }

    /// The version range the broker advertises for each API key (asked once,
    /// with ApiVersions v3).
    pub fn broker_versions(&mut self) -> &HashMap<i16, VersionRange> {
        if self.broker_versions.is_none() {
            let response = self.api_versions(3);
            let versions = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
                .collect();
            self.broker_versions = Some(versions);
        }
        self.broker_versions.as_ref().expect("just set")
    }

    /// ApiVersions at `version`, asserting that the broker reports no error.
    pub fn api_versions(&mut self, version: i16) -> ApiVersionsResponse {
        let request = ApiVersionsRequest {
            client_software_name: "kafkit-tests".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let response = self.request(version, &request);
        assert_eq!(
            response.error_code,
            ErrorCode::NONE,
            "ApiVersions v{version} failed"
        );
        response
    }

    /// Reads until one whole response frame has arrived.
    fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            if let Some(frame) =
                frame::decode_frame(&mut self.received, MAX_FRAME).map_err(std::io::Error::other)?
            {
                return Ok(frame);
            }
            match self.stream.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => self.received.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The range `response` advertises for `key`, if any.
pub fn advertised(response: &ApiVersionsResponse, key: ApiKey) -> Option<VersionRange> {
    response
        .api_keys
        .iter()
        .find(|k| k.api_key == key.as_i16())
        .map(|k| VersionRange::new(k.min_version, k.max_version))
}
