//! The offset calls of a [`PartitionConn`], with kafka-go's names:
//! [`read_first_offset`](PartitionConn::read_first_offset),
//! [`read_last_offset`](PartitionConn::read_last_offset),
//! [`read_offsets`](PartitionConn::read_offsets) and
//! [`read_offset`](PartitionConn::read_offset), all one ListOffsets request
//! (KIP-79 special timestamps for first and last).

use std::time::SystemTime;

use kafkit_protocol::ApiKey;
use kafkit_protocol::messages::ListOffsetsRequest;
use kafkit_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};

use crate::ops_partition::{missing, to_millis};
use crate::{Error, PartitionConn};

/// ListOffsets' special timestamp for the log start offset.
const EARLIEST: i64 = -2;
/// ListOffsets' special timestamp for the offset of the next message.
const LATEST: i64 = -1;

impl PartitionConn {
    /// The partition's first offset (log start).
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn read_first_offset(&self) -> Result<i64, Error> {
        self.list_offset(EARLIEST).await
    }

    /// The partition's last offset: the offset the next message will get
    /// (the high watermark).
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn read_last_offset(&self) -> Result<i64, Error> {
        self.list_offset(LATEST).await
    }

    /// The first and last offsets (see
    /// [`read_first_offset`](PartitionConn::read_first_offset) and
    /// [`read_last_offset`](PartitionConn::read_last_offset)).
    ///
    /// Cancel safety: safe (read-only requests).
    pub async fn read_offsets(&self) -> Result<(i64, i64), Error> {
        Ok((
            self.read_first_offset().await?,
            self.read_last_offset().await?,
        ))
    }

    /// The first offset whose record timestamp is at or after `time`, or
    /// the last offset if there is none.
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn read_offset(&self, time: SystemTime) -> Result<i64, Error> {
        self.list_offset(to_millis(time)).await
    }

    /// ListOffsets for this partition: `-2` earliest, `-1` latest, else a
    /// timestamp in milliseconds (KIP-79).
    async fn list_offset(&self, timestamp: i64) -> Result<i64, Error> {
        let context = |e: Error| e.with_topic(&self.topic, Some(self.partition));
        let request = request(&self.topic, self.partition, timestamp);
        let response = self.conn.request(request).await.map_err(context)?;
        let answer = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == self.partition)
            .ok_or_else(|| context(Error::from(missing("list offsets"))))?;
        Error::check(answer.error_code, None).map_err(|e| {
            context(
                e.with_api(ApiKey::ListOffsets)
                    .with_broker(self.conn.addr()),
            )
        })?;
        Ok(answer.offset)
    }
}

/// The ListOffsets request for one partition at `timestamp`.
fn request(topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest {
        // -1 marks a consumer; the generated default (0) would claim to be
        // the follower with broker id 0.
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_owned(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
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

    #[test]
    fn requests_encode_at_every_version_the_client_negotiates() {
        for timestamp in [EARLIEST, LATEST, 1_700_000_000_000] {
            let r = request("t", 3, timestamp);
            assert_eq!(r.topics[0].partitions[0].timestamp, timestamp);
            assert_eq!(r.replica_id, -1, "a consumer, not a follower");
            let stable = ListOffsetsRequest::API_KEY.stable_versions();
            for version in stable.min..=stable.max {
                r.encode(&mut BytesMut::new(), version).unwrap();
            }
        }
    }
}
