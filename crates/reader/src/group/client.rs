//! The group coordinator's requests, one function each: JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch, all on
//! the coordinator's `Purpose::Group` connection, so that a long fetch poll
//! never delays a heartbeat. Broker error codes come back as errors whose
//! `code()` the membership state machine matches on; coordinator errors
//! make the transport forget the coordinator before the caller retries.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::hooks::CommitEvent;
use kafkit_conn::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity, offset_commit_request, offset_fetch_request,
    sync_group_request::SyncGroupRequestAssignment,
};
use kafkit_conn::{ApiKey, Conn, CoordinatorKey, ErrorCode, Purpose, Transport};
use tracing::Instrument;

use crate::TopicPartition;

/// A partition's committed position: the next offset to read, and the
/// leader epoch of the record before it if the commit recorded one
/// (OffsetFetch v5+, KIP-320).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: Option<i32>,
}

/// Who we are in the group right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    pub member_id: String,
    pub generation_id: i32,
    pub instance_id: Option<String>,
}

impl Generation {
    pub(crate) fn new(instance_id: Option<String>) -> Generation {
        Generation {
            member_id: String::new(),
            generation_id: -1,
            instance_id,
        }
    }
}

/// The group's coordinator requests.
#[derive(Debug, Clone)]
pub(crate) struct GroupClient {
    transport: Transport,
    group_id: String,
    key: CoordinatorKey,
    /// OffsetFetch asks for stable offsets only (KIP-447): set for
    /// read_committed readers, so a partition's new owner waits out a
    /// transaction still committing offsets instead of reading from
    /// before it.
    require_stable: bool,
}

type ConnResult<T> = Result<T, kafkit_conn::Error>;

/// OffsetCommit v10 and OffsetFetch v10 name topics by id; the names are
/// what we have, so stay at v9.
const MAX_OFFSET_VERSION: i16 = 9;

impl GroupClient {
    pub(crate) fn new(transport: Transport, group_id: String) -> GroupClient {
        let key = CoordinatorKey::Group(group_id.clone());
        GroupClient {
            transport,
            group_id,
            key,
            require_stable: false,
        }
    }

    /// Makes OffsetFetch wait for pending transactional offsets (answered
    /// with the retriable `UNSTABLE_OFFSET_COMMIT` while any are pending;
    /// brokers before OffsetFetch v7 ignore it).
    pub(crate) fn require_stable(mut self, require: bool) -> GroupClient {
        self.require_stable = require;
        self
    }

    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    async fn conn(&self) -> ConnResult<Conn> {
        self.transport.coordinator(&self.key, Purpose::Group).await
    }

    /// Turns a response's error code into an error, telling the transport
    /// (a `NOT_COORDINATOR` makes it look the coordinator up again).
    fn check(&self, code: ErrorCode, message: Option<&str>) -> ConnResult<()> {
        kafkit_conn::Error::check(code, message).inspect_err(|e| self.transport.on_error(e))
    }

    fn failed(&self, e: kafkit_conn::Error) -> kafkit_conn::Error {
        self.transport.on_error(&e);
        e
    }

