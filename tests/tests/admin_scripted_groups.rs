//! kafkit-admin's group calls where tansu falls short, against a scripted
//! peer (`admin_support`): members with their subscriptions and assignments
//! decoded (tansu describes no members), the ListGroups state filter,
//! coordinators that are still loading, and OffsetDelete.

mod admin_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use admin_support::ScriptedCluster;
use bytes::{BufMut, Bytes, BytesMut};
use kafkit_admin::{Admin, ErrorCode, TopicPartition};
use kafkit_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafkit_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafkit_protocol::messages::*;

async fn admin(cluster: &ScriptedCluster) -> Admin {
    Admin::builder([&cluster.bootstrap()])
        .build()
        .await
        .expect("admin connects to the scripted peer")
}

fn string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

/// A v1 ConsumerProtocolSubscription written by hand, as the Java client
/// lays it out: version, topics, user data (null), owned partitions.
fn subscription_v1() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    b.put_i32(2);
    string(&mut b, "orders");
    string(&mut b, "payments");
    b.put_i32(-1);
    b.put_i32(1);
    string(&mut b, "orders");
    b.put_i32(1);
    b.put_i32(0);
    b.freeze()
}

/// A v0 ConsumerProtocolAssignment written by hand: orders 0 and 2, user data "ud".
fn assignment_v0() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    string(&mut b, "orders");
    b.put_i32(2);
    b.put_i32(0);
    b.put_i32(2);
    b.put_i32(2);
    b.put_slice(b"ud");
    b.freeze()
}

