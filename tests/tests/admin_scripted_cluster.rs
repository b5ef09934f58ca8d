//! kafkit-admin calls tansu lacks (or would crash on), each against a
//! scripted peer (`admin_support`): the request kafkit sends is checked,
//! then a canned answer built from the generated response types is turned
//! into per-resource results. Also the routing: NOT_CONTROLLER re-routes
//! a change, a moved leader is asked again, a dead connection fails the
//! whole call.

mod admin_support;

use std::collections::BTreeMap;

use admin_support::ScriptedCluster;
use kafkit_admin::{
    Admin, ConfigResource, ElectionType, ErrorCode, IsolationLevel, NewPartitions, NewTopic,
    OffsetSpec, TopicPartition,
};
use kafkit_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafkit_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafkit_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafkit_protocol::messages::create_topics_response::CreatableTopicResult;
use kafkit_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafkit_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafkit_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafkit_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafkit_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafkit_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafkit_protocol::messages::*;

async fn admin(cluster: &ScriptedCluster) -> Admin {
    Admin::builder([&cluster.bootstrap()])
        .build()
        .await
        .expect("admin connects to the scripted peer")
}

#[tokio::test]
async fn create_partitions_against_scripted_peer_reports_each_topic() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::CreatePartitions(r) => {
            Some(ResponseBody::CreatePartitions(CreatePartitionsResponse {
                results: r
                    .topics
                    .iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: if t.count <= 3 {
                            ErrorCode::INVALID_PARTITIONS
                        } else {
                            ErrorCode::NONE
                        },
                        error_message: (t.count <= 3).then(|| "already has 3".to_string()),
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
    let grow = |topic: &str, total_count| NewPartitions {
        topic: topic.into(),
        total_count,
        assignments: vec![],
    };
    let results = admin
        .create_partitions(&[grow("a", 6), grow("b", 3)], false)
        .await
        .expect("the call succeeds");
    assert!(results["a"].is_ok());
    let e = results["b"].as_ref().expect_err("b fails alone");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_PARTITIONS));
    assert!(e.to_string().contains("already has 3"), "{e}");
    let RequestBody::CreatePartitions(sent) = &cluster.seen()[0].1 else {
        panic!("CreatePartitions sent")
    };
    assert_eq!(
        (sent.topics[0].count, sent.validate_only, sent.timeout_ms),
        (6, false, 30_000)
    );
}

#[tokio::test]
async fn create_topics_against_scripted_peer_follows_a_moved_controller() {
    let cluster = ScriptedCluster::start(2, |node, req| match req {
        RequestBody::CreateTopics(r) => Some(ResponseBody::CreateTopics(CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: if node == 1 {
                        ErrorCode::NOT_CONTROLLER
                    } else {
                        ErrorCode::NONE
                    },
                    num_partitions: t.num_partitions,
                    replication_factor: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    cluster.set_controller(2);
    let results = admin
        .create_topics(&[NewTopic::new("t", 5)], false)
        .await
        .expect("re-routed");
    let created = results["t"]
        .as_ref()
        .expect("created on the new controller");
    assert_eq!(
        (created.num_partitions, created.replication_factor),
        (Some(5), Some(1))
    );
    let nodes: Vec<i32> = cluster.seen().iter().map(|(n, _)| *n).collect();
    assert_eq!(nodes, [1, 2], "first the old controller, then the new one");
}

#[tokio::test]
async fn create_topics_against_scripted_peer_that_drops_the_connection_fails_the_whole_call() {
    let cluster = ScriptedCluster::start(1, |_, _| None).await;
    let admin = admin(&cluster).await;
    let e = admin
        .create_topics(&[NewTopic::new("t", 1)], false)
        .await
        .expect_err("no answer, no results");
    assert!(e.is_connection_error(), "{e}");
    assert_eq!(
        cluster.seen().len(),
        1,
        "a change that may have happened is not sent again"
    );
}

#[tokio::test]
async fn describe_cluster_against_scripted_peer_is_asked_again_after_a_dropped_connection() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let cluster = ScriptedCluster::start(1, move |_, req| match req {
        RequestBody::DescribeCluster(_)
            if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 =>
        {
            None
        }
        RequestBody::DescribeCluster(_) => {
            Some(ResponseBody::DescribeCluster(DescribeClusterResponse {
                cluster_id: "scripted".into(),
                controller_id: 1,
                brokers: vec![describe_cluster_response::DescribeClusterBroker {
                    broker_id: 1,
                    host: "127.0.0.1".into(),
                    port: 9092,
                    rack: Some("r1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let described = admin
        .describe_cluster()
        .await
        .expect("a read is retried on a new connection");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        (described.cluster_id.as_deref(), described.controller),
        (Some("scripted"), Some(1))
    );
    assert_eq!(described.brokers[0].rack.as_deref(), Some("r1"));
}

#[tokio::test]
async fn delete_records_against_scripted_peer_asks_each_leader_for_its_partitions() {
    let cluster = ScriptedCluster::start(2, |node, req| match req {
        RequestBody::DeleteRecords(r) => Some(ResponseBody::DeleteRecords(DeleteRecordsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| DeleteRecordsTopicResult {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: p.offset + i64::from(node) * 1000,
                            error_code: if p.offset < 0 {
                                ErrorCode::OFFSET_OUT_OF_RANGE
                            } else {
                                ErrorCode::NONE
                            },
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let offsets = BTreeMap::from([
        (TopicPartition::new("t", 0), 10),
        (TopicPartition::new("t", 1), 20),
        (TopicPartition::new("t", 2), -5),
    ]);
    let results = admin
        .delete_records(&offsets)
        .await
        .expect("the call succeeds");
    // Partitions 0 and 2 are led by broker 1, partition 1 by broker 2.
    assert_eq!(
        *results[&TopicPartition::new("t", 0)].as_ref().unwrap(),
        1010
    );
    assert_eq!(
        *results[&TopicPartition::new("t", 1)].as_ref().unwrap(),
        2020
    );
    let e = results[&TopicPartition::new("t", 2)]
        .as_ref()
        .expect_err("partition 2 fails alone");
    assert_eq!(e.code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
    assert_eq!(e.partition(), Some(2));
    let mut nodes: Vec<i32> = cluster.seen().iter().map(|(n, _)| *n).collect();
    nodes.sort();
    assert_eq!(nodes, [1, 2], "one request per leader");
}

#[tokio::test]
async fn list_offsets_against_scripted_peer_asks_again_after_not_leader() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let cluster = ScriptedCluster::start(1, move |_, req| match req {
        RequestBody::ListOffsets(r) => {
            let first = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            Some(ResponseBody::ListOffsets(ListOffsetsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| ListOffsetsTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: if first && p.partition_index == 1 {
                                    ErrorCode::NOT_LEADER_OR_FOLLOWER
                                } else {
                                    ErrorCode::NONE
                                },
                                offset: 100 + i64::from(p.partition_index),
                                timestamp: if p.timestamp == -3 { 5_000 } else { -1 },
                                leader_epoch: 3,
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
    let specs = BTreeMap::from([
        (TopicPartition::new("t", 0), OffsetSpec::MaxTimestamp),
        (TopicPartition::new("t", 1), OffsetSpec::Latest),
    ]);
    let results = admin
        .list_offsets(&specs, IsolationLevel::ReadCommitted)
        .await
        .expect("list offsets");
    let p0 = results[&TopicPartition::new("t", 0)].as_ref().expect("p0");
    assert_eq!((p0.offset, p0.leader_epoch), (100, Some(3)));
    assert_eq!(
        p0.timestamp,
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(5))
    );
    assert_eq!(
        results[&TopicPartition::new("t", 1)]
            .as_ref()
            .expect("p1 on the second try")
            .offset,
        101
    );
    let seen = cluster.seen();
    assert_eq!(seen.len(), 2, "the moved partition alone is asked again");
    let RequestBody::ListOffsets(second) = &seen[1].1 else {
        panic!()
    };
    assert_eq!(second.isolation_level, 1);
    assert_eq!(second.topics[0].partitions.len(), 1);
    assert_eq!(second.topics[0].partitions[0].partition_index, 1);
}

#[tokio::test]
async fn broker_configs_against_scripted_peer_go_to_that_broker_and_legacy_alter_reports_each_resource()
 {
    let cluster = ScriptedCluster::start(2, |node, req| match req {
        RequestBody::DescribeConfigs(r) => {
            Some(ResponseBody::DescribeConfigs(DescribeConfigsResponse {
                results: r
                    .resources
                    .iter()
                    .map(|res| DescribeConfigsResult {
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        configs: vec![DescribeConfigsResourceResult {
                            name: "log.retention.ms".into(),
                            value: Some(format!("from-node-{node}")),
                            config_source: 4,
                            synonyms: vec![DescribeConfigsSynonym {
                                name: "log.retention.hours".into(),
                                value: Some("168".into()),
                                source: 5,
                                ..Default::default()
                            }],
                            config_type: 5,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }))
        }
        RequestBody::AlterConfigs(r) => Some(ResponseBody::AlterConfigs(AlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|res| AlterConfigsResourceResponse {
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    error_code: if res.resource_name == "bad" {
                        ErrorCode::INVALID_CONFIG
                    } else {
                        ErrorCode::NONE
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let described = admin
        .describe_configs(&[ConfigResource::Broker(2)], true)
        .await
        .expect("describe");
    let entry = &described[&ConfigResource::Broker(2)]
        .as_ref()
        .expect("broker 2's configs")[0];
    assert_eq!(
        entry.value.as_deref(),
        Some("from-node-2"),
        "asked of broker 2 itself"
    );
    assert_eq!(entry.source, kafkit_admin::ConfigSource::StaticBroker);
    assert_eq!(entry.config_type, kafkit_admin::ConfigType::Long);
    assert_eq!(
        entry.synonyms[0].source,
        kafkit_admin::ConfigSource::Default
    );
    let RequestBody::DescribeConfigs(sent) = &cluster.seen()[0].1 else {
        panic!()
    };
    assert!(sent.include_synonyms);

    let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    let altered = admin
        .alter_configs(
            &[
                (ConfigResource::Topic("good".into()), configs.clone()),
                (ConfigResource::Topic("bad".into()), configs),
            ],
            false,
        )
        .await
        .expect("alter");
    assert!(altered[&ConfigResource::Topic("good".into())].is_ok());
    assert_eq!(
        altered[&ConfigResource::Topic("bad".into())]
            .as_ref()
            .unwrap_err()
            .code(),
        Some(ErrorCode::INVALID_CONFIG)
    );
}

#[tokio::test]
async fn elections_reassignments_and_log_dirs_against_scripted_peer() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::ElectLeaders(r) => Some(ResponseBody::ElectLeaders(ElectLeadersResponse {
            replica_election_results: r
                .topic_partitions
                .iter()
                .flatten()
                .map(|t| ReplicaElectionResult {
                    topic: t.topic.clone(),
                    partition_result: t
                        .partitions
                        .iter()
                        .map(|&p| PartitionResult {
                            partition_id: p,
                            error_code: if p == 0 {
                                ErrorCode::NONE
                            } else {
                                ErrorCode::ELECTION_NOT_NEEDED
                            },
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
        RequestBody::AlterPartitionReassignments(r) => Some(
            ResponseBody::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                responses: r
                    .topics
                    .iter()
                    .map(|t| ReassignableTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| ReassignablePartitionResponse {
                                partition_index: p.partition_index,
                                error_code: if p.replicas.is_none() {
                                    ErrorCode::NO_REASSIGNMENT_IN_PROGRESS
                                } else {
                                    ErrorCode::NONE
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        ),
        RequestBody::ListPartitionReassignments(_) => Some(
            ResponseBody::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                topics: vec![OngoingTopicReassignment {
                    name: "t".into(),
                    partitions: vec![OngoingPartitionReassignment {
                        partition_index: 0,
                        replicas: vec![1, 2, 3],
                        adding_replicas: vec![3],
                        removing_replicas: vec![1],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        RequestBody::DescribeLogDirs(_) => {
            Some(ResponseBody::DescribeLogDirs(DescribeLogDirsResponse {
                results: vec![DescribeLogDirsResult {
                    log_dir: "/var/kafka".into(),
                    topics: vec![DescribeLogDirsTopic {
                        name: "t".into(),
                        partitions: vec![DescribeLogDirsPartition {
                            partition_index: 0,
                            partition_size: 4096,
                            offset_lag: 0,
                            is_future_key: false,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    total_bytes: 1 << 30,
                    usable_bytes: 1 << 29,
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));

    let elected = admin
        .elect_leaders(ElectionType::Preferred, Some(&[t0.clone(), t1.clone()]))
        .await
        .expect("elect");
    assert!(elected[&t0].is_ok());
    assert_eq!(
        elected[&t1].as_ref().unwrap_err().code(),
        Some(ErrorCode::ELECTION_NOT_NEEDED)
    );

    let moves = BTreeMap::from([(t0.clone(), Some(vec![1, 2, 3])), (t1.clone(), None)]);
    let altered = admin
        .alter_partition_reassignments(&moves)
        .await
        .expect("reassign");
    assert!(altered[&t0].is_ok());
    assert_eq!(
        altered[&t1].as_ref().unwrap_err().code(),
        Some(ErrorCode::NO_REASSIGNMENT_IN_PROGRESS)
    );

    let ongoing = admin
        .list_partition_reassignments(None)
        .await
        .expect("list reassignments");
    assert_eq!(ongoing[&t0].adding, [3]);
    assert_eq!(ongoing[&t0].removing, [1]);

    let dirs = admin.describe_log_dirs(&[1], None).await.expect("log dirs");
    let dir = &dirs[&1].as_ref().expect("broker 1's dirs")[0];
    assert_eq!(dir.path, "/var/kafka");
    assert_eq!(dir.partitions[&t0].size, 4096);
    assert_eq!(
        (dir.total_bytes, dir.usable_bytes),
        (Some(1 << 30), Some(1 << 29))
    );
    assert!(dir.error.is_none());
}
