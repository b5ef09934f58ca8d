//! Transactions across clients, on a real Apache Kafka broker: what one
//! side commits the other sees, what it aborts the other never sees.
//!
//! - kafkit's transactional `Writer` commits some transactions and aborts
//!   others (after their records reached the log); the Java client
//!   consuming `read_committed` sees every committed record and no aborted
//!   one, while `read_uncommitted` sees both.
//! - The Java client's `txn-produce` does the same; kafkit's `Reader`
//!   with `read_committed` sees exactly the committed records.
//! - kafkit-stream's exactly-once `Processor` maps the input a Java
//!   transactional producer wrote (some of it aborted) to an output topic;
//!   a Java `read_committed` consumer sees exactly one output per
//!   committed input and none for an aborted one.
//!
//! "Nothing more" is checked by asking for one record more than expected
//! and getting a timeout after the expected ones.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafkit_reader::{FetchConfig, IsolationLevel, Reader, ReaderConfig};
use kafkit_stream::{Error as StreamError, Output, Processor};
use kafkit_tests::{Peer, PeerClient, TestBroker, go_java_peers::int, unique_topic};
use kafkit_writer::{Message, Writer};

const PARTITIONS: u32 = 3;
/// Transactions per run, records per transaction, and every how many
/// transactions one is aborted (transactions 2, 5 and 8 of 0..10).
const TRANSACTIONS: usize = 10;
const PER_TXN: usize = 20;
const ABORT_EVERY: usize = 3;
/// How long "no more records" is waited for.
const QUIET: Duration = Duration::from_secs(5);

fn aborted(txn: usize) -> bool {
    txn % ABORT_EVERY == ABORT_EVERY - 1
}

/// The run's broker, or `None` (the test returns) on tansu, whose
/// read_committed filtering is broken (BROKERS.md).
fn kafka_broker() -> Option<TestBroker> {
    let broker = TestBroker::start();
    if broker.is_tansu() {
        eprintln!("!!!!!!!! SKIPPING an Apache Kafka interop test: the broker is tansu");
        return None;
    }
    Some(broker)
}

/// The values of transaction `txn`, as both sides write them: `"i-n"`.
fn txn_values(txn: usize, per_txn: usize) -> impl Iterator<Item = String> {
    (0..per_txn).map(move |n| format!("{txn}-{n}"))
}

/// The values of the committed transactions.
fn committed_values(transactions: usize, per_txn: usize) -> BTreeSet<String> {
    (0..transactions)
        .filter(|&t| !aborted(t))
        .flat_map(|t| txn_values(t, per_txn))
        .collect()
}

fn utf8(bytes: Option<&[u8]>) -> String {
    String::from_utf8(bytes.expect("a value").to_vec()).expect("a UTF-8 value")
}

/// Consumes exactly `count` records of `topic` with the Java client at
/// `isolation` and returns their values, then checks that a
/// `count + 1`-record read ends in a timeout after `count`.
fn java_reads_exactly(
    java: &Peer,
    broker: &TestBroker,
    topic: &str,
    count: usize,
    isolation: &str,
) -> Vec<String> {
    let flags = [("--isolation", isolation)];
    let values: Vec<String> = java
        .consume(&broker.bootstrap(), topic, count, &flags)
        .iter()
        .map(|r| utf8(r.value.as_deref()))
        .collect();
    let quiet = QUIET.as_millis().to_string();
    let one_more = java
        .command("consume")
        .flag("--brokers", &broker.bootstrap())
        .flag("--topic", topic)
        .flag("--from", "earliest")
        .flag("--isolation", isolation)
        .flag("--count", &(count + 1).to_string())
        .flag("--timeout-ms", &quiet)
        .output();
    let want = format!("with {count} of {} records", count + 1);
    assert!(
        !one_more.status.success() && one_more.error().is_some_and(|e| e.contains(&want)),
        "java {isolation} on {topic}: expected a timeout {want}, got {:?} ({})",
        one_more.error(),
        one_more.status
    );
    values
}

