//! Client telemetry (KIP-714) against Apache Kafka 4.3.1.
//!
//! A node runs with a client-metrics plugin
//! (`tests/telemetry-sink/KafkitTelemetrySink.java`, which the harness
//! compiles with the broker's jars): only then does the broker advertise
//! GetTelemetrySubscriptions and PushTelemetry. A subscription (a
//! CLIENT_METRICS config, set with IncrementalAlterConfigs) asks kafkit
//! clients for producer and consumer metrics every second. A writer and a
//! group reader then push, as they do by default: the plugin parses each
//! push with the OTLP classes Kafka bundles and records it, and the test
//! checks the names, kinds and values: the records acknowledged add up
//! to what was written, per-broker round trips name the node, each client
//! keeps one instance id, and `close` sends one terminating push, last.
//! Against the suite's node (no plugin) telemetry stops by itself, and
//! `metrics_push(false)` turns it off.

use std::time::{Duration, Instant};

use kafkit_admin::{Admin, AlterConfigOp, ConfigResource, NewTopic};
use kafkit_conn::messages::GetTelemetrySubscriptionsRequest;
use kafkit_conn::{ApiKey, Conn};
use kafkit_reader::Reader;
use kafkit_tests::{
    KafkaCluster, KafkaOptions, Listener, Push, TelemetrySink, TestBroker, unique_topic,
};
use kafkit_writer::{Message, Writer};
use serde_json::Value;

