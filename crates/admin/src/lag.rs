//! A consumer group's lag: its committed offsets (from the coordinator)
//! against the end offsets of the same partitions (from their leaders).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::{Admin, CommittedOffset, IsolationLevel, ListedOffset, OffsetSpec, TopicPartition};

/// One partition of a group's lag ([`Admin::group_lag`]).
#[derive(Debug, Clone)]
pub struct PartitionLag {
    /// The committed offset.
    pub committed: i64,
    /// The partition's end offset (high watermark), or why it is unknown.
    pub end: Result<i64>,
    /// `end - committed`, when the end offset is known.
    pub lag: Option<i64>,
}

impl Admin {
    /// `group`'s lag: for each partition it committed an offset for, the
    /// partition's end offset (high watermark, from its leader) minus the
    /// committed offset. A partition whose committed offset could not be
    /// read (`UNSTABLE_OFFSET_COMMIT`...) is that partition's `Err`.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// let lag = admin.group_lag("billing").await?;
    /// let total: i64 = lag.values().filter_map(|l| l.as_ref().ok()?.lag).sum();
    /// println!("{total} records behind");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.group_lag", skip(self))]
    pub async fn group_lag(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, Result<PartitionLag>>> {
        let committed = self.fetch_offsets(group, None).await?;
        let specs: BTreeMap<TopicPartition, OffsetSpec> = committed
            .iter()
            .filter(|(_, c)| c.is_ok())
            .map(|(tp, _)| (tp.clone(), OffsetSpec::Latest))
            .collect();
        let ends = self
            .list_offsets(&specs, IsolationLevel::ReadUncommitted)
            .await?;
        Ok(lag(committed, ends))
    }
}

/// Each partition's lag from its committed offset and its end offset.
fn lag(
    committed: BTreeMap<TopicPartition, Result<CommittedOffset>>,
    mut ends: BTreeMap<TopicPartition, Result<ListedOffset>>,
) -> BTreeMap<TopicPartition, Result<PartitionLag>> {
    committed
        .into_iter()
        .map(|(tp, c)| {
            let lag = c.map(|c| {
                let end = ends
                    .remove(&tp)
                    .unwrap_or_else(|| {
                        Err(crate::error::invalid("the leader gave no end offset")
                            .with_topic(&tp.topic, Some(tp.partition)))
                    })
                    .map(|o| o.offset);
                // A committed offset past the end (the broker's high
                // watermark lags a moment after a commit): no lag.
                let lag = end.as_ref().ok().map(|e| (e - c.offset).max(0));
                PartitionLag {
                    committed: c.offset,
                    end,
                    lag,
                }
            });
            (tp, lag)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_conn::ErrorCode;

    #[test]
    fn lag_is_end_minus_committed_and_errors_stay_per_partition() {
        let tp = |p| TopicPartition::new("t", p);
        let committed = |offset| {
            Ok(CommittedOffset {
                offset,
                ..Default::default()
            })
        };
        let end = |offset| {
            Ok(ListedOffset {
                offset,
                timestamp: None,
                leader_epoch: None,
            })
        };
        let unstable = crate::error::broker_error(ErrorCode::UNSTABLE_OFFSET_COMMIT, None);
        let moved = crate::error::broker_error(ErrorCode::NOT_LEADER_OR_FOLLOWER, None);
        let out = lag(
            BTreeMap::from([
                (tp(0), committed(4)),
                (tp(1), committed(9)),
                (tp(2), Err(unstable)),
                (tp(3), committed(1)),
            ]),
            BTreeMap::from([(tp(0), end(10)), (tp(1), end(7)), (tp(3), Err(moved))]),
        );
        let p0 = out[&tp(0)].as_ref().unwrap();
        assert_eq!((p0.committed, p0.lag), (4, Some(6)));
        assert_eq!(out[&tp(1)].as_ref().unwrap().lag, Some(0), "never below 0");
        assert_eq!(
            out[&tp(2)].as_ref().unwrap_err().code(),
            Some(ErrorCode::UNSTABLE_OFFSET_COMMIT)
        );
        let p3 = out[&tp(3)].as_ref().unwrap();
        assert_eq!(
            (p3.lag, p3.end.as_ref().unwrap_err().code()),
            (None, Some(ErrorCode::NOT_LEADER_OR_FOLLOWER))
        );
    }
}
