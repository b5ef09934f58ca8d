//! Cluster-level operations on a [`Conn`], with kafka-go's names:
//! [`read_partitions`](Conn::read_partitions), [`brokers`](Conn::brokers),
//! [`controller`](Conn::controller), [`create_topics`](Conn::create_topics)
//! and [`delete_topics`](Conn::delete_topics).

use std::time::Duration;

use kafkit_protocol::ApiKey;
use kafkit_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafkit_protocol::messages::delete_topics_request::DeleteTopicState;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest, MetadataResponse,
};

use crate::{Conn, Error};

/// A broker of the cluster, as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Broker {
    /// The broker's node id.
    pub id: i32,
    /// The advertised host name.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// The rack, if the broker has one.
    pub rack: Option<String>,
}

impl Broker {
    /// `host:port`, ready for [`Conn::dial`].
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A broker the metadata names by id but does not describe.
    fn unknown(id: i32) -> Broker {
        Broker {
            id,
            host: String::new(),
            port: 0,
            rack: None,
        }
    }
}

/// One partition of a topic, from [`Conn::read_partitions`].
#[derive(Debug, Clone)]
pub struct Partition {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub id: i32,
    /// The leader, `None` while there is none (an election is running).
    pub leader: Option<Broker>,
    /// All replicas.
    pub replicas: Vec<Broker>,
    /// The in-sync replicas.
    pub isr: Vec<Broker>,
    /// The replicas that are offline.
    pub offline_replicas: Vec<Broker>,
    /// The broker's error for this partition (for example
    /// `LEADER_NOT_AVAILABLE`), if any: partial failure is data.
    pub error: Option<Error>,
}

/// A topic to create, for [`Conn::create_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// The topic name.
    pub topic: String,
    /// The number of partitions; `-1` lets the broker pick its default
    /// (KIP-464).
    pub num_partitions: i32,
    /// The replication factor; `-1` lets the broker pick its default
    /// (KIP-464).
    pub replication_factor: i16,
    /// Topic configs such as `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
}

