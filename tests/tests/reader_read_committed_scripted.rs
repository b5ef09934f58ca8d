//! read_committed, proven against a scripted peer (`admin_support`): one
//! partition whose log holds plain records, a committed transaction, an
//! aborted one (with its ABORT control batch) and a transaction left open,
//! served the way a Kafka broker serves it: a read_committed Fetch gets
//! data only below the last stable offset (LSO), plus the list of aborted
//! transactions; a read_uncommitted one gets everything. The reader must
//! hand out committed and plain records only, stop at the LSO while the
//! transaction is open, and move past it once that transaction commits.
//!
//! Why not a real broker: tansu writes the markers but its Fetch answers
//! list no aborted transactions, so read_committed consumers still see
//! aborted records there (BROKERS.md, "read_committed consumers still see
//! aborted records"; `reader_partition_txn.rs` runs against tansu and
//! skips that assertion). librdkafka 2.16.1's mock cluster was tried too:
//! its Fetch answers list no aborted transactions either, its LSO does not
//! stop at an open transaction, and its control batches carry a CRC of 0.

#[path = "admin_support/mod.rs"]
mod admin_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use admin_support::ScriptedCluster;
use bytes::Bytes;
use kafkit_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafkit_protocol::messages::{FetchResponse, RequestBody, ResponseBody};
use kafkit_protocol::records::{ControlRecord, RecordBatchBuilder, control_batch};
use kafkit_reader::{FetchConfig, IsolationLevel, Message, Reader, StartOffset};

const TOPIC: &str = "read-committed";
const COMMITTER: i64 = 7;
const ABORTER: i64 = 8;
const OPEN: i64 = 9;
/// The open transaction's first offset: the LSO while it is open.
const OPEN_AT: i64 = 10;

/// The partition's log: `(base offset, last offset, batch bytes)`.
fn log(open_committed: bool) -> Vec<(i64, i64, Bytes)> {
    let data = |base: i64, producer: Option<i64>, values: &[&str]| {
        let mut b = RecordBatchBuilder::new(base);
        if let Some(id) = producer {
            b = b.with_producer(id, 0, base as i32).with_transactional(true);
        }
        for v in values {
            b.append(1_700_000_000_000, None, Some(v.as_bytes()), &[])
                .unwrap();
        }
        (base, base + values.len() as i64 - 1, b.finish().unwrap())
    };
    let marker = |at: i64, producer: i64, commit: bool| {
        let record = if commit {
            ControlRecord::commit(0)
        } else {
            ControlRecord::abort(0)
        };
        let batch = control_batch(at, producer, 0, &record, 1_700_000_000_000).unwrap();
        (at, at, batch)
    };
    let mut log = vec![
        data(0, None, &["plain-1"]),
        data(1, Some(COMMITTER), &["committed-1", "committed-2"]),
        marker(3, COMMITTER, true),
        data(4, Some(ABORTER), &["aborted-1", "aborted-2"]),
        marker(6, ABORTER, false),
        data(7, None, &["plain-2"]),
        data(8, Some(COMMITTER), &["committed-3"]),
        marker(9, COMMITTER, true),
        data(OPEN_AT, Some(OPEN), &["open-1"]),
        data(11, None, &["after-open"]),
    ];
    if open_committed {
        log.push(marker(12, OPEN, true));
    }
    log
}

