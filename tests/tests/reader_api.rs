//! The Reader's API against tansu: partition readers (start offset,
//! `set_offset`, `set_offset_at`, lag), group lag, the `Stream` adapter,
//! one stream per partition, the rebalance listener, static members.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use kafkit_conn::Message as Record;
use kafkit_reader::group::{Rebalance, RebalanceKind};
use kafkit_reader::{Reader, ReaderBuilder, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};

/// One record per Produce, so tansu's high watermark is exact (its bug:
/// the last batch's first offset + 1).
async fn produce_one_by_one(broker: &TestBroker, topic: &str, partition: i32, count: usize) {
    let conn = kafkit_conn::dial_leader(broker.bootstrap(), topic, partition)
        .await
        .unwrap();
    for i in 0..count {
        conn.write_messages(&[Record::new(format!("{partition}:{i}"))])
            .await
            .unwrap();
    }
}

fn group(broker: &TestBroker, group: &str, topic: &str) -> ReaderBuilder {
    Reader::builder([broker.bootstrap()])
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_reader_starts_at_offset_42_and_moves_with_set_offset() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-offset");
    broker.create_topic(&topic, 1);
    produce_one_by_one(&broker, &topic, 0, 100).await;

    let mut reader = Reader::builder([broker.bootstrap()])
        .partition(&topic, 0)
        .start_offset(StartOffset::Offset(42))
        .build()
        .await
        .unwrap();
    let m = reader.read_message().await.unwrap();
    assert_eq!((m.offset, m.value_bytes()), (42, &b"0:42"[..]));
    assert_eq!(reader.offset(), Some(43));
    assert_eq!(reader.lag(), 57, "100 - 43");
    assert_eq!(reader.read_lag().await.unwrap(), 57);

    reader.set_offset(10).unwrap();
    assert_eq!(reader.read_message().await.unwrap().offset, 10);
    reader.set_offset(99).unwrap();
    assert_eq!(reader.read_message().await.unwrap().offset, 99);
    assert_eq!(reader.read_lag().await.unwrap(), 0);
    let stats = reader.stats();
    assert_eq!(
        (stats.messages, stats.partitions, stats.generation),
        (3, 1, None)
    );
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_offset_at_starts_from_the_first_record_at_that_time() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-time");
    broker.create_topic(&topic, 1);
    produce_one_by_one(&broker, &topic, 0, 5).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let midpoint = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    produce_one_by_one(&broker, &topic, 0, 5).await;

    let mut reader = Reader::builder([broker.bootstrap()])
        .partition(&topic, 0)
        .build()
        .await
        .unwrap();
    assert_eq!(reader.read_message().await.unwrap().offset, 0);
    reader.set_offset_at(midpoint).unwrap();
    let m = reader.read_message().await.unwrap();
    if !broker.has_tansu_bug("ListOffsets by timestamp always answers 0") {
        assert_eq!(m.offset, 5);
    }
    assert!(reader.set_offset_at(midpoint).is_ok());
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_sums_every_assigned_partition() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-lag");
    let group_id = unique_topic("ra-lag-group");
    broker.create_topic(&topic, 3);
    for p in 0..3 {
        produce_one_by_one(&broker, &topic, p, 10).await;
    }
    let mut reader = group(&broker, &group_id, &topic).build().await.unwrap();
    reader.read_message().await.unwrap();
    assert_eq!(reader.assignment().len(), 3);
    let reader = Arc::new(tokio::sync::Mutex::new(reader));
    eventually("read_lag is 29", || {
        let reader = reader.clone();
        async move { reader.lock().await.read_lag().await.unwrap() == 29 }
    })
    .await;
    let mut reader = Arc::try_unwrap(reader).unwrap().into_inner();
    let stats = reader.stats();
    assert!(
        stats.generation.is_some() && stats.rebalances >= 1,
        "{stats:?}"
    );
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_adapter_yields_messages_in_order() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-stream");
    broker.create_topic(&topic, 1);
    produce_one_by_one(&broker, &topic, 0, 5).await;
    let reader = Reader::builder([broker.bootstrap()])
        .partition(&topic, 0)
        .build()
        .await
        .unwrap();
    let mut stream = reader.into_stream();
    for expected in 0..5 {
        let m = stream.next().await.unwrap().unwrap();
        assert_eq!(m.offset, expected);
    }
    // A pending read is dropped; close still works.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err()
    );
    stream.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_streams_give_one_ordered_stream_per_assigned_partition() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-parts");
    let group_id = unique_topic("ra-parts-group");
    broker.create_topic(&topic, 3);
    for p in 0..3 {
        produce_one_by_one(&broker, &topic, p, 10).await;
    }
    let reader = group(&broker, &group_id, &topic).build().await.unwrap();
    let mut streams = reader.into_partition_streams(4);
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut stream = tokio::time::timeout(Duration::from_secs(15), streams.next())
            .await
            .unwrap()
            .unwrap();
        workers.push(tokio::spawn(async move {
            for expected in 0..10 {
                let m = stream.next().await.unwrap();
                assert_eq!(
                    (m.partition, m.offset),
                    (stream.partition().partition, expected)
                );
                stream.commit_messages(&[m]).await.unwrap();
            }
            stream.partition().partition
        }));
    }
    let mut done = Vec::new();
    for w in workers {
        done.push(w.await.unwrap());
    }
    done.sort_unstable();
    assert_eq!(done, [0, 1, 2]);
    streams.close().await.unwrap();

    // Everything was committed: a new member of the group has nothing to read.
    let mut again = group(&broker, &group_id, &topic).build().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(4), again.fetch_message())
            .await
            .is_err()
    );
    assert_eq!(again.read_lag().await.unwrap(), 0);
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebalance_listener_hears_assignments_and_can_seek() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-listener");
    let group_id = unique_topic("ra-listener-group");
    broker.create_topic(&topic, 1);
    produce_one_by_one(&broker, &topic, 0, 10).await;

    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let mut reader = group(&broker, &group_id, &topic)
        .on_rebalance(move |r: &mut Rebalance<'_>| {
            log.lock()
                .unwrap()
                .push((r.kind(), r.partitions().to_vec()));
            if r.kind() == RebalanceKind::Assigned {
                for tp in r.partitions().to_vec() {
                    r.seek(tp, StartOffset::Offset(6));
                }
            }
        })
        .build()
        .await
        .unwrap();
    let m = reader.fetch_message().await.unwrap();
    assert_eq!(
        m.offset, 6,
        "the listener's seek wins over the missing commit"
    );
    reader.commit_messages(&[m]).await.unwrap();
    reader.close().await.unwrap();
    let tp = TopicPartition::new(topic.as_str(), 0);
    assert_eq!(
        *heard.lock().unwrap(),
        vec![
            (RebalanceKind::Assigned, vec![tp.clone()]),
            (RebalanceKind::Revoked, vec![tp]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_resumes_from_its_commit() {
    let broker = TestBroker::start();
    let topic = unique_topic("ra-static");
    let group_id = unique_topic("ra-static-group");
    broker.create_topic(&topic, 1);
    produce_one_by_one(&broker, &topic, 0, 10).await;

    let mut reader = group(&broker, &group_id, &topic)
        .group_instance_id("instance-1")
        .build()
        .await
        .unwrap();
    for _ in 0..4 {
        let m = reader.fetch_message().await.unwrap();
        reader.commit_messages(&[m]).await.unwrap();
    }
    // A static member does not leave on close (KIP-345)...
    reader.close().await.unwrap();
    // ...so the same instance id comes back to its partitions.
    let mut back = group(&broker, &group_id, &topic)
        .group_instance_id("instance-1")
        .build()
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(15), back.fetch_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.offset, 4);
    back.close().await.unwrap();
}
