//! [`Hook`]: a client's events, for metrics, traces and logs that kafkit
//! does not know about, in the spirit of franz-go's hooks.
//!
//! A hook is installed once per client, in [`ConnConfig::hooks`](crate::ConnConfig::hooks)
//! (the writer's and reader's builders have a `hook` setter), and every
//! connection, writer, reader and processor built on that configuration
//! calls it. Every method has an empty default, so a hook implements only
//! the events it wants. Hooks run inline on the client's tasks (and on the
//! caller's, for records buffered and handed out): they must be quick and
//! must not block.
//!
//! An uninstalled hook costs one branch on an `Option` per event, with no
//! allocation and no event built.
//!
//! `kafkit-otel` implements this trait with OpenTelemetry.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafkit_protocol::ApiKey;

use crate::Error;

/// The record headers that carry W3C trace context, which a stream
/// processor copies from an input record to its outputs when a hook is
/// installed.
pub const TRACE_CONTEXT_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// What a hook keeps for one buffered record until it is acknowledged (a
/// span, a start time), returned by [`Hook::on_produce_record`] and given
/// back to [`Hook::on_produce_acked`].
pub type RecordToken = Box<dyn Any + Send>;

/// Reads a record's headers by name: the last header of that name, as
/// Kafka clients read trace context. Implemented by the writer's and the
/// reader's messages.
pub trait HeaderLookup {
    /// The value of the last header named `name` (a cheap `Bytes`
    /// clone); `None` when there is none or its value is null.
    fn header(&self, name: &str) -> Option<Bytes>;
}

impl HeaderLookup for kafkit_protocol::records::Headers {
    fn header(&self, name: &str) -> Option<Bytes> {
        self.get(name).and_then(|h| h.value)
    }
}

/// A connection attempt finished.
#[derive(Debug)]
pub struct ConnectEvent<'a> {
    /// The broker's `host:port`.
    pub broker: &'a str,
    /// From the dial to a connection ready for requests (TCP, TLS, version
    /// negotiation and SASL), or to the failure.
    pub duration: Duration,
    /// Why it failed, `None` when it connected.
    pub error: Option<&'a Error>,
}

/// A connection closed (cleanly, by the broker, or on an error).
#[derive(Debug)]
pub struct DisconnectEvent<'a> {
    /// The broker's `host:port`.
    pub broker: &'a str,
    /// What closed it.
    pub error: &'a Error,
}

/// A request's round trip ended.
#[derive(Debug)]
pub struct RequestEvent<'a> {
    /// The broker's `host:port`.
    pub broker: &'a str,
    /// The request's API.
    pub api: ApiKey,
    /// The version it was sent at.
    pub version: i16,
    /// From the call to the answer (including waiting for an in-flight slot).
    pub duration: Duration,
    /// The answer's size in bytes (0 on failure or for acks=0 produces).
    pub response_bytes: usize,
    /// Requests on this connection waiting for an answer, this one included.
    pub in_flight: usize,
    /// Why it failed, `None` when answered.
    pub error: Option<&'a Error>,
}

/// A record is about to be buffered by a writer.
pub struct ProduceRecord<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// The partition the caller chose, `None` when the balancer will.
    pub partition: Option<i32>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// The value's size (0 for a null value).
    pub value_len: usize,
    /// Its headers.
    pub headers: &'a dyn HeaderLookup,
    /// The writer's client id.
    pub client_id: Option<&'a str>,
}

impl fmt::Debug for ProduceRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProduceRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("value_len", &self.value_len)
            .finish_non_exhaustive()
    }
}

/// Headers a hook sets on a record being buffered: each replaces every
/// header of its name the record has (as trace context must).
#[derive(Debug, Default)]
pub struct SetHeaders {
    headers: Vec<(String, Bytes)>,
}

impl SetHeaders {
    /// Sets header `name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.headers.push((name.into(), value.into()));
    }

    /// True when nothing was set.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The headers set, in order.
    pub fn into_inner(self) -> Vec<(String, Bytes)> {
        self.headers
    }
}

/// A buffered record was acknowledged, or failed for good.
#[derive(Debug)]
pub struct ProduceAck<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition (-1 when it failed before one was chosen).
    pub partition: i32,
    /// Its offset (-1 on failure, or when the broker gave none: acks=0).
    pub offset: i64,
    /// From buffering to the outcome.
    pub duration: Duration,
    /// Why it failed, `None` when acknowledged.
    pub error: Option<&'a (dyn std::error::Error + Send + Sync)>,
    /// A short, low-cardinality name of the failure (a Kafka error code's
    /// name, or a kind such as `timeout`), for metrics' `error.type`.
    pub error_type: Option<&'a str>,
}

/// A produce request carried one batch of a partition.
#[derive(Debug)]
pub struct ProduceBatchEvent<'a> {
    /// The leader it went to (`host:port`).
    pub broker: &'a str,
    /// The batch's topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its records.
    pub records: usize,
    /// Its encoded (compressed) size.
    pub bytes: usize,
    /// Which send this is: 1 for the first, more for retries.
    pub attempt: u32,
    /// Bytes buffered in the writer now, not yet acknowledged.
    pub buffered_bytes: usize,
    /// The writer's client id (which writer's buffer this is).
    pub client_id: Option<&'a str>,
}

