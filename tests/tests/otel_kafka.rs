//! `kafkit-otel` on the suite's broker, seen through the OpenTelemetry
//! SDK's in-memory exporters: a writer's `send` spans and the W3C context
//! they put in each record's headers, the reader's `poll` spans linked to
//! them, `process` spans that are their children, the commit's span; the
//! metrics adding up to the records of the run with no lag left; and one
//! trace from a record's producer through a `kafkit-stream` processor to
//! the output record's headers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafkit_otel::testing::{self, InMemoryTelemetry, metric};
use kafkit_reader::{FetchConfig, IsolationLevel, Reader, ReaderConfig};
use kafkit_stream::{Error as StreamError, Output, Processor};
use kafkit_tests::{TestBroker, unique_topic};
use kafkit_writer::{Message, Writer};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::trace::SpanData;

const RECORDS: usize = 40;
const PARTITIONS: i32 = 2;

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    testing::attr(&span.attributes, key)
}

/// An integer attribute; the partition id is a string by the conventions.
fn int(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::I64(v)) => *v,
        Some(Value::String(s)) if key == "messaging.destination.partition.id" => {
            s.as_str().parse().unwrap()
        }
        other => panic!("{key} of {}: {other:?}", span.name),
    }
}

fn has(attrs: &[KeyValue], key: &str, value: impl Into<Value>) -> bool {
    let value = value.into();
    attrs
        .iter()
        .any(|kv| kv.key.as_str() == key && kv.value == value)
}

