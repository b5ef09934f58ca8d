//! OpenTelemetry traces and metrics for kafkit clients: a [`Hook`] that
//! follows the OpenTelemetry messaging semantic conventions for Kafka.
//!
//! Build one [`KafkitOtel`] after the application has installed its
//! OpenTelemetry providers (or give it providers with
//! [`KafkitOtel::builder`]), and hand [`KafkitOtel::hooks`] to each writer
//! and reader. Every record then gets spans, and the client metrics:
//!
//! - **Producing.** A `send {topic}` span (kind Producer) per record, from
//!   buffering to the broker's acknowledgement, whose context is written
//!   into the record's `traceparent`/`tracestate` headers (W3C Trace
//!   Context, or another propagator). Its parent is the current span; with
//!   none, the trace the record's own headers carry (a stream processor
//!   that copies its input's headers to its outputs keeps the chain
//!   going); else it starts a trace.
//! - **Consuming.** A `poll {topic}` span (kind Consumer) per record handed
//!   out, linked to the producer's span, and a `commit {topic}` span per
//!   offset commit. For the application's processing,
//!   [`KafkitOtel::process_span`] starts a `process {topic}` span that is a
//!   child of the producer's span.
//! - **Metrics** (meter `kafkit`): `messaging.client.operation.duration`,
//!   `messaging.client.sent.messages`, `messaging.client.consumed.messages`,
//!   `messaging.process.duration`, and Kafka's own
//!   `kafka.client.request.duration`, `kafka.client.requests.in_flight`,
//!   `kafka.client.connections`, `kafka.consumer.lag`,
//!   `kafka.consumer.fetched.bytes`, `kafka.consumer.rebalances`,
//!   `kafka.consumer.rebalance.duration`, `kafka.producer.buffer.bytes` and
//!   `kafka.producer.batch.records`. Durations are in seconds.
//!
//! ```ignore
//! use kafkit::otel::KafkitOtel;
//! use kafkit::{Reader, Writer};
//! use opentelemetry::context::FutureExt;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // After opentelemetry::global::set_tracer_provider / set_meter_provider:
//! let otel = KafkitOtel::new();
//!
//! let writer = Writer::builder(["localhost:9092"])
//!     .hooks(otel.hooks())
//!     .build()
//!     .await?;
//! let mut reader = Reader::builder(["localhost:9092"])
//!     .group_id("billing")
//!     .topics(["orders"])
//!     .hooks(otel.hooks())
//!     .build()
//!     .await?;
//!
//! let message = reader.fetch_message().await?;
//! let span = otel.process_span(&message.as_consume_record());
//! // Records sent while the process span is current are its children.
//! let output = kafkit::writer::Message::new("done").with_topic("invoices");
//! let delivery = writer.send(output).with_context(span.context().clone()).await?;
//! span.end();
//! # Ok(())
//! # }
//! ```
//!
//! Hooks run inline on the clients' tasks: each event costs a few small
//! allocations (span names, attribute values) and the OpenTelemetry SDK's
//! own work, and takes no lock of its own.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;

use kafkit_conn::Hook;
use kafkit_conn::Hooks;
use kafkit_conn::hooks::{
    CommitEvent, ConnectEvent, ConsumeRecord, DisconnectEvent, FetchEvent, HeaderLookup,
    ProduceAck, ProduceBatchEvent, ProduceRecord, RebalanceEvent, RecordToken, RequestEvent,
    SetHeaders,
};
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::propagation::TraceContextPropagator;

mod attrs;
mod context;
mod metrics;
mod spans;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use spans::ProcessSpan;

use metrics::Instruments;
use spans::ProduceToken;

/// The instrumentation scope of kafkit's tracer and meter.
const SCOPE_NAME: &str = "kafkit";

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// What every clone of a [`KafkitOtel`] shares.
pub(crate) struct Inner {
    pub(crate) tracer: BoxedTracer,
    pub(crate) propagator: Box<dyn TextMapPropagator + Send + Sync>,
    pub(crate) metrics: Instruments,
}

/// kafkit's OpenTelemetry hook: spans and metrics for every writer and
/// reader it is installed in (see the [crate docs](crate)). A cheap
/// `Clone`: clones share the tracer, meter and instruments.
#[derive(Clone)]
pub struct KafkitOtel {
    inner: Arc<Inner>,
}

impl KafkitOtel {
    /// Uses the global tracer and meter providers, and the W3C Trace
    /// Context propagator. The providers are taken now: install them
    /// (`opentelemetry::global::set_tracer_provider`, `set_meter_provider`)
    /// before.
    pub fn new() -> KafkitOtel {
        KafkitOtel::builder().build()
    }

    /// Sets the providers or the propagator.
    pub fn builder() -> KafkitOtelBuilder {
        KafkitOtelBuilder::default()
    }

