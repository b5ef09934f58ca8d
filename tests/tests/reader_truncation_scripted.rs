//! Position validation after a leader change (KIP-320), proven against a
//! scripted two-broker peer (`admin_support`): partition 0 is led by broker
//! 1 at leader epoch 1, whose log holds offsets 0-9. The leader then moves
//! to broker 2 at epoch 2. In the clean case broker 2's log holds the same
//! 0-9 and appends 10-11. In the unclean case (an unclean election, or
//! acks=1 records lost in the failover) broker 2 only has 0-4 of epoch 1,
//! and its epoch 2 wrote new records at 5-11: the reader, having fetched
//! up to 10 from broker 1, must notice (OffsetForLeaderEpoch says epoch 1
//! ends at 5 there) and read the new 5-11 instead of skipping them.
//!
//! Why scripted: tansu is a single broker whose leader never changes (and
//! lacks OffsetForLeaderEpoch, BROKERS.md), and librdkafka's mock cluster
//! cannot make two replicas' logs diverge.

#[path = "admin_support/mod.rs"]
mod admin_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use admin_support::ScriptedCluster;
use bytes::Bytes;
use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafkit_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafkit_protocol::messages::{
    FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    RequestBody, ResponseBody,
};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_reader::{ErrorKind, FetchConfig, Message, OffsetReset, Reader, StartOffset};

const TOPIC: &str = "truncation";

/// A log: `(base offset, last offset, batch bytes)`, and where each
/// epoch's records end.
struct Log {
    batches: Vec<(i64, i64, Bytes)>,
    epoch_ends: Vec<(i32, i64)>,
}

fn batch(base: i64, epoch: i32, prefix: &str, n: i64) -> (i64, i64, Bytes) {
    let mut b = RecordBatchBuilder::new(base).with_partition_leader_epoch(epoch);
    for offset in base..base + n {
        b.append(
            1_700_000_000_000,
            None,
            Some(format!("{prefix}-{offset}").as_bytes()),
            &[],
        )
        .unwrap();
    }
    (base, base + n - 1, b.finish().unwrap())
}

/// Broker 1's log, before the move: 0-9, all of epoch 1.
fn old_log() -> Log {
    Log {
        batches: vec![batch(0, 1, "a", 5), batch(5, 1, "b", 5)],
        epoch_ends: vec![(1, 10)],
    }
}

/// Broker 2's log after the move: `diverged` keeps only 0-4 of epoch 1.
fn new_log(diverged: bool) -> Log {
    if diverged {
        Log {
            batches: vec![batch(0, 1, "a", 5), batch(5, 2, "new", 7)],
            epoch_ends: vec![(1, 5), (2, 12)],
        }
    } else {
        Log {
            batches: vec![
                batch(0, 1, "a", 5),
                batch(5, 1, "b", 5),
                batch(10, 2, "new", 2),
            ],
            epoch_ends: vec![(1, 10), (2, 12)],
        }
    }
}