const RECORDS: usize = 300;
const WAIT: Duration = Duration::from_secs(60);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits until the pushes satisfy `done`.
async fn pushes_until(
    sink: &TelemetrySink,
    what: &str,
    done: impl Fn(&[Push]) -> bool,
) -> Vec<Push> {
    let start = Instant::now();
    loop {
        let pushes = sink.pushes();
        if done(&pushes) {
            return pushes;
        }
        assert!(start.elapsed() < WAIT, "{what}: {pushes:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pushes of the client whose instance id is `instance`.
fn of(pushes: &[Push], instance: &str) -> Vec<Push> {
    pushes
        .iter()
        .filter(|p| p.instance == instance)
        .cloned()
        .collect()
}

/// The sum over `pushes` of the integer points of the counter `name`,
/// each checked to be a monotonic delta sum.
fn delta_total(pushes: &[Push], name: &str) -> i64 {
    let mut total = 0;
    for metric in pushes.iter().filter_map(|p| p.metric(name)) {
        assert_eq!(metric["kind"], "sum", "{metric}");
        assert_eq!(metric["temporality"], 1, "delta: {metric}");
        assert_eq!(metric["monotonic"], true, "{metric}");
        for point in metric["points"].as_array().unwrap() {
            total += point["int"].as_i64().expect("an integer point");
        }
    }
    total
}

/// The `node_id` attributes of the points of `name` in `pushes`.
fn nodes(pushes: &[Push], name: &str) -> Vec<i64> {
    let points = pushes
        .iter()
        .filter_map(|p| p.metric(name))
        .flat_map(|m| m["points"].as_array().cloned().unwrap_or_default());
    points
        .filter_map(|p| p["attributes"]["node_id"].as_i64())
        .collect()
}

fn hex(id: kafkit_protocol::Uuid) -> String {
    id.to_string().replace('-', "")
}

/// Subscribes kafkit clients to producer and consumer metrics every
/// second, and waits until the node answers the subscription.
async fn subscribe(admin: &Admin, addr: &str) {
    let ops = vec![
        AlterConfigOp::Set(
            "metrics".into(),
            "org.apache.kafka.producer.,org.apache.kafka.consumer.".into(),
        ),
        AlterConfigOp::Set("interval.ms".into(), "1000".into()),
        AlterConfigOp::Set("match".into(), "client_software_name=kafkit".into()),
    ];
    let resource = ConfigResource::ClientMetrics("kafkit-test".into());
    let done = admin
        .incremental_alter_configs(&[(resource.clone(), ops)], false)
        .await
        .expect("alter");
    done[&resource].as_ref().expect("the subscription is set");
    let conn = Conn::dial(addr).await.unwrap();
    conn.version_for(ApiKey::GetTelemetrySubscriptions)
        .expect("the plugin makes the broker advertise the telemetry APIs");
    conn.version_for(ApiKey::PushTelemetry)
        .expect("and PushTelemetry");
    let start = Instant::now();
    loop {
        // A zero instance id each time: a new client, never throttled.
        let answer = conn
            .request(GetTelemetrySubscriptionsRequest::default())
            .await
            .unwrap();
        if !answer.requested_metrics.is_empty() {
            assert_eq!(answer.push_interval_ms, 1000);
            return;
        }
        assert!(start.elapsed() < WAIT, "no subscription: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_and_a_group_reader_push_their_metrics_and_a_terminating_push_at_close() {
    let sink = blocking(TelemetrySink::compile);
    let cluster = blocking(|| KafkaCluster::start(sink.install(KafkaOptions::default())));
    let bootstrap = cluster.bootstrap(Listener::Plaintext);
    let admin = Admin::builder([&bootstrap]).build().await.unwrap();
    subscribe(&admin, &bootstrap).await;
    let topic = unique_topic("telemetry");
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 3)], false)
        .await
        .unwrap();
    created[&topic].as_ref().expect("the topic is created");

    // The writer: three rounds of writes a second apart, so that the
    // acknowledgements spread over several pushes.
    let writer = Writer::builder([bootstrap.as_str()])
        .topic(&topic)
        .build()
        .await
        .unwrap();
    for round in 0..3 {
        let messages: Vec<Message> = (0..RECORDS / 3)
            .map(|i| Message::new(format!("{round}-{i}")))
            .collect();
        for result in writer.write_messages(&messages).await.unwrap() {
            result.expect("written");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let instance = loop {
        if let Some(id) = writer.telemetry().and_then(|t| t.instance_id) {
            break hex(id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    pushes_until(&sink, "two pushes of the writer", |p| {
        of(p, &instance).len() >= 2
    })
    .await;
    writer.close().await.expect("close");
    let pushes = pushes_until(&sink, "the writer's terminating push", |p| {
        of(p, &instance).iter().any(|p| p.terminating)
    })
    .await;
    let mine = of(&pushes, &instance);
    let stats = writer.telemetry().expect("on by default");
    eprintln!("writer telemetry {stats:?}, {} pushes", mine.len());
    assert_eq!(stats.stopped, None);
    assert_eq!(
        stats.pushes,
        mine.len() as u64,
        "each push reached the plugin once"
    );
    let terminating: Vec<bool> = mine.iter().map(|p| p.terminating).collect();
    assert_eq!(
        terminating.iter().filter(|t| **t).count(),
        1,
        "{terminating:?}"
    );
    assert!(terminating.last().copied().unwrap_or(false), "the last one");
    for push in &mine {
        assert_eq!(push.content_type, "OTLP");
        let version = kafkit_conn::CLIENT_SOFTWARE_VERSION;
        assert_eq!(push.scopes, [format!("kafkit {version}")]);
        assert!(
            push.names()
                .iter()
                .all(|n| n.starts_with("org.apache.kafka.producer.")),
            "only what was subscribed: {:?}",
            push.names()
        );
    }
    assert_eq!(
        delta_total(&mine, "org.apache.kafka.producer.record.send.total"),
        RECORDS as i64,
        "the deltas add up to the records acknowledged"
    );
    assert_eq!(
        delta_total(&mine, "org.apache.kafka.producer.record.error.total"),
        0
    );
    assert!(delta_total(&mine, "org.apache.kafka.producer.connection.creation.total") >= 1);
    let latency = nodes(&mine, "org.apache.kafka.producer.node.request.latency.avg");
    assert!(
        !latency.is_empty() && latency.iter().all(|n| *n == 1),
        "{latency:?}"
    );
    let queued = mine
        .iter()
        .filter_map(|p| p.metric("org.apache.kafka.producer.record.queue.time.avg"))
        .count();
    assert!(queued >= 1, "queue times while records were written");

    // A group reader reads them back.
    let group = unique_topic("telemetry-group");
    let mut reader = Reader::builder([bootstrap.as_str()])
        .group_id(&group)
        .topics([topic.as_str()])
        .build()
        .await
        .unwrap();
    for _ in 0..RECORDS {
        tokio::time::timeout(WAIT, reader.read_message())
            .await
            .expect("in time")
            .expect("a record");
    }
    let instance = loop {
        if let Some(id) = reader.telemetry().and_then(|t| t.instance_id) {
            break hex(id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    pushes_until(&sink, "a push of the reader with its records", |p| {
        let mine = of(p, &instance);
        delta_total(&mine, "org.apache.kafka.consumer.fetch.manager.fetch.total") > 0
    })
    .await;
    reader.close().await.expect("close");
    let pushes = pushes_until(&sink, "the reader's terminating push", |p| {
        of(p, &instance).iter().any(|p| p.terminating)
    })
    .await;
    let mine = of(&pushes, &instance);
    for push in &mine {
        assert_eq!(
            push.resource.get("group_id"),
            Some(&Value::from(group.as_str()))
        );
        assert!(
            push.names()
                .iter()
                .all(|n| n.starts_with("org.apache.kafka.consumer.")),
            "{:?}",
            push.names()
        );
    }
    let bytes = delta_total(
        &mine,
        "org.apache.kafka.consumer.fetch.manager.bytes.consumed.total",
    );
    assert!(bytes >= RECORDS as i64, "record bytes fetched: {bytes}");
    let assigned: Vec<i64> = mine
        .iter()
        .filter_map(|p| p.metric("org.apache.kafka.consumer.coordinator.assigned.partitions"))
        .filter_map(|m| m["points"][0]["int"].as_i64())
        .collect();
    assert!(
        assigned.contains(&3),
        "the reader held all three partitions: {assigned:?}"
    );
    let fetch_latency = "org.apache.kafka.consumer.fetch.manager.fetch.latency.avg";
    assert!(
        mine.iter().any(|p| p.metric(fetch_latency).is_some()),
        "fetch round trips"
    );
    assert_eq!(reader.telemetry().expect("on").stopped, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metrics_plugin_telemetry_stops_and_it_can_be_turned_off() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let writer = Writer::builder([broker.bootstrap()]).build().await.unwrap();
    let start = Instant::now();
    let stopped = loop {
        if let Some(why) = writer.telemetry().and_then(|t| t.stopped) {
            break why;
        }
        assert!(start.elapsed() < WAIT, "{:?}", writer.telemetry());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        stopped.contains("does not take client telemetry"),
        "{stopped}"
    );
    assert_eq!(writer.telemetry().unwrap().pushes, 0);
    writer.close().await.unwrap();

    let off = Writer::builder([broker.bootstrap()])
        .metrics_push(false)
        .build()
        .await
        .unwrap();
    assert_eq!(off.telemetry(), None);
    off.close().await.unwrap();
}
