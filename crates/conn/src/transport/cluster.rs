//! [`Cluster`]: one snapshot of the cluster's metadata, as the
//! [`Transport`](crate::Transport) caches it, and the merge of a Metadata
//! answer into the previous snapshot, which keeps leader epochs from moving
//! backwards (KIP-320).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use kafkit_protocol::messages::MetadataResponse;
use kafkit_protocol::{ErrorCode, Uuid};

use crate::Broker;

/// A snapshot of the cluster's metadata: brokers, controller, and the
/// partitions (leader and leader epoch) of the topics the transport tracks.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub(crate) fetched: Instant,
    pub(crate) brokers: HashMap<i32, Broker>,
    controller: Option<i32>,
    pub(super) topics: HashMap<String, Topic>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Topic {
    id: Uuid,
    pub(super) partitions: BTreeMap<i32, PartitionLeader>,
}

/// Who leads a partition, and since which leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionLeader {
    /// The leader's node id; `None` during an election.
    pub(crate) leader: Option<i32>,
    /// The leader epoch; -1 when the broker does not send one (Metadata v6
    /// and older).
    pub(crate) epoch: i32,
}

/// What a merge changed, for the refresh's trace and for pool eviction.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Partitions whose leader changed.
    pub(crate) leaders_moved: usize,
    /// Partitions whose answer carried an older leader epoch than the one
    /// cached, and were kept as they were.
    pub(crate) stale_partitions: usize,
    /// Brokers new in this answer.
    pub(crate) brokers_added: Vec<i32>,
    /// Brokers the previous snapshot listed and this one does not, or
    /// lists at another address.
    pub(crate) brokers_removed: Vec<Broker>,
    /// Topics the answer says no longer exist.
    pub(crate) topics_gone: Vec<String>,
}

impl Cluster {
    /// A snapshot with nothing in it, to merge the first answer into.
    pub(crate) fn empty() -> Cluster {
        Cluster {
            fetched: Instant::now(),
            brokers: HashMap::new(),
            controller: None,
            topics: HashMap::new(),
        }
    }

    /// A snapshot of `response` alone.
    #[cfg(test)]
    pub(crate) fn from_metadata(response: &MetadataResponse) -> Cluster {
        Cluster::empty().merge(response, None).0
    }

    /// The next snapshot: `response` merged into `self`. `requested` names
    /// the topics the request asked for (`None`: all topics, so a topic
    /// missing from the answer is gone).
    ///
    /// - Brokers and the controller come from the answer. A broker that a
    ///   kept partition (below) still names as leader is carried over, so
    ///   that partition stays reachable.
    /// - A topic answered without error replaces the cached one partition
    ///   by partition, except that a partition whose answer has an older
    ///   leader epoch than the cached one is kept as it is: the answering
    ///   broker has not caught up with the election yet (KIP-320), and
    ///   taking its answer would route requests back to a former leader.
    ///   A new topic id means the topic was deleted and created again, and
    ///   its epochs start over (KAFKA-12257), so then the answer wins.
    /// - `UNKNOWN_TOPIC_OR_PARTITION` removes the topic; any other topic
    ///   error (such as `LEADER_NOT_AVAILABLE` while the topic is being
    ///   created) keeps what was cached, since the error says nothing
    ///   about where the partitions live.
    pub(crate) fn merge(
        &self,
        response: &MetadataResponse,
        requested: Option<&[String]>,
    ) -> (Cluster, Changes) {
        let mut changes = Changes::default();
        let mut topics = match requested {
            Some(_) => self.topics.clone(),
            None => HashMap::new(),
        };
        for answer in &response.topics {
            let Some(name) = &answer.name else { continue };
            // Take only what was asked for: some brokers (tansu) answer an
            // empty topic list with every topic, which would defeat scoping.
            if requested.is_some_and(|asked| !asked.contains(name)) {
                continue;
            }
            match answer.error_code {
                ErrorCode::NONE => {}
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                    if topics.remove(name).is_some() || self.topics.contains_key(name) {
                        changes.topics_gone.push(name.clone());
                    }
                    continue;
                }
                _ => {
                    if let Some(old) = self.topics.get(name) {
                        topics.insert(name.clone(), old.clone());
                    }
                    continue;
                }
            }
            let old = self.topics.get(name).filter(|old| {
                old.id.is_zero() || answer.topic_id.is_zero() || old.id == answer.topic_id
            });
            let mut partitions = BTreeMap::new();
            for p in &answer.partitions {
                let fresh = PartitionLeader {
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    epoch: p.leader_epoch,
                };
                let cached = old.and_then(|t| t.partitions.get(&p.partition_index));
                let kept = match cached {
                    Some(c) if c.epoch >= 0 && fresh.epoch >= 0 && fresh.epoch < c.epoch => {
                        changes.stale_partitions += 1;
                        *c
                    }
                    Some(c) => {
                        if c.leader != fresh.leader {
                            changes.leaders_moved += 1;
                        }
                        fresh
                    }
                    None => fresh,
                };
                partitions.insert(p.partition_index, kept);
            }
            let id = if answer.topic_id.is_zero() {
                old.map_or(Uuid::ZERO, |t| t.id)
            } else {
                answer.topic_id
            };
            topics.insert(name.clone(), Topic { id, partitions });
        }
        if requested.is_none() {
            for name in self.topics.keys().filter(|n| !topics.contains_key(*n)) {
                if !changes.topics_gone.contains(name) {
                    changes.topics_gone.push(name.clone());
                }
            }
        }

