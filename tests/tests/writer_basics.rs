//! `kafkit_writer::Writer` against tansu: what a producer's user sees.
//! Synchronous sends with partition and offset, keyed records where a Java
//! producer puts them, headers, topic rules, explicit partitions, every
//! codec, acks=0, and `close()` keeping every record.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kafkit_protocol::records::{Record, RecordSet};
use kafkit_tests::{RawClient, TestBroker, unique_topic};
use kafkit_writer::{
    Compression, Error, Message, Murmur2, RecordMetadata, RequiredAcks, Writer, WriterBuilder,
};

fn builder(broker: &TestBroker) -> WriterBuilder {
    Writer::builder([broker.bootstrap()])
}

/// Reads `count` records of `topic`/`partition` from offset 0.
async fn read_back(broker: &TestBroker, topic: &str, partition: i32, count: usize) -> Vec<Record> {
    let addr = broker.addr();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        RawClient::connect(addr)
            .fetch_records(&topic, partition, 0, count)
            .0
    })
    .await
    .unwrap()
}

/// Counts a partition's records, fetching until a fetch brings nothing new.
fn count_all(addr: std::net::SocketAddr, topic: &str, partition: i32) -> usize {
    let mut client = RawClient::connect(addr);
    let (mut next, mut n) = (0, 0);
    loop {
        let data = client.fetch(topic, partition, next);
        let set = RecordSet::new(data.records.unwrap_or_default());
        let before = n;
        for r in set.records() {
            let r = r.unwrap();
            if r.offset >= next {
                next = r.offset + 1;
                n += 1;
            }
        }
        if n == before {
            return n;
        }
    }
}

