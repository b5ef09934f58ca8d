//! kafkit-stream's `Processor` under transaction faults tansu cannot
//! produce, injected with librdkafka's mock cluster: an abortable error on
//! the offsets commit (TxnOffsetCommit answering ILLEGAL_GENERATION, as a
//! coordinator does for a member rebalanced out) aborts the transaction,
//! rewinds its inputs, and the retry commits every output once; a
//! fencing error on EndTxn (PRODUCER_FENCED) stops the processor with a
//! fatal error and nothing of that transaction committed; a commit that
//! fails after shutdown is aborted and returned.
//!
//! Outputs are counted by `stream_support::replay_with` with CRC checks
//! off: librdkafka 2.16.1's mock writes its control batches with a CRC of
//! 0 (and lists no aborted transactions, so its read_committed cannot be
//! used either).

mod stream_support;

use std::time::Duration;

use kafkit_conn::Conn;
use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::FetchRequest;
use kafkit_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_protocol::messages::fetch_response::PartitionData;
use kafkit_protocol::records::DecodeOptions;
use kafkit_reader::ReaderConfig;
use kafkit_stream::{Error, Output, Processor};
use kafkit_tests::{MockCluster, unique_topic};
use kafkit_writer::{Message, Writer};
use stream_support::{Replayed, replay_from};

const END_TXN: i16 = 26;
const TXN_OFFSET_COMMIT: i16 = 28;
const RECORDS: usize = 200;

struct Setup {
    cluster: MockCluster,
    input: String,
    output: String,
}

async fn setup() -> Setup {
    let cluster = MockCluster::start(1);
    // The mock advertises flexible versions of the group APIs but drops the
    // connection on them; their last classic versions work (as in
    // reader_group_faults.rs).
    for (api, max) in [(11, 5), (14, 3), (12, 3), (13, 2)] {
        cluster.set_api_versions(api, Some((0, max)));
    }
    let (input, output) = (
        unique_topic("stream-mock-in"),
        unique_topic("stream-mock-out"),
    );
    cluster.create_topic(&input, 2, 1);
    cluster.create_topic(&output, 2, 1);
    let writer = Writer::builder([cluster.bootstrap()])
        .topic(&input)
        .build()
        .await
        .unwrap();
    let inputs: Vec<Message> = (0..RECORDS)
        .map(|i| Message::new(i.to_string()).with_key(i.to_string()))
        .collect();
    for r in writer.write_messages(&inputs).await.unwrap() {
        r.unwrap();
    }
    writer.close().await.unwrap();
    Setup {
        cluster,
        input,
        output,
    }
}

async fn processor(s: &Setup) -> Processor {
    Processor::builder([s.cluster.bootstrap()])
        .group_id(unique_topic("stream-mock-group"))
        .input_topics([s.input.as_str()])
        .transactional_id(unique_topic("stream-mock-txn"))
        .commit_every(Duration::from_millis(100))
        .reader(ReaderConfig {
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_millis(500),
            ..ReaderConfig::default()
        })
        .build()
        .await
        .unwrap()
}

/// The output topic replayed, fetched over a kafkit `Conn` (the test
/// crate's blocking client cannot read the mock's ApiVersions answer).
async fn replay(s: &Setup) -> Replayed {
    let conn = Conn::dial(s.cluster.bootstrap()).await.unwrap();
    let output = s.output.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Handle::current();
        let options = DecodeOptions::new().with_verify_crc(false);
        replay_from(&output, 2, options, |partition, offset| {
            runtime.block_on(fetch(&conn, &output, partition, offset))
        })
    })
    .await
    .unwrap()
}

