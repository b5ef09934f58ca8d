//! Transactional writer faults tansu cannot produce, against librdkafka's
//! mock cluster (error codes injected into the transactional APIs) and a
//! scripted peer (the order and content of the requests): retried
//! CONCURRENT_TRANSACTIONS and coordinator errors, one AddPartitionsToTxn
//! for every new partition, no batch before its partition joined, fencing
//! and authorization errors that are fatal, failed batches and
//! TxnOffsetCommit errors that are abortable and recovered by an abort
//! (with the epoch bumped after it, never silently inside it), and offsets
//! that join the transaction before the group commit carrying the member.

#[path = "admin_support/mod.rs"]
mod admin_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use admin_support::ScriptedCluster;
use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafkit_protocol::messages::end_txn_response::EndTxnResponse;
use kafkit_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, InitProducerIdResponse, ProduceResponse,
    RequestBody, ResponseBody, TxnOffsetCommitResponse,
};
use kafkit_tests::{MockCluster, unique_topic};
use kafkit_writer::{ConsumerGroupMetadata, Error, Message, TxnOffset, Writer};

/// API keys, as the mock cluster takes them.
const PRODUCE: i16 = 0;
const INIT_PRODUCER_ID: i16 = 22;
const ADD_PARTITIONS: i16 = 24;
const END_TXN: i16 = 26;
const TXN_OFFSET_COMMIT: i16 = 28;

async fn mock_writer(cluster: &MockCluster, topic: &str) -> Writer {
    Writer::builder([cluster.bootstrap()])
        .topic(topic)
        .transactional_id(unique_topic("wtxn-mock-id"))
        .linger(Duration::from_millis(50))
        .backoff(Duration::from_millis(20))
        .build()
        .await
        .unwrap()
}

fn mock(partitions: u32) -> (MockCluster, String) {
    let cluster = MockCluster::start(1);
    let topic = unique_topic("wtxn-mock");
    cluster.create_topic(&topic, partitions, 1);
    (cluster, topic)
}

fn count(requests: &[(i32, i16)], api: i16) -> usize {
    requests.iter().filter(|(_, k)| *k == api).count()
}

