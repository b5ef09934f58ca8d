//! [`Cluster`]: one snapshot of the cluster's metadata, as the
//! [`Transport`](crate::Transport) caches it.

use std::collections::HashMap;
use std::time::Instant;

use kafkit_protocol::Uuid;
use kafkit_protocol::messages::MetadataResponse;

use crate::Broker;

/// A snapshot of the cluster's metadata.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub(crate) fetched: Instant,
    pub(crate) brokers: HashMap<i32, Broker>,
    controller: Option<i32>,
    leaders: HashMap<(String, i32), i32>,
    pub(crate) topic_ids: HashMap<String, Uuid>,
}

impl Cluster {
    pub(crate) fn from_metadata(response: &MetadataResponse) -> Cluster {
        let mut leaders = HashMap::new();
        let mut topic_ids = HashMap::new();
        for topic in response.topics.iter().filter(|t| t.error_code == 0) {
            let Some(name) = &topic.name else { continue };
            topic_ids.insert(name.clone(), topic.topic_id);
            for p in topic.partitions.iter().filter(|p| p.leader_id >= 0) {
                leaders.insert((name.clone(), p.partition_index), p.leader_id);
            }
        }
        let brokers = response
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
        Cluster {
            fetched: Instant::now(),
            brokers,
            controller: (response.controller_id >= 0).then_some(response.controller_id),
            leaders,
            topic_ids,
        }
    }

    /// The brokers, by node id.
    pub fn brokers(&self) -> &HashMap<i32, Broker> {
        &self.brokers
    }

    /// The leader of `topic`/`partition`, if the metadata names one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&Broker> {
        let id = self.leaders.get(&(topic.to_owned(), partition))?;
        self.brokers.get(id)
    }

    /// The controller, if the metadata names one.
    pub fn controller(&self) -> Option<&Broker> {
        self.brokers.get(&self.controller?)
    }

    /// The number of partitions of `topic` (0 if unknown).
    pub fn partition_count(&self, topic: &str) -> usize {
        self.leaders.keys().filter(|(t, _)| t == topic).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::ErrorCode;
    use kafkit_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn metadata() -> MetadataResponse {
        let partition = |index, leader| MetadataResponsePartition {
            partition_index: index,
            leader_id: leader,
            ..Default::default()
        };
        MetadataResponse {
            brokers: vec![
                MetadataResponseBroker {
                    node_id: 1,
                    host: "a".into(),
                    port: 9092,
                    ..Default::default()
                },
                MetadataResponseBroker {
                    node_id: 2,
                    host: "b".into(),
                    port: 9093,
                    ..Default::default()
                },
            ],
            controller_id: 2,
            topics: vec![
                MetadataResponseTopic {
                    name: Some("orders".into()),
                    partitions: vec![partition(0, 1), partition(1, 2), partition(2, -1)],
                    ..Default::default()
                },
                MetadataResponseTopic {
                    name: Some("broken".into()),
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn cluster_maps_partitions_to_leaders() {
        let c = Cluster::from_metadata(&metadata());
        assert_eq!(c.leader("orders", 0).unwrap().addr(), "a:9092");
        assert_eq!(c.leader("orders", 1).unwrap().addr(), "b:9093");
        assert!(
            c.leader("orders", 2).is_none(),
            "no leader during an election"
        );
        assert!(c.leader("broken", 0).is_none());
        assert_eq!(c.controller().unwrap().id, 2);
        assert_eq!(c.brokers().len(), 2);
        assert_eq!(c.partition_count("orders"), 2);
    }
}
