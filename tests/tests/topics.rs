//! Topics: creating, listing (Metadata) and deleting them.

use kafkit_protocol::ErrorCode;
use kafkit_tests::{RawClient, TestBroker, unique_topic};

#[test]
fn metadata_lists_a_created_topic_with_its_partitions() {
    let broker = TestBroker::start();
    let topic = unique_topic("metadata");
    broker.create_topic(&topic, 3);
    let mut client = RawClient::connect(broker.addr());

    let response = client.metadata(Some(&[topic.as_str()]));
    assert_eq!(response.topics.len(), 1);
    let found = &response.topics[0];
    assert_eq!(found.name.as_deref(), Some(topic.as_str()));
    assert_eq!(found.error_code, ErrorCode::NONE);
    assert!(!found.is_internal);
    assert!(
        !found.topic_id.is_zero(),
        "Metadata v10+ gives every topic an id"
    );

    let mut indexes: Vec<i32> = found.partitions.iter().map(|p| p.partition_index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    let broker_ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id).collect();
    for partition in &found.partitions {
        assert_eq!(partition.error_code, ErrorCode::NONE);
        assert!(
            broker_ids.contains(&partition.leader_id),
            "leader {} is not a listed broker",
            partition.leader_id
        );
        assert!(partition.replica_nodes.contains(&partition.leader_id));
    }

    // The broker advertises the address the test connected to.
    let advertised = response.brokers.iter().any(|b| {
        b.port == i32::from(broker.addr().port()) && b.host.parse().ok() == Some(broker.addr().ip())
    });
    assert!(
        advertised,
        "brokers {:?} do not include {}",
        response.brokers,
        broker.addr()
    );
    if broker.is_tansu() {
        assert_eq!(
            broker_ids,
            [111],
            "tansu is a single broker with node id 111"
        );
    }
}

#[test]
fn metadata_for_an_unknown_topic_says_so_without_creating_it() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    let topic = unique_topic("missing");

    let response = client.metadata(Some(&[topic.as_str()]));
    assert_eq!(response.topics.len(), 1);
    assert_eq!(
        response.topics[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );

    // allow_auto_topic_creation=false was honoured: it still does not exist.
    let all = client.metadata(None);
    assert!(
        all.topics
            .iter()
            .all(|t| t.name.as_deref() != Some(topic.as_str()))
    );
}

#[test]
fn create_topics_then_delete_topics() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    let topic = unique_topic("lifecycle");

    let created = client.create_topics(&topic, 2);
    assert_eq!(created.topics.len(), 1);
    let result = &created.topics[0];
    assert_eq!(result.name, topic);
    assert_eq!(
        result.error_code,
        ErrorCode::NONE,
        "{:?}",
        result.error_message
    );
    let listed = client.topic_metadata(&topic);
    assert_eq!(listed.partitions.len(), 2);

    // Creating it again is a per-topic error, not a failed request.
    let again = client.create_topics(&topic, 2);
    assert_eq!(again.topics[0].error_code, ErrorCode::TOPIC_ALREADY_EXISTS);

    let deleted = client.delete_topics(&[&topic]);
    assert_eq!(deleted.responses.len(), 1);
    assert_eq!(deleted.responses[0].name.as_deref(), Some(topic.as_str()));
    assert_eq!(
        deleted.responses[0].error_code,
        ErrorCode::NONE,
        "{:?}",
        deleted.responses[0].error_message
    );

    // Deletion is asynchronous on a real cluster: wait until metadata agrees.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = client.metadata(Some(&[topic.as_str()]));
        if response.topics[0].error_code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic {topic} still listed after deletion"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Deleting it twice is a per-topic error too.
    let again = client.delete_topics(&[&topic]);
    assert_eq!(
        again.responses[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
}
