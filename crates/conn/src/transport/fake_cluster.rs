//! Test support: an in-process cluster of fake brokers for the transport's
//! unit tests. Every broker answers ApiVersions, Metadata (from a shared,
//! scriptable view of the cluster) and Produce (`NOT_LEADER_OR_FOLLOWER`
//! unless it leads the partition), and records what it was asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use kafkit_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkit_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_protocol::messages::{
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestBody, RequestHeader,
    ResponseBody,
};
use kafkit_protocol::{ErrorCode, Uuid, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::fake_broker::{answer, versions};

/// Where a partition lives in a view of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) leader: i32,
    pub(crate) epoch: i32,
}

/// One view of the topics: name -> (topic id, partitions).
pub(crate) type Topics = BTreeMap<String, (Uuid, Vec<Placement>)>;

/// A Metadata request one broker received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataSeen {
    pub(crate) node: i32,
    /// `None`: all topics.
    pub(crate) topics: Option<Vec<String>>,
    pub(crate) allow_auto_topic_creation: bool,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The brokers Metadata answers list.
    pub(crate) advertised: Vec<i32>,
    /// The truth.
    pub(crate) topics: Topics,
    /// Brokers that answer Metadata from an older view.
    pub(crate) lagging: HashMap<i32, Topics>,
    /// How long Metadata answers take.
    pub(crate) metadata_delay: Duration,
    pub(crate) metadata_seen: Vec<MetadataSeen>,
    /// (node, topic, partition, error code) of every produce answered.
    pub(crate) produce_seen: Vec<(i32, String, i32, ErrorCode)>,
    /// Brokers that read requests and answer none, as a SIGSTOPped broker
    /// or one behind a network partition.
    pub(crate) silent: std::collections::HashSet<i32>,
    /// Brokers whose Metadata answers say `REBOOTSTRAP_REQUIRED`.
    pub(crate) rebootstrap_required: std::collections::HashSet<i32>,
    /// The port each broker listens on.
    ports: HashMap<i32, u16>,
}

/// A cluster of fake brokers with node ids 1..=n.
pub(crate) struct FakeCluster {
    pub(crate) state: Arc<Mutex<State>>,
    addrs: HashMap<i32, String>,
    connections: Arc<Mutex<HashMap<i32, Vec<AbortHandle>>>>,
    listeners: Vec<AbortHandle>,
}

impl FakeCluster {
    /// `n` brokers, all advertised, no topics.
    pub(crate) async fn start(n: i32) -> FakeCluster {
        let state = Arc::new(Mutex::new(State {
            advertised: (1..=n).collect(),
            ..Default::default()
        }));
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let mut addrs = HashMap::new();
        let mut listeners = Vec::new();
        for node in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.insert(node, listener.local_addr().unwrap().to_string());
            let (state, connections) = (state.clone(), connections.clone());
            let accept = tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let serve = tokio::spawn(serve(node, socket, state.clone()));
                    lock(&connections)
                        .entry(node)
                        .or_insert_with(Vec::new)
                        .push(serve.abort_handle());
                }
            });
            listeners.push(accept.abort_handle());
        }
        lock(&state).ports = addrs
            .iter()
            .map(|(&id, addr)| (id, addr.rsplit(':').next().unwrap().parse().unwrap()))
            .collect();
        FakeCluster {
            state,
            addrs,
            connections,
            listeners,
        }
    }

    /// `host:port` of broker `node`.
    pub(crate) fn addr(&self, node: i32) -> String {
        self.addrs[&node].clone()
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Creates or moves: `topic` with one placement per partition.
    pub(crate) fn set_topic(&self, topic: &str, id: u8, partitions: &[(i32, i32)]) {
        let placements = partitions
            .iter()
            .map(|&(leader, epoch)| Placement { leader, epoch })
            .collect();
        self.state()
            .topics
            .insert(topic.to_owned(), (Uuid::from_bytes([id; 16]), placements));
    }

    /// The Metadata requests answered so far.
    pub(crate) fn metadata_count(&self) -> usize {
        self.state().metadata_seen.len()
    }

    /// Drops every open connection to broker `node` (the broker stays up).
    pub(crate) fn kill_connections(&self, node: i32) {
        for handle in lock(&self.connections).remove(&node).unwrap_or_default() {
            handle.abort();
        }
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for handle in &self.listeners {
            handle.abort();
        }
        for handles in lock(&self.connections).values() {
            for handle in handles {
                handle.abort();
            }
        }
    }
}

