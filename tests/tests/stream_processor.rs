//! kafkit-stream's `Processor` against tansu: records are mapped from an
//! input topic to an output topic in transactions that also commit the
//! input offsets, so a restarted processor resumes after the last commit
//! without producing anything twice; a record that keeps failing goes to
//! the dead-letter topic with the error and its origin in headers, and
//! without a dead-letter topic it stops the processor with its
//! transaction aborted.
//!
//! Outputs are counted by `stream_support::replay`, which replays the
//! transactions from the raw batches, since tansu's read_committed
//! filtering is broken (BROKERS.md, "read_committed consumers still see
//! aborted records").

mod stream_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafkit_reader::ReaderConfig;
use kafkit_stream::{
    Error, Message, Output, Processor, ProcessorBuilder, RetryPolicy, dlq_headers,
};
use kafkit_tests::{TestBroker, unique_topic};
use stream_support::{replay_async, replay_settled, write_inputs};

const PARTITIONS: i32 = 3;

fn processor(broker: &TestBroker, group: &str, input: &str, txn_id: &str) -> ProcessorBuilder {
    Processor::builder([broker.bootstrap()])
        .group_id(group)
        .input_topics([input])
        .transactional_id(txn_id)
        .commit_every(Duration::from_millis(100))
        .transaction_timeout(Duration::from_secs(20))
        .reader(ReaderConfig {
            session_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(500),
            ..ReaderConfig::default()
        })
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// A future that completes once `count` reaches `target`.
async fn reached(count: Arc<AtomicUsize>, target: usize) {
    while count.load(Ordering::SeqCst) < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(m.value_bytes()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_records_to_the_output_topic_and_a_restart_resumes_without_output_twice() {
    let broker = TestBroker::start();
    let (input, output) = (unique_topic("stream-in"), unique_topic("stream-out"));
    broker.create_topic(&input, PARTITIONS as u32);
    broker.create_topic(&output, PARTITIONS as u32);
    let (group, txn_id) = (unique_topic("stream-group"), unique_topic("stream-txn"));
    write_inputs(&broker, &input, &values("a", 0..300)).await;

    let seen = Arc::new(AtomicUsize::new(0));
    let mut first = processor(&broker, &group, &input, &txn_id)
        .build()
        .await
        .unwrap();
    let (counter, out) = (seen.clone(), output.clone());
    first
        .run_until(reached(seen.clone(), 300), |m| {
            counter.fetch_add(1, Ordering::SeqCst);
            let out = out.clone();
            async move {
                let value = format!("out-{}", text(&m));
                Ok::<_, Error>(Output::new(out, value).with_key(m.key.clone().unwrap()))
            }
        })
        .await
        .unwrap();
    let stats = first.stats();
    assert_eq!(stats.records, 300, "{stats:?}");
    assert_eq!(stats.outputs, 300, "{stats:?}");
    assert!(stats.commits >= 1, "{stats:?}");
    assert_eq!(first.lag(), 0, "every input processed");
    first.close().await.unwrap();

    let replayed = replay_settled(&broker, &output, PARTITIONS).await;
    let mut got = replayed.values();
    got.sort();
    let mut want: Vec<String> = values("out-a", 0..300);
    want.sort();
    assert_eq!(got, want, "every input mapped once");
    assert_eq!(replayed.open, 0);

    // More input; a new instance with the same ids resumes from the
    // committed offsets: it sees only the new records.
    write_inputs(&broker, &input, &values("b", 0..100)).await;
    let handed: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let mut second = processor(&broker, &group, &input, &txn_id)
        .build()
        .await
        .unwrap();
    let (counter, out, log) = (
        Arc::new(AtomicUsize::new(0)),
        output.clone(),
        handed.clone(),
    );
    let done = reached(counter.clone(), 100);
    second
        .run_until(done, move |m| {
            counter.fetch_add(1, Ordering::SeqCst);
            log.lock().unwrap().push(text(&m));
            let out = out.clone();
            async move { Ok::<_, Error>(Output::new(out, format!("out-{}", text(&m)))) }
        })
        .await
        .unwrap();
    second.close().await.unwrap();
    let handed = handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 100, "only the new records: {handed:?}");
    assert!(handed.iter().all(|v| v.starts_with('b')), "{handed:?}");

    let replayed = replay_settled(&broker, &output, PARTITIONS).await;
    assert_eq!(replayed.committed.len(), 400);
    assert!(replayed.counts().values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_keeps_failing_goes_to_the_dead_letter_topic_with_headers() {
    let broker = TestBroker::start();
    let (input, output, dlq) = (
        unique_topic("stream-dlq-in"),
        unique_topic("stream-dlq-out"),
        unique_topic("stream-dlq"),
    );
    for t in [&input, &output, &dlq] {
        broker.create_topic(t, 1);
    }
    write_inputs(&broker, &input, &values("r", 0..20)).await;

    let mut p = processor(
        &broker,
        &unique_topic("stream-dlq-group"),
        &input,
        &unique_topic("stream-dlq-txn"),
    )
    .retry(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        dead_letter_topic: Some(dlq.clone()),
        ..RetryPolicy::default()
    })
    .build()
    .await
    .unwrap();
    // r3 and r13 always fail; r5 fails once, then works.
    let calls: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (log, out) = (calls.clone(), output.clone());
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    p.run_until(reached(handled.clone(), 20), move |m| {
        let value = text(&m);
        let mut log = log.lock().unwrap();
        log.push(value.clone());
        let tries = log.iter().filter(|v| **v == value).count();
        let fail = value == "r3" || value == "r13" || (value == "r5" && tries == 1);
        if !fail || tries == 3 {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let out = out.clone();
        async move {
            if fail {
                Err(format!("cannot handle {value} (try {tries})"))
            } else {
                Ok(Output::new(out, format!("ok-{value}")))
            }
        }
    })
    .await
    .unwrap();
    let stats = p.stats();
    p.close().await.unwrap();
    assert_eq!(stats.dead_letters, 2, "{stats:?}");
    assert_eq!(stats.outputs, 18, "{stats:?}");
    assert_eq!(stats.retries, 2 + 2 + 1, "{stats:?}");

    let outputs = replay_settled(&broker, &output, 1).await;
    assert_eq!(outputs.committed.len(), 18);
    assert!(!outputs.values().contains(&"ok-r3".to_owned()));
    assert!(outputs.values().contains(&"ok-r5".to_owned()));

    let letters = replay_settled(&broker, &dlq, 1).await;
    assert_eq!(letters.values(), ["r3", "r13"]);
    let header = |r: &kafkit_protocol::records::Record, key: &str| {
        r.headers
            .iter()
            .find(|h| h.key.as_ref() == key.as_bytes())
            .and_then(|h| h.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_else(|| panic!("no {key} header"))
    };
    let letter = &letters.committed[0];
    assert_eq!(letter.key.as_deref(), Some(&b"r3"[..]), "the input's key");
    assert_eq!(
        header(letter, dlq_headers::ERROR),
        "cannot handle r3 (try 3)"
    );
    assert_eq!(header(letter, dlq_headers::TOPIC), input);
    assert_eq!(header(letter, dlq_headers::PARTITION), "0");
    assert_eq!(header(letter, dlq_headers::OFFSET), "3");
    assert_eq!(header(letter, dlq_headers::ATTEMPTS), "3");
    assert_eq!(header(&letters.committed[1], dlq_headers::OFFSET), "13");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_topic_a_failing_record_stops_the_processor_uncommitted() {
    let broker = TestBroker::start();
    let (input, output) = (
        unique_topic("stream-stop-in"),
        unique_topic("stream-stop-out"),
    );
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    write_inputs(&broker, &input, &values("s", 0..10)).await;

    let mut p = processor(
        &broker,
        &unique_topic("stream-stop-group"),
        &input,
        &unique_topic("stream-stop-txn"),
    )
    .retry(RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
    // One transaction holds all ten: s0..s6 are written before s7 fails.
    .commit_every(Duration::from_secs(5))
    .build()
    .await
    .unwrap();
    let out = output.clone();
    let error = p
        .run(move |m| {
            let (value, out) = (text(&m), out.clone());
            async move {
                if value == "s7" {
                    Err("s7 is poison")
                } else {
                    Ok(Output::new(out, value))
                }
            }
        })
        .await
        .unwrap_err();
    match &error {
        Error::Processing {
            topic,
            offset,
            attempts,
            ..
        } => {
            assert_eq!((topic.as_str(), *offset, *attempts), (input.as_str(), 7, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("s7 is poison"), "{error}");
    let stats = p.stats();
    assert_eq!((stats.commits, stats.aborts), (0, 1), "{stats:?}");
    p.close().await.unwrap();

    let replayed = replay_settled(&broker, &output, 1).await;
    assert!(replayed.committed.is_empty(), "{:?}", replayed.values());
    // s0..s6 were written to the transaction; the abort dropped those
    // still buffered and marked those sent as aborted.
    assert!(replayed.aborted + replayed.open <= 7, "{replayed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_joining_mid_run_takes_partitions_without_output_twice() {
    const RECORDS: usize = 3000;
    let broker = TestBroker::start();
    let (input, output) = (
        unique_topic("stream-join-in"),
        unique_topic("stream-join-out"),
    );
    broker.create_topic(&input, 4);
    broker.create_topic(&output, 4);
    let group = unique_topic("stream-join-group");
    write_inputs(&broker, &input, &values("j", 0..RECORDS)).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let spawn = |txn_id: String| {
        let (broker_addr, input, output, group) = (
            broker.bootstrap(),
            input.clone(),
            output.clone(),
            group.clone(),
        );
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut p = Processor::builder([broker_addr])
                .group_id(group)
                .input_topics([input])
                .transactional_id(txn_id)
                .commit_every(Duration::from_millis(200))
                .reader(ReaderConfig {
                    session_timeout: Duration::from_secs(2),
                    heartbeat_interval: Duration::from_millis(500),
                    ..ReaderConfig::default()
                })
                .build()
                .await
                .unwrap();
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let result = p
                .run_until(shutdown, |m| {
                    let out = Output::new(output.clone(), format!("out-{}", text(&m)));
                    // Slow enough that the second instance joins mid-run.
                    async move {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        Ok::<_, Error>(out)
                    }
                })
                .await;
            let stats = p.stats();
            p.close().await.unwrap();
            result.unwrap();
            stats
        })
    };
    let first = spawn(unique_topic("stream-join-txn-a"));
    stream_support::eventually(Duration::from_secs(20), "the first outputs", async || {
        replay_async(&broker, &output, 4).await.committed.len() > 300
    })
    .await;
    let second = spawn(unique_topic("stream-join-txn-b"));
    stream_support::eventually(Duration::from_secs(40), "every output", async || {
        replay_async(&broker, &output, 4).await.committed.len() >= RECORDS
    })
    .await;
    stop_tx.send(true).unwrap();
    let (a, b) = (first.await.unwrap(), second.await.unwrap());

    let replayed = replay_settled(&broker, &output, 4).await;
    assert_eq!(replayed.committed.len(), RECORDS, "{a:?} {b:?}");
    assert!(replayed.counts().values().all(|&n| n == 1));
    assert!(
        b.records > 0,
        "the second instance took partitions: {b:?} (first: {a:?})"
    );
    assert_eq!(a.records + b.records, RECORDS as u64, "{a:?} {b:?}");
    eprintln!("first: {a:?}\nsecond: {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_instance_with_the_same_transactional_id_fences_the_running_one() {
    let broker = TestBroker::start();
    let (input, output) = (
        unique_topic("stream-fence-in"),
        unique_topic("stream-fence-out"),
    );
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    write_inputs(&broker, &input, &values("f", 0..2000)).await;
    let txn_id = unique_topic("stream-fence-txn");

    let mut p = processor(
        &broker,
        &unique_topic("stream-fence-group"),
        &input,
        &txn_id,
    )
    .build()
    .await
    .unwrap();
    let out = output.clone();
    let running = p.run(move |m| {
        let out = Output::new(out.clone(), text(&m));
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok::<_, Error>(out)
        }
    });
    // Once the first transaction committed, a new writer with the same
    // transactional id bumps the epoch (InitProducerId).
    let fence = async {
        stream_support::eventually(Duration::from_secs(20), "a first commit", async || {
            !replay_async(&broker, &output, 1).await.committed.is_empty()
        })
        .await;
        kafkit_writer::Writer::builder([broker.bootstrap()])
            .transactional_id(txn_id.clone())
            .build()
            .await
            .unwrap()
    };
    let (error, newer) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(30), running),
        fence
    );
    let error = error.expect("the fenced processor stops").unwrap_err();
    assert!(error.is_fatal(), "{error}");
    let stats = p.stats();
    assert!(stats.commits >= 1, "{stats:?}");
    let _ = p.close().await;
    newer.close().await.unwrap();

    // What the fenced instance committed is there once; its last
    // transaction is not.
    let replayed = replay_settled(&broker, &output, 1).await;
    assert_eq!(replayed.committed.len() as u64, stats.outputs);
    assert!(replayed.counts().values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_mid_transaction_is_resumed_by_the_next_run_without_output_twice() {
    let broker = TestBroker::start();
    let (input, output) = (
        unique_topic("stream-cancel-in"),
        unique_topic("stream-cancel-out"),
    );
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    write_inputs(&broker, &input, &values("c", 0..200)).await;
    let mut p = processor(
        &broker,
        &unique_topic("stream-cancel-group"),
        &input,
        &unique_topic("stream-cancel-txn"),
    )
    .build()
    .await
    .unwrap();

    // The first run hangs in the function on c150, with c0..c149 written
    // in open or committed transactions, and is dropped there.
    let out = output.clone();
    let first = p.run(move |m| {
        let (value, out) = (text(&m), out.clone());
        async move {
            if value == "c150" {
                std::future::pending::<()>().await;
            }
            Ok::<_, Error>(Output::new(out, value))
        }
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(4), first)
            .await
            .is_err(),
        "the run hangs on c150"
    );

    // The next run aborts the open transaction, rewinds, and goes on.
    let count = Arc::new(AtomicUsize::new(0));
    let (counter, out) = (count.clone(), output.clone());
    let done = async {
        stream_support::eventually(Duration::from_secs(20), "every output", async || {
            replay_async(&broker, &output, 1).await.committed.len() >= 200
        })
        .await;
    };
    p.run_until(done, move |m| {
        counter.fetch_add(1, Ordering::SeqCst);
        let out = Output::new(out.clone(), text(&m));
        async move { Ok::<_, Error>(out) }
    })
    .await
    .unwrap();
    let stats = p.stats();
    p.close().await.unwrap();
    assert_eq!(stats.aborts, 1, "the cancelled transaction: {stats:?}");
    assert!(count.load(Ordering::SeqCst) >= 50, "c150 onwards at least");

    let replayed = replay_settled(&broker, &output, 1).await;
    assert_eq!(replayed.committed.len(), 200);
    let mut want = values("c", 0..200);
    want.sort();
    let mut got = replayed.values();
    got.sort();
    assert_eq!(got, want, "each output once");
}

/// What `send_offsets_to_transaction` gets from the reader: the member
/// the group knows (KIP-447), so a member rebalanced out cannot commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_metadata_sent_with_transaction_offsets_names_the_joined_member() {
    let broker = TestBroker::start();
    let input = unique_topic("stream-meta-in");
    broker.create_topic(&input, 1);
    write_inputs(&broker, &input, &values("m", 0..1)).await;
    let group = unique_topic("stream-meta-group");
    let mut reader = kafkit_reader::Reader::builder([broker.bootstrap()])
        .group_id(&group)
        .topics([&input])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    reader.fetch_message().await.unwrap();
    let joined = reader.group_metadata().unwrap();
    assert_eq!(joined.group_id, group);
    assert!(joined.generation_id >= 0, "{joined:?}");
    assert!(!joined.member_id.is_empty(), "{joined:?}");
    assert_eq!(joined.group_instance_id, None);
    reader.close().await.unwrap();

    let partition = kafkit_reader::Reader::builder([broker.bootstrap()])
        .partition(&input, 0)
        .build()
        .await
        .unwrap();
    assert_eq!(partition.group_metadata(), None);
}
