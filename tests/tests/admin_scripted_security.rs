//! kafkit-admin's security and transaction calls tansu lacks, against a
//! scripted peer (`admin_support`): DeleteAcls, client quotas, SCRAM
//! credentials, and DescribeProducers/DescribeTransactions/ListTransactions.

mod admin_support;

use std::collections::BTreeMap;

use admin_support::ScriptedCluster;
use kafkit_admin::{
    AclBindingFilter, AclOperation, Admin, ErrorCode, QuotaAlteration, QuotaFilter, QuotaMatch,
    ResourceType, ScramAlteration, ScramMechanism, TopicPartition,
};
use kafkit_protocol::messages::alter_client_quotas_response as acq;
use kafkit_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafkit_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafkit_protocol::messages::describe_client_quotas_response::{
    EntityData, EntryData, ValueData,
};
use kafkit_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafkit_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafkit_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafkit_protocol::messages::list_transactions_response as lt;
use kafkit_protocol::messages::*;

async fn admin(cluster: &ScriptedCluster) -> Admin {
    Admin::builder([&cluster.bootstrap()])
        .build()
        .await
        .expect("admin connects to the scripted peer")
}

#[tokio::test]
async fn delete_acls_against_scripted_peer_lists_what_each_filter_matched() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::DeleteAcls(r) => Some(ResponseBody::DeleteAcls(DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|f| match f.principal_filter.as_deref() {
                    Some("User:bob") => DeleteAclsFilterResult {
                        matching_acls: vec![DeleteAclsMatchingAcl {
                            resource_type: 2,
                            resource_name: "orders".into(),
                            pattern_type: 3,
                            principal: "User:bob".into(),
                            host: "*".into(),
                            operation: 4,
                            permission_type: 3,
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    _ => DeleteAclsFilterResult {
                        error_code: ErrorCode::SECURITY_DISABLED,
                        ..Default::default()
                    },
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let bob = AclBindingFilter {
        principal: Some("User:bob".into()),
        ..AclBindingFilter::any()
    };
    let results = admin
        .delete_acls(&[bob, AclBindingFilter::any()])
        .await
        .expect("delete acls");
    let deleted = results[0].as_ref().expect("bob's filter");
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (
            deleted[0].binding.resource_type,
            deleted[0].binding.operation
        ),
        (ResourceType::Topic, AclOperation::Write)
    );
    assert!(deleted[0].result.is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().code(),
        Some(ErrorCode::SECURITY_DISABLED)
    );
}

#[tokio::test]
async fn client_quotas_against_scripted_peer_are_described_and_altered_per_entity() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::DescribeClientQuotas(_) => Some(ResponseBody::DescribeClientQuotas(
            DescribeClientQuotasResponse {
                entries: Some(vec![EntryData {
                    entity: vec![EntityData {
                        entity_type: "user".into(),
                        entity_name: Some("alice".into()),
                        ..Default::default()
                    }],
                    values: vec![ValueData {
                        key: "producer_byte_rate".into(),
                        value: 1024.0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )),
        RequestBody::AlterClientQuotas(r) => {
            Some(ResponseBody::AlterClientQuotas(AlterClientQuotasResponse {
                entries: r
                    .entries
                    .iter()
                    .map(|e| acq::EntryData {
                        error_code: if e.ops.iter().any(|o| o.value < 0.0) {
                            ErrorCode::INVALID_REQUEST
                        } else {
                            ErrorCode::NONE
                        },
                        entity: e
                            .entity
                            .iter()
                            .map(|d| acq::EntityData {
                                entity_type: d.entity_type.clone(),
                                entity_name: d.entity_name.clone(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let users = QuotaFilter {
        entity_type: "user".into(),
        matching: QuotaMatch::Exact("alice".into()),
    };
    let described = admin
        .describe_client_quotas(&[users], true)
        .await
        .expect("describe quotas");
    assert_eq!(described[0].0["user"].as_deref(), Some("alice"));
    assert_eq!(described[0].1["producer_byte_rate"], 1024.0);
    let RequestBody::DescribeClientQuotas(sent) = &cluster.seen()[0].1 else {
        panic!()
    };
    assert_eq!(
        (
            sent.components[0].match_type,
            sent.components[0].r#match.as_deref(),
            sent.strict
        ),
        (0, Some("alice"), true)
    );

    let entity = |name: &str| BTreeMap::from([("user".to_string(), Some(name.to_string()))]);
    let ok = QuotaAlteration {
        entity: entity("alice"),
        ops: BTreeMap::from([
            ("producer_byte_rate".into(), Some(2048.0)),
            ("consumer_byte_rate".into(), None),
        ]),
    };
    let bad = QuotaAlteration {
        entity: entity("bob"),
        ops: BTreeMap::from([("producer_byte_rate".into(), Some(-1.0))]),
    };
    let results = admin
        .alter_client_quotas(&[ok, bad], false)
        .await
        .expect("alter quotas");
    assert!(results[0].1.is_ok());
    assert_eq!(
        results[1].1.as_ref().unwrap_err().code(),
        Some(ErrorCode::INVALID_REQUEST)
    );
    let RequestBody::AlterClientQuotas(sent) = &cluster.seen()[1].1 else {
        panic!()
    };
    let removed = sent.entries[0]
        .ops
        .iter()
        .find(|o| o.key == "consumer_byte_rate")
        .expect("sent");
    assert!(removed.remove, "a None value removes the quota");
}

#[tokio::test]
async fn scram_credentials_against_scripted_peer_send_only_a_salted_password() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::DescribeUserScramCredentials(_) => Some(
            ResponseBody::DescribeUserScramCredentials(DescribeUserScramCredentialsResponse {
                results: vec![
                    DescribeUserScramCredentialsResult {
                        user: "alice".into(),
                        credential_infos: vec![CredentialInfo {
                            mechanism: 2,
                            iterations: 8192,
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    DescribeUserScramCredentialsResult {
                        user: "nobody".into(),
                        error_code: ErrorCode::RESOURCE_NOT_FOUND,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        ),
        RequestBody::AlterUserScramCredentials(r) => Some(ResponseBody::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse {
                results: r
                    .upsertions
                    .iter()
                    .map(|u| AlterUserScramCredentialsResult {
                        user: u.name.clone(),
                        ..Default::default()
                    })
                    .chain(r.deletions.iter().map(|d| AlterUserScramCredentialsResult {
                        user: d.name.clone(),
                        error_code: ErrorCode::RESOURCE_NOT_FOUND,
                        ..Default::default()
                    }))
                    .collect(),
                ..Default::default()
            },
        )),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let described = admin
        .describe_user_scram_credentials(Some(&["alice", "nobody"]))
        .await
        .expect("describe");
    let alice = described["alice"].as_ref().expect("alice");
    assert_eq!(
        (alice[0].mechanism, alice[0].iterations),
        (ScramMechanism::Sha512, 8192)
    );
    assert_eq!(
        described["nobody"].as_ref().unwrap_err().code(),
        Some(ErrorCode::RESOURCE_NOT_FOUND)
    );

    let upsert = |user: &str| ScramAlteration::Upsert {
        user: user.into(),
        mechanism: ScramMechanism::Sha256,
        iterations: 4096,
        password: "alice-secret".into(),
    };
    let delete = ScramAlteration::Delete {
        user: "carol".into(),
        mechanism: ScramMechanism::Sha512,
    };
    let results = admin
        .alter_user_scram_credentials(&[upsert("alice"), upsert("bob"), delete])
        .await
        .expect("alter");
    assert!(results["alice"].is_ok() && results["bob"].is_ok());
    assert_eq!(
        results["carol"].as_ref().unwrap_err().code(),
        Some(ErrorCode::RESOURCE_NOT_FOUND)
    );

    let RequestBody::AlterUserScramCredentials(sent) = &cluster.seen()[1].1 else {
        panic!()
    };
    let (a, b) = (&sent.upsertions[0], &sent.upsertions[1]);
    assert_eq!(
        (a.mechanism, a.iterations, a.salted_password.len()),
        (1, 4096, 32)
    );
    assert_ne!(a.salt, b.salt, "each credential gets a fresh random salt");
    assert_ne!(
        a.salted_password, b.salted_password,
        "so the same password salts differently"
    );
    let secret: &[u8] = b"alice-secret";
    assert!(
        !a.salted_password.windows(secret.len()).any(|w| w == secret),
        "the password is never sent"
    );
    assert_eq!(sent.deletions[0].mechanism, 2);
}

#[tokio::test]
async fn transactions_against_scripted_peer_are_described_listed_and_producers_found_per_leader() {
    let cluster = ScriptedCluster::start(2, |node, req| match req {
        RequestBody::DescribeProducers(r) => {
            Some(ResponseBody::DescribeProducers(DescribeProducersResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| TopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&p| PartitionResponse {
                                partition_index: p,
                                active_producers: vec![ProducerState {
                                    producer_id: 1000 + i64::from(node),
                                    producer_epoch: 1,
                                    last_sequence: 9,
                                    last_timestamp: 1_000,
                                    coordinator_epoch: -1,
                                    current_txn_start_offset: 42,
                                    ..Default::default()
                                }],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }))
        }
        RequestBody::DescribeTransactions(r) => Some(ResponseBody::DescribeTransactions(
            DescribeTransactionsResponse {
                transaction_states: r
                    .transactional_ids
                    .iter()
                    .map(|id| TransactionState {
                        transactional_id: id.clone(),
                        transaction_state: "Ongoing".into(),
                        transaction_timeout_ms: 60_000,
                        transaction_start_time_ms: 5_000,
                        producer_id: 7,
                        producer_epoch: 2,
                        topics: vec![TopicData {
                            topic: "orders".into(),
                            partitions: vec![0, 1],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        )),
        RequestBody::ListTransactions(_) if node == 2 => None,
        RequestBody::ListTransactions(r) => {
            Some(ResponseBody::ListTransactions(ListTransactionsResponse {
                transaction_states: vec![lt::TransactionState {
                    transactional_id: "tx-1".into(),
                    producer_id: 7,
                    transaction_state: r.state_filters.first().cloned().unwrap_or_default(),
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let producers = admin
        .describe_producers(&[
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1),
        ])
        .await
        .expect("describe producers");
    let p0 = &producers[&TopicPartition::new("orders", 0)]
        .as_ref()
        .expect("p0")[0];
    let p1 = &producers[&TopicPartition::new("orders", 1)]
        .as_ref()
        .expect("p1")[0];
    assert_eq!(
        (p0.producer_id, p1.producer_id),
        (1001, 1002),
        "each partition asked of its leader"
    );
    assert_eq!(
        (p0.coordinator_epoch, p0.current_txn_start_offset),
        (None, Some(42))
    );

    let txns = admin
        .describe_transactions(&["tx-1"])
        .await
        .expect("describe transactions");
    let tx = txns["tx-1"].as_ref().expect("described");
    assert_eq!(
        (tx.state.as_str(), tx.producer_id, tx.producer_epoch),
        ("Ongoing", 7, 2)
    );
    assert_eq!(tx.timeout, std::time::Duration::from_secs(60));
    assert_eq!(
        tx.partitions,
        [
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1)
        ]
    );

    let listed = admin
        .list_transactions(&["Ongoing"], &[])
        .await
        .expect("list transactions");
    assert_eq!(listed.transactions.len(), 1);
    assert_eq!(
        (
            listed.transactions[0].state.as_str(),
            listed.transactions[0].coordinator
        ),
        ("Ongoing", 1)
    );
    assert!(
        listed.errors[&2].is_connection_error(),
        "broker 2's failure is reported, not lost"
    );
}
