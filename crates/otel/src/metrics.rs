//! The meter's instruments, and what each event records on them.
//!
//! Names follow the OpenTelemetry messaging semantic conventions
//! (`messaging.client.*`, `messaging.process.duration`); Kafka client
//! internals the conventions do not cover are under `kafka.*`. Durations
//! are seconds in `f64` histograms.

use std::time::Duration;

use kafkit_conn::hooks::{
    CommitEvent, ConnectEvent, ConsumeRecord, DisconnectEvent, FetchEvent, ProduceAck,
    ProduceBatchEvent, RebalanceEvent, RequestEvent,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

use crate::attrs::{self, ERROR_TYPE, OPERATION_NAME, OPERATION_TYPE};

/// Bucket boundaries (seconds) the conventions advise for messaging
/// durations.
const DURATION_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Every instrument kafkit records on, created once per [`KafkitOtel`](crate::KafkitOtel).
#[derive(Debug)]
pub(crate) struct Instruments {
    operation_duration: Histogram<f64>,
    sent_messages: Counter<u64>,
    consumed_messages: Counter<u64>,
    process_duration: Histogram<f64>,
    request_duration: Histogram<f64>,
    requests_in_flight: Gauge<i64>,
    connections: Counter<u64>,
    consumer_lag: Gauge<i64>,
    fetched_bytes: Counter<u64>,
    rebalances: Counter<u64>,
    rebalance_duration: Histogram<f64>,
    buffer_bytes: Gauge<i64>,
    batch_records: Histogram<u64>,
}

fn seconds(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(DURATION_BOUNDARIES.to_vec())
        .build()
}

fn counter(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_unit(unit)
        .with_description(description)
        .build()
}

fn gauge(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> Gauge<i64> {
    meter
        .i64_gauge(name)
        .with_unit(unit)
        .with_description(description)
        .build()
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Instruments {
        Instruments {
            operation_duration: seconds(
                meter,
                "messaging.client.operation.duration",
                "Duration of a messaging operation: a send from buffering to its acknowledgement, a commit.",
            ),
            sent_messages: counter(
                meter,
                "messaging.client.sent.messages",
                "{message}",
                "Messages a producer attempted to send, counted when acknowledged or failed.",
            ),
            consumed_messages: counter(
                meter,
                "messaging.client.consumed.messages",
                "{message}",
                "Messages handed to the application by a consumer.",
            ),
            process_duration: seconds(
                meter,
                "messaging.process.duration",
                "Duration of processing one consumed message.",
            ),
            request_duration: seconds(
                meter,
                "kafka.client.request.duration",
                "Round trip of one Kafka request, per broker and API.",
            ),
            requests_in_flight: gauge(
                meter,
                "kafka.client.requests.in_flight",
                "{request}",
                "Requests waiting for an answer on a broker connection.",
            ),
            connections: counter(
                meter,
                "kafka.client.connections",
                "{event}",
                "Broker connection events: connect, connect_failed, disconnect.",
            ),
            consumer_lag: gauge(
                meter,
                "kafka.consumer.lag",
                "{message}",
                "Messages between the next fetch offset and the high watermark, per partition.",
            ),
            fetched_bytes: counter(
                meter,
                "kafka.consumer.fetched.bytes",
                "By",
                "Record bytes fetched, per partition.",
            ),
            rebalances: counter(
                meter,
                "kafka.consumer.rebalances",
                "{rebalance}",
                "Assignments a group member received.",
            ),
            rebalance_duration: seconds(
                meter,
                "kafka.consumer.rebalance.duration",
                "From the start of a rejoin to the new assignment.",
            ),
            buffer_bytes: gauge(
                meter,
                "kafka.producer.buffer.bytes",
                "By",
                "Bytes buffered in a producer, not yet acknowledged.",
            ),
            batch_records: meter
                .u64_histogram("kafka.producer.batch.records")
                .with_unit("{record}")
                .with_description("Records per produced batch.")
                .build(),
        }
    }

    pub(crate) fn produce_acked(&self, ack: &ProduceAck<'_>) {
        let mut attrs = Vec::with_capacity(6);
        attrs.push(attrs::system());
        attrs.push(KeyValue::new(OPERATION_NAME, "send"));
        attrs.push(KeyValue::new(OPERATION_TYPE, "send"));
        attrs.push(attrs::destination(ack.topic));
        if ack.partition >= 0 {
            attrs.push(attrs::partition(ack.partition));
        }
        if ack.error.is_some() || ack.error_type.is_some() {
            let error_type = ack.error_type.unwrap_or(attrs::OTHER_ERROR);
            attrs.push(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
        }
        self.operation_duration
            .record(ack.duration.as_secs_f64(), &attrs);
        self.sent_messages.add(1, &attrs);
    }

    pub(crate) fn consumed(&self, record: &ConsumeRecord<'_>) {
        let mut attrs = Vec::with_capacity(6);
        attrs.push(attrs::system());
        attrs.push(KeyValue::new(OPERATION_NAME, "poll"));
        attrs.push(KeyValue::new(OPERATION_TYPE, "receive"));
        attrs.push(attrs::destination(record.topic));
        attrs.push(attrs::partition(record.partition));
        if let Some(group) = record.group {
            attrs.push(attrs::group(group));
        }
        self.consumed_messages.add(1, &attrs);
    }

    /// `topic`: the one topic every committed offset belongs to, if so.
    pub(crate) fn committed(&self, event: &CommitEvent<'_>, topic: Option<&str>) {
        let mut attrs = Vec::with_capacity(6);
        attrs.push(attrs::system());
        attrs.push(KeyValue::new(OPERATION_NAME, "commit"));
        attrs.push(KeyValue::new(OPERATION_TYPE, "settle"));
        attrs.push(attrs::group(event.group));
        if let Some(topic) = topic {
            attrs.push(attrs::destination(topic));
        }
        if let Some(error) = event.error {
            attrs.push(KeyValue::new(ERROR_TYPE, attrs::error_type(error)));
        }
        self.operation_duration
            .record(event.duration.as_secs_f64(), &attrs);
    }

    /// `attrs` were built by the process span; `error_type` set by it.
    pub(crate) fn processed(&self, duration: Duration, attrs: &[KeyValue]) {
        self.process_duration.record(duration.as_secs_f64(), attrs);
    }

    pub(crate) fn request(&self, event: &RequestEvent<'_>) {
        let mut attrs = Vec::with_capacity(5);
        attrs.push(attrs::system());
        attrs::push_server(&mut attrs, event.broker);
        self.requests_in_flight
            .record(attrs::count(event.in_flight), &attrs);
        attrs.push(KeyValue::new(attrs::REQUEST_API, event.api.name()));
        if let Some(error) = event.error {
            attrs.push(KeyValue::new(ERROR_TYPE, attrs::error_type(error)));
        }
        self.request_duration
            .record(event.duration.as_secs_f64(), &attrs);
    }

    pub(crate) fn connect(&self, event: &ConnectEvent<'_>) {
        let mut attrs = Vec::with_capacity(5);
        attrs.push(attrs::system());
        attrs::push_server(&mut attrs, event.broker);
        match event.error {
            None => attrs.push(KeyValue::new(attrs::CONNECTION_EVENT, "connect")),
            Some(error) => {
                attrs.push(KeyValue::new(attrs::CONNECTION_EVENT, "connect_failed"));
                attrs.push(KeyValue::new(ERROR_TYPE, attrs::error_type(error)));
            }
        }
        self.connections.add(1, &attrs);
    }

    pub(crate) fn disconnect(&self, event: &DisconnectEvent<'_>) {
        let mut attrs = Vec::with_capacity(5);
        attrs.push(attrs::system());
        attrs::push_server(&mut attrs, event.broker);
        attrs.push(KeyValue::new(attrs::CONNECTION_EVENT, "disconnect"));
        attrs.push(KeyValue::new(ERROR_TYPE, attrs::error_type(event.error)));
        self.connections.add(1, &attrs);
    }

    pub(crate) fn fetch(&self, event: &FetchEvent<'_>) {
        let mut attrs = vec![
            attrs::system(),
            attrs::destination(event.topic),
            attrs::partition(event.partition),
        ];
        if let Some(id) = event.client_id {
            attrs.push(KeyValue::new(attrs::CLIENT_ID, id.to_owned()));
        }
        self.consumer_lag.record(event.lag(), &attrs);
        self.fetched_bytes
            .add(u64::try_from(event.bytes).unwrap_or(u64::MAX), &attrs);
    }

    pub(crate) fn rebalance(&self, event: &RebalanceEvent<'_>) {
        let attrs = [attrs::system(), attrs::group(event.group)];
        self.rebalances.add(1, &attrs);
        self.rebalance_duration
            .record(event.duration.as_secs_f64(), &attrs);
    }

    pub(crate) fn produce_batch(&self, event: &ProduceBatchEvent<'_>) {
        let mut writer = vec![attrs::system()];
        if let Some(id) = event.client_id {
            writer.push(KeyValue::new(attrs::CLIENT_ID, id.to_owned()));
        }
        self.buffer_bytes
            .record(attrs::count(event.buffered_bytes), &writer);
        let attrs = [
            attrs::system(),
            attrs::destination(event.topic),
            attrs::partition(event.partition),
        ];
        self.batch_records
            .record(u64::try_from(event.records).unwrap_or(u64::MAX), &attrs);
    }
}