        let mut brokers: HashMap<i32, Broker> = response
            .brokers
            .iter()
            .map(|b| {
                let broker = Broker {
                    id: b.node_id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                };
                (b.node_id, broker)
            })
            .collect();
        // Leaders of kept (newer-epoch) partitions stay reachable even if a
        // lagging broker's answer does not list them.
        for leader in topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter_map(|p| p.leader)
        {
            if let (false, Some(old)) = (brokers.contains_key(&leader), self.brokers.get(&leader)) {
                brokers.insert(leader, old.clone());
            }
        }
        changes.brokers_added = brokers
            .keys()
            .filter(|id| !self.brokers.contains_key(id))
            .copied()
            .collect();
        changes.brokers_removed = self
            .brokers
            .values()
            .filter(|b| brokers.get(&b.id).is_none_or(|now| now.addr() != b.addr()))
            .cloned()
            .collect();
        let cluster = Cluster {
            fetched: Instant::now(),
            brokers,
            controller: (response.controller_id >= 0).then_some(response.controller_id),
            topics,
        };
        (cluster, changes)
    }

    /// The brokers, by node id.
    pub fn brokers(&self) -> &HashMap<i32, Broker> {
        &self.brokers
    }

    /// The leader of `topic`/`partition`, if the metadata names one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&Broker> {
        let id = self.partition(topic, partition)?.leader?;
        self.brokers.get(&id)
    }

    /// The leader epoch of `topic`/`partition`, if the broker sent one
    /// (Metadata v7+, KIP-320).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        let epoch = self.partition(topic, partition)?.epoch;
        (epoch >= 0).then_some(epoch)
    }

    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionLeader> {
        self.topics.get(topic)?.partitions.get(&partition)
    }

    /// The controller, if the metadata names one.
    pub fn controller(&self) -> Option<&Broker> {
        self.brokers.get(&self.controller?)
    }

    /// The number of partitions of `topic`, leaderless ones included (0 if
    /// the topic is unknown).
    pub fn partition_count(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, |t| t.partitions.len())
    }

    /// True when the snapshot knows `topic`.
    pub fn contains_topic(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }

    /// The names of the topics in this snapshot.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// The id of `topic` (KIP-516), if known and the broker sends ids.
    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics
            .get(topic)
            .map(|t| t.id)
            .filter(|id| !id.is_zero())
    }

    /// How long ago this snapshot was fetched.
    pub fn age(&self) -> std::time::Duration {
        self.fetched.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn broker(id: i32) -> MetadataResponseBroker {
        MetadataResponseBroker {
            node_id: id,
            host: format!("b{id}"),
            port: 9092,
            ..Default::default()
        }
    }

    fn partition(index: i32, leader: i32, epoch: i32) -> MetadataResponsePartition {
        MetadataResponsePartition {
            partition_index: index,
            leader_id: leader,
            leader_epoch: epoch,
            ..Default::default()
        }
    }

    fn topic(
        name: &str,
        id: u8,
        partitions: Vec<MetadataResponsePartition>,
    ) -> MetadataResponseTopic {
        MetadataResponseTopic {
            name: Some(name.into()),
            topic_id: Uuid::from_bytes([id; 16]),
            partitions,
            ..Default::default()
        }
    }

    fn response(brokers: &[i32], topics: Vec<MetadataResponseTopic>) -> MetadataResponse {
        MetadataResponse {
            brokers: brokers.iter().map(|&id| broker(id)).collect(),
            controller_id: brokers[0],
            topics,
            ..Default::default()
        }
    }

    fn requested(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn cluster_maps_partitions_to_leaders() {
        let broken = MetadataResponseTopic {
            name: Some("broken".into()),
            error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ..Default::default()
        };
        let orders = topic(
            "orders",
            1,
            vec![partition(0, 1, 0), partition(1, 2, 3), partition(2, -1, 0)],
        );
        let c = Cluster::from_metadata(&response(&[2, 1], vec![orders, broken]));
        assert_eq!(c.leader("orders", 0).unwrap().addr(), "b1:9092");
        assert_eq!(c.leader("orders", 1).unwrap().addr(), "b2:9092");
        assert_eq!(c.leader_epoch("orders", 1), Some(3));
        assert!(
            c.leader("orders", 2).is_none(),
            "no leader during an election"
        );
        assert!(c.leader("broken", 0).is_none());
        assert!(!c.contains_topic("broken"));
        assert_eq!(c.controller().unwrap().id, 2);
        assert_eq!(c.brokers().len(), 2);
        assert_eq!(c.partition_count("orders"), 3);
        assert_eq!(c.topic_id("orders"), Some(Uuid::from_bytes([1; 16])));
    }

    #[test]
    fn an_older_leader_epoch_never_replaces_a_newer_one() {
        let moved = response(&[1, 2], vec![topic("t", 1, vec![partition(0, 2, 5)])]);
        let (c, _) = Cluster::empty().merge(&moved, Some(&requested(&["t"])));
        // A lagging broker still thinks broker 1 leads at epoch 4, and does
        // not even list broker 2.
        let lagging = response(&[1], vec![topic("t", 1, vec![partition(0, 1, 4)])]);
        let (c, changes) = c.merge(&lagging, Some(&requested(&["t"])));
        assert_eq!(c.leader("t", 0).unwrap().id, 2);
        assert_eq!(c.leader_epoch("t", 0), Some(5));
        assert_eq!(changes.stale_partitions, 1);
        assert_eq!(changes.leaders_moved, 0);
        assert!(
            changes.brokers_removed.is_empty(),
            "the leader is carried over"
        );
        // The same epoch, or a newer one, is taken.
        let newer = response(&[1, 2], vec![topic("t", 1, vec![partition(0, 1, 6)])]);
        let (c, changes) = c.merge(&newer, Some(&requested(&["t"])));
        assert_eq!(
            (c.leader("t", 0).unwrap().id, changes.leaders_moved),
            (1, 1)
        );
    }

    #[test]
    fn a_recreated_topic_starts_its_epochs_over() {
        let old = response(&[1, 2], vec![topic("t", 1, vec![partition(0, 2, 9)])]);
        let (c, _) = Cluster::empty().merge(&old, None);
        let recreated = response(&[1, 2], vec![topic("t", 7, vec![partition(0, 1, 0)])]);
        let (c, changes) = c.merge(&recreated, None);
        assert_eq!(c.leader("t", 0).unwrap().id, 1);
        assert_eq!(c.leader_epoch("t", 0), Some(0));
        assert_eq!(changes.stale_partitions, 0);
    }

    #[test]
    fn brokers_without_epochs_are_always_believed() {
        let old = response(&[1, 2], vec![topic("t", 0, vec![partition(0, 2, -1)])]);
        let (c, _) = Cluster::empty().merge(&old, None);
        let new = response(&[1, 2], vec![topic("t", 0, vec![partition(0, 1, -1)])]);
        let (c, _) = c.merge(&new, None);
        assert_eq!(c.leader("t", 0).unwrap().id, 1);
        assert_eq!(c.leader_epoch("t", 0), None);
    }

    #[test]
    fn scoped_answers_keep_other_topics_full_answers_drop_missing_ones() {
        let both = response(
            &[1, 2],
            vec![
                topic("a", 1, vec![partition(0, 1, 0)]),
                topic("b", 2, vec![partition(0, 2, 0)]),
            ],
        );
        let (c, _) = Cluster::empty().merge(&both, None);
        let only_a = response(&[1, 2], vec![topic("a", 1, vec![partition(0, 2, 1)])]);
        let (scoped, _) = c.merge(&only_a, Some(&requested(&["a"])));
        assert!(scoped.contains_topic("b"), "b was not asked about");
        let unasked = response(&[1, 2], vec![topic("z", 3, vec![partition(0, 1, 0)])]);
        let (scoped, _) = scoped.merge(&unasked, Some(&[]));
        assert!(
            !scoped.contains_topic("z"),
            "answers beyond the request are ignored"
        );
        assert_eq!(scoped.leader("a", 0).unwrap().id, 2);
        let (full, changes) = c.merge(&only_a, None);
        assert!(!full.contains_topic("b"));
        assert_eq!(changes.topics_gone, ["b"]);
    }

    #[test]
    fn topic_errors_keep_or_drop_what_was_cached() {
        let (c, _) = Cluster::empty().merge(
            &response(&[1], vec![topic("t", 1, vec![partition(0, 1, 0)])]),
            None,
        );
        let mut electing = topic("t", 1, vec![]);
        electing.error_code = ErrorCode::LEADER_NOT_AVAILABLE;
        let (kept, _) = c.merge(&response(&[1], vec![electing]), Some(&requested(&["t"])));
        assert_eq!(kept.leader("t", 0).unwrap().id, 1);
        let mut deleted = topic("t", 1, vec![]);
        deleted.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        let (gone, changes) = c.merge(&response(&[1], vec![deleted]), Some(&requested(&["t"])));
        assert!(!gone.contains_topic("t"));
        assert_eq!(changes.topics_gone, ["t"]);
    }

    #[test]
    fn brokers_that_leave_are_reported() {
        let (c, _) = Cluster::empty().merge(&response(&[1, 2], vec![]), None);
        let (c2, changes) = c.merge(&response(&[1, 3], vec![]), None);
        assert_eq!(changes.brokers_added, [3]);
        assert_eq!(changes.brokers_removed.len(), 1);
        assert_eq!(changes.brokers_removed[0].id, 2);
        assert_eq!(c2.brokers().len(), 2);
        // A broker that comes back at another address (a rebootstrap after
        // a redeployment) is reported too: its old address is evicted.
        let mut moved = response(&[1, 3], vec![]);
        moved.brokers[0].port += 1;
        let (c3, changes) = c2.merge(&moved, None);
        assert!(changes.brokers_added.is_empty());
        assert_eq!(changes.brokers_removed.len(), 1);
        assert_eq!(changes.brokers_removed[0].id, 1);
        assert_ne!(c3.brokers()[&1].addr(), changes.brokers_removed[0].addr());
    }
}
