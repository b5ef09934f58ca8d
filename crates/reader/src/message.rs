//! [`Message`]: one consumed record, with the topic and partition it came
//! from. Its key, value and headers are slices of the fetch response the
//! broker sent (or of the decompressed batch): handing a message out copies
//! no bytes and allocates nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use kafkit_protocol::records::{Header, HeaderIter, Headers, TimestampType};

/// One consumed record.
///
/// `key`, `value` and `headers` share the buffer of the fetch response they
/// were decoded from: a `Message` kept alive keeps that buffer (or that
/// decompressed batch) alive. Copy what you keep for long
/// (`Bytes::copy_from_slice`) if memory matters more than copies.
///
/// Cloning is cheap: reference-count bumps only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic (shared by every message of the partition).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition.
    pub offset: i64,
    /// The key; `None` for a null key.
    pub key: Option<Bytes>,
    /// The value; `None` for a null value (a tombstone on compacted
    /// topics).
    pub value: Option<Bytes>,
    /// The headers, parsed lazily when iterated. A record without headers
    /// carries an empty [`Headers`] that owns nothing.
    pub headers: Headers,
    /// The timestamp in milliseconds since the Unix epoch; what it means
    /// depends on [`timestamp_type`](Message::timestamp_type). -1 when the
    /// record has none (magic-0 messages).
    pub timestamp: i64,
    /// Whether the producer set the timestamp (`CreateTime`) or the broker
    /// did when it appended the batch (`LogAppendTime`).
    pub timestamp_type: TimestampType,
    /// The leader epoch of the batch (KIP-320), `None` for batches written
    /// before Kafka 2.1 or by brokers that do not set it.
    pub leader_epoch: Option<i32>,
}

impl Message {
    /// The message as a hook sees it
    /// ([`ConsumeRecord`](kafkit_conn::hooks::ConsumeRecord), with no group
    /// or client id): what `kafkit-otel`'s process span takes.
    pub fn as_consume_record(&self) -> kafkit_conn::hooks::ConsumeRecord<'_> {
        kafkit_conn::hooks::ConsumeRecord {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            headers: &self.headers,
            group: None,
            client_id: None,
        }
    }

    /// The timestamp as a [`SystemTime`], `None` if the record has none.
    pub fn time(&self) -> Option<SystemTime> {
        u64::try_from(self.timestamp)
            .ok()
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The value's bytes, empty for a null value.
    pub fn value_bytes(&self) -> &[u8] {
        self.value.as_deref().unwrap_or_default()
    }

    /// The key's bytes, empty for a null key.
    pub fn key_bytes(&self) -> &[u8] {
        self.key.as_deref().unwrap_or_default()
    }

    /// The last header named `key` (Kafka's `lastHeader`), if any.
    pub fn header(&self, key: &str) -> Option<Header> {
        self.headers.get(key)
    }

    /// The size the record's key, value and headers take, in bytes (what
    /// byte-based limits and statistics count).
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self.headers.raw().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::records::{RecordBatchBuilder, RecordSet};

    fn message_from_record(headers: &[(&str, Option<&[u8]>)]) -> Message {
        let mut b = RecordBatchBuilder::new(7);
        b.append(1_700_000_000_123, Some(b"k"), Some(b"value"), headers)
            .unwrap();
        let record = RecordSet::new(b.finish().unwrap())
            .records()
            .next()
            .unwrap()
            .unwrap();
        Message {
            topic: "orders".into(),
            partition: 1,
            offset: record.offset,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp,
            timestamp_type: TimestampType::CreateTime,
            leader_epoch: Some(3),
        }
    }

    #[test]
    fn accessors_read_the_record() {
        let m = message_from_record(&[("trace", Some(b"abc")), ("trace", Some(b"xyz"))]);
        assert_eq!(m.offset, 7);
        assert_eq!(m.key_bytes(), b"k");
        assert_eq!(m.value_bytes(), b"value");
        assert_eq!(
            m.header("trace").unwrap().value.as_deref(),
            Some(&b"xyz"[..])
        );
        assert!(m.header("missing").is_none());
        assert_eq!(
            m.time(),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
        );
        assert!(m.size() > "k".len() + "value".len());
    }

    #[test]
    fn no_headers_no_timestamp_null_value() {
        let mut m = message_from_record(&[]);
        assert!(m.headers.is_empty() && m.headers.raw().is_empty());
        m.timestamp = -1;
        m.value = None;
        assert_eq!(m.time(), None);
        assert_eq!(m.value_bytes(), b"");
        assert_eq!(m.size(), 1);
    }
}
