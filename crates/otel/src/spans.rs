//! Spans per the messaging semantic conventions for Kafka: `send`
//! (producer), `poll` (consumer), `commit` (client) and `process`.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use kafkit_conn::hooks::{CommitEvent, ConsumeRecord, ProduceAck, ProduceRecord, SetHeaders};
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _,
};
use opentelemetry::{Context, KeyValue};

use crate::Inner;
use crate::attrs::{self, ERROR_TYPE, OPERATION_NAME, OPERATION_TYPE};
use crate::context;

/// The token a `send` span rides in from buffering to the ack.
pub(crate) struct ProduceToken {
    span: BoxedSpan,
    /// The partition was known (and set on the span) at buffering.
    partition_set: bool,
}

fn builder(name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> SpanBuilder {
    SpanBuilder {
        name: name.into(),
        span_kind: Some(kind),
        attributes: Some(attributes),
        ..SpanBuilder::default()
    }
}

/// A single link to `producer`, when there is one.
fn link_to(producer: Option<SpanContext>) -> Option<Vec<Link>> {
    producer.map(|sc| vec![Link::with_context(sc)])
}

/// The attributes every consumer-side span of a record carries.
fn consumer_attributes(record: &ConsumeRecord<'_>, operation: &'static str) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(10);
    attributes.push(attrs::system());
    attributes.push(KeyValue::new(OPERATION_NAME, operation));
    let kind = if operation == "poll" {
        "receive"
    } else {
        "process"
    };
    attributes.push(KeyValue::new(OPERATION_TYPE, kind));
    attributes.push(attrs::destination(record.topic));
    attributes.push(attrs::partition(record.partition));
    attributes.push(KeyValue::new(attrs::KAFKA_OFFSET, record.offset));
    attributes.extend(attrs::message_key(record.key));
    if let Some(group) = record.group {
        attributes.push(attrs::group(group));
    }
    if let Some(client_id) = record.client_id {
        attributes.push(KeyValue::new(attrs::CLIENT_ID, client_id.to_owned()));
    }
    attributes
}

impl Inner {
    /// Starts the `send {topic}` span of a record being buffered and writes
    /// its context into the record's headers.
    pub(crate) fn start_send(
        &self,
        record: &ProduceRecord<'_>,
        set: &mut SetHeaders,
    ) -> ProduceToken {
        let propagator = &*self.propagator;
        let current = Context::current();
        // The caller's span if it has one; else the trace the record's own
        // headers continue (a processor copying its input's headers).
        let parent = if current.span().span_context().is_valid() {
            current
        } else {
            context::extract_onto(propagator, &current, record.headers).unwrap_or(current)
        };

        let mut attributes = Vec::with_capacity(8);
        attributes.push(attrs::system());
        attributes.push(KeyValue::new(OPERATION_NAME, "send"));
        attributes.push(KeyValue::new(OPERATION_TYPE, "send"));
        attributes.push(attrs::destination(record.topic));
        if let Some(partition) = record.partition {
            attributes.push(attrs::partition(partition));
        }
        attributes.extend(attrs::message_key(record.key));
        if let Some(client_id) = record.client_id {
            attributes.push(KeyValue::new(attrs::CLIENT_ID, client_id.to_owned()));
        }
        attributes.push(KeyValue::new(
            attrs::BODY_SIZE,
            attrs::count(record.value_len),
        ));

        let name = format!("send {}", record.topic);
        let span = self
            .tracer
            .build_with_context(builder(name, SpanKind::Producer, attributes), &parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        context::inject(propagator, &cx, set, record.headers);
        ProduceToken {
            span,
            partition_set: record.partition.is_some(),
        }
    }

    /// Ends a `send` span with the record's outcome.
    pub(crate) fn end_send(&self, ack: &ProduceAck<'_>, token: ProduceToken) {
        let ProduceToken {
            mut span,
            partition_set,
        } = token;
        if span.is_recording() {
            if !partition_set && ack.partition >= 0 {
                span.set_attribute(attrs::partition(ack.partition));
            }
            if ack.offset >= 0 {
                span.set_attribute(KeyValue::new(attrs::KAFKA_OFFSET, ack.offset));
            }
            if ack.error.is_some() || ack.error_type.is_some() {
                let error_type = ack.error_type.unwrap_or(attrs::OTHER_ERROR);
                span.set_attribute(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
                let description = match ack.error {
                    Some(error) => error.to_string(),
                    None => error_type.to_owned(),
                };
                span.set_status(Status::error(description));
            }
        }
        span.end();
    }

    /// Records the `poll {topic}` span of a record handed to the caller,
    /// linked to the span that produced it.
    pub(crate) fn consume_span(&self, record: &ConsumeRecord<'_>) {
        let producer = context::remote_span_context(&*self.propagator, record.headers);
        let mut attributes = consumer_attributes(record, "poll");
        attributes.push(KeyValue::new(attrs::BATCH_MESSAGE_COUNT, 1_i64));
        let mut builder = builder(
            format!("poll {}", record.topic),
            SpanKind::Consumer,
            attributes,
        );
        builder.links = link_to(producer);
        let mut span = self.tracer.build_with_context(builder, &Context::current());
        span.end();
    }

    /// Records the `commit` span of an offset commit that just ended.
    /// `topic`: the one topic of every offset, if so.
    pub(crate) fn commit_span(&self, event: &CommitEvent<'_>, topic: Option<&str>) {
        let mut attributes = Vec::with_capacity(8);
        attributes.push(attrs::system());
        attributes.push(KeyValue::new(OPERATION_NAME, "commit"));
        attributes.push(KeyValue::new(OPERATION_TYPE, "settle"));
        attributes.push(attrs::group(event.group));
        attributes.push(KeyValue::new(
            attrs::BATCH_MESSAGE_COUNT,
            attrs::count(event.offsets.len()),
        ));
        let name = match topic {
            Some(topic) => {
                attributes.push(attrs::destination(topic));
                if let [(_, partition, _)] = event.offsets {
                    attributes.push(attrs::partition(*partition));
                }
                format!("commit {topic}")
            }
            None => "commit".to_owned(),
        };
        if let Some(error) = event.error {
            attributes.push(KeyValue::new(ERROR_TYPE, attrs::error_type(error)));
        }
        let now = SystemTime::now();
        let mut builder = builder(name, SpanKind::Client, attributes);
        builder.start_time = Some(now.checked_sub(event.duration).unwrap_or(now));
        let mut span = self.tracer.build_with_context(builder, &Context::current());
        if let Some(error) = event.error {
            span.set_status(Status::error(error.to_string()));
        }
        span.end_with_timestamp(now);
    }
}

/// The topic every committed offset belongs to, `None` for several (or none).
pub(crate) fn single_topic<'a>(offsets: &[(&'a str, i32, i64)]) -> Option<&'a str> {
    let (first, _, _) = offsets.first()?;
    offsets
        .iter()
        .all(|(topic, _, _)| topic == first)
        .then_some(*first)
}