fn fetch(request: &FetchRequest, log: Option<&Log>) -> FetchResponse {
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
                    let Some(log) = log else {
                        return PartitionData {
                            partition_index: p.partition,
                            error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                            ..Default::default()
                        };
                    };
                    let high_watermark = log.batches.last().unwrap().1 + 1;
                    let mut records = Vec::new();
                    for (base, last, bytes) in &log.batches {
                        if *last >= p.fetch_offset && *base < high_watermark {
                            records.extend_from_slice(bytes);
                        }
                    }
                    PartitionData {
                        partition_index: p.partition,
                        high_watermark,
                        last_stable_offset: high_watermark,
                        log_start_offset: 0,
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

/// Where the asked epoch ends in `log`, as a Kafka leader at `epoch`
/// answers: the largest epoch at or below the asked one, and its end.
fn epoch_end(
    request: &OffsetForLeaderEpochRequest,
    log: &Log,
    epoch: i32,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| OffsetForLeaderTopicResult {
            topic: t.topic.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    if p.current_leader_epoch < epoch {
                        return EpochEndOffset {
                            partition: p.partition,
                            error_code: ErrorCode::FENCED_LEADER_EPOCH,
                            ..Default::default()
                        };
                    }
                    let (leader_epoch, end_offset) = log
                        .epoch_ends
                        .iter()
                        .rev()
                        .find(|(e, _)| *e <= p.leader_epoch)
                        .copied()
                        .unwrap_or((-1, -1));
                    EpochEndOffset {
                        partition: p.partition,
                        leader_epoch,
                        end_offset,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}

struct Peer {
    cluster: ScriptedCluster,
    moved: Arc<AtomicBool>,
}

impl Peer {
    async fn start(diverged: bool) -> Peer {
        let moved = Arc::new(AtomicBool::new(false));
        let m = moved.clone();
        let (old, new) = (old_log(), new_log(diverged));
        let cluster = ScriptedCluster::start(2, move |node, request| {
            let leader = if m.load(Ordering::SeqCst) { 2 } else { 1 };
            let log = match (node == leader, node) {
                (false, _) => None,
                (true, 1) => Some(&old),
                (true, _) => Some(&new),
            };
            match request {
                RequestBody::Fetch(r) => {
                    // A real broker long-polls an empty fetch.
                    std::thread::sleep(Duration::from_millis(5));
                    Some(ResponseBody::Fetch(fetch(r, log)))
                }
                RequestBody::OffsetForLeaderEpoch(r) => Some(ResponseBody::OffsetForLeaderEpoch(
                    epoch_end(r, log.unwrap_or(&new), leader),
                )),
                other => panic!("unexpected request {other:?}"),
            }
        })
        .await;
        cluster.set_leader(0, 1, 1);
        Peer { cluster, moved }
    }

    /// Moves the leadership of partition 0 to broker 2 at epoch 2.
    fn move_leader(&self) {
        self.moved.store(true, Ordering::SeqCst);
        self.cluster.set_leader(0, 2, 2);
    }

    /// The OffsetForLeaderEpoch requests seen: (node, asked epoch).
    fn validations(&self) -> Vec<(i32, i32)> {
        self.cluster
            .seen()
            .into_iter()
            .filter_map(|(node, r)| match r {
                RequestBody::OffsetForLeaderEpoch(r) => {
                    Some((node, r.topics[0].partitions[0].leader_epoch))
                }
                _ => None,
            })
            .collect()
    }
}

async fn reader(peer: &Peer, offset_reset: OffsetReset) -> Reader {
    Reader::builder([peer.cluster.bootstrap()])
        .partition(TOPIC, 0)
        .start_offset(StartOffset::Offset(0))
        .fetch(FetchConfig {
            max_wait: Duration::from_millis(50),
            offset_reset,
            ..FetchConfig::default()
        })
        .build()
        .await
        .unwrap()
}

/// Reads `count` messages, each within 10 s.
async fn read(reader: &mut Reader, count: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let m: Message = tokio::time::timeout(Duration::from_secs(10), reader.fetch_message())
            .await
            .unwrap_or_else(|_| panic!("only {} messages: {out:?}", out.len()))
            .unwrap();
        out.push((
            m.offset,
            String::from_utf8_lossy(m.value_bytes()).into_owned(),
        ));
    }
    out
}

fn expected(items: &[(i64, &str)]) -> Vec<(i64, String)> {
    items
        .iter()
        .map(|(o, p)| (*o, format!("{p}-{o}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_leader_change_is_validated_and_reading_goes_on() {
    let peer = Peer::start(false).await;
    let mut reader = reader(&peer, OffsetReset::Earliest).await;
    let before = read(&mut reader, 10).await;
    assert_eq!(before.last().unwrap().0, 9);
    peer.move_leader();
    let after = read(&mut reader, 2).await;
    assert_eq!(after, expected(&[(10, "new"), (11, "new")]));
    assert_eq!(
        peer.validations(),
        [(2, 1)],
        "one lookup, on the new leader, for epoch 1"
    );
    assert_eq!(reader.stats().fetch.truncations, 0);
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_log_after_a_leader_change_is_read_from_where_it_diverged() {
    let peer = Peer::start(true).await;
    let mut reader = reader(&peer, OffsetReset::Earliest).await;
    let before = read(&mut reader, 10).await;
    assert_eq!(before[9], (9, "b-9".to_string()));
    peer.move_leader();
    // Fetched up to 10 from broker 1; broker 2's epoch 1 ends at 5, and
    // its 5-11 are new records: every one of them comes, none is skipped.
    let after = read(&mut reader, 7).await;
    let want: Vec<(i64, &str)> = (5..12).map(|o| (o, "new")).collect();
    assert_eq!(after, expected(&want));
    assert_eq!(reader.stats().fetch.truncations, 1);
    assert_eq!(
        reader.stats().fetch.resets,
        0,
        "not the reset policy's doing"
    );
    assert_eq!(peer.validations(), [(2, 1)]);
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_log_is_a_typed_error_under_the_error_policy() {
    let peer = Peer::start(true).await;
    let mut reader = reader(&peer, OffsetReset::Error).await;
    read(&mut reader, 10).await;
    peer.move_leader();
    let e = tokio::time::timeout(Duration::from_secs(10), reader.fetch_message())
        .await
        .expect("an answer in time")
        .expect_err("the truncation is reported");
    assert_eq!(e.kind(), &ErrorKind::LogTruncation { diverged_at: 5 });
    assert_eq!((e.partition(), e.offset()), (Some(0), Some(10)));
    assert!(!e.is_retriable());
    // The caller decides: seek to the divergence point and read the new log.
    reader.set_offset(5).unwrap();
    let after = read(&mut reader, 7).await;
    let want: Vec<(i64, &str)> = (5..12).map(|o| (o, "new")).collect();
    assert_eq!(after, expected(&want));
    reader.close().await.unwrap();
}