/// kafkit commits and aborts; the Java client reads `read_committed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_read_committed_sees_only_what_kafkit_commits() {
    let Some(broker) = kafka_broker() else { return };
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let topic = unique_topic("interop-txn-kafkit");
    tokio::task::block_in_place(|| broker.create_topic(&topic, PARTITIONS));
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .transactional_id(unique_topic("interop-txn-kafkit-id"))
        .transaction_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    for txn in 0..TRANSACTIONS {
        writer.begin_transaction().unwrap();
        // Every transaction spans every partition.
        let messages: Vec<Message> = txn_values(txn, PER_TXN)
            .enumerate()
            .map(|(n, v)| Message::new(v).with_partition((n % PARTITIONS as usize) as i32))
            .collect();
        // Each result is an acknowledgement: the records are in the log
        // before the transaction ends either way.
        for result in writer.write_messages(&messages).await.unwrap() {
            result.unwrap();
        }
        if aborted(txn) {
            writer.abort_transaction().await.unwrap();
        } else {
            writer.commit_transaction().await.unwrap();
        }
    }
    let stats = writer.stats();
    let aborts = (0..TRANSACTIONS).filter(|&t| aborted(t)).count();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_aborted),
        ((TRANSACTIONS - aborts) as u64, aborts as u64)
    );
    writer.close().await.unwrap();

    let want = committed_values(TRANSACTIONS, PER_TXN);
    let (committed, everything) = tokio::task::block_in_place(|| {
        (
            java_reads_exactly(&java, &broker, &topic, want.len(), "read_committed"),
            java_reads_exactly(
                &java,
                &broker,
                &topic,
                TRANSACTIONS * PER_TXN,
                "read_uncommitted",
            ),
        )
    });
    let seen: BTreeSet<String> = committed.iter().cloned().collect();
    assert_eq!(seen.len(), committed.len(), "a committed record seen twice");
    assert_eq!(
        seen, want,
        "read_committed sees exactly the committed records"
    );
    // The aborted records really are in the log: read_uncommitted sees them.
    let all: BTreeSet<String> = everything.into_iter().collect();
    let every_value: BTreeSet<String> = (0..TRANSACTIONS)
        .flat_map(|t| txn_values(t, PER_TXN))
        .collect();
    assert_eq!(all, every_value);
}

/// A group reader of `topic` at `isolation` reads `count` records, then
/// nothing more for [`QUIET`]; their values.
async fn kafkit_reads_exactly(
    broker: &TestBroker,
    topic: &str,
    count: usize,
    isolation: IsolationLevel,
) -> Vec<String> {
    let mut reader = Reader::builder([broker.bootstrap()])
        .group_id(unique_topic("interop-txn-reader"))
        .topics([topic])
        .fetch(FetchConfig {
            isolation_level: isolation,
            ..FetchConfig::default()
        })
        .build()
        .await
        .unwrap();
    let mut values = Vec::new();
    for index in 0..count {
        let m = tokio::time::timeout(Duration::from_secs(60), reader.fetch_message())
            .await
            .unwrap_or_else(|_| panic!("{isolation:?}: record {index} of {count} within 60 s"))
            .unwrap();
        values.push(utf8(m.value.as_deref()));
    }
    let extra = tokio::time::timeout(QUIET, reader.fetch_message()).await;
    assert!(
        extra.is_err(),
        "{isolation:?}: a record past the {count} expected: {extra:?}"
    );
    reader.close().await.unwrap();
    values
}

/// The Java client commits and aborts; kafkit's `Reader` reads
/// `read_committed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkit_read_committed_sees_only_what_java_commits() {
    let Some(broker) = kafka_broker() else { return };
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let topic = unique_topic("interop-txn-java");
    let out = tokio::task::block_in_place(|| {
        broker.create_topic(&topic, PARTITIONS);
        java.command("txn-produce")
            .flag("--brokers", &broker.bootstrap())
            .flag("--topic", &topic)
            .flag("--transactional-id", &unique_topic("interop-txn-java-id"))
            .flag("--transactions", &TRANSACTIONS.to_string())
            .flag("--per-txn", &PER_TXN.to_string())
            .flag("--abort-every", &ABORT_EVERY.to_string())
            .run()
    });
    let want = committed_values(TRANSACTIONS, PER_TXN);
    let done = out.done().expect("a done line");
    let aborts = (0..TRANSACTIONS).filter(|&t| aborted(t)).count();
    assert_eq!(
        (int(done, "count"), int(done, "aborted")),
        (want.len() as i64, aborts as i64),
        "{:?}",
        out.lines
    );

    let committed =
        kafkit_reads_exactly(&broker, &topic, want.len(), IsolationLevel::ReadCommitted).await;
    let seen: BTreeSet<String> = committed.iter().cloned().collect();
    assert_eq!(seen.len(), committed.len(), "a committed record seen twice");
    assert_eq!(
        seen, want,
        "read_committed sees exactly the committed records"
    );
    // The aborted records really are in the log.
    let everything = kafkit_reads_exactly(
        &broker,
        &topic,
        TRANSACTIONS * PER_TXN,
        IsolationLevel::ReadUncommitted,
    )
    .await;
    assert!(everything.contains(&"2-0".to_owned()), "an aborted record");
    assert_eq!(everything.len(), TRANSACTIONS * PER_TXN);
}