impl TopicConfig {
    /// `topic` with `num_partitions` partitions and the broker's default
    /// replication factor.
    pub fn new(topic: impl Into<String>, num_partitions: i32) -> TopicConfig {
        TopicConfig {
            topic: topic.into(),
            num_partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// The outcome for one topic of [`Conn::create_topics`] or
/// [`Conn::delete_topics`].
#[derive(Debug, Clone)]
pub struct TopicResult {
    /// The topic.
    pub topic: String,
    /// `Ok` when the broker did what was asked for this topic.
    pub result: Result<(), Error>,
}

/// The broker-side timeout of admin requests, and how much longer the
/// client waits for their answer.
fn admin_timeout(conn: &Conn) -> Duration {
    conn.config()
        .request_timeout
        .unwrap_or(Duration::from_secs(30))
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Conn {
    /// Metadata for `topics` (all topics when `None`), never auto-creating.
    pub(crate) async fn metadata(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, Error> {
        let request = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some((*n).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        self.request(request).await
    }

    /// The partitions of `topics`, or of every topic when `topics` is
    /// empty. A topic the broker reports an error for (such as
    /// `UNKNOWN_TOPIC_OR_PARTITION`) fails the call, naming the topic;
    /// partition-level errors are returned in [`Partition::error`].
    ///
    /// Cancel safety: safe (a read-only request; see [`Conn::request`]).
    pub async fn read_partitions(&self, topics: &[&str]) -> Result<Vec<Partition>, Error> {
        let response = self
            .metadata((!topics.is_empty()).then_some(topics))
            .await?;
        let broker = |id: i32| {
            response
                .brokers
                .iter()
                .find(|b| b.node_id == id)
                .map_or_else(|| Broker::unknown(id), to_broker)
        };
        let brokers = |ids: &[i32]| ids.iter().map(|&id| broker(id)).collect::<Vec<_>>();
        let mut partitions = Vec::new();
        for topic in &response.topics {
            let name = topic.name.clone().unwrap_or_default();
            Error::check(topic.error_code, None).map_err(|e| {
                e.with_topic(&name, None)
                    .with_api(ApiKey::Metadata)
                    .with_broker(self.addr())
            })?;
            for p in &topic.partitions {
                partitions.push(Partition {
                    topic: name.clone(),
                    id: p.partition_index,
                    leader: (p.leader_id >= 0).then(|| broker(p.leader_id)),
                    replicas: brokers(&p.replica_nodes),
                    isr: brokers(&p.isr_nodes),
                    offline_replicas: brokers(&p.offline_replicas),
                    error: Error::check(p.error_code, None)
                        .err()
                        .map(|e| e.with_topic(&name, Some(p.partition_index))),
                });
            }
        }
        partitions.sort_by(|a, b| (&a.topic, a.id).cmp(&(&b.topic, b.id)));
        Ok(partitions)
    }

    /// The brokers of the cluster, sorted by id.
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn brokers(&self) -> Result<Vec<Broker>, Error> {
        let response = self.metadata(Some(&[])).await?;
        let mut brokers: Vec<Broker> = response.brokers.iter().map(to_broker).collect();
        brokers.sort_by_key(|b| b.id);
        Ok(brokers)
    }

    /// The cluster's controller: where [`create_topics`](Conn::create_topics)
    /// and [`delete_topics`](Conn::delete_topics) should be sent.
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn controller(&self) -> Result<Broker, Error> {
        let response = self.metadata(Some(&[])).await?;
        let id = response.controller_id;
        response
            .brokers
            .iter()
            .find(|b| b.node_id == id)
            .map(to_broker)
            .ok_or_else(|| {
                Error::check(kafkit_protocol::ErrorCode::BROKER_NOT_AVAILABLE, None)
                    .unwrap_err()
                    .with_message(format!("the metadata names no controller (id {id})"))
                    .with_broker(self.addr())
            })
    }

    /// Creates `topics`, returning one result per topic: a topic that
    /// already exists is an `Err` in its [`TopicResult`], not a failed
    /// call. Send it to the [`controller`](Conn::controller).
    ///
    /// Cancel safety: the request may or may not reach the broker; the
    /// topics may exist after the future is dropped.
    pub async fn create_topics(&self, topics: &[TopicConfig]) -> Result<Vec<TopicResult>, Error> {
        let timeout = admin_timeout(self);
        let request = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.topic.clone(),
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name: name.clone(),
                            value: Some(value.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: millis(timeout),
            ..Default::default()
        };
        let version = self.version_for(ApiKey::CreateTopics)?;
        let response = self.send(version, &request, timeout).await?;
        Ok(response
            .topics
            .into_iter()
            .map(|t| TopicResult {
                result: Error::check(t.error_code, t.error_message.as_deref())
                    .map_err(|e| e.with_topic(&t.name, None).with_broker(self.addr())),
                topic: t.name,
            })
            .collect())
    }

    /// Deletes `topics` by name, returning one result per topic. Send it to
    /// the [`controller`](Conn::controller).
    ///
    /// Cancel safety: the request may or may not reach the broker; the
    /// topics may be gone after the future is dropped.
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<Vec<TopicResult>, Error> {
        let timeout = admin_timeout(self);
        let version = self.version_for(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest {
            timeout_ms: millis(timeout),
            ..Default::default()
        };
        // v6 names topics by name or id (KIP-516); earlier versions by name.
        if version >= 6 {
            request.topics = topics
                .iter()
                .map(|n| DeleteTopicState {
                    name: Some((*n).to_owned()),
                    ..Default::default()
                })
                .collect();
        } else {
            request.topic_names = topics.iter().map(|n| (*n).to_owned()).collect();
        }
        let response = self.send(version, &request, timeout).await?;
        Ok(response
            .responses
            .into_iter()
            .map(|t| {
                let topic = t.name.unwrap_or_default();
                TopicResult {
                    result: Error::check(t.error_code, t.error_message.as_deref())
                        .map_err(|e| e.with_topic(&topic, None).with_broker(self.addr())),
                    topic,
                }
            })
            .collect())
    }
}

fn to_broker(b: &kafkit_protocol::messages::metadata_response::MetadataResponseBroker) -> Broker {
    Broker {
        id: b.node_id,
        host: b.host.clone(),
        port: b.port,
        rack: b.rack.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addr_is_host_colon_port() {
        let b = Broker {
            id: 1,
            host: "kafka-1".into(),
            port: 9092,
            rack: None,
        };
        assert_eq!(b.addr(), "kafka-1:9092");
        assert_eq!(Broker::unknown(7).id, 7);
    }

    #[test]
    fn topic_config_defaults_to_brokers_replication_factor() {
        let t = TopicConfig::new("orders", 3);
        assert_eq!((t.num_partitions, t.replication_factor), (3, -1));
        assert!(t.configs.is_empty());
    }

    #[test]
    fn millis_saturates() {
        assert_eq!(millis(Duration::from_secs(30)), 30_000);
        assert_eq!(millis(Duration::from_secs(u64::MAX / 2)), i32::MAX);
    }
}
