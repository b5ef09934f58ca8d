//! [`PartitionConn`]: a [`Conn`] bound to one topic partition, with
//! kafka-go's produce and offset calls: [`dial_leader`],
//! [`write_messages`](PartitionConn::write_messages),
//! [`seek`](PartitionConn::seek). Offsets are in `ops_offsets.rs`, fetching
//! in `ops_fetch.rs`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_protocol::{ApiKey, ErrorCode, Uuid};

use crate::{Conn, ConnConfig, Error};

/// How many replicas must have a produced batch before the broker answers
/// (the `acks` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequiredAcks {
    /// `acks=0`: the broker sends no answer at all; the write resolves once
    /// the request is on the wire and no offset is known.
    None,
    /// `acks=1`: the leader has written it.
    One,
    /// `acks=all` (-1): every in-sync replica has it. The default, as in
    /// Kafka 3.0+ producers: the only setting that does not lose
    /// acknowledged data when a leader fails.
    #[default]
    All,
}

impl RequiredAcks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            RequiredAcks::None => 0,
            RequiredAcks::One => 1,
            RequiredAcks::All => -1,
        }
    }
}

/// A message to produce with [`PartitionConn::write_messages`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order; keys may repeat.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The record timestamp; `None` means the time of the write.
    pub time: Option<SystemTime>,
}

