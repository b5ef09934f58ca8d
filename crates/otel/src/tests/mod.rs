//! Unit tests against the OpenTelemetry SDK's in-memory exporters: no
//! broker, no global state.

use bytes::Bytes;
use kafkit_conn::Hook;
use kafkit_conn::hooks::{ConsumeRecord, HeaderLookup, ProduceRecord, RecordToken, SetHeaders};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData};

use crate::testing::{InMemoryTelemetry, attr, metric};

mod metrics;
mod spans;

/// A record's headers: the last of a name wins, as in Kafka clients.
#[derive(Debug, Default, Clone)]
struct TestHeaders(Vec<(String, Bytes)>);

impl TestHeaders {
    fn with(mut self, name: &str, value: &str) -> Self {
        self.0
            .push((name.to_owned(), Bytes::copy_from_slice(value.as_bytes())));
        self
    }

    /// What a writer does with the headers a hook set: each replaces every
    /// header of its name.
    fn apply(&mut self, set: SetHeaders) {
        for (name, value) in set.into_inner() {
            self.0.retain(|(n, _)| *n != name);
            self.0.push((name, value));
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}

impl HeaderLookup for TestHeaders {
    fn header(&self, name: &str) -> Option<Bytes> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// The hook wired to in-memory exporters, and a record source for it.
#[derive(Default)]
struct Harness(InMemoryTelemetry);

impl std::ops::Deref for Harness {
    type Target = InMemoryTelemetry;

    fn deref(&self) -> &InMemoryTelemetry {
        &self.0
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::default()
    }

    /// Buffers a record through the hook; returns its token and headers.
    fn produce(&self, topic: &str, mut headers: TestHeaders) -> (RecordToken, TestHeaders) {
        let mut set = SetHeaders::default();
        let token = self
            .otel
            .on_produce_record(
                &ProduceRecord {
                    topic,
                    partition: None,
                    key: Some(b"user-1"),
                    value_len: 5,
                    headers: &headers,
                    client_id: Some("app"),
                },
                &mut set,
            )
            .expect("a token for every record");
        headers.apply(set);
        (token, headers)
    }
}

fn consume_record<'a>(topic: &'a str, headers: &'a TestHeaders) -> ConsumeRecord<'a> {
    ConsumeRecord {
        topic,
        partition: 2,
        offset: 42,
        key: Some(b"user-1"),
        headers,
        group: Some("billing"),
        client_id: Some("app"),
    }
}

fn text(value: &str) -> Value {
    Value::from(value.to_owned())
}

/// A u64 counter's points: attributes and value.
fn u64_sums(metric: &Metric) -> Vec<(Vec<KeyValue>, u64)> {
    match metric.data() {
        AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.value()))
            .collect(),
        other => panic!("{} is not a u64 sum: {other:?}", metric.name()),
    }
}

/// An i64 gauge's points: attributes and value.
fn i64_gauges(metric: &Metric) -> Vec<(Vec<KeyValue>, i64)> {
    match metric.data() {
        AggregatedMetrics::I64(MetricData::Gauge(gauge)) => gauge
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.value()))
            .collect(),
        other => panic!("{} is not an i64 gauge: {other:?}", metric.name()),
    }
}

/// An f64 histogram's points: attributes, count and sum.
fn f64_histograms(metric: &Metric) -> Vec<(Vec<KeyValue>, u64, f64)> {
    match metric.data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => h
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.count(), p.sum()))
            .collect(),
        other => panic!("{} is not an f64 histogram: {other:?}", metric.name()),
    }
}

/// A u64 histogram's points: attributes, count and sum.
fn u64_histograms(metric: &Metric) -> Vec<(Vec<KeyValue>, u64, u64)> {
    match metric.data() {
        AggregatedMetrics::U64(MetricData::Histogram(h)) => h
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.count(), p.sum()))
            .collect(),
        other => panic!("{} is not a u64 histogram: {other:?}", metric.name()),
    }
}
