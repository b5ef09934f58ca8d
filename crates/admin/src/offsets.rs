//! Offsets and records by partition leader: ListOffsets (earliest,
//! latest, by timestamp, max timestamp) and DeleteRecords. Partitions are
//! grouped by leader, one request per leader; partitions whose leader
//! moved are retried on the new leader, the others keep their answer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use kafkit_conn::{Conn, Purpose};
use kafkit_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafkit_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};

use crate::error::{Result, partition_result};
use crate::route::by_topic;
use crate::{Admin, TopicPartition};

/// Which offset [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The end offset (high watermark, or last stable offset for
    /// read-committed).
    Latest,
    /// The offset of the record with the highest timestamp (KIP-734,
    /// ListOffsets v7+, Kafka 3.0+).
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this time.
    Timestamp(SystemTime),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }
}

/// Which records [`OffsetSpec::Latest`] counts (defined in kafkit-conn,
/// shared with the reader).
pub use kafkit_conn::IsolationLevel;

/// An offset [`Admin::list_offsets`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record matches a timestamp.
    pub offset: i64,
    /// The record's timestamp, for timestamp lookups.
    pub timestamp: Option<SystemTime>,
    /// The leader epoch of the record, if known.
    pub leader_epoch: Option<i32>,
}

/// How many times partitions whose leader moved are sent again.
const ROUNDS: usize = 4;

