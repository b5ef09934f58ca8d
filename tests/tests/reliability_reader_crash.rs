//! An at-least-once group consumer (`fetch_message`, process, then
//! `commit_messages` per batch) killed in the middle of a batch, twice, by
//! dropping it without `close()`: the next incarnation of the member
//! resumes from the last commit, so every record is processed at least once
//! and none is skipped; the records of the unfinished batch come again.
//!
//! CI size: 20,000 records on 3 partitions. `KAFKIT_RELIABILITY_FULL=1`:
//! 1,000,000 records.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kafkit_reader::{Message, Reader};
use kafkit_tests::{Reliability, TestBroker, reliability_full, unique_topic};
use kafkit_writer::{Message as Record, Writer};

const PARTITIONS: i32 = 3;
const BATCH: usize = 200;

async fn produce(broker: &TestBroker, topic: &str, records: u64) {
    let writer = Writer::builder([broker.bootstrap()])
        .topic(topic)
        .build()
        .await
        .unwrap();
    let ids: Vec<u64> = (0..records).collect();
    for chunk in ids.chunks(10_000) {
        let batch: Vec<Record> = chunk
            .iter()
            .map(|i| Record::new(i.to_string()).with_partition((i % 3) as i32))
            .collect();
        for result in writer.write_messages(&batch).await.unwrap() {
            result.unwrap();
        }
    }
    writer.close().await.unwrap();
}

fn id(m: &Message) -> u64 {
    std::str::from_utf8(m.value_bytes())
        .unwrap()
        .parse()
        .unwrap()
}

async fn member(broker: &TestBroker, group: &str, topic: &str) -> Reader {
    Reader::builder([broker.bootstrap()])
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
        .build()
        .await
        .unwrap()
}

/// Processes whole batches (each committed once processed) until `stop`
/// records were processed, then processes half a batch more and returns
/// the reader without committing that half. Every processed id goes to
/// `processed` and `distinct`, and leaves `again` (the ids an earlier
/// incarnation processed without committing them). Returns when the batch
/// is done, or when `distinct` covers every record and `again` is empty:
/// when the first record came, and the ids processed but left
/// uncommitted.
async fn run_member(
    reader: &mut Reader,
    processed: &mut Vec<u64>,
    distinct: &mut HashSet<u64>,
    again: &mut HashSet<u64>,
    records: u64,
    stop: Option<usize>,
) -> (Option<Instant>, Vec<u64>) {
    let mut first = None;
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let unfinished = |distinct: &HashSet<u64>, again: &HashSet<u64>| {
        (distinct.len() as u64) < records || !again.is_empty()
    };
    while unfinished(distinct, again) {
        assert!(
            Instant::now() < deadline,
            "stuck at {} records, {} uncommitted ones not seen again, owning {:?}",
            distinct.len(),
            again.len(),
            reader.assignment()
        );
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH && unfinished(distinct, again) {
            let next = tokio::time::timeout(Duration::from_millis(500), reader.fetch_message());
            let Ok(m) = next.await else { break };
            let m = m.unwrap();
            first.get_or_insert_with(Instant::now);
            processed.push(id(&m));
            distinct.insert(id(&m));
            again.remove(&id(&m));
            batch.push(m);
            if stop.is_some_and(|s| done + batch.len() >= s + BATCH / 2) {
                // Killed mid-batch: never committed.
                return (first, batch.iter().map(id).collect());
            }
        }
        reader.commit_messages(&batch).await.unwrap();
        done += batch.len();
    }
    (first, Vec::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_batch_loses_nothing_after_restart() {
    let records = if reliability_full() {
        1_000_000
    } else {
        20_000
    };
    let broker = TestBroker::start();
    let topic = unique_topic("rel-crash");
    let group = unique_topic("rel-crash-group");
    broker.create_topic(&topic, PARTITIONS as u32);
    produce(&broker, &topic, records).await;

    let (mut processed, mut distinct) = (Vec::new(), HashSet::new());
    let mut again = HashSet::new();
    let mut recover = Duration::ZERO;
    let mut killed_at = None;
    let mut uncommitted = 0;
    let third = (records / 3) as usize;
    for stop in [Some(third), Some(third), None] {
        let mut reader = member(&broker, &group, &topic).await;
        let (first, left) = run_member(
            &mut reader,
            &mut processed,
            &mut distinct,
            &mut again,
            records,
            stop,
        )
        .await;
        uncommitted += left.len();
        again.extend(left);
        if let (Some(killed), Some(first)) = (killed_at, first) {
            recover = recover.max(first - killed);
        }
        if stop.is_some() {
            // A crash: no close(), no commit of the half batch, no LeaveGroup.
            drop(reader);
            killed_at = Some(Instant::now());
        } else {
            reader.close().await.unwrap();
        }
    }

    let sent: Vec<u64> = (0..records).collect();
    let report = Reliability::count("reader_crash", &sent, &processed, recover);
    assert_eq!(report.lost, 0, "{report}");
    // The unfinished part of the batch of each crash came again (the last
    // member reads until it did, however late its partition comes).
    assert!(uncommitted > 0, "no crash came inside a batch");
    assert!(
        again.is_empty(),
        "{} never came again: {report}",
        again.len()
    );
    assert!(report.duplicated >= uncommitted as u64, "{report}");
    assert!(recover < Duration::from_secs(20), "{report}");
}
