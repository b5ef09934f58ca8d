//! Changing topics: create (partition count and replication factor, or
//! explicit assignments; configs; validate-only), delete (by name or id)
//! and add partitions. All go to the controller and are re-sent only when
//! it answers `NOT_CONTROLLER`.

use std::collections::BTreeMap;

use kafkit_conn::{ApiKey, ErrorCode};
use kafkit_protocol::Uuid;
use kafkit_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafkit_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafkit_protocol::messages::delete_topics_request::DeleteTopicState;
use kafkit_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};

use crate::Admin;
use crate::error::{Result, check, invalid, topic_result};

/// A topic to create: [`NewTopic::new`] then the builder methods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// The number of partitions; `None`: the broker's default
    /// (`num.partitions`), or as many as `assignments` lists.
    pub partitions: Option<i32>,
    /// The replication factor; `None`: the broker's default.
    pub replication_factor: Option<i16>,
    /// Explicit replicas per partition; when set, `partitions` and
    /// `replication_factor` must be `None`.
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic configs (`retention.ms`...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the default replication.
    pub fn new(name: impl Into<String>, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions: Some(partitions),
            ..Default::default()
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, factor: i16) -> NewTopic {
        self.replication_factor = Some(factor);
        self
    }

    /// Places `partition`'s replicas on `brokers` (clears the partition
    /// count and replication factor, which the assignments imply).
    pub fn assign(mut self, partition: i32, brokers: Vec<i32>) -> NewTopic {
        self.partitions = None;
        self.replication_factor = None;
        self.assignments.insert(partition, brokers);
        self
    }

    /// Sets a topic config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.insert(name.into(), value.into());
        self
    }

    fn to_wire(&self) -> CreatableTopic {
        CreatableTopic {
            name: self.name.clone(),
            num_partitions: self.partitions.unwrap_or(-1),
            replication_factor: self.replication_factor.unwrap_or(-1),
            assignments: self
                .assignments
                .iter()
                .map(|(&partition_index, brokers)| CreatableReplicaAssignment {
                    partition_index,
                    broker_ids: brokers.clone(),
                    ..Default::default()
                })
                .collect(),
            configs: self
                .configs
                .iter()
                .map(|(name, value)| CreatableTopicConfig {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// What the broker says about a topic it created (or would create, for a
/// validate-only call). Fields the broker's version lacks are `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatedTopic {
    /// The new topic's id (CreateTopics v7+).
    pub id: Option<Uuid>,
    /// Its number of partitions (v5+).
    pub num_partitions: Option<i32>,
    /// Its replication factor (v5+).
    pub replication_factor: Option<i16>,
}

/// Partitions to add to a topic ([`Admin::create_partitions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The partition count after the call (not the number added).
    pub total_count: i32,
    /// Replicas of each new partition, in order; empty: the broker places them.
    pub assignments: Vec<Vec<i32>>,
}

impl Admin {
    /// Creates `topics` on the controller, or only checks that they could
    /// be created when `validate_only`. One result per topic: creating
    /// three topics of which one exists gives two `Ok` and one
    /// `Err(TOPIC_ALREADY_EXISTS)`.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::NewTopic;
    /// let topic = NewTopic::new("events", 12).replication_factor(3).config("retention.ms", "86400000");
    /// admin.create_topics(&[topic], false).await?["events"].as_ref().map_err(Clone::clone)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some topics may have been created.
    #[tracing::instrument(name = "admin.create_topics", skip(self, topics), fields(count = topics.len()))]
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<CreatedTopic>>> {
        for t in topics {
            if !t.assignments.is_empty()
                && (t.partitions.is_some() || t.replication_factor.is_some())
            {
                return Err(invalid(format!(
                    "topic {}: explicit assignments exclude a partition count and replication factor",
                    t.name
                )));
            }
        }
        let request = CreateTopicsRequest {
            topics: topics.iter().map(NewTopic::to_wire).collect(),
            timeout_ms: self.timeout_ms(),
            validate_only,
            ..Default::default()
        };
        let response = self
            .write_controller(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    // Refused as a whole: safe to send again elsewhere.
                    if let Some(t) = response
                        .topics
                        .iter()
                        .find(|t| t.error_code == ErrorCode::NOT_CONTROLLER)
                    {
                        check(t.error_code, t.error_message.as_deref())?;
                    }
                    Ok(response)
                }
            })
            .await?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            let result =
                topic_result(t.error_code, t.error_message.as_deref(), &t.name).map(|()| {
                    CreatedTopic {
                        id: (!t.topic_id.is_zero()).then_some(t.topic_id),
                        num_partitions: (t.num_partitions >= 0).then_some(t.num_partitions),
                        replication_factor: (t.replication_factor >= 0)
                            .then_some(t.replication_factor),
                    }
                });
            out.insert(t.name, result);
        }
        Ok(out)
    }

    /// Deletes topics by name, on the controller. One result per topic.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// let results = admin.delete_topics(&["old-events"]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some topics may have been deleted.
    #[tracing::instrument(name = "admin.delete_topics", skip(self))]
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<BTreeMap<String, Result<()>>> {
        let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let results = self
            .delete(
                names
                    .iter()
                    .map(|n| (Some(n.clone()), Uuid::ZERO))
                    .collect(),
            )
            .await?;
        Ok(results
            .into_iter()
            .filter_map(|(name, _, result)| Some((name?, result)))
            .collect())
    }

    /// Deletes topics by id (KIP-516; DeleteTopics v6, Kafka 2.8+), on the
    /// controller. One result per id.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin, id: kafkit_admin::Uuid) -> kafkit_admin::Result<()> {
    /// let results = admin.delete_topics_by_id(&[id]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some topics may have been deleted.
    #[tracing::instrument(name = "admin.delete_topics_by_id", skip(self))]
    pub async fn delete_topics_by_id(&self, ids: &[Uuid]) -> Result<BTreeMap<Uuid, Result<()>>> {
        let results = self
            .delete(ids.iter().map(|id| (None, *id)).collect())
            .await?;
        Ok(results
            .into_iter()
            .map(|(_, id, result)| (id, result))
            .collect())
    }

    async fn delete(
        &self,
        topics: Vec<(Option<String>, Uuid)>,
    ) -> Result<Vec<(Option<String>, Uuid, Result<()>)>> {
        let timeout_ms = self.timeout_ms();
        let response = self
            .write_controller(|conn| {
                let topics = topics.clone();
                async move {
                    let version = conn.version_for(ApiKey::DeleteTopics)?;
                    let mut request = DeleteTopicsRequest {
                        timeout_ms,
                        ..Default::default()
                    };
                    if version >= 6 {
                        request.topics = topics
                            .into_iter()
                            .map(|(name, topic_id)| DeleteTopicState {
                                name,
                                topic_id,
                                ..Default::default()
                            })
                            .collect();
                    } else if topics.iter().any(|(name, _)| name.is_none()) {
                        return Err(invalid(
                            "deleting topics by id needs DeleteTopics v6 (Kafka 2.8+)",
                        ));
                    } else {
                        request.topic_names =
                            topics.into_iter().filter_map(|(name, _)| name).collect();
                    }
                    let response = conn.request_at(version, request).await?;
                    if let Some(t) = response
                        .responses
                        .iter()
                        .find(|t| t.error_code == ErrorCode::NOT_CONTROLLER)
                    {
                        check(t.error_code, t.error_message.as_deref())?;
                    }
                    Ok(response)
                }
            })
            .await?;
        Ok(response
            .responses
            .into_iter()
            .map(|t| {
                let label = t.name.clone().unwrap_or_else(|| t.topic_id.to_string());
                let result = topic_result(t.error_code, t.error_message.as_deref(), &label);
                (t.name, t.topic_id, result)
            })
            .collect())
    }

    /// Adds partitions to topics, on the controller. One result per topic.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::NewPartitions;
    /// let grow = NewPartitions { topic: "events".into(), total_count: 24, assignments: vec![] };
    /// admin.create_partitions(&[grow], false).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some topics may have grown.
    #[tracing::instrument(name = "admin.create_partitions", skip(self, topics), fields(count = topics.len()))]
    pub async fn create_partitions(
        &self,
        topics: &[NewPartitions],
        validate_only: bool,
    ) -> Result<BTreeMap<String, Result<()>>> {
        let request = CreatePartitionsRequest {
            topics: topics
                .iter()
                .map(|t| CreatePartitionsTopic {
                    name: t.topic.clone(),
                    count: t.total_count,
                    assignments: (!t.assignments.is_empty()).then(|| {
                        t.assignments
                            .iter()
                            .map(|b| CreatePartitionsAssignment {
                                broker_ids: b.clone(),
                                ..Default::default()
                            })
                            .collect()
                    }),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: self.timeout_ms(),
            validate_only,
            ..Default::default()
        };
        let response = self
            .write_controller(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    if let Some(t) = response
                        .results
                        .iter()
                        .find(|t| t.error_code == ErrorCode::NOT_CONTROLLER)
                    {
                        check(t.error_code, t.error_message.as_deref())?;
                    }
                    Ok(response)
                }
            })
            .await?;
        Ok(response
            .results
            .into_iter()
            .map(|t| {
                let result = topic_result(t.error_code, t.error_message.as_deref(), &t.name);
                (t.name, result)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_topic_defaults_to_the_brokers_replication() {
        let wire = NewTopic::new("t", 3)
            .config("retention.ms", "1000")
            .to_wire();
        assert_eq!((wire.num_partitions, wire.replication_factor), (3, -1));
        assert_eq!(wire.configs[0].name, "retention.ms");
        assert_eq!(wire.configs[0].value.as_deref(), Some("1000"));
        assert!(wire.assignments.is_empty());
    }

    #[test]
    fn explicit_assignments_leave_count_and_factor_to_the_broker() {
        let wire = NewTopic::new("t", 3)
            .replication_factor(2)
            .assign(0, vec![1, 2])
            .assign(1, vec![2, 3])
            .to_wire();
        assert_eq!((wire.num_partitions, wire.replication_factor), (-1, -1));
        assert_eq!(wire.assignments.len(), 2);
        assert_eq!(wire.assignments[1].partition_index, 1);
        assert_eq!(wire.assignments[1].broker_ids, [2, 3]);
    }
}
