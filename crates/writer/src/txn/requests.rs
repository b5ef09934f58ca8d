//! The transactional requests, built for the version the broker speaks,
//! their answers read back, and which errors are fatal, abortable or worth
//! retrying (as the Java client decides, `TransactionManager`).
//!
//! Version caps: AddPartitionsToTxn v4+ is the broker-to-broker form
//! (KIP-890, it needs CLUSTER_ACTION), so clients stop at v3, which adds
//! every partition of one transaction in one request. EndTxn v5,
//! TxnOffsetCommit v5 and Produce v12 are the "transaction version 2"
//! protocol (KIP-890 part 2): `version.rs` picks them or stays below.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafkit_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafkit_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafkit_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafkit_protocol::{ApiKey, ErrorCode};

use super::{ConsumerGroupMetadata, TxnOffset};
use crate::Error;
use crate::identity::ProducerId;

/// The highest AddPartitionsToTxn version a client sends.
pub(crate) const ADD_PARTITIONS_MAX: i16 = 3;
/// The highest InitProducerId version (v6 adds two-phase commit, KIP-939).
pub(crate) const INIT_PRODUCER_ID_MAX: i16 = 5;

/// What to do about an error from a transactional request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again after a backoff (coordinator moved or loading, another
    /// transaction operation still completing, a connection failure).
    Retry,
    /// The transaction failed; abort it and carry on.
    Abortable,
    /// The writer is done for.
    Fatal,
}

/// Codes that end a transactional writer: it was fenced, is not
/// authorized, or the broker lacks what transactions need.
const FATAL: &[ErrorCode] = &[
    ErrorCode::PRODUCER_FENCED,
    ErrorCode::INVALID_PRODUCER_EPOCH,
    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
    ErrorCode::UNSUPPORTED_VERSION,
    ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
    ErrorCode::INVALID_TXN_STATE,
];

/// Codes that fail only the current transaction.
const ABORTABLE: &[ErrorCode] = &[
    ErrorCode::TRANSACTION_ABORTABLE,
    ErrorCode::UNKNOWN_PRODUCER_ID,
    ErrorCode::INVALID_PRODUCER_ID_MAPPING,
    ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
    ErrorCode::GROUP_AUTHORIZATION_FAILED,
    ErrorCode::TOPIC_AUTHORIZATION_FAILED,
    ErrorCode::ILLEGAL_GENERATION,
    ErrorCode::UNKNOWN_MEMBER_ID,
    ErrorCode::FENCED_INSTANCE_ID,
    ErrorCode::REBALANCE_IN_PROGRESS,
    ErrorCode::MESSAGE_TOO_LARGE,
    ErrorCode::RECORD_LIST_TOO_LARGE,
    ErrorCode::INVALID_RECORD,
];

/// The verdict on `error` from a request of `api`. Unknown broker codes
/// are fatal on the coordinator's own requests (the Java client's choice:
/// the coordinator's state is unknown) and abortable on produce and
/// offset commits (the data failed, not the transaction's bookkeeping).
pub(crate) fn verdict(api: ApiKey, error: &kafkit_conn::Error) -> Verdict {
    if error.is_retriable() {
        return Verdict::Retry;
    }
    match error.code() {
        Some(code) if FATAL.contains(&code) => Verdict::Fatal,
        Some(code) if ABORTABLE.contains(&code) => Verdict::Abortable,
        Some(_) if matches!(api, ApiKey::Produce | ApiKey::TxnOffsetCommit) => Verdict::Abortable,
        Some(_) => Verdict::Fatal,
        None => match error.kind() {
            kafkit_conn::ErrorKind::UnsupportedVersion { .. } => Verdict::Fatal,
            // Encode or decode failures: nothing says the writer is broken.
            _ => Verdict::Abortable,
        },
    }
}

/// Whether a failed batch's error makes the writer fatal.
pub(crate) fn is_fatal_error(error: &Error) -> bool {
    match error {
        Error::Fatal(_) => true,
        Error::Kafka(e) => verdict(ApiKey::Produce, e) == Verdict::Fatal,
        _ => false,
    }
}

/// Wraps a final (not retried) error by its verdict.
pub(crate) fn wrap(api: ApiKey, error: kafkit_conn::Error) -> Error {
    match verdict(api, &error) {
        Verdict::Fatal => Error::Fatal(Box::new(Error::Kafka(error))),
        Verdict::Abortable => Error::Abortable(Box::new(Error::Kafka(error))),
        // Out of retries: the caller may call again.
        Verdict::Retry => Error::Kafka(error),
    }
}

/// One partition: topic and index.
pub(crate) type Key = (Arc<str>, i32);

