//! A three-node Apache Kafka cluster for the fault scenarios of
//! `tests/tests/reliability_cluster_*.rs`, with what their checkers need:
//! who leads what, who the active controller is, waiting until the cluster
//! has healed, and reading every partition back.
//!
//! Each node's plaintext client listener is advertised at a [`FaultProxy`]
//! in front of it, so a node can be cut off from the clients while it still
//! talks to the other nodes (inter-broker traffic has a listener of its
//! own): a network partition between the client and one broker. The
//! harness's own requests (metadata, reads) go straight to the nodes.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafkit_protocol::ErrorCode;
use kafkit_protocol::TaggedFields;
use kafkit_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafkit_protocol::messages::metadata_response::MetadataResponsePartition;
use kafkit_protocol::messages::{DescribeQuorumRequest, FindCoordinatorRequest};

use crate::{FaultProxy, KafkaCluster, KafkaOptions, Listener, RawClient, Reliability};

/// How long a healing cluster may take to get every replica back in sync
/// and every preferred leader back in place.
const SETTLE: Duration = Duration::from_secs(120);

/// Three KRaft nodes (each broker and controller) behind fault proxies.
pub struct ClusterScenario {
    cluster: Mutex<KafkaCluster>,
    /// Node `id`'s proxy at index `id - 1`.
    proxies: Vec<FaultProxy>,
    /// Proxies in front of the same nodes that no node advertises until
    /// [`redeploy`](Self::redeploy): the brokers' new hosts.
    spares: Vec<FaultProxy>,
}

impl std::fmt::Debug for ClusterScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterScenario")
            .field("bootstrap", &self.bootstrap())
            .finish_non_exhaustive()
    }
}

impl ClusterScenario {
    /// Starts the nodes, with `overrides` added to each node's settings.
    /// `leader.imbalance.check.interval.seconds` is 5 s (default 300 s):
    /// a restarted node gets its preferred leaderships back within
    /// seconds, as the scenarios wait for before they read.
    pub fn start(overrides: &[(&str, &str)]) -> ClusterScenario {
        let proxies: Vec<FaultProxy> = (0..3).map(|_| FaultProxy::bind()).collect();
        let spares: Vec<FaultProxy> = (0..3).map(|_| FaultProxy::bind()).collect();
        let mut settings = vec![(
            "leader.imbalance.check.interval.seconds".to_owned(),
            "5".to_owned(),
        )];
        settings.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let cluster = KafkaCluster::start(KafkaOptions {
            advertise: (1..=3).zip(proxies.iter().map(FaultProxy::addr)).collect(),
            overrides: settings,
            ..KafkaOptions::three_nodes()
        });
        for (id, (proxy, spare)) in (1..=3).zip(proxies.iter().zip(&spares)) {
            proxy.set_upstream(cluster.addr(id, Listener::Plaintext));
            spare.set_upstream(cluster.addr(id, Listener::Plaintext));
        }
        ClusterScenario {
            cluster: Mutex::new(cluster),
            proxies,
            spares,
        }
    }

    /// The proxies' addresses: what clients bootstrap from.
    pub fn bootstrap(&self) -> String {
        let addrs: Vec<String> = self.proxies.iter().map(|p| p.addr().to_string()).collect();
        addrs.join(",")
    }

    /// The addresses the nodes move to in a [`redeploy`](Self::redeploy),
    /// where nothing answers for the cluster before it.
    pub fn redeployed_bootstrap(&self) -> String {
        let addrs: Vec<String> = self.spares.iter().map(|p| p.addr().to_string()).collect();
        addrs.join(",")
    }

    /// Replaces every broker at once, as a redeployment onto new hosts
    /// does: the three nodes are killed (kill -9) together, the addresses
    /// clients knew them by go dark for good (the proxies there close every
    /// connection and every new one), and the nodes start again, with
    /// their data, advertised at [`redeployed_bootstrap`]'s addresses.
    /// Returns once every node serves, and how long the cluster was away.
    ///
    /// [`redeployed_bootstrap`]: Self::redeployed_bootstrap
    pub fn redeploy(&self) -> Duration {
        let away = Instant::now();
        let mut nodes = self.nodes();
        for id in 1..=3 {
            nodes.kill(id);
        }
        for (id, (old, new)) in (1..=3).zip(self.proxies.iter().zip(&self.spares)) {
            old.down(true);
            nodes.advertise(id, new.addr());
        }
        nodes.restart_all(&[1, 2, 3]);
        away.elapsed()
    }

    /// The proxy in front of node `id`.
    pub fn proxy(&self, id: u32) -> &FaultProxy {
        &self.proxies[id as usize - 1]
    }

    /// The nodes, to kill, pause or restart them.
    pub fn nodes(&self) -> MutexGuard<'_, KafkaCluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client of a node that serves (running and not paused).
    fn client(&self) -> RawClient {
        let cluster = self.nodes();
        let id = cluster
            .node_ids()
            .into_iter()
            .find(|id| cluster.is_serving(*id))
            .expect("a serving Kafka node");
        RawClient::connect(cluster.addr(id, Listener::Plaintext))
    }

    /// Kills node `id` (kill -9), and restarts it `down` later.
    pub fn kill_for(&self, id: u32, down: Duration) {
        self.nodes().kill(id);
        std::thread::sleep(down);
        self.nodes().restart(id);
    }

    /// Shuts each node down in turn under control (SIGTERM: it hands its
    /// leaderships over first), restarts it, and waits until it is back in
    /// every ISR before the next.
    pub fn rolling_restart(&self) {
        for id in 1..=3 {
            let restarting = Instant::now();
            self.nodes().shutdown(id);
            self.nodes().restart(id);
            self.wait_in_sync();
            eprintln!(
                "node {id} restarted and in sync after {:?}",
                restarting.elapsed()
            );
        }
    }