/// Answers a Fetch of partition 0 as a broker would.
fn fetch(request: &kafkit_protocol::messages::FetchRequest, open_committed: bool) -> FetchResponse {
    let log = log(open_committed);
    let high_watermark = log.last().unwrap().1 + 1;
    let lso = if open_committed {
        high_watermark
    } else {
        OPEN_AT
    };
    let read_committed = request.isolation_level == 1;
    let responses = request
        .topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: t.topic.clone(),
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let limit = if read_committed { lso } else { high_watermark };
                    let mut records = Vec::new();
                    for (base, last, batch) in &log {
                        if *last >= p.fetch_offset && *base < limit {
                            records.extend_from_slice(batch);
                        }
                    }
                    // The aborted transactions overlapping what is served.
                    let aborted = (read_committed && p.fetch_offset <= 6).then(|| {
                        vec![AbortedTransaction {
                            producer_id: ABORTER,
                            first_offset: 4,
                            ..Default::default()
                        }]
                    });
                    PartitionData {
                        partition_index: p.partition,
                        high_watermark,
                        last_stable_offset: lso,
                        log_start_offset: 0,
                        aborted_transactions: read_committed.then(|| aborted.unwrap_or_default()),
                        records: Some(Bytes::from(records)),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    FetchResponse {
        responses,
        ..Default::default()
    }
}

struct Peer {
    cluster: ScriptedCluster,
    committed: Arc<AtomicBool>,
    fetches: Arc<AtomicU64>,
}

async fn peer() -> Peer {
    let committed = Arc::new(AtomicBool::new(false));
    let fetches = Arc::new(AtomicU64::new(0));
    let (c, f) = (committed.clone(), fetches.clone());
    let cluster = ScriptedCluster::start(1, move |_, request| match request {
        RequestBody::Fetch(r) => {
            f.fetch_add(1, Ordering::Relaxed);
            if r.max_wait_ms > 0 {
                // Stands for the broker's long poll: with nothing new, a
                // real broker waits up to max_wait before answering.
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(ResponseBody::Fetch(fetch(r, c.load(Ordering::SeqCst))))
        }
        other => panic!("unexpected request {other:?}"),
    })
    .await;
    Peer {
        cluster,
        committed,
        fetches,
    }
}

async fn reader(peer: &Peer, isolation: IsolationLevel) -> Reader {
    Reader::builder([peer.cluster.bootstrap()])
        .partition(TOPIC, 0)
        .start_offset(StartOffset::Offset(0))
        .fetch(FetchConfig {
            isolation_level: isolation,
            max_wait: Duration::from_millis(100),
            ..FetchConfig::default()
        })
        .build()
        .await
        .unwrap()
}

/// Reads `count` messages, each within 10 s.
async fn read(reader: &mut Reader, count: usize) -> Vec<Message> {
    let mut out = Vec::new();
    for _ in 0..count {
        let m = tokio::time::timeout(Duration::from_secs(10), reader.fetch_message())
            .await
            .unwrap_or_else(|_| panic!("only {} messages: {:?}", out.len(), values(&out)))
            .unwrap();
        out.push(m);
    }
    out
}

fn values(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.value_bytes()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_uncommitted_sees_aborted_and_open_records_but_never_markers() {
    let peer = peer().await;
    let mut reader = reader(&peer, IsolationLevel::ReadUncommitted).await;
    let all = read(&mut reader, 9).await;
    assert_eq!(
        values(&all),
        [
            "plain-1",
            "committed-1",
            "committed-2",
            "aborted-1",
            "aborted-2",
            "plain-2",
            "committed-3",
            "open-1",
            "after-open"
        ]
    );
    let offsets: Vec<i64> = all.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 5, 7, 8, 10, 11]);
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_aborted_records_and_waits_at_the_open_transaction() {
    let peer = peer().await;
    let mut reader = reader(&peer, IsolationLevel::ReadCommitted).await;
    let first = read(&mut reader, 5).await;
    assert_eq!(
        values(&first),
        [
            "plain-1",
            "committed-1",
            "committed-2",
            "plain-2",
            "committed-3"
        ]
    );

    // Nothing at or past the LSO while the transaction is open, though
    // the reader keeps fetching.
    let before = peer.fetches.load(Ordering::Relaxed);
    let waited = tokio::time::timeout(Duration::from_secs(1), reader.fetch_message()).await;
    assert!(
        waited.is_err(),
        "read past the LSO ({OPEN_AT}): {:?}",
        waited.map(|m| m.map(|m| values(&[m])))
    );
    assert!(peer.fetches.load(Ordering::Relaxed) > before);
    assert_eq!(reader.offset(), Some(OPEN_AT));
    assert_eq!(reader.lag(), 0, "lag counts up to the LSO");

    // The transaction commits: the reader moves on past it.
    peer.committed.store(true, Ordering::SeqCst);
    let rest = read(&mut reader, 2).await;
    assert_eq!(values(&rest), ["open-1", "after-open"]);
    assert_eq!(rest[0].offset, OPEN_AT);
    // The COMMIT marker at 12 is skipped, never handed out.
    let waited = tokio::time::timeout(Duration::from_millis(500), reader.fetch_message()).await;
    assert!(
        waited.is_err(),
        "{:?}",
        waited.map(|m| m.map(|m| values(&[m])))
    );
    assert_eq!(reader.offset(), Some(13));
    reader.close().await.unwrap();
}
