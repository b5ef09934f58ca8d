//! A [`KafkitOtel`] wired to the OpenTelemetry SDK's in-memory exporters,
//! for tests that read back what kafkit recorded (feature `testing`).
//!
//! ```text
//! let t = InMemoryTelemetry::new();
//! let writer = Writer::builder(brokers).hooks(t.otel.hooks()).build().await?;
//! // ... write ...
//! assert_eq!(t.spans_named("send orders").len(), 1);
//! ```

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{Metric, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use crate::KafkitOtel;

/// The hook, and the exporters its spans and metrics go to.
#[derive(Debug)]
pub struct InMemoryTelemetry {
    /// The hook to install on clients.
    pub otel: KafkitOtel,
    tracer_provider: SdkTracerProvider,
    spans: InMemorySpanExporter,
    meter_provider: SdkMeterProvider,
    metrics: InMemoryMetricExporter,
}

impl Default for InMemoryTelemetry {
    fn default() -> Self {
        InMemoryTelemetry::new()
    }
}

impl InMemoryTelemetry {
    /// A hook with providers of its own (no global state).
    pub fn new() -> InMemoryTelemetry {
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
        InMemoryTelemetry {
            otel,
            tracer_provider,
            spans,
            meter_provider,
            metrics,
        }
    }

    /// The tracer provider the hook's spans go to, for the application's
    /// own spans around them.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// Every span ended so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.tracer_provider.force_flush().expect("flush spans");
        self.spans.get_finished_spans().expect("finished spans")
    }

    /// The spans named `name` ended so far.
    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        let spans = self.spans().into_iter();
        spans.filter(|s| s.name == name).collect()
    }

    /// The one span named `name`; panics if there is none or several.
    pub fn span(&self, name: &str) -> SpanData {
        let mut found = self.spans_named(name).into_iter();
        let span = found.next().unwrap_or_else(|| panic!("no span {name}"));
        assert!(found.next().is_none(), "several spans {name}");
        span
    }

    /// The metrics as of now (cumulative).
    pub fn metrics(&self) -> ResourceMetrics {
        self.meter_provider.force_flush().expect("flush metrics");
        let mut exported = self.metrics.get_finished_metrics().expect("metrics");
        exported.pop().expect("one export")
    }
}

/// The value of attribute `key` in `attrs`, if set.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The metric named `name`; panics if there is none.
pub fn metric<'a>(metrics: &'a ResourceMetrics, name: &str) -> &'a Metric {
    metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}
