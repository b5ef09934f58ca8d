//! Reading topics: list them all (sarama's `ListTopics`: a map of name to
//! details) and describe some (partitions, leaders, replicas, ISR, offline
//! replicas), from Metadata. Creating and deleting: `topic_changes.rs`.

use std::collections::BTreeMap;

use kafkit_conn::Conn;
use kafkit_protocol::Uuid;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::{MetadataRequest, MetadataResponse};

use crate::configs::ConfigResource;
use crate::error::{Result, check, topic_result};
use crate::{Admin, ConfigSource};

/// A topic as [`Admin::list_topics`] lists it (sarama's `TopicDetail`).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDetail {
    /// The number of partitions.
    pub num_partitions: i32,
    /// The replication factor (replicas of partition 0).
    pub replication_factor: i16,
    /// Replicas per partition.
    pub replica_assignment: BTreeMap<i32, Vec<i32>>,
    /// Configs set on the topic itself (not defaults, not sensitive).
    pub config_entries: BTreeMap<String, Option<String>>,
    /// True for Kafka's own topics (`__consumer_offsets`...).
    pub internal: bool,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone)]
pub struct PartitionDescription {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id; `None` when the partition has none.
    pub leader: Option<i32>,
    /// The leader epoch, if the broker sends it.
    pub leader_epoch: Option<i32>,
    /// The replicas' broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The replicas that are offline.
    pub offline: Vec<i32>,
    /// The partition's own error (`LEADER_NOT_AVAILABLE`...), as data.
    pub error: Option<crate::Error>,
}

/// A topic as [`Admin::describe_topics`] describes it.
#[derive(Debug, Clone)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// The topic id (KIP-516); zero when the broker sends none.
    pub id: Uuid,
    /// True for Kafka's own topics.
    pub internal: bool,
    /// The partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

impl Admin {
    /// Every topic with its partitions, replicas and non-default configs,
    /// as a map from name to details (sarama's `ClusterAdmin.ListTopics`).
    /// Internal topics are left out unless `include_internal`.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (name, detail) in admin.list_topics(false).await? {
    ///     println!("{name}: {} partitions", detail.num_partitions);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.list_topics", skip(self))]
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<BTreeMap<String, TopicDetail>> {
        let metadata = self.read_any(|conn| metadata(conn, None)).await?;
        let mut topics = BTreeMap::new();
        for topic in metadata.topics {
            let Some(name) = topic.name else { continue };
            if (topic.is_internal && !include_internal) || !topic.error_code.is_ok() {
                continue;
            }
            let replica_assignment: BTreeMap<i32, Vec<i32>> = topic
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.replica_nodes.clone()))
                .collect();
            let replication_factor = replica_assignment
                .get(&0)
                .or_else(|| replica_assignment.values().next())
                .map_or(0, |r| r.len() as i16);
            let detail = TopicDetail {
                num_partitions: topic.partitions.len() as i32,
                replication_factor,
                replica_assignment,
                config_entries: BTreeMap::new(),
                internal: topic.is_internal,
            };
            topics.insert(name, detail);
        }
        if topics.is_empty() {
            return Ok(topics);
        }
        let resources: Vec<ConfigResource> = topics
            .keys()
            .map(|t| ConfigResource::Topic(t.clone()))
            .collect();
        for (resource, configs) in self.describe_configs(&resources, false).await? {
            let (ConfigResource::Topic(name), Ok(configs)) = (resource, configs) else {
                continue;
            };
            if let Some(detail) = topics.get_mut(&name) {
                detail.config_entries = configs
                    .into_iter()
                    .filter(|c| c.source == ConfigSource::DynamicTopic && !c.sensitive)
                    .map(|c| (c.name, c.value))
                    .collect();
            }
        }
        Ok(topics)
    }

    /// Describes `topics`: partitions, leaders, replicas, ISR and offline
    /// replicas. Each topic's result stands alone (an unknown topic is
    /// `Err(UNKNOWN_TOPIC_OR_PARTITION)`).
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (name, topic) in admin.describe_topics(&["orders"]).await? {
    ///     for p in topic?.partitions {
    ///         println!("{name}/{}: leader {:?} isr {:?}", p.partition, p.leader, p.isr);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_topics", skip(self))]
    pub async fn describe_topics(
        &self,
        topics: &[&str],
    ) -> Result<BTreeMap<String, Result<TopicDescription>>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let metadata = self.read_any(|conn| metadata(conn, Some(topics))).await?;
        let mut out = BTreeMap::new();
        for topic in metadata.topics {
            let Some(name) = topic.name else { continue };
            if !topics.contains(&name.as_str()) {
                continue;
            }
            let result = topic_result(topic.error_code, None, &name).map(|()| TopicDescription {
                name: name.clone(),
                id: topic.topic_id,
                internal: topic.is_internal,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|p| PartitionDescription {
                        partition: p.partition_index,
                        leader: (p.leader_id >= 0).then_some(p.leader_id),
                        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                        replicas: p.replica_nodes,
                        isr: p.isr_nodes,
                        offline: p.offline_replicas,
                        error: check(p.error_code, None)
                            .map_err(|e| e.with_topic(&name, Some(p.partition_index)))
                            .err(),
                    })
                    .collect(),
            });
            out.insert(name, result);
        }
        Ok(out)
    }
}

/// Metadata for `topics` (`None`: all), never creating any.
async fn metadata(conn: Conn, topics: Option<&[&str]>) -> Result<MetadataResponse> {
    let request = MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    name: Some(t.to_string()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    conn.request(request).await
}
