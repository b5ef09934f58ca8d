//! Committed leader epochs (KIP-320) on librdkafka's mock cluster: the
//! partition's next owner validates the committed position against the
//! epoch OffsetFetch returns (OffsetForLeaderEpoch to the leader) before
//! fetching, then resumes exactly there. tansu writes batches without a
//! leader epoch, so there is nothing to validate there. The mock records
//! the partition's epoch with a commit whatever the commit says, so that
//! the commit itself carries the last record's epoch is checked by
//! `group::client`'s unit test of the OffsetCommit request.

use std::time::Duration;

use kafkit_conn::messages::OffsetFetchRequest;
use kafkit_conn::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafkit_conn::{ApiKey, CoordinatorKey, Message as Record, Purpose, Transport, TransportConfig};
use kafkit_reader::{Message, Reader};
use kafkit_tests::{MockCluster, unique_topic};

/// The mock advertises flexible group API versions it cannot serve (see
/// `reader_group_faults.rs`): cap them at their last classic versions.
fn cluster() -> MockCluster {
    let cluster = MockCluster::start(3);
    for (api, max) in [
        (ApiKey::JoinGroup, 5),
        (ApiKey::SyncGroup, 3),
        (ApiKey::Heartbeat, 3),
        (ApiKey::LeaveGroup, 2),
    ] {
        cluster.set_api_versions(api as i16, Some((0, max)));
    }
    cluster
}

async fn reader(cluster: &MockCluster, group: &str, topic: &str) -> Reader {
    Reader::builder(cluster.bootstrap().split(',').map(String::from))
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap()
}

async fn next(reader: &mut Reader) -> Message {
    tokio::time::timeout(Duration::from_secs(30), reader.fetch_message())
        .await
        .expect("a message in time")
        .unwrap()
}

/// The group's committed offset and leader epoch of partition 0.
async fn committed(transport: &Transport, group: &str, topic: &str) -> (i64, i32) {
    let conn = transport
        .coordinator(&CoordinatorKey::Group(group.into()), Purpose::Admin)
        .await
        .unwrap();
    let request = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        ..Default::default()
    };
    // The committed epoch is in v5+; the mock stops before v8.
    let version = conn.version_for(ApiKey::OffsetFetch).unwrap().min(7);
    let response = conn.request_at(version, request).await.unwrap();
    let p = &response.topics[0].partitions[0];
    (p.committed_offset, p.committed_leader_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_carry_the_leader_epoch_and_the_next_owner_validates_it() {
    let cluster = cluster();
    let topic = unique_topic("rge");
    cluster.create_topic(&topic, 1, 3);
    // Two leader changes, so the records' epoch is not a default 0.
    cluster.set_partition_leader(&topic, 0, 2);
    cluster.set_partition_leader(&topic, 0, 3);
    let transport = Transport::connect(TransportConfig::new(cluster.bootstrap().split(',')))
        .await
        .unwrap();
    let records: Vec<Record> = (0..10).map(|i| Record::new(format!("v{i}"))).collect();
    transport
        .retry(|| async {
            let conn = transport
                .partition_conn(&topic, 0, Purpose::Produce)
                .await?;
            conn.write_messages(&records).await
        })
        .await
        .unwrap();

    let group = unique_topic("rge-group");
    let mut first = reader(&cluster, &group, &topic).await;
    let mut last = next(&mut first).await;
    while last.offset < 4 {
        last = next(&mut first).await;
    }
    let epoch = last
        .leader_epoch
        .expect("the mock's batches carry a leader epoch");
    assert!(epoch >= 1, "the leader moved twice: epoch {epoch}");
    first.commit_messages(&[last]).await.unwrap();
    first.close().await.unwrap();
    assert_eq!(committed(&transport, &group, &topic).await, (5, epoch));

    // The next owner checks the committed position on the leader first,
    // finds it valid, and resumes exactly there.
    cluster.start_request_tracking();
    let mut second = reader(&cluster, &group, &topic).await;
    assert_eq!(next(&mut second).await.offset, 5);
    let validations = cluster
        .take_requests()
        .into_iter()
        .filter(|&(broker, key)| key == ApiKey::OffsetForLeaderEpoch as i16 && broker == 3)
        .count();
    assert_eq!(validations, 1, "one OffsetForLeaderEpoch, to the leader");
    let stats = second.stats().fetch;
    assert_eq!((stats.truncations, stats.resets), (0, 0));
    second.close().await.unwrap();
}