/// A fetch answer for one partition was taken in.
#[derive(Debug)]
pub struct FetchEvent<'a> {
    /// The broker that answered (`host:port`).
    pub broker: &'a str,
    /// The partition's topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// Records in the answer that will be handed out.
    pub records: usize,
    /// The answer's record bytes for this partition.
    pub bytes: usize,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The offset the reader will fetch next.
    pub next_offset: i64,
    /// The reader's client id (whose lag this is).
    pub client_id: Option<&'a str>,
}

impl FetchEvent<'_> {
    /// Records between the next fetch offset and the high watermark.
    pub fn lag(&self) -> i64 {
        (self.high_watermark - self.next_offset).max(0)
    }
}

/// A reader handed a record to the caller.
pub struct ConsumeRecord<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its headers.
    pub headers: &'a dyn HeaderLookup,
    /// The consumer group, `None` for a partition reader.
    pub group: Option<&'a str>,
    /// The reader's client id.
    pub client_id: Option<&'a str>,
}

impl fmt::Debug for ConsumeRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumeRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// An offset commit ended.
#[derive(Debug)]
pub struct CommitEvent<'a> {
    /// The group.
    pub group: &'a str,
    /// What was committed: topic, partition and the next offset to read.
    pub offsets: &'a [(&'a str, i32, i64)],
    /// The request's round trip.
    pub duration: Duration,
    /// Why it failed, `None` when every offset was committed.
    pub error: Option<&'a Error>,
}

/// A group member received a new assignment (or lost its partitions).
#[derive(Debug)]
pub struct RebalanceEvent<'a> {
    /// The group.
    pub group: &'a str,
    /// The member's id.
    pub member_id: &'a str,
    /// The generation joined (-1 when the member lost its partitions
    /// without a new generation).
    pub generation: i32,
    /// Partitions gained.
    pub assigned: &'a [(&'a str, i32)],
    /// Partitions given up.
    pub revoked: &'a [(&'a str, i32)],
    /// Why the member rejoined.
    pub reason: &'a str,
    /// From the start of the rejoin to the new assignment.
    pub duration: Duration,
}

/// A client's events; see the [module docs](self). Every method defaults
/// to doing nothing.
pub trait Hook: Send + Sync + 'static {
    /// A connection attempt finished.
    fn on_connect(&self, _event: &ConnectEvent<'_>) {}
    /// A connection closed.
    fn on_disconnect(&self, _event: &DisconnectEvent<'_>) {}
    /// A request's round trip ended.
    fn on_request(&self, _event: &RequestEvent<'_>) {}
    /// A record is about to be buffered. Headers put in `set` are written
    /// with it (trace context goes here); the token returned comes back
    /// with [`on_produce_acked`](Hook::on_produce_acked).
    fn on_produce_record(
        &self,
        _record: &ProduceRecord<'_>,
        _set: &mut SetHeaders,
    ) -> Option<RecordToken> {
        None
    }
    /// A record buffered with a token was acknowledged or failed. Records
    /// for which `on_produce_record` returned `None` are not reported.
    fn on_produce_acked(&self, _ack: &ProduceAck<'_>, _token: RecordToken) {}
    /// A batch was sent.
    fn on_produce_batch(&self, _event: &ProduceBatchEvent<'_>) {}
    /// A fetch answered for a partition.
    fn on_fetch(&self, _event: &FetchEvent<'_>) {}
    /// A record was handed to the caller.
    fn on_consume_record(&self, _record: &ConsumeRecord<'_>) {}
    /// An offset commit ended.
    fn on_commit(&self, _event: &CommitEvent<'_>) {}
    /// A group member's assignment changed.
    fn on_rebalance(&self, _event: &RebalanceEvent<'_>) {}
}

/// The hook a client calls, if any: a cheap `Clone`, `Default` to none.
#[derive(Clone, Default)]
pub struct Hooks(Option<Arc<dyn Hook>>);

impl Hooks {
    /// Installs `hook`.
    pub fn new(hook: impl Hook) -> Hooks {
        Hooks(Some(Arc::new(hook)))
    }

    /// Installs a shared hook.
    pub fn from_arc(hook: Arc<dyn Hook>) -> Hooks {
        Hooks(Some(hook))
    }

    /// The hook, when one is installed.
    #[inline]
    pub fn get(&self) -> Option<&Arc<dyn Hook>> {
        self.0.as_ref()
    }

    /// True when a hook is installed.
    #[inline]
    pub fn is_installed(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hooks(installed)"
        } else {
            "Hooks(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_headers_keeps_order() {
        let mut set = SetHeaders::default();
        assert!(set.is_empty());
        set.set("a", "1");
        set.set("b", "2");
        let names: Vec<_> = set.into_inner().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn hooks_debug_says_whether_one_is_installed() {
        struct Nothing;
        impl Hook for Nothing {}
        assert_eq!(format!("{:?}", Hooks::default()), "Hooks(none)");
        let hooks = Hooks::new(Nothing);
        assert!(hooks.is_installed());
        assert_eq!(format!("{hooks:?}"), "Hooks(installed)");
    }
}
