//! Is a node serving clients, and its coordinators ready? Requests that may
//! fail, unlike [`RawClient`](crate::RawClient)'s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use kafkit_protocol::frame;
use kafkit_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafkit_protocol::{ErrorCode, Request};

/// Metadata v12: served by every Kafka 4.x broker.
const VERSION: i16 = 12;
const TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster id and the ids of the brokers `addr` names in a Metadata
/// answer: the node's view of who serves clients. An error means the node
/// does not serve clients yet (or no longer does).
pub(super) fn brokers(addr: SocketAddr) -> Result<(Option<String>, Vec<i32>), String> {
    let mut stream = connect(addr)?;
    let request = MetadataRequest {
        topics: Some(Vec::new()),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response: MetadataResponse = round_trip(&mut stream, VERSION, &request)?;
    let ids = response.brokers.iter().map(|b| b.node_id).collect();
    Ok((response.cluster_id, ids))
}

/// FindCoordinator v4: the first version that takes a list of keys.
const FIND_COORDINATOR_VERSION: i16 = 4;

/// Asks `addr` for the coordinator of `key` (`key_type` 0: a group, 1: a
/// transactional id). `Ok(true)` when one is ready; `Ok(false)` while the
/// broker creates the internal topic behind it or loads its partition.
pub(super) fn coordinator_ready(addr: SocketAddr, key_type: i8, key: &str) -> Result<bool, String> {
    let mut stream = connect(addr)?;
    let request = FindCoordinatorRequest {
        key_type,
        coordinator_keys: vec![key.to_owned()],
        ..Default::default()
    };
    let response: FindCoordinatorResponse =
        round_trip(&mut stream, FIND_COORDINATOR_VERSION, &request)?;
    Ok(response
        .coordinators
        .iter()
        .all(|c| c.error_code == ErrorCode::NONE && c.node_id >= 0))
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Sends one request on `stream` and decodes its answer.
fn round_trip<R: Request>(
    stream: &mut TcpStream,
    version: i16,
    request: &R,
) -> Result<R::Response, String> {
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, 1, Some("kafkit-harness"), version, request)
        .map_err(|e| e.to_string())?;
    stream.write_all(&out).map_err(|e| e.to_string())?;
    let mut received = BytesMut::new();
    let mut chunk = vec![0; 16 * 1024];
    let frame = loop {
        if let Some(frame) =
            frame::decode_frame(&mut received, 16 << 20).map_err(|e| e.to_string())?
        {
            break frame;
        }
        match stream.read(&mut chunk).map_err(|e| e.to_string())? {
            0 => return Err("the connection closed".to_owned()),
            n => received.extend_from_slice(&chunk[..n]),
        }
    };
    let (_, response) = frame::decode_response::<R::Response>(frame, R::API_KEY, version)
        .map_err(|e| e.to_string())?;
    Ok(response)
}
