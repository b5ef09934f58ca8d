//! A group's committed offsets: OffsetFetch, OffsetCommit and
//! OffsetDelete, on the group's coordinator. The group's lag (committed
//! against end offsets) is in `offsets.rs`.

use std::collections::BTreeMap;

use kafkit_conn::{ApiKey, Conn, CoordinatorKey, ErrorCode, Purpose};
use kafkit_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkit_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafkit_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafkit_protocol::messages::{
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, OffsetFetchResponse,
};

use crate::error::{Result, check, partition_result};
use crate::route::{by_topic, partitions_by_topic};
use crate::{Admin, TopicPartition};

/// OffsetFetch and OffsetCommit v10 name topics by id only; kafkit sends
/// names, so it stays at v9 (Kafka 3.x and 4.0 speak it).
const MAX_BY_NAME: i16 = 9;

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the committed record, if known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// The metadata committed with it.
    pub metadata: Option<String>,
}

impl Admin {
    /// The offsets `group` committed, for `partitions` (`None`: every
    /// partition it committed for). Partitions without a commit are left
    /// out (Kafka answers -1 for them). A group-wide error fails the call;
    /// a partition's error is that partition's result.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (tp, offset) in admin.fetch_offsets("billing", None).await? {
    ///     println!("{}/{}: {:?}", tp.topic, tp.partition, offset.map(|o| o.offset));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.fetch_offsets", skip(self))]
    pub async fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Result<CommittedOffset>>> {
        let key = CoordinatorKey::Group(group.to_owned());
        let topics: Option<Vec<(String, Vec<i32>)>> =
            partitions.map(|ps| partitions_by_topic(ps).into_iter().collect());
        let topics = &topics;
        self.read_coordinator(&key, |conn| async move {
            offset_fetch(&conn, group, topics.as_deref()).await
        })
        .await
    }

    /// Commits `offsets` for `group` as an admin would (no member, no
    /// generation: the group must have no active members). One result per
    /// partition.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::TopicPartition;
    /// let offsets = BTreeMap::from([(TopicPartition::new("events", 0), 42)]);
    /// admin.commit_offsets("billing", &offsets).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some offsets may have been committed.
    #[tracing::instrument(name = "admin.commit_offsets", skip(self))]
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let key = CoordinatorKey::Group(group.to_owned());
        let items: Vec<(TopicPartition, i64)> =
            offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
        let topics: Vec<OffsetCommitRequestTopic> = by_topic(&items)
            .into_iter()
            .map(|(name, ps)| OffsetCommitRequestTopic {
                name,
                partitions: ps
                    .into_iter()
                    .map(
                        |(partition_index, committed_offset)| OffsetCommitRequestPartition {
                            partition_index,
                            committed_offset,
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
            .collect();
        let response = self
            .write(
                || self.transport.coordinator(&key, Purpose::Admin),
                |conn| {
                    let request = OffsetCommitRequest {
                        group_id: group.to_owned(),
                        generation_id_or_member_epoch: -1,
                        member_id: String::new(),
                        topics: topics.clone(),
                        ..Default::default()
                    };
                    async move {
                        let version = conn.version_for(ApiKey::OffsetCommit)?.min(MAX_BY_NAME);
                        let response = conn.request_at(version, request).await?;
                        // A coordinator that refused every partition refused the request.
                        let codes = response
                            .topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code));
                        if let Some(code) = codes
                            .clone()
                            .next()
                            .filter(|c| crate::route::refused(*c) && codes.clone().all(|x| x == *c))
                        {
                            check(code, None)?;
                        }
                        Ok(response)
                    }
                },
            )
            .await?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                out.insert(
                    TopicPartition::new(t.name.clone(), p.partition_index),
                    partition_result(p.error_code, None, &t.name, p.partition_index),
                );
            }
        }
        Ok(out)
    }

    /// Deletes `group`'s committed offsets for `partitions` (KIP-496,
    /// Kafka 2.4+); the group must not be subscribed to their topics. A
    /// group-wide error (`GROUP_ID_NOT_FOUND`...) fails the call.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::TopicPartition;
    /// admin.delete_offsets("billing", &[TopicPartition::new("old-topic", 0)]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some offsets may have been deleted.
    #[tracing::instrument(name = "admin.delete_offsets", skip(self))]
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let key = CoordinatorKey::Group(group.to_owned());
        let request = OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics: partitions_by_topic(partitions)
                .into_iter()
                .map(|(name, ps)| OffsetDeleteRequestTopic {
                    name,
                    partitions: ps
                        .into_iter()
                        .map(|partition_index| OffsetDeleteRequestPartition { partition_index })
                        .collect(),
                })
                .collect(),
        };
        let response = self
            .write(
                || self.transport.coordinator(&key, Purpose::Admin),
                |conn| {
                    let request = request.clone();
                    async move {
                        let response = conn.request(request).await?;
                        check(response.error_code, None)?;
                        Ok(response)
                    }
                },
            )
            .await?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                out.insert(
                    TopicPartition::new(t.name.clone(), p.partition_index),
                    partition_result(p.error_code, None, &t.name, p.partition_index),
                );
            }
        }
        Ok(out)
    }
}

