//! What the user function returns: [`Output`] records, through
//! [`IntoOutputs`] (so a function can map, filter or flat-map), and the
//! dead-letter record built from a failed input.

use bytes::Bytes;
use kafkit_reader::Message;
use kafkit_writer::{Header, Message as WriterMessage};

/// One record to produce, inside the transaction of the input it came
/// from.
///
/// ```
/// use kafkit_stream::Output;
///
/// let out = Output::new("enriched", "{\"total\": 12}")
///     .with_key("order-7")
///     .with_header("source", "orders");
/// assert_eq!(out.topic, "enriched");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The topic written.
    pub topic: String,
    /// An explicit partition; `None` lets the writer's balancer choose
    /// (keyed records go where the key hashes).
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl Output {
    /// A record for `topic` with this value, no key and no headers.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Output {
        Output {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// A tombstone (null value) for `key` on a compacted `topic`.
    pub fn tombstone(topic: impl Into<String>, key: impl Into<Bytes>) -> Output {
        Output {
            topic: topic.into(),
            partition: None,
            key: Some(key.into()),
            value: None,
            headers: Vec::new(),
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Output {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Output {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Output {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    pub(crate) fn into_message(self) -> WriterMessage {
        WriterMessage {
            topic: Some(self.topic),
            partition: self.partition,
            key: self.key,
            value: self.value,
            headers: self.headers,
            timestamp: None,
        }
    }
}

/// What a processing function may return: one [`Output`] (a map), an
/// `Option<Output>` (a filter), a `Vec<Output>` (a flat-map) or `()`
/// (a sink that only has side effects... which are *not* exactly-once).
pub trait IntoOutputs {
    /// The records to produce.
    fn into_outputs(self) -> Vec<Output>;
}

impl IntoOutputs for Output {
    fn into_outputs(self) -> Vec<Output> {
        vec![self]
    }
}

impl IntoOutputs for Option<Output> {
    fn into_outputs(self) -> Vec<Output> {
        self.into_iter().collect()
    }
}

impl IntoOutputs for Vec<Output> {
    fn into_outputs(self) -> Vec<Output> {
        self
    }
}

impl IntoOutputs for () {
    fn into_outputs(self) -> Vec<Output> {
        Vec::new()
    }
}

/// Header names on a dead-letter record (values are UTF-8 text).
pub mod dlq_headers {
    /// The last error's text.
    pub const ERROR: &str = "kafkit.dlq.error";
    /// The input record's topic.
    pub const TOPIC: &str = "kafkit.dlq.topic";
    /// The input record's partition, in decimal.
    pub const PARTITION: &str = "kafkit.dlq.partition";
    /// The input record's offset, in decimal.
    pub const OFFSET: &str = "kafkit.dlq.offset";
    /// How many times the function ran for it, in decimal.
    pub const ATTEMPTS: &str = "kafkit.dlq.attempts";
}

/// The dead-letter copy of `input`: same key, value and headers (the
/// input's timestamp is kept too), plus the [`dlq_headers`].
pub(crate) fn dead_letter(
    topic: &str,
    input: &Message,
    error: &str,
    attempts: u32,
) -> WriterMessage {
    let mut headers: Vec<Header> = input
        .headers
        .iter()
        .map(|h| Header {
            key: String::from_utf8_lossy(&h.key).into_owned(),
            value: h.value,
        })
        .collect();
    let text = |key: &str, value: String| Header {
        key: key.to_owned(),
        value: Some(Bytes::from(value)),
    };
    headers.push(text(dlq_headers::ERROR, error.to_owned()));
    headers.push(text(dlq_headers::TOPIC, input.topic.to_string()));
    headers.push(text(dlq_headers::PARTITION, input.partition.to_string()));
    headers.push(text(dlq_headers::OFFSET, input.offset.to_string()));
    headers.push(text(dlq_headers::ATTEMPTS, attempts.to_string()));
    WriterMessage {
        topic: Some(topic.to_owned()),
        partition: None,
        key: input.key.clone(),
        value: input.value.clone(),
        headers,
        timestamp: input.time(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_filter_and_flat_map_results_become_outputs() {
        let one = Output::new("t", "v");
        assert_eq!(one.clone().into_outputs(), vec![one.clone()]);
        assert_eq!(None::<Output>.into_outputs(), vec![]);
        assert_eq!(Some(one.clone()).into_outputs().len(), 1);
        assert_eq!(vec![one.clone(), one].into_outputs().len(), 2);
        assert!(().into_outputs().is_empty());
    }

    #[test]
    fn an_output_becomes_a_writer_message_naming_its_topic() {
        let m = Output::new("t", "v")
            .with_key("k")
            .with_partition(2)
            .with_header("h", "x")
            .into_message();
        assert_eq!(m.topic.as_deref(), Some("t"));
        assert_eq!(m.partition, Some(2));
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(m.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(m.headers[0].key, "h");
        let t = Output::tombstone("t", "k").into_message();
        assert_eq!(t.value, None);
    }
}
