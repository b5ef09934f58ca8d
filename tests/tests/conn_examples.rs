//! kafka-go's `Conn` examples, on `kafkit_conn::Conn` against a real broker:
//! produce three messages then read them back as a batch, list topics and
//! partitions, create and delete a topic through the controller.

use std::time::{Duration, SystemTime};

use kafkit_conn::{Conn, ErrorCode, Message, RequiredAcks, TopicConfig, dial_leader};
use kafkit_tests::{TestBroker, unique_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_three_messages_then_read_them_as_a_batch() {
    let broker = TestBroker::start();
    let topic = unique_topic("conn-produce");
    broker.create_topic(&topic, 1);

    let mut conn = dial_leader(broker.addr(), &topic, 0).await.unwrap();
    let messages = [
        Message::new("one!")
            .with_key("k1")
            .with_header("source", "test"),
        Message::new("two!"),
        Message::new("three!"),
    ];
    let base = conn.write_messages(&messages).await.unwrap();
    assert_eq!(base, Some(0));
    let base = conn.write_messages(&[Message::new("four!")]).await.unwrap();
    assert_eq!(base, Some(3));

    conn.seek(0);
    let batch = conn.read_batch(1, 1 << 20).await.unwrap();
    assert!(batch.high_watermark() >= 1, "{}", batch.high_watermark());
    let records: Vec<_> = batch.map(|r| r.unwrap()).collect();
    let values: Vec<&[u8]> = records
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    assert_eq!(values, [&b"one!"[..], b"two!", b"three!", b"four!"]);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3]);
    assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
    let header = records[0].headers.get("source").unwrap();
    assert_eq!(header.value.as_deref(), Some(&b"test"[..]));
    assert_eq!(conn.offset(), Some(4));

    // Reading from the middle skips the records before the offset.
    conn.seek(2);
    let rest: Vec<i64> = conn
        .read_batch(1, 1 << 20)
        .await
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(rest, [2, 3]);

    // At the end, a fetch waits max_wait and comes back empty.
    conn.set_max_wait(Duration::from_millis(50));
    assert_eq!(conn.read_batch(1, 1 << 20).await.unwrap().count(), 0);
    assert_eq!(conn.offset(), Some(4));
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_first_last_and_by_time() {
    let broker = TestBroker::start();
    let topic = unique_topic("conn-offsets");
    broker.create_topic(&topic, 1);
    let conn = dial_leader(broker.addr(), &topic, 0).await.unwrap();
    assert_eq!(conn.read_first_offset().await.unwrap(), 0);
    let before = SystemTime::now() - Duration::from_secs(60);
    conn.write_messages(&[Message::new("a"), Message::new("b")])
        .await
        .unwrap();
    conn.write_messages(&[Message::new("c")]).await.unwrap();
    assert_eq!(conn.read_first_offset().await.unwrap(), 0);
    let last = conn.read_last_offset().await.unwrap();
    if !broker.has_tansu_bug("the latest ListOffsets answer is the last batch's first offset + 1") {
        assert_eq!(last, 3);
    }
    let (first, _) = conn.read_offsets().await.unwrap();
    assert_eq!(first, 0);
    let by_time = conn.read_offset(before).await.unwrap();
    assert_eq!(by_time, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_topics_and_partitions() {
    let broker = TestBroker::start();
    let topic = unique_topic("conn-list");
    broker.create_topic(&topic, 3);
    let conn = Conn::dial(broker.addr()).await.unwrap();

    let partitions = conn.read_partitions(&[&topic]).await.unwrap();
    assert_eq!(partitions.len(), 3);
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p.topic, topic);
        assert_eq!(p.id, i as i32);
        assert!(p.leader.is_some(), "{p:?}");
        assert!(p.error.is_none(), "{p:?}");
    }
    // No topics: every topic of the cluster.
    let all = conn.read_partitions(&[]).await.unwrap();
    assert!(all.iter().filter(|p| p.topic == topic).count() == 3);

    let brokers = conn.brokers().await.unwrap();
    assert!(!brokers.is_empty());
    if broker.is_tansu() {
        assert_eq!(brokers[0].addr(), broker.addr().to_string());
    }

    let e = conn
        .read_partitions(&["no-such-topic-kafkit"])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert_eq!(e.topic(), Some("no-such-topic-kafkit"));
    assert!(
        !conn.is_closed(),
        "a broker error does not kill the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_topic_through_the_controller() {
    let broker = TestBroker::start();
    let conn = Conn::dial(broker.addr()).await.unwrap();
    let controller = conn.controller().await.unwrap();
    let admin = Conn::dial(controller.addr()).await.unwrap();

    let topic = unique_topic("conn-create");
    let results = admin
        .create_topics(&[TopicConfig::new(&topic, 2)])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].topic, topic);
    results[0].result.as_ref().unwrap();
    // The broker's metadata has the topic a moment after the controller.
    let partitions = kafkit_tests::eventually("the created topic is in the metadata", || async {
        admin
            .read_partitions(&[&topic])
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(partitions.len(), 2);

    // Partial failure is data: one topic exists already, one is new.
    let other = unique_topic("conn-create");
    let results = admin
        .create_topics(&[TopicConfig::new(&topic, 2), TopicConfig::new(&other, 1)])
        .await
        .unwrap();
    let by_name = |name: &str| results.iter().find(|r| r.topic == name).unwrap();
    let exists = by_name(&topic).result.as_ref().unwrap_err();
    assert_eq!(
        exists.code(),
        Some(ErrorCode::TOPIC_ALREADY_EXISTS),
        "{exists}"
    );
    by_name(&other).result.as_ref().unwrap();

    let deleted = admin.delete_topics(&[&topic, &other]).await.unwrap();
    assert_eq!(deleted.len(), 2);
    for d in &deleted {
        d.result.as_ref().unwrap();
    }
    admin.close().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_and_forget_writes_with_acks_none() {
    let broker = TestBroker::start();
    let topic = unique_topic("conn-acks0");
    broker.create_topic(&topic, 1);
    let mut conn = dial_leader(broker.addr(), &topic, 0).await.unwrap();
    conn.set_required_acks(RequiredAcks::None);
    for value in ["a", "b", "c"] {
        let base = conn.write_messages(&[Message::new(value)]).await.unwrap();
        assert_eq!(base, None, "acks=0 gets no answer, so no offset");
    }
    // The broker answers nothing for them, yet the stream stays in step:
    // an acknowledged write after them gets the next offset.
    conn.set_required_acks(RequiredAcks::All);
    let base = conn.write_messages(&[Message::new("d")]).await.unwrap();
    assert_eq!(base, Some(3));
    conn.seek(0);
    let values: Vec<_> = conn
        .read_batch(1, 1 << 20)
        .await
        .unwrap()
        .map(|r| r.unwrap().value.unwrap())
        .collect();
    assert_eq!(values, ["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_at_negotiated_and_pinned_versions() {
    use kafkit_conn::ApiKey;
    use kafkit_conn::messages::{ApiVersionsRequest, MetadataRequest};

    let broker = TestBroker::start();
    let conn = Conn::dial(broker.addr()).await.unwrap();
    let negotiated = conn.version_for(ApiKey::Metadata).unwrap();
    let broker_range = conn.broker_versions().range(ApiKey::Metadata).unwrap();
    assert!(broker_range.contains(negotiated));
    assert!(negotiated <= ApiKey::Metadata.max_stable_version());

    let at_max = conn.request(MetadataRequest::default()).await.unwrap();
    let oldest = ApiKey::Metadata
        .stable_versions()
        .intersect(&broker_range)
        .unwrap()
        .min;
    let at_min = conn
        .request_at(oldest, MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(at_max.brokers.len(), at_min.brokers.len());

    // ApiVersions v0 has no tagged fields; the answer still decodes.
    let v0 = conn
        .request_at(0, ApiVersionsRequest::default())
        .await
        .unwrap();
    assert_eq!(v0.error_code, ErrorCode::NONE);
    assert!(!v0.api_keys.is_empty());
}