/// AddPartitionsToTxn (v0-3) for every partition in `partitions`, grouped
/// by topic.
pub(crate) fn add_partitions(
    id: &str,
    producer: ProducerId,
    partitions: &[Key],
) -> AddPartitionsToTxnRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: id.to_owned(),
        v3_and_below_producer_id: producer.id,
        v3_and_below_producer_epoch: producer.epoch,
        v3_and_below_topics: by_topic
            .into_iter()
            .map(|(name, mut partitions)| {
                partitions.sort_unstable();
                partitions.dedup();
                AddPartitionsToTxnTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// Each asked partition's answer; a partition the broker left out counts
/// as `UNKNOWN_SERVER_ERROR`.
pub(crate) fn add_partitions_results(
    asked: &[Key],
    response: &AddPartitionsToTxnResponse,
) -> Vec<(Key, ErrorCode)> {
    asked
        .iter()
        .map(|key| {
            let code = response
                .results_by_topic_v3_and_below
                .iter()
                .filter(|t| *t.name == *key.0)
                .flat_map(|t| &t.results_by_partition)
                .find(|p| p.partition_index == key.1)
                .map_or(ErrorCode::UNKNOWN_SERVER_ERROR, |p| p.partition_error_code);
            (key.clone(), code)
        })
        .collect()
}

/// TxnOffsetCommit at `version`: generation, member and instance id from
/// v3 (KIP-447); earlier versions carry none and the coordinator checks
/// nothing.
pub(crate) fn txn_offset_commit(
    version: i16,
    id: &str,
    producer: ProducerId,
    group: &ConsumerGroupMetadata,
    offsets: &[TxnOffset],
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for o in offsets {
        let partition = TxnOffsetCommitRequestPartition {
            partition_index: o.partition,
            committed_offset: o.offset,
            committed_leader_epoch: -1,
            committed_metadata: o.metadata.clone(),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == o.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(TxnOffsetCommitRequestTopic {
                name: o.topic.clone(),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    let mut request = TxnOffsetCommitRequest {
        transactional_id: id.to_owned(),
        group_id: group.group_id.clone(),
        producer_id: producer.id,
        producer_epoch: producer.epoch,
        topics,
        ..Default::default()
    };
    if version >= 3 {
        request.generation_id = group.generation_id;
        request.member_id = group.member_id.clone();
        request.group_instance_id = group.group_instance_id.clone();
    }
    request
}

/// The first error of a TxnOffsetCommit answer, with its partition.
pub(crate) fn txn_offset_commit_error(
    response: &TxnOffsetCommitResponse,
) -> Option<(String, i32, ErrorCode)> {
    response.topics.iter().find_map(|t| {
        t.partitions
            .iter()
            .find(|p| p.error_code != ErrorCode::NONE)
            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
    })
}

#[cfg(test)]
mod tests {
    use kafkit_protocol::Message;
    use kafkit_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    use kafkit_protocol::messages::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };

    use super::*;

    fn conn_error(code: ErrorCode) -> kafkit_conn::Error {
        kafkit_conn::Error::check(code, None).unwrap_err()
    }

    #[test]
    fn verdicts_follow_the_java_client() {
        for code in [
            ErrorCode::CONCURRENT_TRANSACTIONS,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ErrorCode::NOT_COORDINATOR,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ] {
            assert_eq!(
                verdict(ApiKey::EndTxn, &conn_error(code)),
                Verdict::Retry,
                "{code:?}"
            );
        }
        for code in [
            ErrorCode::PRODUCER_FENCED,
            ErrorCode::INVALID_PRODUCER_EPOCH,
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            ErrorCode::UNSUPPORTED_VERSION,
        ] {
            for api in [ApiKey::Produce, ApiKey::EndTxn, ApiKey::TxnOffsetCommit] {
                assert_eq!(verdict(api, &conn_error(code)), Verdict::Fatal, "{code:?}");
            }
        }
        for code in [
            ErrorCode::ILLEGAL_GENERATION,
            ErrorCode::FENCED_INSTANCE_ID,
            ErrorCode::UNKNOWN_MEMBER_ID,
        ] {
            let v = verdict(ApiKey::TxnOffsetCommit, &conn_error(code));
            assert_eq!(v, Verdict::Abortable, "{code:?}");
        }
        let unknown = conn_error(ErrorCode::UNKNOWN_SERVER_ERROR);
        assert_eq!(verdict(ApiKey::Produce, &unknown), Verdict::Abortable);
        assert_eq!(verdict(ApiKey::EndTxn, &unknown), Verdict::Fatal);
        assert!(wrap(ApiKey::EndTxn, conn_error(ErrorCode::PRODUCER_FENCED)).is_fatal());
        assert!(
            wrap(
                ApiKey::TxnOffsetCommit,
                conn_error(ErrorCode::ILLEGAL_GENERATION)
            )
            .is_abortable()
        );
        let retried_out = wrap(
            ApiKey::EndTxn,
            conn_error(ErrorCode::CONCURRENT_TRANSACTIONS),
        );
        assert!(retried_out.is_retriable() && !retried_out.is_fatal());
        assert!(is_fatal_error(&Error::Kafka(conn_error(
            ErrorCode::PRODUCER_FENCED
        ))));
        assert!(!is_fatal_error(&Error::TransactionAborted));
    }

    #[test]
    fn add_partitions_asks_for_every_new_partition_in_one_request() {
        let t: Arc<str> = Arc::from("t");
        let u: Arc<str> = Arc::from("u");
        let asked = vec![
            (u.clone(), 0),
            (t.clone(), 2),
            (t.clone(), 0),
            (t.clone(), 2),
        ];
        let producer = ProducerId { id: 7, epoch: 3 };
        let r = add_partitions("tx", producer, &asked);
        assert_eq!(r.v3_and_below_transactional_id, "tx");
        assert_eq!(
            (r.v3_and_below_producer_id, r.v3_and_below_producer_epoch),
            (7, 3)
        );
        let topics: Vec<(&str, &[i32])> = r
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.as_str(), t.partitions.as_slice()))
            .collect();
        assert_eq!(topics, [("t", &[0, 2][..]), ("u", &[0][..])]);
        // It encodes at every client version, and not in the broker form.
        for v in 0..=ADD_PARTITIONS_MAX {
            assert!(AddPartitionsToTxnRequest::VERSIONS.contains(v));
            kafkit_protocol::frame::encode_request(&mut bytes::BytesMut::new(), 1, None, v, &r)
                .unwrap();
        }

        let response = AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: vec![AddPartitionsToTxnTopicResult {
                name: "t".into(),
                results_by_partition: vec![
                    AddPartitionsToTxnPartitionResult {
                        partition_index: 0,
                        partition_error_code: ErrorCode::NONE,
                        ..Default::default()
                    },
                    AddPartitionsToTxnPartitionResult {
                        partition_index: 2,
                        partition_error_code: ErrorCode::CONCURRENT_TRANSACTIONS,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let results = add_partitions_results(&[(t.clone(), 0), (t.clone(), 2), (u, 0)], &response);
        let codes: Vec<ErrorCode> = results.iter().map(|r| r.1).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::NONE,
                ErrorCode::CONCURRENT_TRANSACTIONS,
                ErrorCode::UNKNOWN_SERVER_ERROR
            ]
        );
    }

    #[test]
    fn txn_offset_commit_carries_the_member_from_v3() {
        let group = ConsumerGroupMetadata {
            group_id: "g".into(),
            generation_id: 4,
            member_id: "m-1".into(),
            group_instance_id: Some("i".into()),
        };
        let offsets = [
            TxnOffset {
                topic: "in".into(),
                partition: 0,
                offset: 10,
                metadata: None,
            },
            TxnOffset {
                topic: "in".into(),
                partition: 1,
                offset: 20,
                metadata: Some("x".into()),
            },
        ];
        let producer = ProducerId { id: 1, epoch: 0 };
        let r = txn_offset_commit(3, "tx", producer, &group, &offsets);
        assert_eq!((r.generation_id, r.member_id.as_str()), (4, "m-1"));
        assert_eq!(r.group_instance_id.as_deref(), Some("i"));
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].partitions[1].committed_offset, 20);
        let old = txn_offset_commit(2, "tx", producer, &group, &offsets);
        assert_eq!((old.generation_id, old.member_id.as_str()), (-1, ""));
        assert_eq!(old.group_instance_id, None);
        // Both encode: no field is set that its version lacks.
        for (v, r) in [(3, &r), (2, &old)] {
            kafkit_protocol::frame::encode_request(&mut bytes::BytesMut::new(), 1, None, v, r)
                .unwrap();
        }

        let mut response = TxnOffsetCommitResponse {
            topics: vec![TxnOffsetCommitResponseTopic {
                name: "in".into(),
                partitions: vec![TxnOffsetCommitResponsePartition {
                    partition_index: 1,
                    error_code: ErrorCode::NONE,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(txn_offset_commit_error(&response), None);
        response.topics[0].partitions[0].error_code = ErrorCode::ILLEGAL_GENERATION;
        assert_eq!(
            txn_offset_commit_error(&response),
            Some(("in".into(), 1, ErrorCode::ILLEGAL_GENERATION))
        );
    }
}
