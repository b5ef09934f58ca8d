//! Where reading starts: [`TopicPartition`], [`StartOffset`] (an offset,
//! the earliest or latest one, or a timestamp), the [`OffsetReset`] policy
//! for positions the broker no longer (or does not yet) hold, the
//! [`IsolationLevel`], and the ListOffsets lookups that resolve a
//! [`StartOffset`] into an offset (KIP-79 special timestamps).

use std::time::{SystemTime, UNIX_EPOCH};

use kafkit_conn::messages::ListOffsetsRequest;
use kafkit_conn::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_conn::{ApiKey, Purpose, Transport};
pub use kafkit_conn::{IsolationLevel, TopicPartition};

use tracing::Instrument;

use crate::Error;

/// ListOffsets' special timestamp for the log start offset.
const EARLIEST: i64 = -2;
/// ListOffsets' special timestamp for the end of the log (the high
/// watermark, or the last stable offset under read_committed).
const LATEST: i64 = -1;

/// Where to start (or continue) reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// This exact offset. One the broker does not hold is handled by the
    /// [`OffsetReset`] policy.
    Offset(i64),
    /// The first offset the broker holds (the log start offset; kafka-go's
    /// `FirstOffset`).
    Earliest,
    /// The end of the log: only records produced from now on (kafka-go's
    /// `LastOffset`). Under [`IsolationLevel::ReadCommitted`] the last
    /// stable offset.
    Latest,
    /// The first offset whose record timestamp is at or after this time,
    /// or the end of the log if there is none.
    Timestamp(SystemTime),
}

impl StartOffset {
    /// The ListOffsets timestamp for this start, `None` for an exact offset.
    fn list_offsets_timestamp(self) -> Option<i64> {
        match self {
            StartOffset::Offset(_) => None,
            StartOffset::Earliest => Some(EARLIEST),
            StartOffset::Latest => Some(LATEST),
            StartOffset::Timestamp(t) => Some(
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ),
        }
    }
}

/// What to do when a partition's position is out of the range of offsets
/// the broker holds (`OFFSET_OUT_OF_RANGE`: retention deleted the records,
/// or the offset is past the end of the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Continue from the earliest offset. The default: it loses the fewest
    /// records when retention overtook a slow consumer.
    #[default]
    Earliest,
    /// Continue from the end of the log.
    Latest,
    /// Hand the caller an [`ErrorKind::OffsetOutOfRange`](crate::ErrorKind::OffsetOutOfRange)
    /// error and stop fetching the partition until it is sought.
    Error,
}

impl OffsetReset {
    /// The start the policy resets to, `None` for [`OffsetReset::Error`].
    pub fn start(self) -> Option<StartOffset> {
        match self {
            OffsetReset::Earliest => Some(StartOffset::Earliest),
            OffsetReset::Latest => Some(StartOffset::Latest),
            OffsetReset::Error => None,
        }
    }
}

/// Resolves `start` for `tp` into an offset: exact offsets as they are,
/// the others with ListOffsets on the partition's leader (retried through
/// [`Transport::on_leader`] while the error is retriable).
///
/// Cancel safety: safe (a read-only request).
pub(crate) async fn resolve(
    transport: &Transport,
    tp: &TopicPartition,
    start: StartOffset,
    isolation: IsolationLevel,
) -> Result<i64, Error> {
    let Some(timestamp) = start.list_offsets_timestamp() else {
        let StartOffset::Offset(offset) = start else {
            unreachable!("only exact offsets have no ListOffsets timestamp")
        };
        return Ok(offset);
    };
    let offset = list_offset(transport, tp, timestamp, isolation).await?;
    if offset >= 0 {
        return Ok(offset);
    }
    // No record at or after the timestamp: the end of the log.
    list_offset(transport, tp, LATEST, isolation).await
}

async fn list_offset(
    transport: &Transport,
    tp: &TopicPartition,
    timestamp: i64,
    isolation: IsolationLevel,
) -> Result<i64, Error> {
    let request = request(tp, timestamp, isolation);
    let span = tracing::debug_span!("list_offsets", %tp, timestamp);
    let offset = transport
        .on_leader(&tp.topic, tp.partition, Purpose::Admin, |conn| {
            let request = request.clone();
            async move {
                let addr = conn.addr().to_owned();
                let response = conn.request(request).await?;
                let answer = response
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == tp.partition)
                    .ok_or_else(|| {
                        kafkit_conn::Error::new(kafkit_conn::ErrorKind::Config(
                            "ListOffsets answer lacks the partition".into(),
                        ))
                        .with_broker(&addr)
                    })?;
                kafkit_conn::Error::check(answer.error_code, None)
                    .map_err(|e| e.with_api(ApiKey::ListOffsets).with_broker(&addr))?;
                Ok(answer.offset)
            }
        })
        .instrument(span)
        .await
        .map_err(|e| Error::from(e).with_partition(tp.topic.clone(), tp.partition))?;
    tracing::debug!(%tp, timestamp, offset, "offset resolved");
    Ok(offset)
}

/// The ListOffsets request for one partition at `timestamp`.
fn request(tp: &TopicPartition, timestamp: i64, isolation: IsolationLevel) -> ListOffsetsRequest {
    ListOffsetsRequest {
        // -1 marks a consumer; the generated default (0) would claim to be
        // the follower with broker id 0.
        replica_id: -1,
        isolation_level: isolation.as_i8(),
        topics: vec![ListOffsetsTopic {
            name: tp.topic.to_string(),
            partitions: vec![ListOffsetsPartition {
                partition_index: tp.partition,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafkit_protocol::{Message, Request};
    use std::time::Duration;

    #[test]
    fn starts_map_to_list_offsets_timestamps() {
        assert_eq!(StartOffset::Offset(42).list_offsets_timestamp(), None);
        assert_eq!(StartOffset::Earliest.list_offsets_timestamp(), Some(-2));
        assert_eq!(StartOffset::Latest.list_offsets_timestamp(), Some(-1));
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            StartOffset::Timestamp(t).list_offsets_timestamp(),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            StartOffset::Timestamp(UNIX_EPOCH - Duration::from_secs(1)).list_offsets_timestamp(),
            Some(0)
        );
    }

    #[test]
    fn reset_policies_name_their_start() {
        assert_eq!(OffsetReset::default().start(), Some(StartOffset::Earliest));
        assert_eq!(OffsetReset::Latest.start(), Some(StartOffset::Latest));
        assert_eq!(OffsetReset::Error.start(), None);
    }

    #[test]
    fn requests_encode_at_every_version_and_carry_the_isolation_level() {
        let tp = TopicPartition::new("t", 3);
        assert_eq!(tp.to_string(), "t/3");
        let r = request(&tp, LATEST, IsolationLevel::ReadCommitted);
        assert_eq!(r.isolation_level, 1);
        assert_eq!(r.replica_id, -1);
        let stable = ListOffsetsRequest::API_KEY.stable_versions();
        // isolation_level exists from v2; older versions cannot carry it.
        for version in stable.min.max(2)..=stable.max {
            r.encode(&mut BytesMut::new(), version).unwrap();
        }
    }
}
