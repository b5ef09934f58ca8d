//! Is a node serving clients yet? One Metadata request that may fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use kafkit_protocol::frame;
use kafkit_protocol::messages::{MetadataRequest, MetadataResponse};
use kafkit_protocol::{ErrorCode, Request};

/// Metadata v12: served by every Kafka 4.x broker.
const VERSION: i16 = 12;
const TIMEOUT: Duration = Duration::from_secs(2);

/// What a node's Metadata answer says: the broker ids it knows and, for
/// each topic asked about, whether every partition has a leader.
#[derive(Debug, Default)]
pub(super) struct Probe {
    pub brokers: Vec<i32>,
    /// Topics that answered with an error or with a partition without a leader.
    pub leaderless: Vec<String>,
}

/// Asks `addr` for metadata of `topics` (none: brokers only). An error
/// means the node does not serve clients yet (or no longer does).
pub(super) fn metadata(addr: SocketAddr, topics: &[&str]) -> Result<Probe, String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(
                    |name| kafkit_protocol::messages::metadata_request::MetadataRequestTopic {
                        name: Some((*name).to_owned()),
                        ..Default::default()
                    },
                )
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, 1, Some("kafkit-harness"), VERSION, &request)
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
    let (_, response) =
        frame::decode_response::<MetadataResponse>(frame, MetadataRequest::API_KEY, VERSION)
            .map_err(|e| e.to_string())?;
    let leaderless = response
        .topics
        .iter()
        .filter(|t| {
            t.error_code != ErrorCode::NONE
                || t.partitions.is_empty()
                || t.partitions.iter().any(|p| p.leader_id < 0)
        })
        .filter_map(|t| t.name.clone())
        .collect();
    Ok(Probe {
        brokers: response.brokers.iter().map(|b| b.node_id).collect(),
        leaderless,
    })
}