#[tokio::test]
async fn describe_groups_against_scripted_peer_decodes_members_and_keeps_group_errors_apart() {
    let loading = Arc::new(AtomicUsize::new(0));
    let seen_loading = loading.clone();
    let cluster = ScriptedCluster::start(2, move |_, req| match req {
        RequestBody::DescribeGroups(r) => {
            let id = r.groups[0].clone();
            let group = match id.as_str() {
                "busy" if seen_loading.fetch_add(1, Ordering::SeqCst) == 0 => DescribedGroup {
                    group_id: id,
                    error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                    ..Default::default()
                },
                "secret" => DescribedGroup {
                    group_id: id,
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    ..Default::default()
                },
                _ => DescribedGroup {
                    group_id: id,
                    group_state: "Stable".into(),
                    protocol_type: "consumer".into(),
                    protocol_data: "range".into(),
                    members: vec![DescribedGroupMember {
                        member_id: "m-1".into(),
                        group_instance_id: Some("static-1".into()),
                        client_id: "app".into(),
                        client_host: "/10.0.0.1".into(),
                        member_metadata: subscription_v1(),
                        member_assignment: assignment_v0(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            };
            Some(ResponseBody::DescribeGroups(DescribeGroupsResponse {
                groups: vec![group],
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let described = admin
        .describe_groups(&["app", "busy", "secret"])
        .await
        .expect("describe");
    let app = described["app"].as_ref().expect("app described");
    assert_eq!(
        (app.state.as_str(), app.protocol.as_str()),
        ("Stable", "range")
    );
    let m = &app.members[0];
    assert_eq!(m.group_instance_id.as_deref(), Some("static-1"));
    let sub = m
        .subscription
        .as_ref()
        .expect("a consumer")
        .as_ref()
        .expect("decodes");
    assert_eq!(sub.version, 1);
    assert_eq!(sub.topics, ["orders", "payments"]);
    assert_eq!(sub.owned_partitions, [TopicPartition::new("orders", 0)]);
    let assignment = m
        .assignment
        .as_ref()
        .expect("assigned")
        .as_ref()
        .expect("decodes");
    assert_eq!(
        assignment.partitions,
        [
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 2)
        ]
    );
    assert_eq!(assignment.user_data.as_deref(), Some(&b"ud"[..]));
    assert!(
        described["busy"].is_ok(),
        "retried while the coordinator loaded"
    );
    assert_eq!(
        described["secret"].as_ref().unwrap_err().code(),
        Some(ErrorCode::GROUP_AUTHORIZATION_FAILED)
    );
    assert!(
        cluster.seen().iter().all(|(node, _)| *node == 2),
        "asked of the coordinator, broker 2"
    );
}

#[tokio::test]
async fn list_groups_against_scripted_peer_sends_the_state_filter_and_reports_a_failed_broker() {
    let cluster = ScriptedCluster::start(2, |node, req| match req {
        RequestBody::ListGroups(_) if node == 2 => {
            Some(ResponseBody::ListGroups(ListGroupsResponse {
                error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                ..Default::default()
            }))
        }
        RequestBody::ListGroups(r) => Some(ResponseBody::ListGroups(ListGroupsResponse {
            groups: r
                .states_filter
                .iter()
                .map(|state| list_groups_response::ListedGroup {
                    group_id: format!("in-{state}"),
                    protocol_type: "consumer".into(),
                    group_state: state.clone(),
                    group_type: "classic".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let listed = admin
        .list_groups(&["Stable", "Empty"])
        .await
        .expect("list groups");
    let states: Vec<(&str, Option<&str>)> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.state.as_deref()))
        .collect();
    assert_eq!(
        states,
        [("in-Empty", Some("Empty")), ("in-Stable", Some("Stable"))]
    );
    assert_eq!(listed.groups[0].coordinator, 1);
    assert_eq!(
        listed.errors[&2].code(),
        Some(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        "broker 2's failure is data"
    );
}

#[tokio::test]
async fn delete_groups_against_scripted_peer_waits_out_a_loading_coordinator_and_keeps_group_errors_apart()
 {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let cluster = ScriptedCluster::start(1, move |_, req| match req {
        RequestBody::DeleteGroups(r) => {
            let group = r.groups_names[0].clone();
            let error_code = match group.as_str() {
                "busy" if counter.fetch_add(1, Ordering::SeqCst) == 0 => {
                    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                }
                "in-use" => ErrorCode::NON_EMPTY_GROUP,
                _ => ErrorCode::NONE,
            };
            Some(ResponseBody::DeleteGroups(DeleteGroupsResponse {
                results: vec![delete_groups_response::DeletableGroupResult {
                    group_id: group,
                    error_code,
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let results = admin
        .delete_groups(&["busy", "in-use"])
        .await
        .expect("delete groups");
    assert!(
        results["busy"].is_ok(),
        "sent again once the coordinator loaded: {:?}",
        results["busy"]
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(
        results["in-use"].as_ref().unwrap_err().code(),
        Some(ErrorCode::NON_EMPTY_GROUP)
    );
    let in_use_requests = cluster
        .seen()
        .iter()
        .filter(|(_, r)| matches!(r, RequestBody::DeleteGroups(d) if d.groups_names[0] == "in-use"))
        .count();
    assert_eq!(
        in_use_requests, 1,
        "a group the broker answered for is not sent again"
    );
}

#[tokio::test]
async fn delete_offsets_against_scripted_peer_reports_each_partition() {
    let cluster = ScriptedCluster::start(1, |_, req| match req {
        RequestBody::OffsetDelete(r) => Some(ResponseBody::OffsetDelete(OffsetDeleteResponse {
            topics: r
                .topics
                .iter()
                .map(|t| OffsetDeleteResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code: if t.name == "live" {
                                ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                            } else {
                                ErrorCode::NONE
                            },
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        })),
        _ => None,
    })
    .await;
    let admin = admin(&cluster).await;
    let (old, live) = (
        TopicPartition::new("old", 0),
        TopicPartition::new("live", 1),
    );
    let results = admin
        .delete_offsets("g", &[old.clone(), live.clone()])
        .await
        .expect("delete offsets");
    assert!(results[&old].is_ok());
    assert_eq!(
        results[&live].as_ref().unwrap_err().code(),
        Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC)
    );
}