async fn serve(node: i32, socket: TcpStream, state: Arc<Mutex<State>>) {
    let (mut reader, mut writer) = socket.into_split();
    let mut buf = BytesMut::new();
    loop {
        while let Some(frame) = frame::decode_frame(&mut buf, 1 << 20).unwrap() {
            let (header, body) = frame::decode_request(frame).unwrap();
            if lock(&state).silent.contains(&node) {
                continue;
            }
            let reply = match body {
                RequestBody::ApiVersions(_) => {
                    answer(&header, ResponseBody::ApiVersions(versions(4)))
                }
                RequestBody::Metadata(request) => {
                    let delay = lock(&state).metadata_delay;
                    tokio::time::sleep(delay).await;
                    metadata(node, &header, &request, &state)
                }
                RequestBody::Produce(request) => produce(node, &header, &request, &state),
                other => panic!("the fake cluster does not answer {other:?}"),
            };
            if writer.write_all(&reply).await.is_err() {
                return;
            }
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn metadata(
    node: i32,
    header: &RequestHeader,
    request: &MetadataRequest,
    state: &Mutex<State>,
) -> Vec<u8> {
    let mut s = lock(state);
    let names: Option<Vec<String>> = request
        .topics
        .as_ref()
        .map(|t| t.iter().filter_map(|t| t.name.clone()).collect());
    s.metadata_seen.push(MetadataSeen {
        node,
        topics: names.clone(),
        allow_auto_topic_creation: request.allow_auto_topic_creation,
    });
    if request.allow_auto_topic_creation {
        for name in names.iter().flatten() {
            if !s.topics.contains_key(name) {
                let placement = Placement {
                    leader: 1,
                    epoch: 0,
                };
                s.topics
                    .insert(name.clone(), (Uuid::from_bytes([99; 16]), vec![placement]));
            }
        }
    }
    let view = s.lagging.get(&node).unwrap_or(&s.topics);
    let names = names.unwrap_or_else(|| view.keys().cloned().collect());
    let topics = names
        .iter()
        .map(|name| match view.get(name) {
            Some((id, partitions)) => MetadataResponseTopic {
                name: Some(name.clone()),
                topic_id: *id,
                partitions: partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| MetadataResponsePartition {
                        partition_index: i as i32,
                        leader_id: p.leader,
                        leader_epoch: p.epoch,
                        replica_nodes: vec![p.leader],
                        isr_nodes: vec![p.leader],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            None => MetadataResponseTopic {
                name: Some(name.clone()),
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                ..Default::default()
            },
        })
        .collect();
    let brokers = s
        .advertised
        .iter()
        .map(|&id| MetadataResponseBroker {
            node_id: id,
            host: "127.0.0.1".into(),
            port: s.ports.get(&id).copied().map_or(1, i32::from),
            ..Default::default()
        })
        .collect();
    let error_code = if s.rebootstrap_required.contains(&node) {
        ErrorCode::REBOOTSTRAP_REQUIRED
    } else {
        ErrorCode::NONE
    };
    let response = MetadataResponse {
        brokers,
        controller_id: s.advertised.first().copied().unwrap_or(-1),
        topics,
        error_code,
        ..Default::default()
    };
    answer(header, ResponseBody::Metadata(response))
}

fn produce(
    node: i32,
    header: &RequestHeader,
    request: &ProduceRequest,
    state: &Mutex<State>,
) -> Vec<u8> {
    let mut s = lock(state);
    let mut responses = Vec::new();
    for topic in &request.topic_data {
        let mut partition_responses = Vec::new();
        for p in &topic.partition_data {
            let leader = s
                .topics
                .get(&topic.name)
                .and_then(|(_, parts)| parts.get(p.index as usize))
                .map(|placement| placement.leader);
            let code = match leader {
                Some(l) if l == node => ErrorCode::NONE,
                Some(_) => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                None => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            };
            s.produce_seen
                .push((node, topic.name.clone(), p.index, code));
            partition_responses.push(PartitionProduceResponse {
                index: p.index,
                error_code: code,
                ..Default::default()
            });
        }
        responses.push(TopicProduceResponse {
            name: topic.name.clone(),
            partition_responses,
            ..Default::default()
        });
    }
    let response = ProduceResponse {
        responses,
        ..Default::default()
    };
    answer(header, ResponseBody::Produce(response))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
