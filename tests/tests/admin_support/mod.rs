//! A scripted Kafka peer for the admin calls tansu lacks: tiny tokio TCP
//! servers that answer ApiVersions (every API at kafkit's versions) and
//! Metadata and FindCoordinator (the last broker coordinates every group
//! and transaction) themselves, and hand every other request to the test's
//! handler, which answers with a canned response built from the generated
//! response types. A handler answering `None` closes the connection (a
//! network failure).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::find_coordinator_response::Coordinator;
use kafkit_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkit_protocol::messages::{
    ApiVersionsResponse, FindCoordinatorRequest, FindCoordinatorResponse, MetadataResponse,
    RequestBody, ResponseBody,
};
use kafkit_protocol::{ApiKey, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Partitions of every topic the peers' metadata names.
pub const PARTITIONS: i32 = 3;

/// The test's answer to a request: `(node id, request)` to a response,
/// or `None` to drop the connection.
pub type Handler = Arc<dyn Fn(i32, &RequestBody) -> Option<ResponseBody> + Send + Sync>;

/// Several scripted brokers (node ids 1..=n) sharing one view of the
/// cluster: partition `p` of any topic is led by broker `p % n + 1`, with
/// no leader epoch, unless [`ScriptedCluster::set_leader`] said otherwise.
pub struct ScriptedCluster {
    addrs: Vec<SocketAddr>,
    controller: Arc<AtomicI32>,
    leaders: Leaders,
    seen: Arc<Mutex<Vec<(i32, RequestBody)>>>,
}

/// Partition -> (leader, leader epoch), where the test set them.
type Leaders = Arc<Mutex<HashMap<i32, (i32, i32)>>>;

impl ScriptedCluster {
    /// Starts `n` brokers answering through `handler`; broker 1 is the controller.
    pub async fn start(
        n: i32,
        handler: impl Fn(i32, &RequestBody) -> Option<ResponseBody> + Send + Sync + 'static,
    ) -> ScriptedCluster {
        let handler: Handler = Arc::new(handler);
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr"))
            .collect();
        let cluster = ScriptedCluster {
            addrs: addrs.clone(),
            controller: Arc::new(AtomicI32::new(1)),
            leaders: Leaders::default(),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let node = i as i32 + 1;
            let (addrs, controller, leaders, seen, handler) = (
                addrs.clone(),
                cluster.controller.clone(),
                cluster.leaders.clone(),
                cluster.seen.clone(),
                handler.clone(),
            );
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let state = (
                        addrs.clone(),
                        controller.clone(),
                        leaders.clone(),
                        seen.clone(),
                        handler.clone(),
                    );
                    tokio::spawn(serve(node, socket, state));
                }
            });
        }
        cluster
    }

    /// The bootstrap address (broker 1).
    pub fn bootstrap(&self) -> String {
        self.addrs[0].to_string()
    }

    /// Names another broker as the controller in later Metadata answers.
    pub fn set_controller(&self, id: i32) {
        self.controller.store(id, Ordering::SeqCst);
    }

    /// Names `leader` as the leader of `partition` (of every topic) at
    /// `epoch` in later Metadata answers.
    pub fn set_leader(&self, partition: i32, leader: i32, epoch: i32) {
        self.leaders
            .lock()
            .unwrap()
            .insert(partition, (leader, epoch));
    }

    /// The requests the handler saw, with the node that got each.
    pub fn seen(&self) -> Vec<(i32, RequestBody)> {
        self.seen.lock().unwrap().clone()
    }
}

type State = (
    Vec<SocketAddr>,
    Arc<AtomicI32>,
    Leaders,
    Arc<Mutex<Vec<(i32, RequestBody)>>>,
    Handler,
);

async fn serve(
    node: i32,
    mut socket: TcpStream,
    (addrs, controller, leaders, seen, handler): State,
) {
    let mut buf = BytesMut::new();
    loop {
        while let Some(frame) = frame::decode_frame(&mut buf, 1 << 24).expect("a frame") {
            let (header, body) = frame::decode_request(frame).expect("a request kafkit encoded");
            let version = header.request_api_version;
            let answer = match &body {
                RequestBody::ApiVersions(_) => Some(ResponseBody::ApiVersions(api_versions())),
                RequestBody::Metadata(m) => {
                    let topics = m
                        .topics
                        .as_ref()
                        .map(|ts| ts.iter().filter_map(|t| t.name.clone()).collect());
                    let leaders = leaders.lock().unwrap().clone();
                    Some(ResponseBody::Metadata(metadata(
                        &addrs,
                        controller.load(Ordering::SeqCst),
                        &leaders,
                        topics,
                    )))
                }
                RequestBody::FindCoordinator(r) => Some(ResponseBody::FindCoordinator(
                    coordinator(&addrs, r, version),
                )),
                other => {
                    seen.lock().unwrap().push((node, other.clone()));
                    handler(node, other)
                }
            };
            let Some(answer) = answer else { return };
            let mut out = BytesMut::new();
            frame::encode_response_body(&mut out, header.correlation_id, version, &answer)
                .unwrap_or_else(|e| panic!("the scripted answer encodes at v{version}: {e}"));
            if socket.write_all(&out).await.is_err() {
                return;
            }
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Every group and transactional id is coordinated by the last broker.
fn coordinator(
    addrs: &[SocketAddr],
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (node_id, addr) = (addrs.len() as i32, addrs[addrs.len() - 1]);
    let (host, port) = (addr.ip().to_string(), i32::from(addr.port()));
    if version >= 4 {
        FindCoordinatorResponse {
            coordinators: request
                .coordinator_keys
                .iter()
                .map(|key| Coordinator {
                    key: key.clone(),
                    node_id,
                    host: host.clone(),
                    port,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            node_id,
            host,
            port,
            ..Default::default()
        }
    }
}

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

fn metadata(
    addrs: &[SocketAddr],
    controller: i32,
    leaders: &HashMap<i32, (i32, i32)>,
    topics: Option<Vec<String>>,
) -> MetadataResponse {
    let n = addrs.len() as i32;
    MetadataResponse {
        brokers: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| MetadataResponseBroker {
                node_id: i as i32 + 1,
                host: a.ip().to_string(),
                port: i32::from(a.port()),
                ..Default::default()
            })
            .collect(),
        cluster_id: Some("scripted".into()),
        controller_id: controller,
        topics: topics
            .unwrap_or_default()
            .into_iter()
            .map(|name| MetadataResponseTopic {
                name: Some(name),
                partitions: (0..PARTITIONS)
                    .map(|p| {
                        let (leader_id, leader_epoch) =
                            leaders.get(&p).copied().unwrap_or((p % n + 1, -1));
                        MetadataResponsePartition {
                            partition_index: p,
                            leader_id,
                            leader_epoch,
                            replica_nodes: vec![leader_id],
                            isr_nodes: vec![leader_id],
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