/// One record to each of `partitions` partitions.
fn spread(partitions: i32) -> Vec<Message> {
    (0..partitions)
        .map(|p| Message::new(format!("p{p}")).with_partition(p))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_concurrent_transactions_and_coordinator_errors_are_retried() {
    let (cluster, topic) = mock(4);
    cluster.start_request_tracking();
    cluster.push_request_errors(
        INIT_PRODUCER_ID,
        &[
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
            ErrorCode::CONCURRENT_TRANSACTIONS.0,
        ],
    );
    let writer = mock_writer(&cluster, &topic).await;
    let requests = cluster.take_requests();
    assert_eq!(count(&requests, INIT_PRODUCER_ID), 3, "{requests:?}");
    cluster.push_request_errors(
        ADD_PARTITIONS,
        &[
            ErrorCode::CONCURRENT_TRANSACTIONS.0,
            ErrorCode::NOT_COORDINATOR.0,
        ],
    );
    cluster.push_request_errors(
        END_TXN,
        &[
            ErrorCode::CONCURRENT_TRANSACTIONS.0,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
        ],
    );
    writer.begin_transaction().unwrap();
    for r in writer.write_messages(&spread(4)).await.unwrap() {
        r.unwrap();
    }
    writer.commit_transaction().await.unwrap();
    let requests = cluster.take_requests();
    // Two refusals, then one request adding all four partitions.
    assert_eq!(count(&requests, ADD_PARTITIONS), 3, "{requests:?}");
    assert_eq!(count(&requests, END_TXN), 3, "{requests:?}");

    // The next transaction adds its partitions again, in one request.
    writer.begin_transaction().unwrap();
    for r in writer.write_messages(&spread(4)).await.unwrap() {
        r.unwrap();
    }
    writer.commit_transaction().await.unwrap();
    let requests = cluster.take_requests();
    assert_eq!(count(&requests, ADD_PARTITIONS), 1, "{requests:?}");
    assert_eq!(count(&requests, END_TXN), 1, "{requests:?}");
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_cancelled_commit_resumes_on_the_next_call() {
    let (cluster, topic) = mock(1);
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    let d = writer.send(Message::new("a")).await.unwrap();
    // The coordinator is busy for a while: the first commit gives up early.
    cluster.push_request_errors(END_TXN, &[ErrorCode::CONCURRENT_TRANSACTIONS.0; 4]);
    let cancelled =
        tokio::time::timeout(Duration::from_millis(30), writer.commit_transaction()).await;
    assert!(cancelled.is_err(), "the commit was still retrying");
    d.await.unwrap();
    // Still committing: writes are refused, abort too.
    let refused = writer.send(Message::new("late")).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::TransactionState {
                state: "committing",
                ..
            }
        ),
        "{refused}"
    );
    assert!(matches!(
        writer.abort_transaction().await,
        Err(Error::TransactionState {
            state: "committing",
            ..
        })
    ));
    writer.commit_transaction().await.unwrap();
    writer.begin_transaction().unwrap();
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_fenced_commit_is_fatal() {
    let (cluster, topic) = mock(1);
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    writer.send(Message::new("a")).await.unwrap().await.unwrap();
    cluster.push_request_errors(END_TXN, &[ErrorCode::PRODUCER_FENCED.0]);
    let e = writer.commit_transaction().await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED));
    for e in [
        writer.begin_transaction().unwrap_err(),
        writer.abort_transaction().await.unwrap_err(),
        writer.send(Message::new("b")).await.unwrap_err(),
    ] {
        assert!(e.is_fatal(), "{e}");
    }
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_an_unauthorized_transactional_id_fails_the_build() {
    let (cluster, topic) = mock(1);
    cluster.push_request_errors(
        INIT_PRODUCER_ID,
        &[ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0],
    );
    let e = Writer::builder([cluster.bootstrap()])
        .topic(&topic)
        .transactional_id("not-allowed")
        .build()
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert_eq!(
        e.code(),
        Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_failed_batch_makes_the_transaction_abortable_until_aborted() {
    let (cluster, topic) = mock(1);
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    writer
        .send(Message::new("ok"))
        .await
        .unwrap()
        .await
        .unwrap();
    cluster.push_request_errors(PRODUCE, &[ErrorCode::TOPIC_AUTHORIZATION_FAILED.0]);
    let failed = writer.send(Message::new("refused")).await.unwrap();
    assert_eq!(
        failed.await.unwrap_err().code(),
        Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
    );
    let e = writer.commit_transaction().await.unwrap_err();
    assert!(e.is_abortable() && !e.is_fatal(), "{e}");
    assert!(writer.begin_transaction().unwrap_err().is_abortable());
    assert!(
        writer
            .send(Message::new("x"))
            .await
            .unwrap_err()
            .is_abortable()
    );
    assert_eq!(writer.stats().epoch_bumps, 0);

    writer.abort_transaction().await.unwrap();
    // The failed batch had a sequence: the abort bumped the epoch.
    assert_eq!(writer.stats().epoch_bumps, 1);
    writer.begin_transaction().unwrap();
    writer
        .send(Message::new("again"))
        .await
        .unwrap()
        .await
        .unwrap();
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_an_abort_needing_an_epoch_bump_is_fatal_before_kafka_2_5() {
    let (cluster, topic) = mock(1);
    // InitProducerId v0-2: no KIP-360 bump of an existing producer.
    cluster.set_api_versions(INIT_PRODUCER_ID, Some((0, 2)));
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    cluster.push_request_errors(PRODUCE, &[ErrorCode::TOPIC_AUTHORIZATION_FAILED.0]);
    assert!(writer.send(Message::new("a")).await.unwrap().await.is_err());
    assert!(
        writer
            .commit_transaction()
            .await
            .unwrap_err()
            .is_abortable()
    );
    let e = writer.abort_transaction().await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::UNSUPPORTED_VERSION));
    assert!(writer.begin_transaction().unwrap_err().is_fatal());
    // close reports the failed record (the transaction never ended).
    let closed = writer.close().await.unwrap_err();
    assert_eq!(closed.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_lost_sequence_fails_the_transaction_instead_of_bumping_the_epoch() {
    let (cluster, topic) = mock(1);
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    cluster.push_request_errors(PRODUCE, &[ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0]);
    let d = writer.send(Message::new("a")).await.unwrap();
    assert_eq!(
        d.await.unwrap_err().code(),
        Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
    );
    // Idempotence alone would have bumped the epoch and resent.
    assert_eq!(writer.stats().epoch_bumps, 0);
    assert!(
        writer
            .commit_transaction()
            .await
            .unwrap_err()
            .is_abortable()
    );
    writer.abort_transaction().await.unwrap();
    assert_eq!(writer.stats().epoch_bumps, 1);
    writer.begin_transaction().unwrap();
    writer.send(Message::new("b")).await.unwrap().await.unwrap();
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_stale_generation_on_txn_offset_commit_is_abortable() {
    let (cluster, topic) = mock(1);
    let writer = mock_writer(&cluster, &topic).await;
    writer.begin_transaction().unwrap();
    writer.send(Message::new("a")).await.unwrap().await.unwrap();
    cluster.push_request_errors(TXN_OFFSET_COMMIT, &[ErrorCode::ILLEGAL_GENERATION.0]);
    let offsets = [TxnOffset {
        topic: topic.clone(),
        partition: 0,
        offset: 1,
        metadata: None,
    }];
    let group = ConsumerGroupMetadata {
        group_id: unique_topic("wtxn-mock-group"),
        generation_id: 3,
        member_id: "member-1".into(),
        group_instance_id: None,
    };
    let e = writer
        .send_offsets_to_transaction(&offsets, &group)
        .await
        .unwrap_err();
    assert!(e.is_abortable(), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::ILLEGAL_GENERATION));
    assert!(
        writer
            .commit_transaction()
            .await
            .unwrap_err()
            .is_abortable()
    );
    writer.abort_transaction().await.unwrap();
    // Nothing failed with a sequence: no epoch bump was needed.
    assert_eq!(writer.stats().epoch_bumps, 0);
    writer.begin_transaction().unwrap();
    writer.send(Message::new("b")).await.unwrap().await.unwrap();
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();
}

/// A scripted transaction coordinator and partition leader: the first
/// AddPartitionsToTxn is refused with CONCURRENT_TRANSACTIONS, the second
/// accepted; every produce succeeds.
async fn scripted() -> ScriptedCluster {
    let adds = Arc::new(AtomicUsize::new(0));
    ScriptedCluster::start(1, move |_, request| {
        Some(match request {
            RequestBody::InitProducerId(_) => {
                ResponseBody::InitProducerId(InitProducerIdResponse {
                    producer_id: 42,
                    producer_epoch: 0,
                    ..Default::default()
                })
            }
            RequestBody::AddPartitionsToTxn(r) => {
                let code = if adds.fetch_add(1, Ordering::SeqCst) == 0 {
                    ErrorCode::CONCURRENT_TRANSACTIONS
                } else {
                    ErrorCode::NONE
                };
                ResponseBody::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                    results_by_topic_v3_and_below: r
                        .v3_and_below_topics
                        .iter()
                        .map(|t| AddPartitionsToTxnTopicResult {
                            name: t.name.clone(),
                            results_by_partition: t
                                .partitions
                                .iter()
                                .map(|&p| AddPartitionsToTxnPartitionResult {
                                    partition_index: p,
                                    partition_error_code: code,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            RequestBody::Produce(r) => ResponseBody::Produce(ProduceResponse {
                responses: r
                    .topic_data
                    .iter()
                    .map(|t| TopicProduceResponse {
                        name: t.name.clone(),
                        partition_responses: t
                            .partition_data
                            .iter()
                            .map(|p| PartitionProduceResponse {
                                index: p.index,
                                base_offset: 0,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            RequestBody::EndTxn(_) => ResponseBody::EndTxn(EndTxnResponse::default()),
            RequestBody::AddOffsetsToTxn(_) => {
                ResponseBody::AddOffsetsToTxn(AddOffsetsToTxnResponse::default())
            }
            RequestBody::TxnOffsetCommit(_) => {
                ResponseBody::TxnOffsetCommit(TxnOffsetCommitResponse::default())
            }
            _ => return None,
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_no_batch_goes_before_its_partition_joined_and_all_join_at_once() {
    let peer = scripted().await;
    let (t, u) = (
        unique_topic("wtxn-scripted-t"),
        unique_topic("wtxn-scripted-u"),
    );
    // The peer records every request, and its ApiVersions advertises
    // the telemetry APIs too: no telemetry requests among them.
    let writer = Writer::builder([peer.bootstrap()])
        .transactional_id("scripted")
        .metrics_push(false)
        .linger(Duration::from_millis(50))
        .backoff(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    writer.begin_transaction().unwrap();
    let messages: Vec<Message> = [&t, &u]
        .iter()
        .flat_map(|topic| {
            (0..admin_support::PARTITIONS).map(|p| {
                Message::new("v")
                    .with_topic(topic.as_str())
                    .with_partition(p)
            })
        })
        .collect();
    for r in writer.write_messages(&messages).await.unwrap() {
        r.unwrap();
    }
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();

    let seen: Vec<RequestBody> = peer
        .seen()
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| !matches!(r, RequestBody::InitProducerId(_)))
        .collect();
    let adds: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, RequestBody::AddPartitionsToTxn(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        adds,
        [0, 1],
        "one refused request, then one accepted: {seen:?}"
    );
    let RequestBody::AddPartitionsToTxn(accepted) = &seen[1] else {
        unreachable!()
    };
    assert_eq!(accepted.v3_and_below_transactional_id, "scripted");
    let mut asked: Vec<(String, Vec<i32>)> = accepted
        .v3_and_below_topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions.clone()))
        .collect();
    asked.sort();
    let mut expected = vec![(t.clone(), vec![0, 1, 2]), (u.clone(), vec![0, 1, 2])];
    expected.sort();
    assert_eq!(asked, expected, "every new partition in the one request");
    // Produce only after the accepted AddPartitionsToTxn, EndTxn last.
    let produced: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, RequestBody::Produce(_)))
        .map(|(i, _)| i)
        .collect();
    assert!(!produced.is_empty() && produced[0] > 1, "{seen:?}");
    for r in &seen {
        if let RequestBody::Produce(p) = r {
            assert_eq!(p.transactional_id.as_deref(), Some("scripted"));
        }
    }
    assert!(matches!(seen.last(), Some(RequestBody::EndTxn(e)) if e.committed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_offsets_join_the_transaction_then_commit_with_the_member() {
    let peer = scripted().await;
    let writer = Writer::builder([peer.bootstrap()])
        .transactional_id("scripted-offsets")
        .metrics_push(false)
        .build()
        .await
        .unwrap();
    writer.begin_transaction().unwrap();
    let offsets = [
        TxnOffset {
            topic: "in".into(),
            partition: 0,
            offset: 11,
            metadata: None,
        },
        TxnOffset {
            topic: "in".into(),
            partition: 2,
            offset: 7,
            metadata: Some("m".into()),
        },
    ];
    let group = ConsumerGroupMetadata {
        group_id: "processors".into(),
        generation_id: 7,
        member_id: "member-7".into(),
        group_instance_id: Some("host-1".into()),
    };
    writer
        .send_offsets_to_transaction(&offsets, &group)
        .await
        .unwrap();
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();

    let seen: Vec<RequestBody> = peer.seen().into_iter().map(|(_, r)| r).collect();
    let names: Vec<&str> = seen
        .iter()
        .map(|r| match r {
            RequestBody::InitProducerId(_) => "InitProducerId",
            RequestBody::AddOffsetsToTxn(_) => "AddOffsetsToTxn",
            RequestBody::TxnOffsetCommit(_) => "TxnOffsetCommit",
            RequestBody::EndTxn(_) => "EndTxn",
            _ => "other",
        })
        .collect();
    assert_eq!(
        names,
        [
            "InitProducerId",
            "AddOffsetsToTxn",
            "TxnOffsetCommit",
            "EndTxn"
        ]
    );
    let RequestBody::AddOffsetsToTxn(add) = &seen[1] else {
        unreachable!()
    };
    assert_eq!(
        (add.transactional_id.as_str(), add.group_id.as_str()),
        ("scripted-offsets", "processors")
    );
    let RequestBody::TxnOffsetCommit(commit) = &seen[2] else {
        unreachable!()
    };
    // KIP-447: the member is checked by the group coordinator.
    assert_eq!(commit.generation_id, 7);
    assert_eq!(commit.member_id, "member-7");
    assert_eq!(commit.group_instance_id.as_deref(), Some("host-1"));
    assert_eq!((commit.producer_id, commit.producer_epoch), (42, 0));
    let committed: Vec<(i32, i64)> = commit.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(committed, [(0, 11), (2, 7)]);
    // Offsets alone start the transaction: it ends with EndTxn(commit).
    assert!(matches!(&seen[3], RequestBody::EndTxn(e) if e.committed));
}
