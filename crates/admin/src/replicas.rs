//! Replicas: leader elections (KIP-460), partition reassignments
//! (KIP-455) through the controller, and each broker's log dirs.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use kafkit_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafkit_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafkit_protocol::messages::elect_leaders_request::TopicPartitions;
use kafkit_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafkit_protocol::messages::{
    AlterPartitionReassignmentsRequest, DescribeLogDirsRequest, DescribeLogDirsResponse,
    ElectLeadersRequest, ListPartitionReassignmentsRequest,
};

use crate::error::{Result, check, partition_result};
use crate::route::{by_topic, partitions_by_topic};
use crate::{Admin, TopicPartition};

/// The kind of leader election ([`Admin::elect_leaders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership back to the preferred (first) replica.
    Preferred,
    /// Elect an out-of-sync replica when no in-sync one is left (may lose data).
    Unclean,
}

/// A partition being reassigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// The replicas now.
    pub replicas: Vec<i32>,
    /// The replicas being added.
    pub adding: Vec<i32>,
    /// The replicas being removed.
    pub removing: Vec<i32>,
}

/// One partition in a log dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    /// Its size on disk, in bytes.
    pub size: u64,
    /// How far the replica lags the leader (or a future replica the current one).
    pub offset_lag: i64,
    /// True for a future replica being moved into this dir.
    pub is_future: bool,
}

/// A broker's log dir.
#[derive(Debug, Clone)]
pub struct LogDir {
    /// The dir's path.
    pub path: String,
    /// Its error (`KAFKA_STORAGE_ERROR` for an offline dir), as data.
    pub error: Option<crate::Error>,
    /// Its partitions.
    pub partitions: BTreeMap<TopicPartition, LogDirPartition>,
    /// Total and usable bytes of its volume (v4+).
    pub total_bytes: Option<u64>,
    /// Usable bytes (v4+).
    pub usable_bytes: Option<u64>,
}

