//! The `Fetcher`'s buffering against tansu: the next answer is fetched
//! while the caller still reads the current one (prefetch), and fetching
//! pauses once `max_buffered_bytes` wait for the caller (bounded memory),
//! resuming as the caller reads, without losing or repeating a record.

use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::{Message as Produce, Purpose, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};

const RECORDS: usize = 20_000;

async fn setup(name: &str) -> (TestBroker, Transport, TopicPartition) {
    let broker = TestBroker::start();
    let topic = unique_topic(name);
    broker.create_topic(&topic, 1);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let producer = transport
        .partition_conn(&topic, 0, Purpose::Produce)
        .await
        .unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    let batch: Vec<Produce> = (0..500).map(|_| Produce::new(value.clone())).collect();
    for _ in 0..RECORDS / 500 {
        producer.write_messages(&batch).await.unwrap();
    }
    let tp = TopicPartition::new(topic.as_str(), 0);
    (broker, transport, tp)
}

/// About 64 KiB per answer (tansu honours `max_bytes`).
fn small_fetches(max_buffered_bytes: usize) -> FetchConfig {
    FetchConfig {
        max_bytes: 64 << 10,
        max_partition_bytes: 64 << 10,
        max_buffered_bytes,
        ..Default::default()
    }
}

async fn read_all(fetcher: &mut Fetcher, from: i64) {
    for expected in from..RECORDS as i64 {
        let m = tokio::time::timeout(Duration::from_secs(10), fetcher.next())
            .await
            .expect("a message within the wait")
            .unwrap();
        assert_eq!(m.offset, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_answer_is_fetched_while_the_caller_reads() {
    let (_broker, transport, tp) = setup("reader-prefetch").await;
    let mut fetcher = Fetcher::new(transport, small_fetches(64 << 20));
    fetcher.assign(vec![(tp, StartOffset::Offset(0))]);
    assert_eq!(fetcher.next().await.unwrap().offset, 0);
    // The caller "processes" the first message; meanwhile the next answer
    // arrives and waits in the buffer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = fetcher.stats();
    assert!(stats.fetches >= 2, "{stats:?}");
    assert!(stats.buffered_bytes > 64 << 10, "{stats:?}");
    // Buffered messages come out of try_next without waiting.
    for expected in 1..100 {
        assert_eq!(fetcher.try_next().unwrap().unwrap().offset, expected);
    }
    read_all(&mut fetcher, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_pauses_at_the_buffer_bound_and_resumes_as_the_caller_reads() {
    let (_broker, transport, tp) = setup("reader-bounded").await;
    // Smaller than one answer: while the caller reads an answer, nothing
    // more is fetched (the same setup with a large bound prefetches, see
    // above).
    let mut fetcher = Fetcher::new(transport, small_fetches(32 << 10));
    fetcher.assign(vec![(tp, StartOffset::Offset(0))]);
    assert_eq!(fetcher.next().await.unwrap().offset, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused = fetcher.stats();
    assert_eq!(paused.fetches, 1, "{paused:?}");
    assert_eq!(paused.buffered_bytes as u64, paused.bytes, "{paused:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fetcher.stats().fetches,
        1,
        "no fetch while the buffer is full"
    );
    read_all(&mut fetcher, 1).await;
    let done = fetcher.stats();
    assert_eq!(done.messages, RECORDS as u64);
    assert!(done.fetches > 2, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_partition_does_not_hold_back_the_others() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-caught-up");
    broker.create_topic(&topic, 4);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    let batch: Vec<Produce> = (0..500).map(|_| Produce::new(value.clone())).collect();
    let mut expected = 0;
    for p in 0..4 {
        let conn = transport
            .partition_conn(&topic, p, Purpose::Produce)
            .await
            .unwrap();
        // Partition 0 is caught up after its first answer; the others
        // need many small answers.
        let rounds = if p == 0 { 1 } else { 10 };
        for _ in 0..rounds {
            conn.write_messages(&batch).await.unwrap();
        }
        expected += rounds * batch.len();
    }
    // A long max_wait: a fetch made of caught-up partitions only would sit
    // it out at the broker.
    let config = FetchConfig {
        max_wait: Duration::from_secs(3),
        ..small_fetches(64 << 20)
    };
    let mut fetcher = Fetcher::new(transport, config);
    fetcher.assign(
        (0..4)
            .map(|p| {
                (
                    TopicPartition::new(topic.as_str(), p),
                    StartOffset::Offset(0),
                )
            })
            .collect(),
    );
    let started = std::time::Instant::now();
    for _ in 0..expected {
        tokio::time::timeout(Duration::from_secs(20), fetcher.next())
            .await
            .expect("a message within the wait")
            .unwrap();
    }
    let elapsed = started.elapsed();
    let stats = fetcher.stats();
    assert!(stats.fetches > 4, "several answers were needed: {stats:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "{elapsed:?} for {expected} records in {} fetches",
        stats.fetches
    );
}