/// The `process {topic}` span of one consumed record, from
/// [`KafkitOtel::process_span`](crate::KafkitOtel::process_span).
///
/// Its parent is the span that produced the record (from the record's
/// headers), or the current context when the record carries none; it also
/// links to the producer. [`attach`](Context::attach) its
/// [`context`](ProcessSpan::context) while processing, so that records the
/// processing produces become its children. It ends with [`end`](ProcessSpan::end)
/// or when dropped, recording `messaging.process.duration`.
pub struct ProcessSpan {
    cx: Context,
    start: Instant,
    inner: Arc<Inner>,
    /// The `messaging.process.duration` attributes.
    metric_attrs: Vec<KeyValue>,
    error_type: Option<String>,
}

impl ProcessSpan {
    pub(crate) fn start(inner: Arc<Inner>, record: &ConsumeRecord<'_>) -> ProcessSpan {
        let propagator = &*inner.propagator;
        let current = Context::current();
        let producer = context::remote_span_context(propagator, record.headers);
        let parent = match &producer {
            Some(sc) => current.with_remote_span_context(sc.clone()),
            None => current,
        };
        let mut builder = builder(
            format!("process {}", record.topic),
            SpanKind::Consumer,
            consumer_attributes(record, "process"),
        );
        builder.links = link_to(producer);
        let span = inner.tracer.build_with_context(builder, &parent);

        let mut metric_attrs = Vec::with_capacity(6);
        metric_attrs.push(attrs::system());
        metric_attrs.push(KeyValue::new(OPERATION_NAME, "process"));
        metric_attrs.push(attrs::destination(record.topic));
        metric_attrs.push(attrs::partition(record.partition));
        if let Some(group) = record.group {
            metric_attrs.push(attrs::group(group));
        }
        ProcessSpan {
            cx: parent.with_span(span),
            start: Instant::now(),
            inner,
            metric_attrs,
            error_type: None,
        }
    }

    /// The context holding this span: attach it (`context().clone().attach()`)
    /// to make it the parent of spans started while processing.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Marks the processing failed: when the span ends, its status is
    /// Error and `error.type` (a short, low-cardinality name such as an
    /// error kind) is set on it and on the duration metric. The last call
    /// wins.
    pub fn set_error(&mut self, error_type: &str) {
        self.error_type = Some(error_type.to_owned());
    }

    /// Ends the span now and records the processing duration (as dropping
    /// it does).
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for ProcessSpan {
    fn drop(&mut self) {
        let span = self.cx.span();
        if let Some(error_type) = self.error_type.take() {
            span.set_status(Status::error(error_type.clone()));
            let error_type = KeyValue::new(ERROR_TYPE, error_type);
            span.set_attribute(error_type.clone());
            self.metric_attrs.push(error_type);
        }
        self.inner
            .metrics
            .processed(self.start.elapsed(), &self.metric_attrs);
        span.end();
    }
}

impl fmt::Debug for ProcessSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessSpan")
            .field("span_context", self.cx.span().span_context())
            .finish_non_exhaustive()
    }
}