/// The trace and span id a `traceparent` header names.
fn traceparent(value: &[u8]) -> (TraceId, SpanId) {
    let text = std::str::from_utf8(value).unwrap();
    let parts: Vec<&str> = text.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{text}");
    let trace = TraceId::from_hex(parts[1]).unwrap();
    (trace, SpanId::from_hex(parts[2]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_spans_join_and_the_metrics_add_up() {
    let broker = TestBroker::start();
    let (topic, group) = (unique_topic("otel"), unique_topic("otel-group"));
    broker.create_topic(&topic, PARTITIONS as u32);
    let t = InMemoryTelemetry::new();

    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .hooks(t.otel.hooks())
        .build()
        .await
        .unwrap();
    let messages: Vec<Message> = (0..RECORDS)
        .map(|i| Message::new(format!("v{i}")).with_key(format!("k{i}")))
        .collect();
    for result in writer.write_messages(&messages).await.unwrap() {
        result.unwrap();
    }
    writer.close().await.unwrap();

    let mut reader = Reader::builder([broker.bootstrap()])
        .group_id(&group)
        .topics([&topic])
        .hooks(t.otel.hooks())
        .build()
        .await
        .unwrap();
    let mut read = Vec::new();
    while read.len() < RECORDS {
        let next = tokio::time::timeout(Duration::from_secs(30), reader.fetch_message());
        let m = next.await.expect("every record within 30 s").unwrap();
        t.otel.process_span(&m.as_consume_record()).end();
        read.push(m);
    }
    reader.commit_messages(&read).await.unwrap();
    reader.close().await.unwrap();

    // One send span per record, each ended with where its record landed.
    let sends = t.spans_named(&format!("send {topic}"));
    assert_eq!(sends.len(), RECORDS);
    let mut by_place = BTreeMap::new();
    for s in &sends {
        assert_eq!(s.span_kind, SpanKind::Producer);
        assert_eq!(attr(s, "messaging.system"), Some(&Value::from("kafka")));
        assert_eq!(
            attr(s, "messaging.destination.name"),
            Some(&Value::from(topic.clone()))
        );
        let place = (
            int(s, "messaging.destination.partition.id"),
            int(s, "messaging.kafka.offset"),
        );
        by_place.insert(place, s.span_context.clone());
    }
    assert_eq!(by_place.len(), RECORDS, "distinct partitions and offsets");

    // Each record carries its send span's context.
    for m in &read {
        let producer = &by_place[&(i64::from(m.partition), m.offset)];
        let header = m.headers.get("traceparent").and_then(|h| h.value).unwrap();
        assert_eq!(
            traceparent(&header),
            (producer.trace_id(), producer.span_id())
        );
    }

    // One poll span per record handed out, linked to its producer.
    let polls = t.spans_named(&format!("poll {topic}"));
    assert_eq!(polls.len(), RECORDS);
    for p in &polls {
        assert_eq!(p.span_kind, SpanKind::Consumer);
        assert_eq!(
            attr(p, "messaging.consumer.group.name"),
            Some(&Value::from(group.clone()))
        );
        let place = (
            int(p, "messaging.destination.partition.id"),
            int(p, "messaging.kafka.offset"),
        );
        let producer = &by_place[&place];
        // The link's context came from the headers: remote, same ids.
        let linked = p.links.iter().any(|l| {
            let c = &l.span_context;
            c.is_remote()
                && (c.trace_id(), c.span_id()) == (producer.trace_id(), producer.span_id())
        });
        assert!(linked, "poll of {place:?} links to its producer");
    }

    // Process spans are children of their producers, in the same trace.
    let processes = t.spans_named(&format!("process {topic}"));
    assert_eq!(processes.len(), RECORDS);
    for p in &processes {
        let place = (
            int(p, "messaging.destination.partition.id"),
            int(p, "messaging.kafka.offset"),
        );
        let producer = &by_place[&place];
        assert_eq!(p.parent_span_id, producer.span_id());
        assert_eq!(p.span_context.trace_id(), producer.trace_id());
    }

    // The commit, named after its one topic.
    let commits = t.spans_named(&format!("commit {topic}"));
    assert!(!commits.is_empty());
    assert!(commits.iter().all(|c| c.span_kind == SpanKind::Client
        && attr(c, "messaging.consumer.group.name") == Some(&Value::from(group.clone()))));

    let metrics = t.metrics();
    let sum_u64 = |name: &str| match metric(&metrics, name).data() {
        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
            let points: Vec<_> = sum.data_points().collect();
            assert!(
                points
                    .iter()
                    .all(|p| !p.attributes().any(|kv| kv.key.as_str() == "error.type"))
            );
            points.iter().map(|p| p.value()).sum::<u64>()
        }
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(sum_u64("messaging.client.sent.messages"), RECORDS as u64);
    assert_eq!(
        sum_u64("messaging.client.consumed.messages"),
        RECORDS as u64
    );
    match metric(&metrics, "kafka.consumer.lag").data() {
        AggregatedMetrics::I64(MetricData::Gauge(gauge)) => {
            let lags: Vec<_> = gauge.data_points().map(|p| p.value()).collect();
            assert_eq!(lags, vec![0; PARTITIONS as usize], "no lag at the end");
        }
        other => panic!("lag: {other:?}"),
    }
    match metric(&metrics, "kafka.client.request.duration").data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
            let addr = broker.addr();
            let port = i64::from(addr.port());
            let to_broker: u64 = h
                .data_points()
                .filter(|p| {
                    let a: Vec<KeyValue> = p.attributes().cloned().collect();
                    has(&a, "server.port", port) && has(&a, "kafka.request.api", "Produce")
                })
                .map(|p| p.count())
                .sum();
            assert!(to_broker >= 1, "produce round trips to port {port}");
        }
        other => panic!("request duration: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_goes_through_a_stream_processor_to_its_outputs() {
    const INPUTS: usize = 5;
    let broker = TestBroker::start();
    let (input, output) = (unique_topic("otel-in"), unique_topic("otel-out"));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    let t = InMemoryTelemetry::new();

    let writer = Writer::builder([broker.bootstrap()])
        .topic(&input)
        .hooks(t.otel.hooks())
        .build()
        .await
        .unwrap();
    let messages: Vec<Message> = (0..INPUTS)
        .map(|i| Message::new(format!("in{i}")))
        .collect();
    for result in writer.write_messages(&messages).await.unwrap() {
        result.unwrap();
    }
    writer.close().await.unwrap();

    let mut processor = Processor::builder([broker.bootstrap()])
        .group_id(unique_topic("otel-stream"))
        .input_topics([&input])
        .transactional_id(unique_topic("otel-txn"))
        .commit_every(Duration::from_millis(100))
        .hooks(t.otel.hooks())
        .build()
        .await
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (counter, out) = (done.clone(), output.clone());
    let finished = async {
        while done.load(Ordering::SeqCst) < INPUTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    processor
        .run_until(finished, move |m| {
            counter.fetch_add(1, Ordering::SeqCst);
            let value = format!("out-{}", String::from_utf8_lossy(m.value_bytes()));
            let out = out.clone();
            async move { Ok::<_, StreamError>(Output::new(out, value)) }
        })
        .await
        .unwrap();
    processor.close().await.unwrap();

    // Each input's producer span, by the input's value.
    let in_sends: BTreeMap<i64, _> = t
        .spans_named(&format!("send {input}"))
        .into_iter()
        .map(|s| (int(&s, "messaging.kafka.offset"), s.span_context.clone()))
        .collect();
    assert_eq!(in_sends.len(), INPUTS);
    let out_sends = t.spans_named(&format!("send {output}"));
    assert_eq!(out_sends.len(), INPUTS);

    let config = ReaderConfig {
        brokers: vec![broker.bootstrap()],
        topic: Some(output.clone()),
        partition: Some(0),
        fetch: FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        },
        ..ReaderConfig::default()
    };
    let mut reader = Reader::new(config).await.unwrap();
    for _ in 0..INPUTS {
        let next = tokio::time::timeout(Duration::from_secs(30), reader.fetch_message());
        let m = next.await.expect("every output within 30 s").unwrap();
        let n: i64 = String::from_utf8_lossy(m.value_bytes())["out-in".len()..]
            .parse()
            .unwrap();
        // Input n was written at offset n of the input's one partition.
        let input_span = &in_sends[&n];
        let header = m.headers.get("traceparent").and_then(|h| h.value).unwrap();
        let (trace, span) = traceparent(&header);
        assert_eq!(
            trace,
            input_span.trace_id(),
            "output {n} continues its input's trace"
        );
        // The header names the output's own send span, a child of the
        // input's producer span.
        let own = out_sends.iter().find(|s| s.span_context.span_id() == span);
        let own = own.unwrap_or_else(|| panic!("output {n}'s send span"));
        assert_eq!(own.parent_span_id, input_span.span_id());
    }
    reader.close().await.unwrap();
}