/// A Java transactional producer feeds kafkit-stream's exactly-once
/// `Processor`; a Java `read_committed` consumer checks its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_outputs_each_committed_java_input_exactly_once() {
    let Some(broker) = kafka_broker() else { return };
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let (input, output) = (
        unique_topic("interop-eos-in"),
        unique_topic("interop-eos-out"),
    );
    const TXNS: usize = 6;
    const PER: usize = 50;
    let inputs = committed_values(TXNS, PER);
    tokio::task::block_in_place(|| {
        broker.create_topic(&input, PARTITIONS);
        broker.create_topic(&output, PARTITIONS);
    });
    let mut processor = Processor::builder([broker.bootstrap()])
        .group_id(unique_topic("interop-eos-group"))
        .input_topics([&input])
        .transactional_id(unique_topic("interop-eos-txn"))
        .commit_every(Duration::from_millis(100))
        .transaction_timeout(Duration::from_secs(30))
        .reader(ReaderConfig {
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_millis(500),
            ..ReaderConfig::default()
        })
        .build()
        .await
        .unwrap();

    // The input is written while the processor runs: transactions 2 and 5
    // are aborted, so only 4 x 50 records are input at all.
    let (bootstrap, topic, peer) = (broker.bootstrap(), input.clone(), java.clone());
    let producer = tokio::task::spawn_blocking(move || {
        peer.command("txn-produce")
            .flag("--brokers", &bootstrap)
            .flag("--topic", &topic)
            .flag("--transactional-id", &unique_topic("interop-eos-input-id"))
            .flag("--transactions", &TXNS.to_string())
            .flag("--per-txn", &PER.to_string())
            .flag("--abort-every", &ABORT_EVERY.to_string())
            .run()
    });
    let handled = Arc::new(AtomicUsize::new(0));
    let (counter, out) = (handled.clone(), output.clone());
    let target = inputs.len();
    let done = {
        let handled = handled.clone();
        async move {
            while handled.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        processor.run_until(done, move |m| {
            counter.fetch_add(1, Ordering::SeqCst);
            let value = format!("out-{}", String::from_utf8_lossy(m.value_bytes()));
            let out = out.clone();
            async move { Ok::<_, StreamError>(Output::new(out, value)) }
        }),
    )
    .await
    .expect("the processor handles every committed input within 120 s")
    .unwrap();
    let fed = producer.await.unwrap();
    assert_eq!(
        fed.done().map(|d| int(d, "count")),
        Some(inputs.len() as i64)
    );
    let stats = processor.stats();
    processor.close().await.unwrap();
    assert_eq!(stats.records, inputs.len() as u64, "{stats:?}");
    assert_eq!(stats.outputs, inputs.len() as u64, "{stats:?}");
    assert!(stats.commits >= 1, "{stats:?}");

    let outputs = tokio::task::block_in_place(|| {
        java_reads_exactly(&java, &broker, &output, inputs.len(), "read_committed")
    });
    let seen: BTreeSet<String> = outputs.iter().cloned().collect();
    assert_eq!(seen.len(), outputs.len(), "an output committed twice");
    let want: BTreeSet<String> = inputs.iter().map(|v| format!("out-{v}")).collect();
    assert_eq!(
        seen, want,
        "one output per committed input, none for aborted ones"
    );
}