    /// JoinGroup; the broker holds it up to `rebalance_timeout`. The
    /// response's error code is left for the caller (it carries the member
    /// id with `MEMBER_ID_REQUIRED`).
    pub(crate) async fn join(
        &self,
        generation: &Generation,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        protocols: Vec<(String, Bytes)>,
    ) -> ConnResult<JoinGroupResponse> {
        let request = JoinGroupRequest {
            group_id: self.group_id.clone(),
            session_timeout_ms: millis(session_timeout),
            rebalance_timeout_ms: millis(rebalance_timeout),
            member_id: generation.member_id.clone(),
            group_instance_id: generation.instance_id.clone(),
            protocol_type: "consumer".into(),
            protocols: protocols
                .into_iter()
                .map(|(name, metadata)| JoinGroupRequestProtocol {
                    name,
                    metadata,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let span = tracing::debug_span!("kafka_join_group", group = %self.group_id);
        async {
            let conn = self.conn().await?;
            let response = conn
                .request_with_extra_timeout(request, rebalance_timeout)
                .await
                .map_err(|e| self.failed(e))?;
            if matches!(
                response.error_code,
                ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
            ) {
                self.check(response.error_code, None)?;
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }

    /// SyncGroup: the leader sends every member's assignment, the others
    /// none; everyone gets its own back.
    pub(crate) async fn sync(
        &self,
        generation: &Generation,
        protocol: Option<String>,
        assignments: Vec<(String, Bytes)>,
    ) -> ConnResult<Bytes> {
        let request = SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation_id: generation.generation_id,
            member_id: generation.member_id.clone(),
            group_instance_id: generation.instance_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: protocol,
            assignments: assignments
                .into_iter()
                .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                    member_id,
                    assignment,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let conn = self.conn().await?;
        let response = conn.request(request).await.map_err(|e| self.failed(e))?;
        self.check(response.error_code, None)?;
        Ok(response.assignment)
    }

    /// Heartbeat: `REBALANCE_IN_PROGRESS` says to rejoin;
    /// `UNKNOWN_MEMBER_ID`, `ILLEGAL_GENERATION` and `FENCED_INSTANCE_ID`
    /// that we are out of the group.
    pub(crate) async fn heartbeat(&self, generation: &Generation) -> ConnResult<()> {
        let request = HeartbeatRequest {
            group_id: self.group_id.clone(),
            generation_id: generation.generation_id,
            member_id: generation.member_id.clone(),
            group_instance_id: generation.instance_id.clone(),
            ..Default::default()
        };
        let conn = self.conn().await?;
        let response = conn.request(request).await.map_err(|e| self.failed(e))?;
        self.check(response.error_code, None)
    }

    /// LeaveGroup for this member (v3+ batches members, KIP-345).
    pub(crate) async fn leave(&self, generation: &Generation) -> ConnResult<()> {
        let conn = self.conn().await?;
        let mut request = LeaveGroupRequest {
            group_id: self.group_id.clone(),
            ..Default::default()
        };
        if conn.version_for(ApiKey::LeaveGroup)? >= 3 {
            request.members = vec![MemberIdentity {
                member_id: generation.member_id.clone(),
                group_instance_id: generation.instance_id.clone(),
                reason: Some("the reader is closing".into()),
                ..Default::default()
            }];
        } else {
            request.member_id = generation.member_id.clone();
        }
        let response = conn.request(request).await.map_err(|e| self.failed(e))?;
        self.check(response.error_code, None)?;
        for member in &response.members {
            self.check(member.error_code, None)?;
        }
        Ok(())
    }

    /// OffsetCommit of `offsets` (the next offset to read, per partition,
    /// with the leader epoch of the record before it where known) under
    /// `generation`. Fails with the first partition error.
    pub(crate) async fn commit(
        &self,
        generation: &Generation,
        offsets: &[(TopicPartition, i64, Option<i32>)],
    ) -> ConnResult<()> {
        let start = tokio::time::Instant::now();
        let result = self.commit_once(generation, offsets).await;
        if let Some(hook) = self.transport.hooks().get() {
            let named: Vec<(&str, i32, i64)> = offsets
                .iter()
                .map(|(tp, offset, _)| (&*tp.topic, tp.partition, *offset))
                .collect();
            hook.on_commit(&CommitEvent {
                group: &self.group_id,
                offsets: &named,
                duration: start.elapsed(),
                error: result.as_ref().err(),
            });
        }
        result
    }

    async fn commit_once(
        &self,
        generation: &Generation,
        offsets: &[(TopicPartition, i64, Option<i32>)],
    ) -> ConnResult<()> {
        let conn = self.conn().await?;
        let version = conn
            .version_for(ApiKey::OffsetCommit)?
            .min(MAX_OFFSET_VERSION);
        let request = offset_commit_request(&self.group_id, generation, version, offsets);
        let response = conn
            .request_at(version, request)
            .await
            .map_err(|e| self.failed(e))?;
        for topic in &response.topics {
            for p in &topic.partitions {
                self.check(p.error_code, None)
                    .map_err(|e| e.with_topic(&topic.name, Some(p.partition_index)))?;
            }
        }
        Ok(())
    }

    /// OffsetFetch: the committed position of each partition, `None` where
    /// the group has none.
    pub(crate) async fn fetch_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> ConnResult<BTreeMap<TopicPartition, Option<Committed>>> {
        let conn = self.conn().await?;
        let version = conn
            .version_for(ApiKey::OffsetFetch)?
            .min(MAX_OFFSET_VERSION);
        let request =
            offset_fetch_request(&self.group_id, self.require_stable, version, partitions);
        let response = conn
            .request_at(version, request)
            .await
            .map_err(|e| self.failed(e))?;
        let mut out = BTreeMap::new();
        let mut put = |topic: &str, partition: i32, offset: i64, epoch: i32, code: ErrorCode| {
            self.check(code, None)
                .map_err(|e| e.with_topic(topic, Some(partition)))?;
            let committed = (offset >= 0).then_some(Committed {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
            });
            out.insert(TopicPartition::new(topic, partition), committed);
            Ok::<(), kafkit_conn::Error>(())
        };
        if version >= 8 {
            for group in &response.groups {
                self.check(group.error_code, None)?;
                for t in &group.topics {
                    for p in &t.partitions {
                        let (offset, epoch) = (p.committed_offset, p.committed_leader_epoch);
                        put(&t.name, p.partition_index, offset, epoch, p.error_code)?;
                    }
                }
            }
        } else {
            self.check(response.error_code, None)?;
            for t in &response.topics {
                for p in &t.partitions {
                    let (offset, epoch) = (p.committed_offset, p.committed_leader_epoch);
                    put(&t.name, p.partition_index, offset, epoch, p.error_code)?;
                }
            }
        }
        Ok(out)
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The OffsetCommit of `offsets` (partition, next offset, leader epoch of
/// the record before it) under `generation`, at `version`.
fn offset_commit_request(
    group_id: &str,
    generation: &Generation,
    version: i16,
    offsets: &[(TopicPartition, i64, Option<i32>)],
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<offset_commit_request::OffsetCommitRequestPartition>> =
        BTreeMap::new();
    for (tp, offset, epoch) in offsets {
        topics.entry(&tp.topic).or_default().push(
            offset_commit_request::OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: *offset,
                // v6+ (KIP-320): lets the next owner validate the
                // position; older versions do without.
                committed_leader_epoch: epoch.unwrap_or(-1),
                committed_metadata: Some(String::new()),
                ..Default::default()
            },
        );
    }
    OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id_or_member_epoch: generation.generation_id,
        member_id: generation.member_id.clone(),
        group_instance_id: if version >= 7 {
            generation.instance_id.clone()
        } else {
            None
        },
        topics: topics
            .into_iter()
            .map(
                |(name, partitions)| offset_commit_request::OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}

/// The OffsetFetch for `partitions` at `version`: one group (v8+) or
/// the group's own fields (before v8).
fn offset_fetch_request(
    group_id: &str,
    require_stable: bool,
    version: i16,
    partitions: &[TopicPartition],
) -> OffsetFetchRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let mut request = OffsetFetchRequest {
        require_stable: require_stable && version >= 7,
        ..Default::default()
    };
    if version >= 8 {
        request.groups = vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: group_id.to_owned(),
            topics: Some(
                by_topic
                    .iter()
                    .map(|(t, ps)| offset_fetch_request::OffsetFetchRequestTopics {
                        name: (*t).to_owned(),
                        partition_indexes: ps.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }];
    } else {
        request.group_id = group_id.to_owned();
        request.topics = Some(
            by_topic
                .iter()
                .map(|(t, ps)| offset_fetch_request::OffsetFetchRequestTopic {
                    name: (*t).to_owned(),
                    partition_indexes: ps.clone(),
                    ..Default::default()
                })
                .collect(),
        );
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions() -> Vec<TopicPartition> {
        vec![TopicPartition::new("a", 0), TopicPartition::new("a", 1)]
    }

    #[test]
    fn read_committed_readers_ask_for_stable_offsets_where_the_broker_knows_how() {
        let v9 = offset_fetch_request("g", true, 9, &partitions());
        assert!(v9.require_stable);
        assert_eq!(v9.groups[0].group_id, "g");
        let topics = v9.groups[0].topics.as_ref().expect("topics");
        assert_eq!(topics[0].partition_indexes, vec![0, 1]);
        assert!(offset_fetch_request("g", true, 7, &partitions()).require_stable);
        assert!(!offset_fetch_request("g", true, 6, &partitions()).require_stable);
        assert!(!offset_fetch_request("g", false, 9, &partitions()).require_stable);
        let v6 = offset_fetch_request("g", false, 6, &partitions());
        assert_eq!(v6.group_id, "g");
        assert_eq!(v6.topics.expect("topics")[0].name, "a");
    }

    #[test]
    fn commits_carry_each_records_leader_epoch() {
        let generation = Generation {
            member_id: "m".into(),
            generation_id: 4,
            instance_id: Some("i".into()),
        };
        let offsets = [
            (TopicPartition::new("a", 0), 10, Some(3)),
            (TopicPartition::new("a", 1), 20, None),
        ];
        let r = offset_commit_request("g", &generation, 8, &offsets);
        let p = &r.topics[0].partitions;
        let sent: Vec<(i32, i64, i32)> = p
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                )
            })
            .collect();
        assert_eq!(sent, [(0, 10, 3), (1, 20, -1)]);
        assert_eq!(
            (r.generation_id_or_member_epoch, r.member_id.as_str()),
            (4, "m")
        );
        assert_eq!(r.group_instance_id.as_deref(), Some("i"));
        assert_eq!(
            offset_commit_request("g", &generation, 6, &offsets).group_instance_id,
            None
        );
    }
}