    /// The hook to install in writers and readers (their builders'
    /// `hooks`).
    pub fn hooks(&self) -> Hooks {
        Hooks::from_arc(Arc::new(self.clone()))
    }

    /// The trace context carried in a record's headers, on top of the
    /// current context (which is returned as is when the record carries
    /// none).
    pub fn extract(&self, headers: &dyn HeaderLookup) -> Context {
        let current = Context::current();
        context::extract_onto(&*self.inner.propagator, &current, headers).unwrap_or(current)
    }

    /// Starts the `process {topic}` span of a consumed record: see
    /// [`ProcessSpan`].
    pub fn process_span(&self, record: &ConsumeRecord<'_>) -> ProcessSpan {
        ProcessSpan::start(Arc::clone(&self.inner), record)
    }
}

impl Default for KafkitOtel {
    fn default() -> Self {
        KafkitOtel::new()
    }
}

impl fmt::Debug for KafkitOtel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkitOtel")
            .field("propagator", &self.inner.propagator)
            .finish_non_exhaustive()
    }
}

impl Hook for KafkitOtel {
    fn on_connect(&self, event: &ConnectEvent<'_>) {
        self.inner.metrics.connect(event);
    }

    fn on_disconnect(&self, event: &DisconnectEvent<'_>) {
        self.inner.metrics.disconnect(event);
    }

    fn on_request(&self, event: &RequestEvent<'_>) {
        self.inner.metrics.request(event);
    }

    fn on_produce_record(
        &self,
        record: &ProduceRecord<'_>,
        set: &mut SetHeaders,
    ) -> Option<RecordToken> {
        Some(Box::new(self.inner.start_send(record, set)))
    }

    fn on_produce_acked(&self, ack: &ProduceAck<'_>, token: RecordToken) {
        self.inner.metrics.produce_acked(ack);
        if let Ok(token) = token.downcast::<ProduceToken>() {
            self.inner.end_send(ack, *token);
        }
    }

    fn on_produce_batch(&self, event: &ProduceBatchEvent<'_>) {
        self.inner.metrics.produce_batch(event);
    }

    fn on_fetch(&self, event: &FetchEvent<'_>) {
        self.inner.metrics.fetch(event);
    }

    fn on_consume_record(&self, record: &ConsumeRecord<'_>) {
        self.inner.metrics.consumed(record);
        self.inner.consume_span(record);
    }

    fn on_commit(&self, event: &CommitEvent<'_>) {
        let topic = spans::single_topic(event.offsets);
        self.inner.metrics.committed(event, topic);
        self.inner.commit_span(event, topic);
    }

    fn on_rebalance(&self, event: &RebalanceEvent<'_>) {
        self.inner.metrics.rebalance(event);
    }
}

/// Configures a [`KafkitOtel`]; what is not set comes from the global
/// providers, and the propagator defaults to W3C Trace Context.
#[derive(Default)]
pub struct KafkitOtelBuilder {
    tracer: Option<BoxedTracer>,
    meter: Option<Meter>,
    propagator: Option<Box<dyn TextMapPropagator + Send + Sync>>,
}

impl KafkitOtelBuilder {
    /// Traces with `provider` (an `SdkTracerProvider`, say; it is a cheap
    /// clone) instead of the global one.
    pub fn tracer_provider<P, T, S>(mut self, provider: P) -> Self
    where
        P: TracerProvider<Tracer = T>,
        T: Tracer<Span = S> + Send + Sync + 'static,
        S: Span + Send + Sync + 'static,
    {
        let tracer = provider.tracer_with_scope(scope());
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// Records metrics with `provider` instead of the global one.
    pub fn meter_provider<P: MeterProvider>(mut self, provider: P) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// Reads and writes trace context in record headers with `propagator`
    /// instead of W3C Trace Context (`traceparent`, `tracestate`).
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Some(Box::new(propagator));
        self
    }

    /// Builds the hook, creating its instruments.
    pub fn build(self) -> KafkitOtel {
        let tracer = self
            .tracer
            .unwrap_or_else(|| global::tracer_with_scope(scope()));
        let meter = self
            .meter
            .unwrap_or_else(|| global::meter_with_scope(scope()));
        let propagator = self
            .propagator
            .unwrap_or_else(|| Box::new(TraceContextPropagator::new()));
        KafkitOtel {
            inner: Arc::new(Inner {
                tracer,
                propagator,
                metrics: Instruments::new(&meter),
            }),
        }
    }
}

impl fmt::Debug for KafkitOtelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkitOtelBuilder")
            .field("tracer_provider", &self.tracer.is_some())
            .field("meter_provider", &self.meter.is_some())
            .field("propagator", &self.propagator)
            .finish()
    }
}
