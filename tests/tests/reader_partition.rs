//! kafkit-reader's `Fetcher` against tansu: reading assigned partitions
//! from an exact offset, the earliest or latest one, or a timestamp; seeks;
//! several partitions at once; every codec; lag and stats; cancelled reads.
//! (tansu never answers OFFSET_OUT_OF_RANGE, so the reset policies are
//! tested against librdkafka's mock cluster in `reader_partition_faults.rs`.)

use std::time::{Duration, SystemTime};

use kafkit_conn::{Compression, Message as Produce, Purpose, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, Message, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};

/// A generous bound for any one `next()` in these tests.
const WAIT: Duration = Duration::from_secs(10);

async fn transport(broker: &TestBroker) -> Transport {
    Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap()
}

/// Produces `values` to `topic`/`partition`, `per_batch` per request (one
/// record per batch keeps tansu's high watermark right: see BROKERS.md).
async fn produce(
    transport: &Transport,
    topic: &str,
    partition: i32,
    values: &[String],
    per_batch: usize,
    codec: Compression,
) {
    let mut conn = transport
        .partition_conn(topic, partition, Purpose::Produce)
        .await
        .unwrap();
    conn.set_compression(codec);
    for chunk in values.chunks(per_batch) {
        let messages: Vec<Produce> = chunk
            .iter()
            .map(|v| Produce::new(v.clone()).with_key(format!("key-{v}")))
            .collect();
        conn.write_messages(&messages).await.unwrap();
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn next(fetcher: &mut Fetcher) -> Message {
    tokio::time::timeout(WAIT, fetcher.next())
        .await
        .expect("a message within the wait")
        .expect("no error")
}

async fn read_n(fetcher: &mut Fetcher, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(fetcher).await);
    }
    out
}

