//! Unit tests against the OpenTelemetry SDK's in-memory exporters: no
//! broker, no global state.

use bytes::Bytes;
use kafkit_conn::Hook;
use kafkit_conn::hooks::{ConsumeRecord, HeaderLookup, ProduceRecord, RecordToken, SetHeaders};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use crate::KafkitOtel;

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

/// A hook wired to in-memory span and metric exporters.
struct Harness {
    otel: KafkitOtel,
    tracer_provider: SdkTracerProvider,
    spans: InMemorySpanExporter,
    meter_provider: SdkMeterProvider,
    metrics: InMemoryMetricExporter,
}

impl Harness {
    fn new() -> Harness {
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        let otel = KafkitOtel::builder()
            .tracer_provider(tracer_provider.clone())
            .meter_provider(meter_provider.clone())
            .build();
        Harness {
            otel,
            tracer_provider,
            spans,
            meter_provider,
            metrics,
        }
    }

    /// The spans ended so far.
    fn spans(&self) -> Vec<SpanData> {
        self.tracer_provider.force_flush().expect("flush spans");
        self.spans.get_finished_spans().expect("finished spans")
    }

    fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let mut found = spans.into_iter().filter(|s| s.name == name);
        let span = found.next().unwrap_or_else(|| panic!("no span {name}"));
        assert!(found.next().is_none(), "several spans {name}");
        span
    }

    /// The metrics as of now (cumulative).
    fn metrics(&self) -> ResourceMetrics {
        self.meter_provider.force_flush().expect("flush metrics");
        let mut exported = self.metrics.get_finished_metrics().expect("metrics");
        exported.pop().expect("one export")
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

/// The value of attribute `key`, if set.
fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(value: &str) -> Value {
    Value::from(value.to_owned())
}

fn metric<'a>(metrics: &'a ResourceMetrics, name: &str) -> &'a Metric {
    metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
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