impl Admin {
    /// Elects leaders for `partitions` (`None`: every partition that needs
    /// it), on the controller. One result per partition;
    /// `ELECTION_NOT_NEEDED` means the leader already is the one wanted.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::{ElectionType, TopicPartition};
    /// admin.elect_leaders(ElectionType::Preferred, Some(&[TopicPartition::new("events", 0)])).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some leaders may have moved.
    #[tracing::instrument(name = "admin.elect_leaders", skip(self))]
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let request = ElectLeadersRequest {
            election_type: match election {
                ElectionType::Preferred => 0,
                ElectionType::Unclean => 1,
            },
            topic_partitions: partitions.map(|ps| {
                partitions_by_topic(ps)
                    .into_iter()
                    .map(|(topic, ps)| TopicPartitions {
                        topic,
                        partitions: ps,
                        ..Default::default()
                    })
                    .collect()
            }),
            timeout_ms: self.timeout_ms(),
            ..Default::default()
        };
        let response = self
            .write_controller(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    check(response.error_code, None)?;
                    Ok(response)
                }
            })
            .await?;
        let mut out = BTreeMap::new();
        for t in response.replica_election_results {
            for p in t.partition_result {
                let result = partition_result(
                    p.error_code,
                    p.error_message.as_deref(),
                    &t.topic,
                    p.partition_id,
                );
                out.insert(TopicPartition::new(t.topic.clone(), p.partition_id), result);
            }
        }
        Ok(out)
    }

    /// Starts moving partitions to new replicas (`Some`), or cancels an
    /// ongoing move (`None`), on the controller (KIP-455, Kafka 2.4+). One
    /// result per partition.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::TopicPartition;
    /// let moves = BTreeMap::from([(TopicPartition::new("events", 0), Some(vec![2, 3, 4]))]);
    /// admin.alter_partition_reassignments(&moves).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some moves may have started.
    #[tracing::instrument(name = "admin.alter_partition_reassignments", skip(self))]
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let items: Vec<(TopicPartition, Option<Vec<i32>>)> = reassignments
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let request = AlterPartitionReassignmentsRequest {
            timeout_ms: self.timeout_ms(),
            topics: by_topic(&items)
                .into_iter()
                .map(|(name, ps)| ReassignableTopic {
                    name,
                    partitions: ps
                        .into_iter()
                        .map(|(partition_index, replicas)| ReassignablePartition {
                            partition_index,
                            replicas,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let response = self
            .write_controller(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    check(response.error_code, response.error_message.as_deref())?;
                    Ok(response)
                }
            })
            .await?;
        let mut out = BTreeMap::new();
        for t in response.responses {
            for p in t.partitions {
                let result = partition_result(
                    p.error_code,
                    p.error_message.as_deref(),
                    &t.name,
                    p.partition_index,
                );
                out.insert(
                    TopicPartition::new(t.name.clone(), p.partition_index),
                    result,
                );
            }
        }
        Ok(out)
    }

    /// The reassignments in progress, for `partitions` (`None`: all), from
    /// the controller.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (tp, r) in admin.list_partition_reassignments(None).await? {
    ///     println!("{}/{}: adding {:?}", tp.topic, tp.partition, r.adding);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.list_partition_reassignments", skip(self))]
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Reassignment>> {
        let request = ListPartitionReassignmentsRequest {
            timeout_ms: self.timeout_ms(),
            topics: partitions.map(|ps| {
                partitions_by_topic(ps)
                    .into_iter()
                    .map(|(name, ps)| ListPartitionReassignmentsTopics {
                        name,
                        partition_indexes: ps,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let response = self
            .transport
            .retry(|| async {
                let conn = self.controller_conn().await?;
                let response = conn.request(request.clone()).await?;
                check(response.error_code, response.error_message.as_deref())?;
                Ok(response)
            })
            .await?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                let r = Reassignment {
                    replicas: p.replicas,
                    adding: p.adding_replicas,
                    removing: p.removing_replicas,
                };
                out.insert(TopicPartition::new(t.name.clone(), p.partition_index), r);
            }
        }
        Ok(out)
    }

    /// The log dirs of each broker in `brokers`, with the partitions of
    /// `topics` in them (`None`: every partition). One result per broker.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (broker, dirs) in admin.describe_log_dirs(&[1, 2], None).await? {
    ///     for dir in dirs? {
    ///         println!("{broker}: {} holds {} partitions", dir.path, dir.partitions.len());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_log_dirs", skip(self))]
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
        topics: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<i32, Result<Vec<LogDir>>>> {
        let request = DescribeLogDirsRequest {
            topics: topics.map(|ps| {
                partitions_by_topic(ps)
                    .into_iter()
                    .map(|(topic, ps)| DescribableLogDirTopic {
                        topic,
                        partitions: ps,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let mut out = BTreeMap::new();
        let request = &request;
        let answers = join_all(brokers.iter().map(|&broker| async move {
            let answer = self
                .read_broker(broker, |conn| {
                    let request = request.clone();
                    async move {
                        let response = conn.request(request).await?;
                        check(response.error_code, None)?;
                        Ok(response)
                    }
                })
                .await;
            (broker, answer)
        }))
        .await;
        for (broker, answer) in answers {
            let result = answer.map(log_dirs);
            out.insert(broker, result);
        }
        Ok(out)
    }
}

fn log_dirs(response: DescribeLogDirsResponse) -> Vec<LogDir> {
    response
        .results
        .into_iter()
        .map(|d| LogDir {
            error: check(d.error_code, None).err(),
            partitions: d
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        let part = LogDirPartition {
                            size: p.partition_size.max(0) as u64,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        };
                        (TopicPartition::new(t.name.clone(), p.partition_index), part)
                    })
                })
                .collect(),
            path: d.log_dir,
            total_bytes: (d.total_bytes >= 0).then_some(d.total_bytes as u64),
            usable_bytes: (d.usable_bytes >= 0).then_some(d.usable_bytes as u64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_conn::ErrorCode;
    use kafkit_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;

    #[test]
    fn offline_dirs_keep_their_error_and_unknown_sizes_are_none() {
        let response = DescribeLogDirsResponse {
            results: vec![DescribeLogDirsResult {
                error_code: ErrorCode::KAFKA_STORAGE_ERROR,
                log_dir: "/d".into(),
                total_bytes: -1,
                usable_bytes: -1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let dirs = log_dirs(response);
        assert_eq!(
            dirs[0].error.as_ref().and_then(|e| e.code()),
            Some(ErrorCode::KAFKA_STORAGE_ERROR)
        );
        assert_eq!((dirs[0].total_bytes, dirs[0].usable_bytes), (None, None));
        assert!(dirs[0].partitions.is_empty());
    }
}
