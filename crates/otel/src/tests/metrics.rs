//! Metrics: names, values and attributes per event.

use std::time::Duration;

use kafkit_conn::hooks::{
    CommitEvent, ConnectEvent, DisconnectEvent, FetchEvent, ProduceAck, ProduceBatchEvent,
    RebalanceEvent, RequestEvent,
};
use kafkit_conn::{ApiKey, Error, ErrorCode, Hook};
use opentelemetry::Value;

use super::{
    Harness, TestHeaders, attr, consume_record, f64_histograms, i64_gauges, metric, text,
    u64_histograms, u64_sums,
};

fn broker_error() -> Error {
    match Error::check(ErrorCode::NOT_LEADER_OR_FOLLOWER, None) {
        Err(e) => e,
        Ok(()) => panic!("an error code is an error"),
    }
}

#[test]
fn sent_messages_count_the_acks() {
    let h = Harness::new();
    for offset in 0..3 {
        let (token, _) = h.produce("orders", TestHeaders::default());
        h.otel.on_produce_acked(
            &ProduceAck {
                topic: "orders",
                partition: 0,
                offset,
                duration: Duration::from_millis(20),
                error: None,
                error_type: None,
            },
            token,
        );
    }
    let (token, _) = h.produce("orders", TestHeaders::default());
    let error = std::io::Error::other("broken");
    h.otel.on_produce_acked(
        &ProduceAck {
            topic: "orders",
            partition: 0,
            offset: -1,
            duration: Duration::from_millis(50),
            error: Some(&error),
            error_type: Some("NOT_ENOUGH_REPLICAS"),
        },
        token,
    );
    // Buffered, not acknowledged: not counted.
    let _pending = h.produce("orders", TestHeaders::default());

    let metrics = h.metrics();
    let mut sent = u64_sums(metric(&metrics, "messaging.client.sent.messages"));
    sent.sort_by_key(|(_, n)| *n);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (failed, ok) = (&sent[0], &sent[1]);
    assert_eq!(ok.1, 3);
    assert_eq!(attr(&ok.0, "error.type"), None);
    assert_eq!(attr(&ok.0, "messaging.operation.name"), Some(&text("send")));
    assert_eq!(
        attr(&ok.0, "messaging.destination.name"),
        Some(&text("orders"))
    );
    assert_eq!(
        attr(&ok.0, "messaging.destination.partition.id"),
        Some(&text("0"))
    );
    assert_eq!(failed.1, 1);
    assert_eq!(
        attr(&failed.0, "error.type"),
        Some(&text("NOT_ENOUGH_REPLICAS"))
    );

    let durations = f64_histograms(metric(&metrics, "messaging.client.operation.duration"));
    let ok_duration = durations
        .iter()
        .find(|(a, _, _)| attr(a, "error.type").is_none())
        .expect("the acknowledged sends");
    assert_eq!(ok_duration.1, 3);
    assert!((ok_duration.2 - 0.060).abs() < 1e-9, "{}", ok_duration.2);
}

#[test]
fn consumed_messages_and_process_durations_are_counted() {
    let h = Harness::new();
    let headers = TestHeaders::default();
    for _ in 0..4 {
        h.otel
            .on_consume_record(&consume_record("orders", &headers));
    }
    h.otel
        .process_span(&consume_record("orders", &headers))
        .end();
    let metrics = h.metrics();
    let consumed = u64_sums(metric(&metrics, "messaging.client.consumed.messages"));
    assert_eq!(consumed.len(), 1);
    let (attrs, count) = &consumed[0];
    assert_eq!(*count, 4);
    assert_eq!(
        attr(attrs, "messaging.consumer.group.name"),
        Some(&text("billing"))
    );
    assert_eq!(
        attr(attrs, "messaging.destination.partition.id"),
        Some(&text("2"))
    );
    assert_eq!(attr(attrs, "messaging.operation.name"), Some(&text("poll")));

    let processed = f64_histograms(metric(&metrics, "messaging.process.duration"));
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].1, 1);
    assert_eq!(
        attr(&processed[0].0, "messaging.operation.name"),
        Some(&text("process"))
    );
}

#[test]
fn fetches_record_lag_and_bytes_per_partition() {
    let h = Harness::new();
    let fetch = |next_offset, bytes| FetchEvent {
        broker: "kafka-1:9092",
        topic: "orders",
        partition: 1,
        records: 10,
        bytes,
        high_watermark: 1_000,
        next_offset,
        client_id: Some("billing-1"),
    };
    h.otel.on_fetch(&fetch(900, 4_096));
    h.otel.on_fetch(&fetch(990, 1_024));
    let metrics = h.metrics();
    let lag = i64_gauges(metric(&metrics, "kafka.consumer.lag"));
    assert_eq!(lag.len(), 1);
    assert_eq!(lag[0].1, 10, "the last fetch's lag");
    assert_eq!(
        attr(&lag[0].0, "messaging.destination.name"),
        Some(&text("orders"))
    );
    assert_eq!(
        attr(&lag[0].0, "messaging.destination.partition.id"),
        Some(&text("1"))
    );
    assert_eq!(
        attr(&lag[0].0, "messaging.client.id"),
        Some(&text("billing-1"))
    );
    let fetched = u64_sums(metric(&metrics, "kafka.consumer.fetched.bytes"));
    assert_eq!(fetched[0].1, 5_120);
}