impl Message {
    /// A message with `value` and nothing else.
    pub fn new(value: impl Into<Bytes>) -> Message {
        Message {
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Message {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Message {
        self.headers.push((key.into(), Some(value.into())));
        self
    }
}

/// A connection bound to one partition, like kafka-go's `Conn` from
/// `DialLeader`. It keeps a read offset, starting at the partition's first
/// offset. It derefs to the underlying [`Conn`].
pub struct PartitionConn {
    pub(crate) conn: Conn,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) topic_id: Uuid,
    /// `None` until the first read or seek: then the first offset.
    pub(crate) offset: Option<i64>,
    pub(crate) acks: RequiredAcks,
    pub(crate) compression: Compression,
    pub(crate) max_wait: Duration,
}

/// Connects to the leader of `topic`/`partition`: a Metadata request to
/// `addr`, then a dial to the leader (reusing the connection when `addr`
/// is the leader).
///
/// Cancel safety: dropping the future closes any half-open connection.
pub async fn dial_leader(
    addr: impl fmt::Display,
    topic: &str,
    partition: i32,
) -> Result<PartitionConn, Error> {
    dial_leader_with(addr, topic, partition, ConnConfig::default()).await
}

/// [`dial_leader`] with a [`ConnConfig`].
///
/// Cancel safety: as [`dial_leader`].
pub async fn dial_leader_with(
    addr: impl fmt::Display,
    topic: &str,
    partition: i32,
    config: ConnConfig,
) -> Result<PartitionConn, Error> {
    let bootstrap = Conn::dial_with(addr, config.clone()).await?;
    let (topic_id, leader) = bootstrap.partition_leader(topic, partition).await?;
    let conn = if leader == bootstrap.addr() {
        bootstrap
    } else {
        Conn::dial_with(leader, config).await?
    };
    Ok(PartitionConn::bind(conn, topic, partition, topic_id))
}

impl Conn {
    /// Binds this connection to `topic`/`partition` (which this broker
    /// should lead), after checking the partition exists.
    ///
    /// Cancel safety: safe (a read-only request).
    pub async fn partition_conn(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionConn, Error> {
        let (topic_id, _leader) = self.partition_leader(topic, partition).await?;
        Ok(PartitionConn::bind(
            self.clone(),
            topic,
            partition,
            topic_id,
        ))
    }

    /// The topic id and the leader's `host:port` of a partition.
    async fn partition_leader(&self, topic: &str, partition: i32) -> Result<(Uuid, String), Error> {
        let metadata = self.metadata(Some(&[topic])).await?;
        let unknown = |code: ErrorCode| {
            Error::check(code, None)
                .unwrap_err()
                .with_topic(topic, Some(partition))
                .with_api(ApiKey::Metadata)
                .with_broker(self.addr())
        };
        let t = metadata
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .ok_or_else(|| unknown(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))?;
        if t.error_code.is_err() {
            return Err(unknown(t.error_code));
        }
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| unknown(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))?;
        let leader = metadata
            .brokers
            .iter()
            .find(|b| b.node_id == p.leader_id)
            .ok_or_else(|| unknown(ErrorCode::LEADER_NOT_AVAILABLE))?;
        Ok((t.topic_id, format!("{}:{}", leader.host, leader.port)))
    }
}

impl PartitionConn {
    pub(crate) fn bind(conn: Conn, topic: &str, partition: i32, topic_id: Uuid) -> PartitionConn {
        PartitionConn {
            conn,
            topic: topic.to_owned(),
            partition,
            topic_id,
            offset: None,
            acks: RequiredAcks::default(),
            compression: Compression::None,
            // Java's fetch.max.wait.ms: long enough to batch, short enough
            // that an idle partition answers twice a second.
            max_wait: Duration::from_millis(500),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The connection underneath.
    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    /// The next offset [`read_batch`](PartitionConn::read_batch) reads, or
    /// `None` before the first read or seek (reading then starts at the
    /// partition's first offset).
    pub fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// Sets the next offset to read.
    pub fn seek(&mut self, offset: i64) {
        self.offset = Some(offset);
    }

    /// Sets `acks` for [`write_messages`](PartitionConn::write_messages).
    pub fn set_required_acks(&mut self, acks: RequiredAcks) {
        self.acks = acks;
    }

    /// Sets the codec [`write_messages`](PartitionConn::write_messages)
    /// compresses batches with (default none).
    pub fn set_compression(&mut self, codec: Compression) {
        self.compression = codec;
    }

    /// Sets how long the broker may hold a fetch waiting for `min_bytes`
    /// (default 500 ms, Java's `fetch.max.wait.ms`).
    pub fn set_max_wait(&mut self, max_wait: Duration) {
        self.max_wait = max_wait;
    }

    /// Produces `messages` as one record batch and returns the offset of
    /// the first, or `None` with [`RequiredAcks::None`]. A broker error is
    /// typed ([`Error::code`]) and names the topic and partition.
    ///
    /// Cancel safety: not idempotent. Once the request is handed to the
    /// driver it is written in full even if the future is dropped, so the
    /// messages may or may not be stored.
    pub async fn write_messages(&self, messages: &[Message]) -> Result<Option<i64>, Error> {
        let context = |e: Error| e.with_topic(&self.topic, Some(self.partition));
        if messages.is_empty() {
            return Err(context(Error::config(
                "write_messages needs at least one message",
            )));
        }
        let now = SystemTime::now();
        let mut builder = RecordBatchBuilder::new(0).with_compression(self.compression, None);
        for m in messages {
            let headers: Vec<(&str, Option<&[u8]>)> = m
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            builder
                .append(
                    to_millis(m.time.unwrap_or(now)),
                    m.key.as_deref(),
                    m.value.as_deref(),
                    &headers,
                )
                .map_err(|e| context(e.into()))?;
        }
        let records = builder.finish().map_err(|e| context(e.into()))?;
        let timeout = self
            .conn
            .config()
            .request_timeout
            .unwrap_or(Duration::from_secs(30));
        let version = self.conn.version_for(ApiKey::Produce)?;
        let request = ProduceRequest {
            acks: self.acks.as_i16(),
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            topic_data: vec![TopicProduceData {
                name: self.topic.clone(),
                // Produce v13 names topics by id only (KIP-516).
                topic_id: if version >= 13 {
                    self.topic_id
                } else {
                    Uuid::default()
                },
                partition_data: vec![PartitionProduceData {
                    index: self.partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self
            .conn
            .send(version, &request, timeout)
            .await
            .map_err(context)?;
        if self.acks == RequiredAcks::None {
            return Ok(None);
        }
        let answer = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == self.partition)
            .ok_or_else(|| context(Error::from(missing("produce"))))?;
        Error::check(answer.error_code, answer.error_message.as_deref())
            .map_err(|e| context(e.with_api(ApiKey::Produce).with_broker(self.conn.addr())))?;
        Ok(Some(answer.base_offset))
    }
}

impl std::ops::Deref for PartitionConn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl fmt::Debug for PartitionConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionConn")
            .field("broker", &self.conn.addr())
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// A response that does not mention the partition it was asked about.
pub(crate) fn missing(what: &'static str) -> kafkit_protocol::DecodeError {
    kafkit_protocol::DecodeError::Invalid {
        what,
        reason: "the response does not mention the requested partition".into(),
    }
}

/// Milliseconds since the Unix epoch; times before it are negative.
pub(crate) fn to_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_wire_values() {
        assert_eq!(RequiredAcks::None.as_i16(), 0);
        assert_eq!(RequiredAcks::One.as_i16(), 1);
        assert_eq!(RequiredAcks::All.as_i16(), -1);
        assert_eq!(RequiredAcks::default(), RequiredAcks::All);
    }

    #[test]
    fn message_builder() {
        let m = Message::new("v").with_key("k").with_header("h", "x");
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(m.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(m.headers, vec![("h".to_owned(), Some(Bytes::from("x")))]);
        assert_eq!(m.time, None);
    }

    #[test]
    fn millis_around_the_epoch() {
        assert_eq!(to_millis(UNIX_EPOCH), 0);
        assert_eq!(to_millis(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        assert_eq!(to_millis(UNIX_EPOCH - Duration::from_millis(20)), -20);
    }
}