async fn fetch(conn: &Conn, topic: &str, partition: i32, offset: i64) -> PartitionData {
    let answer = conn
        .request(FetchRequest {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 16 << 20,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 8 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    answer
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .expect("the partition answered")
}

/// Maps `i` to `out-i` until every output is committed (or 30 s pass).
async fn run_to_the_end(s: &Setup, p: &mut Processor) -> Result<(), Error> {
    let output = s.output.clone();
    let done = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while replay(s).await.committed.len() < RECORDS {
            assert!(tokio::time::Instant::now() < deadline, "outputs missing");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    p.run_until(done, |m| {
        let out = Output::new(
            output.clone(),
            format!("out-{}", String::from_utf8_lossy(m.value_bytes())),
        );
        async move { Ok::<_, Error>(out) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_an_abortable_offsets_commit_error_aborts_rewinds_and_commits_once() {
    let s = setup().await;
    s.cluster
        .push_request_errors(TXN_OFFSET_COMMIT, &[ErrorCode::ILLEGAL_GENERATION.0]);
    let mut p = processor(&s).await;
    run_to_the_end(&s, &mut p).await.unwrap();
    let stats = p.stats();
    p.close().await.unwrap();
    assert_eq!(stats.aborts, 1, "{stats:?}");
    assert_eq!(stats.records, RECORDS as u64, "{stats:?}");

    let replayed = replay(&s).await;
    assert_eq!(replayed.committed.len(), RECORDS);
    let counts = replayed.counts();
    assert_eq!(counts.len(), RECORDS, "each output once");
    // The aborted transaction's outputs that reached the log (those sent
    // before its offsets were refused; see the shutdown test below) are
    // closed by its ABORT marker, long written by the end of the run.
    assert_eq!(replayed.open, 0, "{replayed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_fenced_commit_stops_the_processor_with_a_fatal_error() {
    let s = setup().await;
    s.cluster
        .push_request_errors(END_TXN, &[ErrorCode::PRODUCER_FENCED.0]);
    let mut p = processor(&s).await;
    let error = run_to_the_end(&s, &mut p).await.unwrap_err();
    assert!(error.is_fatal(), "{error}");
    assert!(matches!(error, Error::Writer(_)), "{error:?}");
    let stats = p.stats();
    assert_eq!(stats.commits, 0, "{stats:?}");
    // Closing a fenced processor reports the writer's state, never hangs.
    let _ = tokio::time::timeout(Duration::from_secs(15), p.close())
        .await
        .expect("close returns");
    assert!(replay(&s).await.committed.is_empty());
}

/// Shutdown comes while a transaction is open, and that transaction's
/// commit then fails (an abortable TxnOffsetCommit error): `run_until`
/// aborts it and returns the error instead of starting another
/// transaction, and never polls the finished shutdown future again (an
/// `async` block panics when resumed after it completed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_commit_failing_after_shutdown_is_aborted_and_returned() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let s = setup().await;
    let mut p = processor(&s).await;
    let processed = Arc::new(AtomicUsize::new(0));
    let shutdown = {
        let (processed, cluster) = (processed.clone(), &s.cluster);
        async move {
            while processed.load(Ordering::SeqCst) < 20 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The open transaction's offsets will be refused.
            cluster.push_request_errors(TXN_OFFSET_COMMIT, &[ErrorCode::ILLEGAL_GENERATION.0]);
        }
    };
    let output = s.output.clone();
    let error = p
        .run_until(shutdown, |m| {
            processed.fetch_add(1, Ordering::SeqCst);
            let out = Output::new(
                output.clone(),
                format!("out-{}", String::from_utf8_lossy(m.value_bytes())),
            );
            async move {
                // Slow enough that shutdown finds a transaction open.
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, Error>(out)
            }
        })
        .await
        .expect_err("the last commit failed");
    assert!(!error.is_fatal(), "{error}");
    let stats = p.stats();
    assert_eq!(stats.aborts, 1, "{stats:?}");
    p.close().await.unwrap();
    // The aborted transaction's outputs may or may not have reached the
    // log: the processor sends the offsets (TxnOffsetCommit, refused here)
    // before the commit flushes the outputs, as Java's
    // sendOffsetsToTransaction does, so outputs still lingering in the
    // writer are failed by the abort and never sent, and a partition no
    // output reached was never added to the transaction and gets no
    // marker. Those that were sent stay open until the coordinator writes
    // the ABORT marker, after EndTxn has answered: wait until none is open.
    let replayed = kafkit_tests::eventually("the aborted transaction closed", || async {
        let replayed = replay(&s).await;
        if replayed.open == 0 {
            Ok(replayed)
        } else {
            Err(format!("{replayed:?}"))
        }
    })
    .await;
    assert_eq!(
        replayed.committed.len() as u64,
        stats.outputs,
        "exactly the committed transactions' outputs: {replayed:?}"
    );
    assert!(
        replayed.counts().values().all(|n| *n == 1),
        "no output committed twice"
    );
}
