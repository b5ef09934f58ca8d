//! Spans: names, kinds, attributes, parents, links and header propagation.

use std::time::{Duration, SystemTime};

use kafkit_conn::hooks::{CommitEvent, ProduceAck};
use kafkit_conn::{ErrorCode, Hook};
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::SpanData;

use super::{Harness, TestHeaders, attr, consume_record, text};

const UPSTREAM_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UPSTREAM_SPAN: &str = "00f067aa0ba902b7";

fn upstream_headers() -> TestHeaders {
    TestHeaders::default()
        .with(
            "traceparent",
            &format!("00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"),
        )
        .with("tracestate", "vendor=abc")
}

fn ok_ack(topic: &str, offset: i64) -> ProduceAck<'_> {
    ProduceAck {
        topic,
        partition: 3,
        offset,
        duration: Duration::from_millis(12),
        error: None,
        error_type: None,
    }
}

fn traceparent_of(span: &SpanData) -> String {
    format!(
        "00-{}-{}-01",
        span.span_context.trace_id(),
        span.span_context.span_id()
    )
}

#[test]
fn a_produced_record_gets_a_send_span_and_a_traceparent_header() {
    let h = Harness::new();
    let (token, headers) = h.produce("orders", TestHeaders::default());
    assert!(h.spans().is_empty(), "the send span ends at the ack");
    h.otel.on_produce_acked(&ok_ack("orders", 7), token);

    let span = h.span("send orders");
    assert_eq!(span.span_kind, SpanKind::Producer);
    assert_eq!(
        span.parent_span_id,
        SpanId::INVALID,
        "a root without a parent"
    );
    assert_eq!(span.instrumentation_scope.name(), "kafkit");
    assert_eq!(
        span.instrumentation_scope.version(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let a = &span.attributes;
    assert_eq!(attr(a, "messaging.system"), Some(&text("kafka")));
    assert_eq!(attr(a, "messaging.operation.name"), Some(&text("send")));
    assert_eq!(attr(a, "messaging.operation.type"), Some(&text("send")));
    assert_eq!(attr(a, "messaging.destination.name"), Some(&text("orders")));
    assert_eq!(
        attr(a, "messaging.kafka.message.key"),
        Some(&text("user-1"))
    );
    assert_eq!(attr(a, "messaging.client.id"), Some(&text("app")));
    assert_eq!(attr(a, "messaging.message.body.size"), Some(&Value::I64(5)));
    // Set by the ack: the balancer chose the partition.
    assert_eq!(
        attr(a, "messaging.destination.partition.id"),
        Some(&text("3"))
    );
    assert_eq!(attr(a, "messaging.kafka.offset"), Some(&Value::I64(7)));
    assert_eq!(span.status, Status::Unset);

    assert_eq!(headers.text("traceparent"), Some(traceparent_of(&span)));
    assert_eq!(headers.text("tracestate"), None, "no empty tracestate");
}

#[test]
fn a_failed_record_has_an_error_type_and_an_error_status() {
    let h = Harness::new();
    let (token, _) = h.produce("orders", TestHeaders::default());
    let error = std::io::Error::other("request timed out");
    h.otel.on_produce_acked(
        &ProduceAck {
            topic: "orders",
            partition: -1,
            offset: -1,
            duration: Duration::from_secs(30),
            error: Some(&error),
            error_type: Some("timeout"),
        },
        token,
    );
    let span = h.span("send orders");
    assert_eq!(attr(&span.attributes, "error.type"), Some(&text("timeout")));
    assert_eq!(attr(&span.attributes, "messaging.kafka.offset"), None);
    assert_eq!(
        attr(&span.attributes, "messaging.destination.partition.id"),
        None
    );
    assert_eq!(span.status, Status::error("request timed out"));

    // Without a type from the writer: `_OTHER`.
    let (token, _) = h.produce("audit", TestHeaders::default());
    h.otel.on_produce_acked(
        &ProduceAck {
            topic: "audit",
            error: Some(&error),
            ..ok_ack("audit", -1)
        },
        token,
    );
    let span = h.span("send audit");
    assert_eq!(attr(&span.attributes, "error.type"), Some(&text("_OTHER")));
    assert!(matches!(span.status, Status::Error { .. }));
}

#[test]
fn the_active_span_is_the_parent_of_a_send_span() {
    let h = Harness::new();
    let tracer = h.tracer_provider().tracer("app");
    let parent = tracer.start("handle request");
    let parent_context = parent.span_context().clone();
    let cx = Context::current_with_span(parent);
    let (token, headers) = {
        let _guard = cx.attach();
        // The record's own (upstream) headers lose to the active span.
        h.produce("orders", upstream_headers())
    };
    h.otel.on_produce_acked(&ok_ack("orders", 1), token);
    let span = h.span("send orders");
    assert_eq!(span.span_context.trace_id(), parent_context.trace_id());
    assert_eq!(span.parent_span_id, parent_context.span_id());
    assert_eq!(headers.text("traceparent"), Some(traceparent_of(&span)));
    // The stale upstream tracestate does not ride along.
    assert_eq!(headers.text("tracestate"), Some(String::new()));
}

#[test]
fn without_an_active_span_a_send_span_continues_the_records_trace() {
    let h = Harness::new();
    let (token, headers) = h.produce("orders", upstream_headers());
    h.otel.on_produce_acked(&ok_ack("orders", 1), token);
    let span = h.span("send orders");
    assert_eq!(span.span_context.trace_id().to_string(), UPSTREAM_TRACE);
    assert_eq!(span.parent_span_id.to_string(), UPSTREAM_SPAN);
    assert!(span.parent_span_is_remote);
    assert_eq!(headers.text("traceparent"), Some(traceparent_of(&span)));
    assert_eq!(headers.text("tracestate").as_deref(), Some("vendor=abc"));
}

#[test]
fn a_consume_span_links_to_the_producer() {
    let h = Harness::new();
    let (token, headers) = h.produce("orders", TestHeaders::default());
    h.otel.on_produce_acked(&ok_ack("orders", 42), token);
    let producer = h.span("send orders");

    h.otel
        .on_consume_record(&consume_record("orders", &headers));
    let span = h.span("poll orders");
    assert_eq!(span.span_kind, SpanKind::Consumer);
    assert_eq!(span.parent_span_id, SpanId::INVALID, "no current span");
    assert_ne!(
        span.span_context.trace_id(),
        producer.span_context.trace_id()
    );
    assert_eq!(span.links.len(), 1);
    assert_eq!(
        span.links.links[0].span_context.span_id(),
        producer.span_context.span_id()
    );
    assert_eq!(
        span.links.links[0].span_context.trace_id(),
        producer.span_context.trace_id()
    );
    let a = &span.attributes;
    assert_eq!(attr(a, "messaging.operation.name"), Some(&text("poll")));
    assert_eq!(attr(a, "messaging.operation.type"), Some(&text("receive")));
    assert_eq!(
        attr(a, "messaging.destination.partition.id"),
        Some(&text("2"))
    );
    assert_eq!(attr(a, "messaging.kafka.offset"), Some(&Value::I64(42)));
    assert_eq!(
        attr(a, "messaging.consumer.group.name"),
        Some(&text("billing"))
    );
    assert_eq!(
        attr(a, "messaging.batch.message_count"),
        Some(&Value::I64(1))
    );

    // A record without trace context: no link.
    h.otel
        .on_consume_record(&consume_record("plain", &TestHeaders::default()));
    assert!(h.span("poll plain").links.is_empty());
}

#[test]
fn a_process_span_is_a_child_of_the_producer_and_a_parent_of_outputs() {
    let h = Harness::new();
    let (token, headers) = h.produce("orders", TestHeaders::default());
    h.otel.on_produce_acked(&ok_ack("orders", 42), token);
    let producer = h.span("send orders");

    let process = h.otel.process_span(&consume_record("orders", &headers));
    let (token, _) = {
        let _guard = process.context().clone().attach();
        h.produce("invoices", headers.clone())
    };
    process.end();
    h.otel.on_produce_acked(&ok_ack("invoices", 0), token);

    let span = h.span("process orders");
    assert_eq!(span.span_kind, SpanKind::Consumer);
    assert_eq!(
        span.span_context.trace_id(),
        producer.span_context.trace_id()
    );
    assert_eq!(span.parent_span_id, producer.span_context.span_id());
    assert_eq!(span.links.len(), 1);
    assert_eq!(
        attr(&span.attributes, "messaging.operation.name"),
        Some(&text("process"))
    );
    let output = h.span("send invoices");
    assert_eq!(output.parent_span_id, span.span_context.span_id());
    assert_eq!(
        output.span_context.trace_id(),
        producer.span_context.trace_id()
    );
}

#[test]
fn a_dropped_process_span_ends_and_reports_its_error() {
    let h = Harness::new();
    let mut process = h
        .otel
        .process_span(&consume_record("orders", &TestHeaders::default()));
    process.set_error("invalid_order");
    assert!(h.spans().is_empty());
    drop(process);
    let span = h.span("process orders");
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    assert!(span.links.is_empty());
    assert_eq!(
        attr(&span.attributes, "error.type"),
        Some(&text("invalid_order"))
    );
    assert_eq!(span.status, Status::error("invalid_order"));
}

#[test]
fn a_commit_span_covers_the_commit() {
    let h = Harness::new();
    let before = SystemTime::now();
    h.otel.on_commit(&CommitEvent {
        group: "billing",
        offsets: &[("orders", 0, 10), ("orders", 1, 20)],
        duration: Duration::from_secs(2),
        error: None,
    });
    let span = h.span("commit orders");
    assert_eq!(span.span_kind, SpanKind::Client);
    let a = &span.attributes;
    assert_eq!(attr(a, "messaging.operation.name"), Some(&text("commit")));
    assert_eq!(attr(a, "messaging.operation.type"), Some(&text("settle")));
    assert_eq!(
        attr(a, "messaging.consumer.group.name"),
        Some(&text("billing"))
    );
    assert_eq!(attr(a, "messaging.destination.name"), Some(&text("orders")));
    assert_eq!(
        attr(a, "messaging.batch.message_count"),
        Some(&Value::I64(2))
    );
    let took = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(span.start_time <= before);
    assert_eq!(span.status, Status::Unset);

    let error =
        kafkit_conn::Error::from_code(ErrorCode::NOT_COORDINATOR).with_message("coordinator moved");
    h.otel.on_commit(&CommitEvent {
        group: "billing",
        offsets: &[("orders", 0, 11), ("audit", 0, 5)],
        duration: Duration::from_millis(5),
        error: Some(&error),
    });
    let span = h.span("commit");
    assert_eq!(attr(&span.attributes, "messaging.destination.name"), None);
    assert_eq!(
        attr(&span.attributes, "error.type"),
        Some(&text("NOT_COORDINATOR"))
    );
    assert_eq!(span.status, Status::error(error.to_string()));
}

#[test]
fn extract_reads_the_headers_and_the_hooks_are_installed() {
    let h = Harness::new();
    let cx = h.otel.extract(&upstream_headers());
    let span = cx.span();
    assert_eq!(span.span_context().trace_id().to_string(), UPSTREAM_TRACE);
    assert!(span.span_context().is_remote());
    assert!(!h.otel.extract(&TestHeaders::default()).has_active_span());
    let bad = TestHeaders::default().with("traceparent", "00-zz-yy-01");
    assert!(!h.otel.extract(&bad).span().span_context().is_valid());

    let hooks = h.otel.hooks();
    let hook = hooks.get().expect("installed");
    hook.on_consume_record(&consume_record("via-hooks", &TestHeaders::default()));
    assert_eq!(h.span("poll via-hooks").span_kind, SpanKind::Consumer);
}