/// OffsetFetch for one group: the v8+ batched form or the older one.
async fn offset_fetch(
    conn: &Conn,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<BTreeMap<TopicPartition, Result<CommittedOffset>>> {
    let version = conn.version_for(ApiKey::OffsetFetch)?.min(MAX_BY_NAME);
    let mut request = OffsetFetchRequest::default();
    if version >= 8 {
        request.groups = vec![OffsetFetchRequestGroup {
            group_id: group.to_owned(),
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|(name, ps)| OffsetFetchRequestTopics {
                        name: name.clone(),
                        partition_indexes: ps.clone(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }];
    } else {
        request.group_id = group.to_owned();
        request.topics = topics.map(|ts| {
            ts.iter()
                .map(|(name, ps)| OffsetFetchRequestTopic {
                    name: name.clone(),
                    partition_indexes: ps.clone(),
                    ..Default::default()
                })
                .collect()
        });
    }
    let response = conn.request_at(version, request).await?;
    committed_offsets(response, version, group)
}

/// The committed offsets in an OffsetFetch answer at `version`, from the
/// v8+ per-group list or the older top-level fields. Partitions without a
/// commit (offset -1 and no error) are left out.
fn committed_offsets(
    response: OffsetFetchResponse,
    version: i16,
    group: &str,
) -> Result<BTreeMap<TopicPartition, Result<CommittedOffset>>> {
    let mut out = BTreeMap::new();
    let mut add =
        |topic: &str, partition: i32, offset: i64, epoch: i32, metadata: Option<String>, code| {
            if code == ErrorCode::NONE && offset < 0 {
                return;
            }
            let result = partition_result(code, None, topic, partition).map(|()| CommittedOffset {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
                metadata,
            });
            out.insert(TopicPartition::new(topic, partition), result);
        };
    if version >= 8 {
        let g = response.groups.into_iter().find(|g| g.group_id == group);
        let g = g.ok_or_else(|| {
            crate::error::invalid(format!("the coordinator did not answer for group {group}"))
        })?;
        check(g.error_code, None)?;
        for t in g.topics {
            for p in t.partitions {
                add(
                    &t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata,
                    p.error_code,
                );
            }
        }
    } else {
        check(response.error_code, None)?;
        for t in response.topics {
            for p in t.partitions {
                add(
                    &t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata,
                    p.error_code,
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };

    #[test]
    fn batched_answers_give_offsets_epochs_and_partition_errors() {
        let partition =
            |partition_index, committed_offset, error_code| OffsetFetchResponsePartitions {
                partition_index,
                committed_offset,
                committed_leader_epoch: 2,
                metadata: Some("m".into()),
                error_code,
                ..Default::default()
            };
        let response = OffsetFetchResponse {
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "t".into(),
                    partitions: vec![
                        partition(0, 42, ErrorCode::NONE),
                        partition(1, -1, ErrorCode::NONE),
                        partition(2, -1, ErrorCode::UNSTABLE_OFFSET_COMMIT),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = committed_offsets(response, 9, "g").unwrap();
        let p0 = out[&TopicPartition::new("t", 0)].as_ref().unwrap();
        assert_eq!(
            (p0.offset, p0.leader_epoch, p0.metadata.as_deref()),
            (42, Some(2), Some("m"))
        );
        assert!(
            !out.contains_key(&TopicPartition::new("t", 1)),
            "no commit, no entry"
        );
        let p2 = out[&TopicPartition::new("t", 2)].as_ref().unwrap_err();
        assert_eq!(p2.code(), Some(ErrorCode::UNSTABLE_OFFSET_COMMIT));
        assert!(
            committed_offsets(OffsetFetchResponse::default(), 9, "g").is_err(),
            "no answer for the group"
        );
    }

    #[test]
    fn older_answers_fail_the_call_on_a_group_error() {
        let response = OffsetFetchResponse {
            error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = committed_offsets(response.clone(), 7, "g").unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED));
        let ok = OffsetFetchResponse {
            error_code: ErrorCode::NONE,
            ..response
        };
        assert_eq!(
            committed_offsets(ok, 7, "g").unwrap()[&TopicPartition::new("t", 0)]
                .as_ref()
                .unwrap()
                .offset,
            1
        );
    }
}