fn value(r: &Record) -> &[u8] {
    r.value.as_deref().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_send_returns_partition_and_offset() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-sync");
    broker.create_topic(&topic, 3);
    let writer = builder(&broker).topic(&topic).build().await.unwrap();

    let first = writer
        .send(Message::new("one").with_partition(2))
        .await
        .unwrap();
    assert_eq!(
        first.await.unwrap(),
        RecordMetadata {
            partition: 2,
            offset: 0
        }
    );
    let second = writer
        .send(Message::new("two").with_partition(2))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        second,
        RecordMetadata {
            partition: 2,
            offset: 1
        }
    );
    let keyed = writer
        .send(Message::new("k").with_key("user-7"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(keyed.partition, Murmur2::partition_for(b"user-7", 3));
    writer.close().await.unwrap();

    let records = read_back(&broker, &topic, 2, 2).await;
    let values: Vec<&[u8]> = records.iter().take(2).map(value).collect();
    assert_eq!(values, [&b"one"[..], b"two"]);
    let stats = writer.stats();
    assert_eq!(stats.records, 3);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.latency.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_go_where_a_java_producer_puts_them() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-keyed");
    broker.create_topic(&topic, 6);
    let writer = builder(&broker).topic(&topic).build().await.unwrap();
    let messages: Vec<Message> = (0..120)
        .map(|i| Message::new(format!("v{i}")).with_key(format!("key-{i}")))
        .collect();
    let results = writer.write_messages(&messages).await.unwrap();
    let mut per_partition = [0usize; 6];
    for (i, result) in results.iter().enumerate() {
        let meta = result.as_ref().unwrap();
        // Java: toPositive(Utils.murmur2(key)) % numPartitions.
        let key = format!("key-{i}");
        let java = (kafkit_writer::balancer::murmur2(key.as_bytes()) & 0x7fff_ffff) % 6;
        assert_eq!(meta.partition, java, "{key}");
        per_partition[meta.partition as usize] += 1;
    }
    writer.close().await.unwrap();
    for (partition, &count) in per_partition.iter().enumerate() {
        let records = read_back(&broker, &topic, partition as i32, count).await;
        for r in &records {
            let key = r.key.as_deref().unwrap();
            assert_eq!(Murmur2::partition_for(key, 6), partition as i32);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_carry_a_trace_id() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-headers");
    broker.create_topic(&topic, 1);
    let writer = builder(&broker).topic(&topic).build().await.unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let message = Message::new("traced")
        .with_header("trace-id", trace)
        .with_header("empty", "");
    writer.send(message).await.unwrap().await.unwrap();
    writer.close().await.unwrap();
    let records = read_back(&broker, &topic, 0, 1).await;
    let header = records[0]
        .headers
        .get("trace-id")
        .expect("a trace-id header");
    assert_eq!(header.value.as_deref(), Some(trace.as_bytes()));
    assert_eq!(records[0].headers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_on_both_writer_and_message_is_an_error() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-ambiguous");
    broker.create_topic(&topic, 1);
    let writer = builder(&broker).topic(&topic).build().await.unwrap();
    let e = writer
        .send(Message::new("x").with_topic(&topic))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AmbiguousTopic { .. }), "{e}");
    // In a batch the ambiguous record fails alone.
    let results = writer
        .write_messages(&[Message::new("ok"), Message::new("x").with_topic("other")])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().offset, 0);
    assert!(matches!(results[1], Err(Error::AmbiguousTopic { .. })));
    writer.close().await.unwrap();

    let untargeted = builder(&broker).build().await.unwrap();
    let e = untargeted.send(Message::new("x")).await.unwrap_err();
    assert!(matches!(e, Error::MissingTopic), "{e}");
    let meta = untargeted
        .send(Message::new("y").with_topic(&topic))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(meta.offset, 1);
    untargeted.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_partitions_are_kept_and_checked() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-partition");
    broker.create_topic(&topic, 2);
    let writer = builder(&broker).topic(&topic).build().await.unwrap();
    for _ in 0..3 {
        let meta = writer
            .send(Message::new("p1").with_key("k").with_partition(1))
            .await
            .unwrap();
        assert_eq!(meta.await.unwrap().partition, 1);
    }
    let results = writer
        .write_messages(&[Message::new("bad").with_partition(7)])
        .await
        .unwrap();
    assert!(
        matches!(
            results[0],
            Err(Error::NoSuchPartition {
                partition: 7,
                count: 2,
                ..
            })
        ),
        "{:?}",
        results[0]
    );
    writer.close().await.unwrap();
    assert_eq!(read_back(&broker, &topic, 1, 3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_through_the_broker() {
    let broker = TestBroker::start();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique_topic(&format!("writer-{codec}"));
        broker.create_topic(&topic, 1);
        let writer = builder(&broker)
            .topic(&topic)
            .compression(codec)
            .build()
            .await
            .unwrap();
        let messages: Vec<Message> = (0..200)
            .map(|i| Message::new(format!("{codec} record {i} {}", "x".repeat(i % 50))))
            .collect();
        for result in writer.write_messages(&messages).await.unwrap() {
            result.unwrap();
        }
        writer.close().await.unwrap();
        let records = read_back(&broker, &topic, 0, 200).await;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                value(r),
                messages[i].value.as_deref().unwrap(),
                "{codec} record {i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_acks_none_writes_without_offsets() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-acks0");
    broker.create_topic(&topic, 1);
    let writer = builder(&broker)
        .topic(&topic)
        .required_acks(RequiredAcks::None)
        .build()
        .await
        .unwrap();
    assert!(!writer.config().is_idempotent());
    let messages: Vec<Message> = (0..10).map(|i| Message::new(format!("{i}"))).collect();
    for result in writer.write_messages(&messages).await.unwrap() {
        assert_eq!(result.unwrap().offset, -1);
    }
    writer.close().await.unwrap();
    assert_eq!(read_back(&broker, &topic, 0, 10).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_never_loses_a_record() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-close");
    broker.create_topic(&topic, 3);
    let acked = Arc::new(AtomicUsize::new(0));
    let counter = acked.clone();
    let writer = builder(&broker)
        .topic(&topic)
        .on_delivery(move |report| {
            report.result.expect("delivered");
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .await
        .unwrap();
    let total = 30_000;
    for i in 0..total {
        writer
            .produce(&Message::new(format!("record {i}")))
            .await
            .unwrap();
    }
    // Nothing flushed yet: close must send the rest.
    writer.close().await.unwrap();
    assert_eq!(acked.load(Ordering::Relaxed), total);
    assert!(matches!(
        writer.send(Message::new("late")).await,
        Err(Error::Closed)
    ));
    let mut read = 0;
    for partition in 0..3 {
        let addr = broker.addr();
        let topic = topic.clone();
        // Partition sizes are the sticky balancer's choice: read to the end.
        read += tokio::task::spawn_blocking(move || count_all(addr, &topic, partition))
            .await
            .unwrap();
    }
    assert_eq!(read, total);
}
