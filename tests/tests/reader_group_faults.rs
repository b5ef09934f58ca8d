//! Group failures, injected by librdkafka's mock cluster: a member fenced
//! by the coordinator loses its partitions (no commit) and rejoins; a
//! rebalance the coordinator asks for keeps a cooperative member's
//! partitions; commit errors are retried when retriable and otherwise
//! returned, by `commit_messages` and by `close`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_conn::{ErrorCode, Message as Record};
use kafkit_reader::group::{Rebalance, RebalanceKind};
use kafkit_reader::{Reader, ReaderBuilder};
use kafkit_tests::{MockCluster, unique_topic};

const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;
const OFFSET_COMMIT: i16 = 8;

async fn setup(partitions: u32, records: usize) -> (MockCluster, String) {
    let cluster = MockCluster::start(1);
    // The mock (librdkafka 2.16) advertises flexible versions of the group
    // APIs (JoinGroup v6, SyncGroup v4...) but drops the connection on
    // them; their last classic versions work (LeaveGroup v3 answers lack
    // the members array: v2).
    for (api, max) in [
        (JOIN_GROUP, 5),
        (SYNC_GROUP, 3),
        (HEARTBEAT, 3),
        (LEAVE_GROUP, 2),
    ] {
        cluster.set_api_versions(api, Some((0, max)));
    }
    let topic = unique_topic("rgf");
    cluster.create_topic(&topic, partitions, 1);
    for p in 0..partitions as i32 {
        let conn = kafkit_conn::dial_leader(cluster.bootstrap(), &topic, p)
            .await
            .unwrap();
        let batch: Vec<Record> = (0..records)
            .map(|i| Record::new(format!("{p}:{i}")))
            .collect();
        conn.write_messages(&batch).await.unwrap();
    }
    (cluster, topic)
}

type Heard = Arc<Mutex<Vec<(RebalanceKind, usize, i32)>>>;

fn builder(cluster: &MockCluster, topic: &str, heard: &Heard) -> ReaderBuilder {
    let log = heard.clone();
    Reader::builder([cluster.bootstrap()])
        .group_id(unique_topic("rgf-group"))
        .topics([topic])
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(200))
        .on_rebalance(move |r: &mut Rebalance<'_>| {
            log.lock()
                .unwrap()
                .push((r.kind(), r.partitions().len(), r.generation()));
        })
}

/// Reads (and commits) until `done` says the listener heard enough.
async fn read_until(
    reader: &mut Reader,
    heard: &Heard,
    done: impl Fn(&[(RebalanceKind, usize, i32)]) -> bool,
) {
    let start = Instant::now();
    loop {
        // Not in the `while` condition: its guard would live through the
        // body, where the listener takes the same lock.
        let heard_now = heard.lock().unwrap().clone();
        if done(&heard_now) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "heard only {heard_now:?}"
        );
        if let Ok(m) =
            tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()).await
        {
            let m = m.unwrap();
            reader.commit_messages(&[m]).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_member_loses_its_partitions_and_rejoins() {
    let (cluster, topic) = setup(2, 50).await;
    let heard: Heard = Arc::default();
    let mut reader = builder(&cluster, &topic, &heard).build().await.unwrap();
    read_until(&mut reader, &heard, |h| {
        h.iter().any(|e| e.0 == RebalanceKind::Assigned)
    })
    .await;

    // The coordinator no longer knows us: everything is lost, then the
    // member joins again (a new member id) and gets its partitions back.
    cluster.push_request_errors(HEARTBEAT, &[ErrorCode::UNKNOWN_MEMBER_ID.0]);
    read_until(&mut reader, &heard, |h| {
        h.len() >= 3 && h[h.len() - 1].0 == RebalanceKind::Assigned
    })
    .await;
    let heard_now = heard.lock().unwrap().clone();
    assert_eq!(heard_now[0].0, RebalanceKind::Assigned);
    assert_eq!(
        (heard_now[1].0, heard_now[1].1),
        (RebalanceKind::Lost, 2),
        "{heard_now:?}"
    );
    assert_eq!(heard_now[2].1, 2);
    // Reading and committing go on in the new generation, from the
    // commits made before the fence.
    let conn = kafkit_conn::dial_leader(cluster.bootstrap(), &topic, 0)
        .await
        .unwrap();
    conn.write_messages(&[Record::new("after")]).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), reader.fetch_message())
        .await
        .expect("the record written after the rejoin")
        .unwrap();
    assert_eq!((m.partition, m.offset), (0, 50));
    reader.commit_messages(&[m]).await.unwrap();
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_member_keeps_its_partitions_through_a_rebalance() {
    let (cluster, topic) = setup(2, 50).await;
    let heard: Heard = Arc::default();
    let mut reader = builder(&cluster, &topic, &heard).build().await.unwrap();
    read_until(&mut reader, &heard, |h| !h.is_empty()).await;
    let before = reader.stats().rebalances;

    cluster.push_request_errors(HEARTBEAT, &[ErrorCode::REBALANCE_IN_PROGRESS.0]);
    let start = Instant::now();
    while reader.stats().rebalances == before {
        assert!(start.elapsed() < Duration::from_secs(20), "no rejoin");
        if let Ok(m) =
            tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()).await
        {
            reader.commit_messages(&[m.unwrap()]).await.unwrap();
        }
    }
    // Nothing was revoked or lost: the new generation only confirms the
    // assignment (the listener hears an empty Assigned, as in Java).
    let heard_now = heard.lock().unwrap().clone();
    assert!(
        heard_now.iter().all(|e| e.0 == RebalanceKind::Assigned),
        "{heard_now:?}"
    );
    assert!(heard_now[1..].iter().all(|e| e.1 == 0), "{heard_now:?}");
    assert_eq!(reader.assignment().len(), 2);
    reader.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_errors_are_retried_or_returned() {
    let (cluster, topic) = setup(1, 10).await;
    let heard: Heard = Arc::default();
    let mut reader = builder(&cluster, &topic, &heard).build().await.unwrap();
    let m = reader.fetch_message().await.unwrap();

    // Retriable: the commit goes through on a later attempt.
    cluster.push_request_errors(OFFSET_COMMIT, &[ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0]);
    reader.commit_messages(&[m]).await.unwrap();
    assert_eq!(reader.stats().commits, 1);

    // Not retriable: returned to the caller, and the offset stays marked.
    let m = reader.fetch_message().await.unwrap();
    cluster.push_request_errors(OFFSET_COMMIT, &[ErrorCode::GROUP_AUTHORIZATION_FAILED.0]);
    let e = reader.commit_messages(&[m]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED), "{e}");
    assert_eq!(reader.stats().commit_errors, 1);

    // close() commits what is still marked and reports the failure.
    cluster.push_request_errors(OFFSET_COMMIT, &[ErrorCode::GROUP_AUTHORIZATION_FAILED.0]);
    let e = reader.close().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED), "{e}");
}
