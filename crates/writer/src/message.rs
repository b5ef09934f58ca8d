//! What a caller writes ([`Message`], [`Header`]) and what it gets back
//! ([`RecordMetadata`], [`DeliveryReport`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::Error;

/// One record to write.
///
/// Key, value and header values are [`Bytes`], so building a message from
/// shared buffers copies nothing; the writer copies each record once, into
/// its partition's open batch.
///
/// ```
/// use kafkit_writer::Message;
///
/// let m = Message::new("hello")
///     .with_key("user-42")
///     .with_header("trace-id", "4bf92f3577b34da6")
///     .with_topic("greetings");
/// assert_eq!(m.topic.as_deref(), Some("greetings"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// The topic, when the writer has no writer-wide topic (giving both is
    /// an [`Error::AmbiguousTopic`]).
    pub topic: Option<String>,
    /// An explicit partition, bypassing the balancer.
    pub partition: Option<i32>,
    /// The key; keyed records go to the partition the key hashes to.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone on a compacted topic.
    pub value: Option<Bytes>,
    /// Record headers, in order (keys may repeat).
    pub headers: Vec<Header>,
    /// The record's create time; `None` stamps the time it is written.
    pub timestamp: Option<SystemTime>,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name.
    pub key: String,
    /// Its value (`None` is a null value, distinct from empty).
    pub value: Option<Bytes>,
}

impl Message {
    /// A message with this value and nothing else.
    pub fn new(value: impl Into<Bytes>) -> Message {
        Message {
            value: Some(value.into()),
            ..Message::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Message {
        self.key = Some(key.into());
        self
    }

    /// Sets the topic (for writers without a writer-wide topic).
    pub fn with_topic(mut self, topic: impl Into<String>) -> Message {
        self.topic = Some(topic.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Message {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Message {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the create time.
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Message {
        self.timestamp = Some(timestamp);
        self
    }

    /// An upper bound of the record's encoded size in a batch: the payload
    /// plus the worst-case varint overheads. Used for batch sealing and the
    /// buffer accounting, where a cheap estimate is enough.
    pub(crate) fn estimated_size(&self) -> usize {
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10)
            .sum();
        // length, attributes, timestamp delta, offset delta, key and value
        // lengths, header count: at most 5+1+10+5+5+5+5 bytes.
        key + value + headers + 36
    }

    pub(crate) fn header_pairs(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> + Clone + '_ {
        self.headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
    }
}

/// Milliseconds since the Unix epoch, as record batches carry them.
pub(crate) fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown: with `required_acks` none, or
    /// when an idempotent retry found the batch already written and the
    /// broker no longer remembers its offset.
    pub offset: i64,
}

/// The outcome of one fire-and-forget record, handed to the callback set
/// with [`WriterBuilder::on_delivery`](crate::WriterBuilder::on_delivery).
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// The id [`Writer::produce`](crate::Writer::produce) returned.
    pub id: u64,
    /// The record's topic.
    pub topic: Arc<str>,
    /// Where it landed, or why it failed.
    pub result: Result<RecordMetadata, Error>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn builder_methods_fill_the_fields() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let m = Message::new("v")
            .with_key("k")
            .with_partition(3)
            .with_topic("t")
            .with_header("h", "1")
            .with_timestamp(t);
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(m.partition, Some(3));
        assert_eq!(m.headers.len(), 1);
        assert_eq!(millis(m.timestamp.unwrap()), 1_700_000_000_123);
        let pairs: Vec<_> = m.header_pairs().collect();
        assert_eq!(pairs, [("h", Some(&b"1"[..]))]);
    }

    #[test]
    fn the_estimate_bounds_the_encoded_size() {
        use kafkit_protocol::records::RecordBatchBuilder;
        let m = Message::new(vec![7u8; 100])
            .with_key("key")
            .with_header("trace", "abc");
        let b = RecordBatchBuilder::new(0);
        let headers: Vec<_> = m.header_pairs().collect();
        let exact = b.next_record_size(1, m.key.as_deref(), m.value.as_deref(), &headers);
        assert!(
            m.estimated_size() >= exact,
            "{} < {exact}",
            m.estimated_size()
        );
        assert!(m.estimated_size() < exact + 64);
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        assert_eq!(millis(UNIX_EPOCH - Duration::from_millis(5)), -5);
    }
}