impl Admin {
    /// Looks up offsets on each partition's leader. One result per
    /// partition; a partition whose leader moved is asked again of the new
    /// leader.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::{IsolationLevel, OffsetSpec, TopicPartition};
    /// let specs = BTreeMap::from([(TopicPartition::new("events", 0), OffsetSpec::Latest)]);
    /// for (tp, offset) in admin.list_offsets(&specs, IsolationLevel::ReadUncommitted).await? {
    ///     println!("{}/{}: {}", tp.topic, tp.partition, offset?.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.list_offsets", skip(self))]
    pub async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
        isolation: IsolationLevel,
    ) -> Result<BTreeMap<TopicPartition, Result<ListedOffset>>> {
        let isolation_level = match isolation {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        };
        self.per_leader(
            specs,
            |conn, items: Vec<(TopicPartition, OffsetSpec)>| async move {
                let request = ListOffsetsRequest {
                    replica_id: -1,
                    isolation_level,
                    topics: by_topic(&items)
                        .into_iter()
                        .map(|(name, ps)| ListOffsetsTopic {
                            name,
                            partitions: ps
                                .into_iter()
                                .map(|(partition_index, spec)| ListOffsetsPartition {
                                    partition_index,
                                    timestamp: spec.wire(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let response = conn.request(request).await?;
                let mut out = Vec::new();
                for t in response.topics {
                    for p in t.partitions {
                        let result =
                            partition_result(p.error_code, None, &t.name, p.partition_index).map(
                                |()| ListedOffset {
                                    offset: p.offset,
                                    timestamp: (p.timestamp >= 0).then(|| {
                                        UNIX_EPOCH + Duration::from_millis(p.timestamp as u64)
                                    }),
                                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                                },
                            );
                        out.push((
                            TopicPartition::new(t.name.clone(), p.partition_index),
                            result,
                        ));
                    }
                }
                Ok(out)
            },
        )
        .await
    }

    /// Deletes the records before `offsets` (-1: the high watermark) on
    /// each partition's leader. One result per partition: its new log
    /// start offset (low watermark).
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::TopicPartition;
    /// let upto = BTreeMap::from([(TopicPartition::new("events", 0), 1000)]);
    /// admin.delete_records(&upto).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some partitions may have been
    /// truncated. Sending it again is harmless (deleting up to an offset
    /// is idempotent), which is why moved leaders are asked again.
    #[tracing::instrument(name = "admin.delete_records", skip(self))]
    pub async fn delete_records(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Result<i64>>> {
        let timeout_ms = self.timeout_ms();
        self.per_leader(
            offsets,
            |conn, items: Vec<(TopicPartition, i64)>| async move {
                let request = DeleteRecordsRequest {
                    topics: by_topic(&items)
                        .into_iter()
                        .map(|(name, ps)| DeleteRecordsTopic {
                            name,
                            partitions: ps
                                .into_iter()
                                .map(|(partition_index, offset)| DeleteRecordsPartition {
                                    partition_index,
                                    offset,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms,
                    ..Default::default()
                };
                let response = conn.request(request).await?;
                let mut out = Vec::new();
                for t in response.topics {
                    for p in t.partitions {
                        let result =
                            partition_result(p.error_code, None, &t.name, p.partition_index)
                                .map(|()| p.low_watermark);
                        out.push((
                            TopicPartition::new(t.name.clone(), p.partition_index),
                            result,
                        ));
                    }
                }
                Ok(out)
            },
        )
        .await
    }

    /// Sends `items` grouped by leader through `call`, in up to [`ROUNDS`]
    /// rounds: after each, partitions that failed with a retriable error
    /// (a moved leader...) are reported to the transport and sent again
    /// after a backoff; the rest keep their answer. A leader that cannot be
    /// reached fails its own partitions only. The whole call fails only if
    /// the metadata cannot be fetched.
    pub(crate) async fn per_leader<K, T, F, Fut>(
        &self,
        items: &BTreeMap<TopicPartition, K>,
        call: F,
    ) -> Result<BTreeMap<TopicPartition, Result<T>>>
    where
        K: Clone,
        F: Fn(Conn, Vec<(TopicPartition, K)>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(TopicPartition, Result<T>)>>>,
    {
        let mut out: BTreeMap<TopicPartition, Result<T>> = BTreeMap::new();
        let mut pending: Vec<TopicPartition> = items.keys().cloned().collect();
        let mut delay = Duration::from_millis(100);
        for round in 0..ROUNDS {
            let last = round + 1 == ROUNDS;
            let (leaders, missing) = self.by_leader(&pending).await?;
            let mut retry = Vec::new();
            for (tp, e) in missing {
                settle(&mut out, &mut retry, tp, Err(e), last, self);
            }
            // One request per leader, all in flight at once.
            let requests = leaders.into_iter().map(|(leader, partitions)| {
                let batch: Vec<(TopicPartition, K)> = partitions
                    .iter()
                    .map(|tp| (tp.clone(), items[tp].clone()))
                    .collect();
                let call = &call;
                async move {
                    let answer = match self.transport.broker(leader, Purpose::Admin).await {
                        Ok(conn) => {
                            let addr = conn.addr().to_owned();
                            call(conn, batch).await.map_err(|e| e.with_broker(&addr))
                        }
                        Err(e) => Err(e),
                    };
                    (partitions, answer)
                }
            });
            for (partitions, answer) in join_all(requests).await {
                match answer {
                    Ok(results) => {
                        let mut unanswered: Vec<TopicPartition> = partitions.clone();
                        for (tp, result) in results {
                            if !items.contains_key(&tp) {
                                continue;
                            }
                            unanswered.retain(|p| *p != tp);
                            settle(&mut out, &mut retry, tp, result, last, self);
                        }
                        for tp in unanswered {
                            let e = crate::error::invalid(
                                "the leader did not answer for this partition",
                            )
                            .with_topic(&tp.topic, Some(tp.partition));
                            out.insert(tp, Err(e));
                        }
                    }
                    Err(e) => {
                        for tp in partitions {
                            settle(&mut out, &mut retry, tp, Err(e.clone()), last, self);
                        }
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            tracing::debug!(
                partitions = retry.len(),
                round,
                "retrying partitions on their new leaders"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
            pending = retry;
        }
        Ok(out)
    }
}

/// Keeps `result` for `tp`, or queues `tp` for another round when it is a
/// retriable error and rounds are left.
fn settle<T>(
    out: &mut BTreeMap<TopicPartition, Result<T>>,
    retry: &mut Vec<TopicPartition>,
    tp: TopicPartition,
    result: Result<T>,
    last: bool,
    admin: &Admin,
) {
    match result {
        Err(e) if e.is_retriable() && !last => {
            admin.transport.on_error(&e);
            retry.push(tp);
        }
        other => {
            out.insert(tp, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn specs_have_their_wire_timestamps() {
        assert_eq!(OffsetSpec::Earliest.wire(), -2);
        assert_eq!(OffsetSpec::Latest.wire(), -1);
        assert_eq!(OffsetSpec::MaxTimestamp.wire(), -3);
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(OffsetSpec::Timestamp(t).wire(), 1_700_000_000_123);
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadUncommitted);
    }
}
