//! Shared by the `stream_*` tests: writing inputs, and the verifier that
//! counts what a read_committed reader would see of a topic.
//!
//! tansu's read_committed filtering is broken (BROKERS.md, "read_committed
//! consumers still see aborted records"), so the verifier does not ask the
//! broker to filter: it reads every batch read_uncommitted, raw, and
//! replays the transactions itself. A transactional batch's records wait
//! for their producer's next control batch: COMMIT keeps them, ABORT
//! drops them; records of a transaction that never ended are dropped too
//! (they are invisible to read_committed readers). Non-transactional
//! records are kept as they come.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::fetch_response::PartitionData;
use kafkit_protocol::records::{
    ControlRecord, ControlRecordType, DecodeOptions, Record, RecordSet,
};
use kafkit_tests::{RawClient, TestBroker};
use kafkit_writer::{Message, Writer};

/// What the verifier found in a topic.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Records of committed transactions and plain records, per partition
    /// in offset order.
    pub committed: Vec<Record>,
    /// Records of aborted transactions.
    pub aborted: usize,
    /// Records of transactions with no marker yet.
    pub open: usize,
    /// COMMIT and ABORT markers seen.
    pub commits: usize,
    pub aborts: usize,
}

impl Replayed {
    /// The committed records' values, as text.
    pub fn values(&self) -> Vec<String> {
        self.committed
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    /// How many times each committed value appears.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for v in self.values() {
            *counts.entry(v).or_insert(0) += 1;
        }
        counts
    }
}

/// Replays every partition of `topic` (see the module docs). Blocking:
/// call it from `spawn_blocking` or a plain thread.
pub fn replay(broker: SocketAddr, topic: &str, partitions: i32) -> Replayed {
    let mut client = RawClient::connect(broker);
    replay_from(topic, partitions, DecodeOptions::new(), |p, offset| {
        client.fetch(topic, p, offset)
    })
}

/// [`replay`] over any way of fetching one partition from an offset, with
/// explicit decode options (librdkafka 2.16's mock cluster writes its
/// control batches with a CRC of 0, so replays of a mock topic turn CRC
/// checks off).
pub fn replay_from(
    topic: &str,
    partitions: i32,
    options: DecodeOptions,
    mut fetch: impl FnMut(i32, i64) -> PartitionData,
) -> Replayed {
    let mut out = Replayed::default();
    for partition in 0..partitions {
        let mut pending: HashMap<i64, Vec<Record>> = HashMap::new();
        let mut next = 0;
        // Stop at the end of the log as of the first fetch: a log still
        // being written would otherwise be chased for ever. (With tansu's
        // high-watermark bug the end is the last batch's first offset + 1,
        // which still covers that batch.)
        let mut end = None;
        loop {
            let data = fetch(partition, next);
            let end = *end.get_or_insert(data.high_watermark);
            assert_eq!(
                data.error_code,
                ErrorCode::NONE,
                "fetch {topic}/{partition}"
            );
            let set = RecordSet::with_options(data.records.unwrap_or_default(), options);
            let mut progressed = false;
            for batch in set.batches() {
                let batch = batch.unwrap_or_else(|e| panic!("a batch of {topic}: {e}"));
                if batch.next_offset() <= next {
                    continue;
                }
                progressed = true;
                next = batch.next_offset();
                let records = batch
                    .records()
                    .map(|r| r.unwrap_or_else(|e| panic!("a record of {topic}: {e}")));
                if batch.is_control() {
                    for record in records {
                        let marker = ControlRecord::parse(&record).expect("a control record");
                        let done = pending.remove(&batch.producer_id()).unwrap_or_default();
                        match marker.kind {
                            ControlRecordType::Commit => {
                                out.commits += 1;
                                out.committed.extend(done);
                            }
                            ControlRecordType::Abort => {
                                out.aborts += 1;
                                out.aborted += done.len();
                            }
                            ControlRecordType::Unknown(t) => panic!("control record type {t}"),
                        }
                    }
                } else if batch.is_transactional() {
                    pending
                        .entry(batch.producer_id())
                        .or_default()
                        .extend(records);
                } else {
                    out.committed.extend(records);
                }
            }
            if !progressed || next >= end {
                break;
            }
        }
        out.open += pending.values().map(Vec::len).sum::<usize>();
    }
    out
}

/// [`replay`] once every partition of `topic` is stable (its last stable
/// offset has reached its high watermark), or after 15 s: Kafka answers
/// EndTxn before it writes the transaction's markers, so a replay right
/// after a processor closed can miss the last commit marker.
pub async fn replay_settled(broker: &TestBroker, topic: &str, partitions: i32) -> Replayed {
    let (addr, topic) = (broker.addr(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut client = RawClient::connect(addr);
        let start = std::time::Instant::now();
        for partition in 0..partitions {
            while start.elapsed() < Duration::from_secs(15) {
                let data = client.fetch(&topic, partition, 0);
                if data.last_stable_offset >= data.high_watermark {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        replay(addr, &topic, partitions)
    })
    .await
    .unwrap()
}

/// [`replay`] from async code.
pub async fn replay_async(broker: &TestBroker, topic: &str, partitions: i32) -> Replayed {
    let (addr, topic) = (broker.addr(), topic.to_owned());
    tokio::task::spawn_blocking(move || replay(addr, &topic, partitions))
        .await
        .unwrap()
}

/// Writes `values` to `topic` (plain, acks=all), spread over partitions by
/// key.
pub async fn write_inputs(broker: &TestBroker, topic: &str, values: &[String]) {
    let writer = Writer::builder([broker.bootstrap()])
        .topic(topic)
        .build()
        .await
        .unwrap();
    let messages: Vec<Message> = values
        .iter()
        .map(|v| Message::new(v.clone()).with_key(v.clone()))
        .collect();
    for result in writer.write_messages(&messages).await.unwrap() {
        result.unwrap();
    }
    writer.close().await.unwrap();
}

/// Waits until `check` holds, polling every 100 ms, or panics after
/// `limit` with `what`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