#[test]
fn requests_record_durations_per_broker_and_api() {
    let h = Harness::new();
    let error = broker_error();
    let request = |broker, in_flight, error| RequestEvent {
        broker,
        api: ApiKey::Fetch,
        version: 12,
        duration: Duration::from_millis(250),
        response_bytes: 100,
        in_flight,
        error,
    };
    h.otel.on_request(&request("kafka-1:9092", 3, None));
    h.otel.on_request(&request("kafka-1:9092", 2, Some(&error)));
    h.otel.on_request(&request("[::1]:9093", 1, None));
    let metrics = h.metrics();

    let durations = f64_histograms(metric(&metrics, "kafka.client.request.duration"));
    assert_eq!(durations.len(), 3);
    let ok = durations
        .iter()
        .find(|(a, _, _)| {
            attr(a, "server.address") == Some(&text("kafka-1")) && attr(a, "error.type").is_none()
        })
        .expect("kafka-1's answered fetch");
    assert_eq!(attr(&ok.0, "server.port"), Some(&Value::I64(9092)));
    assert_eq!(attr(&ok.0, "kafka.request.api"), Some(&text("Fetch")));
    assert_eq!((ok.1, ok.2), (1, 0.25));
    assert!(
        durations
            .iter()
            .any(|(a, _, _)| { attr(a, "error.type") == Some(&text("NOT_LEADER_OR_FOLLOWER")) })
    );
    assert!(durations.iter().any(|(a, _, _)| {
        attr(a, "server.address") == Some(&text("::1"))
            && attr(a, "server.port") == Some(&Value::I64(9093))
    }));

    let mut in_flight = i64_gauges(metric(&metrics, "kafka.client.requests.in_flight"));
    in_flight.sort_by_key(|(_, n)| *n);
    assert_eq!(in_flight.len(), 2, "one gauge per broker");
    assert_eq!(in_flight[1].1, 2, "kafka-1's last value");
    assert_eq!(attr(&in_flight[1].0, "kafka.request.api"), None);
}

#[test]
fn connections_count_each_event() {
    let h = Harness::new();
    let error = broker_error();
    let connect = |error| ConnectEvent {
        broker: "kafka-1:9092",
        duration: Duration::from_millis(3),
        error,
    };
    h.otel.on_connect(&connect(None));
    h.otel.on_connect(&connect(None));
    h.otel.on_connect(&connect(Some(&error)));
    h.otel.on_disconnect(&DisconnectEvent {
        broker: "kafka-1:9092",
        error: &error,
    });
    let metrics = h.metrics();
    let events = u64_sums(metric(&metrics, "kafka.client.connections"));
    let count = |event: &str| -> u64 {
        events
            .iter()
            .filter(|(a, _)| attr(a, "kafka.connection.event") == Some(&text(event)))
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        (
            count("connect"),
            count("connect_failed"),
            count("disconnect")
        ),
        (2, 1, 1)
    );
}

#[test]
fn groups_batches_and_commits_are_measured() {
    let h = Harness::new();
    h.otel.on_rebalance(&RebalanceEvent {
        group: "billing",
        member_id: "m-1",
        generation: 4,
        assigned: &[("orders", 0)],
        revoked: &[],
        reason: "join",
        duration: Duration::from_millis(1_500),
    });
    // Two writers: each keeps its own buffer gauge, by client id.
    for (records, buffered_bytes, client_id) in [
        (10, 8_000, "writer-a"),
        (30, 2_000, "writer-a"),
        (5, 700, "writer-b"),
    ] {
        h.otel.on_produce_batch(&ProduceBatchEvent {
            broker: "kafka-1:9092",
            topic: "orders",
            partition: 0,
            records,
            bytes: 1_000,
            attempt: 1,
            buffered_bytes,
            client_id: Some(client_id),
        });
    }
    h.otel.on_commit(&CommitEvent {
        group: "billing",
        offsets: &[("orders", 0, 10)],
        duration: Duration::from_millis(8),
        error: None,
    });
    let metrics = h.metrics();

    let rebalances = u64_sums(metric(&metrics, "kafka.consumer.rebalances"));
    assert_eq!(rebalances[0].1, 1);
    assert_eq!(
        attr(&rebalances[0].0, "messaging.consumer.group.name"),
        Some(&text("billing"))
    );
    let took = f64_histograms(metric(&metrics, "kafka.consumer.rebalance.duration"));
    assert_eq!((took[0].1, took[0].2), (1, 1.5));

    let mut buffered: Vec<(String, i64)> =
        i64_gauges(metric(&metrics, "kafka.producer.buffer.bytes"))
            .into_iter()
            .map(|(a, v)| {
                (
                    attr(&a, "messaging.client.id")
                        .expect("a client id")
                        .to_string(),
                    v,
                )
            })
            .collect();
    buffered.sort();
    assert_eq!(
        buffered,
        [("writer-a".to_owned(), 2_000), ("writer-b".to_owned(), 700)]
    );
    let batches = u64_histograms(metric(&metrics, "kafka.producer.batch.records"));
    assert_eq!((batches[0].1, batches[0].2), (3, 45));

    let commits = f64_histograms(metric(&metrics, "messaging.client.operation.duration"));
    assert_eq!(commits.len(), 1);
    assert_eq!(
        attr(&commits[0].0, "messaging.operation.name"),
        Some(&text("commit"))
    );
    assert_eq!(
        attr(&commits[0].0, "messaging.destination.name"),
        Some(&text("orders"))
    );
}
