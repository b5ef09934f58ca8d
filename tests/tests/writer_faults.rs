//! The idempotent `Writer` under faults, on librdkafka's 3-broker mock
//! cluster: injected produce errors and brokers going down and up while
//! 100,000 records are written; every record must arrive exactly once and
//! in order per partition.
//!
//! librdkafka 2.16's mock brokers check and de-duplicate producer sequence
//! numbers only for *transactional* producers (`rd_kafka_mock_validate_records`
//! returns early without a transactional id). Against them, a batch that
//! follows a failed one of the same partition in another in-flight request
//! is simply appended, where Kafka would answer OUT_OF_ORDER_SEQUENCE_NUMBER
//! and the writer would resend both in order. So this test keeps one request
//! in flight per broker: it proves the retry path (order, no loss, no
//! duplicate from the writer's side), not the broker's sequence checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_conn::dial_leader;
use kafkit_tests::{MockCluster, unique_topic};
use kafkit_writer::{Message, Murmur2, Writer};

const PARTITIONS: usize = 6;
const RECORDS: usize = 100_000;

/// Error codes the mock answers the next Produce requests with.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const REQUEST_TIMED_OUT: i16 = 7;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const LEADER_NOT_AVAILABLE: i16 = 5;
const PRODUCE: i16 = 0;

fn key(i: usize) -> String {
    format!("key-{}", i % 97)
}

/// Every value of `topic`/`partition`, in offset order.
async fn read_partition(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    expected: usize,
) -> Vec<usize> {
    let mut conn = dial_leader(bootstrap, topic, partition).await.unwrap();
    conn.seek(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut values = Vec::with_capacity(expected);
    let mut next = 0;
    while values.len() < expected && Instant::now() < deadline {
        let batch = conn.read_batch(1, 4 << 20).await.unwrap();
        for record in batch {
            let record = record.unwrap();
            if record.offset < next {
                continue;
            }
            next = record.offset + 1;
            let v = std::str::from_utf8(record.value.as_deref().unwrap()).unwrap();
            values.push(v.parse().unwrap());
        }
        conn.seek(next);
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_duplicate_or_reorder_idempotent_writes() {
    let cluster = MockCluster::start(3);
    let topic = unique_topic("writer-faults");
    cluster.create_topic(&topic, PARTITIONS as u32, 3);
    let writer = Writer::builder(cluster.bootstrap().split(','))
        .topic(&topic)
        .max_attempts(30)
        .batch_size(2_000)
        .max_in_flight(1)
        .build()
        .await
        .unwrap();
    assert!(writer.config().is_idempotent());
    let writer = Arc::new(writer);

    let producer = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for i in 0..RECORDS {
                let m = Message::new(i.to_string()).with_key(key(i));
                writer.produce(&m).await.unwrap();
                if i % 5_000 == 0 {
                    // Let the faults below interleave with the writes.
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            writer.flush().await
        })
    };

    // Faults while the records flow.
    tokio::time::sleep(Duration::from_millis(20)).await;
    cluster.push_request_errors(
        PRODUCE,
        &[
            NOT_LEADER_OR_FOLLOWER,
            REQUEST_TIMED_OUT,
            NOT_ENOUGH_REPLICAS,
            LEADER_NOT_AVAILABLE,
        ],
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    cluster.broker_down(2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.broker_up(2);
    cluster.push_request_errors(PRODUCE, &[REQUEST_TIMED_OUT, NOT_LEADER_OR_FOLLOWER]);
    tokio::time::sleep(Duration::from_millis(30)).await;
    cluster.broker_down(3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.broker_up(3);

    tokio::time::timeout(Duration::from_secs(30), producer)
        .await
        .expect("the writes finish")
        .unwrap()
        .expect("no record failed");
    let stats = writer.stats();
    assert_eq!(stats.records, RECORDS as u64);
    assert_eq!(stats.errors, 0);
    assert!(stats.retries > 0, "the faults caused no retry: {stats:?}");
    writer.close().await.unwrap();

    let mut expected: Vec<Vec<usize>> = vec![Vec::new(); PARTITIONS];
    for i in 0..RECORDS {
        let p = Murmur2::partition_for(key(i).as_bytes(), PARTITIONS);
        expected[p as usize].push(i);
    }
    let bootstrap = cluster.bootstrap().split(',').next().unwrap().to_owned();
    for (partition, want) in expected.iter().enumerate() {
        let got = read_partition(&bootstrap, &topic, partition as i32, want.len()).await;
        assert_eq!(got.len(), want.len(), "partition {partition}: record count");
        if let Some(at) = got.iter().zip(want).position(|(g, w)| g != w) {
            panic!(
                "partition {partition}: offset {at} holds record {} where {} belongs",
                got[at], want[at]
            );
        }
    }
}