    /// Creates `topic` (replication factor 3) and waits until each
    /// partition has a leader that serves it and three replicas in sync.
    pub fn create_topic(&self, topic: &str, partitions: usize) {
        let created = self.client().create_topics(topic, partitions as i32);
        assert_eq!(
            created.topics[0].error_code,
            ErrorCode::NONE,
            "creating {topic}"
        );
        self.nodes()
            .wait_for_leaders(&[topic], Duration::from_secs(60));
        self.wait_until(topic, Duration::from_secs(60), |p| p.isr_nodes.len() == 3);
    }

    /// `topic`'s partitions by index, as a serving node sees them.
    pub fn partitions(&self, topic: &str) -> Vec<MetadataResponsePartition> {
        let mut partitions = self.client().topic_metadata(topic).partitions;
        partitions.sort_by_key(|p| p.partition_index);
        partitions
    }

    /// Each partition's leader.
    pub fn leaders(&self, topic: &str) -> Vec<i32> {
        self.partitions(topic).iter().map(|p| p.leader_id).collect()
    }

    /// The node that leads the most partitions of `topic` (the lowest id
    /// among equals).
    pub fn busiest_leader(&self, topic: &str) -> u32 {
        let leaders = self.leaders(topic);
        (1..=3u32)
            .max_by_key(|id| {
                let led = leaders.iter().filter(|l| **l == *id as i32).count();
                (led, std::cmp::Reverse(*id))
            })
            .expect("three nodes")
    }

    /// The active controller: the leader of the KRaft metadata log, as
    /// DescribeQuorum tells (brokers forward it to the controllers).
    pub fn active_controller(&self) -> u32 {
        let request = DescribeQuorumRequest {
            topics: vec![TopicData {
                topic_name: "__cluster_metadata".to_owned(),
                partitions: vec![PartitionData {
                    partition_index: 0,
                    unknown_tagged_fields: TaggedFields::default(),
                }],
                unknown_tagged_fields: TaggedFields::default(),
            }],
            unknown_tagged_fields: TaggedFields::default(),
        };
        let response = self.client().send(&request);
        assert_eq!(response.error_code, ErrorCode::NONE, "{response:?}");
        let leader = response.topics[0].partitions[0].leader_id;
        u32::try_from(leader).unwrap_or_else(|_| panic!("no active controller: {response:?}"))
    }

    /// The node of the coordinator of group `group`.
    pub fn group_coordinator(&self, group: &str) -> u32 {
        self.coordinator(0, group)
    }

    /// The node of the transaction coordinator of `transactional_id`.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> u32 {
        self.coordinator(1, transactional_id)
    }

    /// FindCoordinator (v4+, by keys), asked again while the coordinator
    /// is loading or moving.
    fn coordinator(&self, key_type: i8, key: &str) -> u32 {
        let request = FindCoordinatorRequest {
            key: String::new(),
            key_type,
            coordinator_keys: vec![key.to_owned()],
            unknown_tagged_fields: TaggedFields::default(),
        };
        let start = Instant::now();
        loop {
            let response = self.client().send(&request);
            let found = &response.coordinators[0];
            if found.error_code == ErrorCode::NONE {
                return u32::try_from(found.node_id).expect("a node id");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{response:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every partition of `topic` has its three replicas in
    /// sync and its preferred leader: the cluster has healed, and no leader
    /// moves while the checker reads. Returns how long that took.
    pub fn settle(&self, topic: &str) -> Duration {
        let start = Instant::now();
        self.wait_until(topic, SETTLE, |p| {
            p.isr_nodes.len() == 3 && p.replica_nodes.first() == Some(&p.leader_id)
        });
        start.elapsed()
    }

    /// Waits until every partition of every topic, internal ones included,
    /// has all its replicas in sync: a restarted node has caught up.
    pub fn wait_in_sync(&self) {
        let start = Instant::now();
        loop {
            let lagging: Vec<String> = self
                .client()
                .metadata(None)
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.isr_nodes.len() < p.replica_nodes.len())
                        .map(move |p| format!("{:?}-{}", t.name, p.partition_index))
                })
                .collect();
            if lagging.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < SETTLE,
                "out of sync after {SETTLE:?}: {lagging:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_until(
        &self,
        topic: &str,
        timeout: Duration,
        healthy: impl Fn(&MetadataResponsePartition) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let partitions = self.partitions(topic);
            if !partitions.is_empty() && partitions.iter().all(&healthy) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{topic} after {timeout:?}: {partitions:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every record id of every partition of `topic`, read from each
    /// leader once the cluster has [settled](Self::settle). `expected[p]`
    /// is how many records partition `p` should hold: a leader that just
    /// took over learns the high watermark from its followers' next fetch,
    /// so the read waits up to 10 s for it to reach that (a shortfall that
    /// lasts is counted as lost by the checker).
    pub fn read_back(&self, topic: &str, expected: &[usize]) -> Vec<Vec<u64>> {
        self.settle(topic);
        let partitions = self.partitions(topic);
        assert_eq!(partitions.len(), expected.len(), "{topic}'s partitions");
        partitions
            .iter()
            .zip(expected)
            .map(|(p, want)| {
                let leader = u32::try_from(p.leader_id).expect("a leader");
                let addr = self.nodes().addr(leader, Listener::Plaintext);
                let mut client = RawClient::connect(addr);
                let waited = Instant::now();
                while client.list_offset(topic, p.partition_index, -1).offset < *want as i64
                    && waited.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Reliability::read_partition(addr, topic, p.partition_index)
            })
            .collect()
    }
}