fn value(m: &Message) -> &str {
    std::str::from_utf8(m.value_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_at_offset_42_reads_exactly_from_there() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-at-42");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    let all = values("v", 100);
    produce(&transport, &topic, 0, &all, 10, Compression::None).await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Offset(42))]);
    assert_eq!(fetcher.position(&tp), Some(42));
    let read = read_n(&mut fetcher, 58).await;
    for (i, m) in read.iter().enumerate() {
        let offset = 42 + i as i64;
        assert_eq!(m.offset, offset);
        assert_eq!(value(m), all[offset as usize]);
        assert_eq!(
            m.key_bytes(),
            format!("key-{}", all[offset as usize]).as_bytes()
        );
        assert_eq!((&*m.topic, m.partition), (topic.as_str(), 0));
        assert!(m.time().is_some());
    }
    assert_eq!(fetcher.position(&tp), Some(100));
    assert_eq!(fetcher.assignment(), vec![tp]);
    // Nothing buffered: try_next does not wait.
    assert!(fetcher.try_next().is_none());
    // Nothing more: the next read waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fetcher.next())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earliest_reads_everything_and_latest_only_new_messages() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-ends");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    let old = values("old", 5);
    produce(&transport, &topic, 0, &old, 1, Compression::None).await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut earliest = Fetcher::new(transport.clone(), FetchConfig::default());
    earliest.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    let read = read_n(&mut earliest, 5).await;
    assert_eq!(read.iter().map(value).collect::<Vec<_>>(), old);
    assert_eq!(read[0].offset, 0);

    let mut latest = Fetcher::new(transport.clone(), FetchConfig::default());
    latest.assign(vec![(tp.clone(), StartOffset::Latest)]);
    // Wait until the start is resolved, so "new" really is new.
    let deadline = tokio::time::Instant::now() + WAIT;
    while latest.position(&tp).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "latest resolved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(latest.position(&tp), Some(5));
    let new = values("new", 3);
    produce(&transport, &topic, 0, &new, 1, Compression::None).await;
    let read = read_n(&mut latest, 3).await;
    assert_eq!(read.iter().map(value).collect::<Vec<_>>(), new);
    assert_eq!(read[0].offset, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_moves_back_and_forward() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-seek");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    let all = values("s", 30);
    produce(&transport, &topic, 0, &all, 10, Compression::None).await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    assert_eq!(next(&mut fetcher).await.offset, 0);
    assert_eq!(next(&mut fetcher).await.offset, 1);
    fetcher.seek(&tp, StartOffset::Offset(25));
    assert_eq!(fetcher.position(&tp), Some(25));
    assert_eq!(next(&mut fetcher).await.offset, 25);
    fetcher.seek(&tp, StartOffset::Offset(3));
    let read = read_n(&mut fetcher, 4).await;
    assert_eq!(
        read.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    fetcher.seek(&tp, StartOffset::Earliest);
    assert_eq!(next(&mut fetcher).await.offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_start_finds_the_first_later_record() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-time");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    produce(
        &transport,
        &topic,
        0,
        &values("before", 3),
        3,
        Compression::None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    produce(
        &transport,
        &topic,
        0,
        &values("after", 2),
        2,
        Compression::None,
    )
    .await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Timestamp(since))]);
    let first = next(&mut fetcher).await;
    if !broker.has_tansu_bug("ListOffsets by timestamp always answers 0") {
        assert_eq!(first.offset, 3);
        assert_eq!(value(&first), "after-0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_reads_back_exactly() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-codecs");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut expected = Vec::new();
    for codec in codecs {
        let batch = values(&format!("{codec:?}"), 20);
        produce(&transport, &topic, 0, &batch, 20, codec).await;
        expected.extend(batch);
    }
    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp, StartOffset::Offset(0))]);
    let read = read_n(&mut fetcher, expected.len()).await;
    assert_eq!(read.iter().map(value).collect::<Vec<_>>(), expected);
    for (i, m) in read.iter().enumerate() {
        assert_eq!(m.offset, i as i64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_partitions_are_read_together_with_lag_and_stats() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-multi");
    broker.create_topic(&topic, 3);
    let transport = transport(&broker).await;
    for p in 0..3 {
        produce(
            &transport,
            &topic,
            p,
            &values(&format!("p{p}"), 10),
            1,
            Compression::None,
        )
        .await;
    }
    let tps: Vec<TopicPartition> = (0..3)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(
        tps.iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(4)))
            .collect(),
    );
    let read = read_n(&mut fetcher, 18).await;
    for tp in &tps {
        let offsets: Vec<i64> = read
            .iter()
            .filter(|m| m.partition == tp.partition)
            .map(|m| m.offset)
            .collect();
        assert_eq!(offsets, (4..10).collect::<Vec<_>>(), "{tp}");
        assert_eq!(fetcher.position(tp), Some(10));
        assert_eq!(fetcher.lag(tp), Some(0), "{tp}");
        assert_eq!(fetcher.high_watermark(tp), Some(10));
    }
    let stats = fetcher.stats();
    assert_eq!(stats.messages, 18);
    assert!(stats.fetches >= 1 && stats.bytes > 0, "{stats:?}");
    assert_eq!(stats.lag, 0);

    // Lag is what remains to read; read_lag asks the broker.
    assert_eq!(fetcher.read_lag(&tps[0]).await.unwrap(), 0);
    fetcher.seek(&tps[0], StartOffset::Offset(7));
    assert_eq!(fetcher.lag(&tps[0]), Some(3));
    assert_eq!(fetcher.read_lag(&tps[0]).await.unwrap(), 3);
    assert!(fetcher.is_assigned(&tps[1]));
    fetcher.unassign(&tps[1..]);
    assert_eq!(fetcher.assignment(), vec![tps[0].clone()]);
    assert!(!fetcher.is_assigned(&tps[1]));
    assert_eq!(fetcher.lag(&tps[1]), None);
    assert!(fetcher.read_lag(&tps[1]).await.is_err());
    assert_eq!(next(&mut fetcher).await.offset, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_next_loses_no_message() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-cancel");
    broker.create_topic(&topic, 1);
    let transport = transport(&broker).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut fetcher = Fetcher::new(transport.clone(), FetchConfig::default());
    fetcher.assign(vec![(tp, StartOffset::Offset(0))]);
    // Cancel a few waits while nothing is there, then produce.
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(50), fetcher.next())
                .await
                .is_err()
        );
    }
    produce(&transport, &topic, 0, &values("c", 3), 3, Compression::None).await;
    let read = read_n(&mut fetcher, 3).await;
    assert_eq!(read.iter().map(|m| m.offset).collect::<Vec<_>>(), [0, 1, 2]);
}
