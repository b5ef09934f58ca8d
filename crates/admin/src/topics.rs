//! Reading topics: list them all (sarama's `ListTopics`: a map of name to
//! details) and describe some (partitions, leaders, replicas, ISR, offline
//! replicas), from Metadata. Creating and deleting: `topic_changes.rs`.

use std::collections::BTreeMap;

use kafkit_conn::{Conn, ErrorCode, ErrorKind};
use kafkit_protocol::Uuid;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::{MetadataRequest, MetadataResponse};

use crate::configs::ConfigResource;
use crate::error::{Result, broker_error, check, topic_result};
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
        let mut topics = details(metadata, include_internal);
        if topics.is_empty() {
            return Ok(topics);
        }
        let resources: Vec<ConfigResource> = topics
            .keys()
            .map(|t| ConfigResource::Topic(t.clone()))
            .collect();
        let configs = match self.describe_configs(&resources, false).await {
            // A broker without DescribeConfigs (Kafka < 0.11): no configs to show.
            Err(e) if matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }) => {
                return Ok(topics);
            }
            other => other?,
        };
        for (resource, configs) in configs {
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
        Ok(descriptions(metadata, topics))
    }
}

/// The topics of a Metadata answer as [`TopicDetail`]s; topics with an
/// error (being created or deleted) are left out, as sarama does.
fn details(metadata: MetadataResponse, include_internal: bool) -> BTreeMap<String, TopicDetail> {
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
    topics
}

/// The answer for each of `asked`; a topic the broker left out is unknown.
fn descriptions(
    metadata: MetadataResponse,
    asked: &[&str],
) -> BTreeMap<String, Result<TopicDescription>> {
    let mut out = BTreeMap::new();
    for topic in metadata.topics {
        let Some(name) = topic.name else { continue };
        if !asked.contains(&name.as_str()) {
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
    for name in asked {
        out.entry(name.to_string()).or_insert_with(|| {
            Err(broker_error(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None).with_topic(name, None))
        });
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::messages::metadata_response::{
        MetadataResponsePartition, MetadataResponseTopic,
    };

    fn topic(
        name: &str,
        internal: bool,
        code: ErrorCode,
        replicas: &[&[i32]],
    ) -> MetadataResponseTopic {
        MetadataResponseTopic {
            name: Some(name.into()),
            is_internal: internal,
            error_code: code,
            partitions: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| MetadataResponsePartition {
                    partition_index: i as i32,
                    leader_id: r.first().copied().unwrap_or(-1),
                    leader_epoch: 4,
                    replica_nodes: r.to_vec(),
                    isr_nodes: r[..1.min(r.len())].to_vec(),
                    offline_replicas: r.get(2).map(|&b| vec![b]).unwrap_or_default(),
                    error_code: if r.is_empty() {
                        ErrorCode::LEADER_NOT_AVAILABLE
                    } else {
                        ErrorCode::NONE
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn metadata() -> MetadataResponse {
        MetadataResponse {
            topics: vec![
                topic("orders", false, ErrorCode::NONE, &[&[1, 2, 3], &[2, 3, 1]]),
                topic("__consumer_offsets", true, ErrorCode::NONE, &[&[1]]),
                topic("creating", false, ErrorCode::LEADER_NOT_AVAILABLE, &[]),
                topic("headless", false, ErrorCode::NONE, &[&[]]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn details_map_names_to_partitions_and_replication() {
        let all = details(metadata(), false);
        assert_eq!(all.keys().collect::<Vec<_>>(), ["headless", "orders"]);
        let orders = &all["orders"];
        assert_eq!((orders.num_partitions, orders.replication_factor), (2, 3));
        assert_eq!(orders.replica_assignment[&1], [2, 3, 1]);
        assert!(details(metadata(), true)["__consumer_offsets"].internal);
    }

    #[test]
    fn descriptions_keep_partition_errors_and_name_missing_topics() {
        let out = descriptions(metadata(), &["orders", "headless", "nowhere"]);
        let orders = out["orders"].as_ref().unwrap();
        assert_eq!(orders.partitions[1].leader, Some(2));
        assert_eq!(orders.partitions[1].isr, [2]);
        assert_eq!(orders.partitions[0].offline, [3]);
        assert_eq!(orders.partitions[0].leader_epoch, Some(4));
        let headless = &out["headless"].as_ref().unwrap().partitions[0];
        assert_eq!(headless.leader, None);
        assert_eq!(
            headless.error.as_ref().and_then(|e| e.code()),
            Some(ErrorCode::LEADER_NOT_AVAILABLE)
        );
        let missing = out["nowhere"].as_ref().unwrap_err();
        assert_eq!(missing.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert!(!out.contains_key("creating"), "only the topics asked for");
    }
}
