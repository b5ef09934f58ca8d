//! kafkit-admin's topic calls against tansu: the seed scenario (list topics
//! as a map of name to details, as sarama's `ClusterAdmin.ListTopics`),
//! describe, create (with partial failure as data), validate-only, delete.

use kafkit_admin::TopicDescription;
use kafkit_admin::{Admin, ConfigResource, ErrorCode, NewTopic};
use kafkit_tests::{TestBroker, eventually, unique_topic};

/// `topic` as the broker describes it once it has the topic: a created
/// topic reaches the broker's metadata a moment after CreateTopics answers.
async fn described(admin: &Admin, topic: &str) -> TopicDescription {
    eventually(&format!("topic {topic} is described"), || async {
        let mut described = admin
            .describe_topics(&[topic])
            .await
            .map_err(|e| e.to_string())?;
        described
            .remove(topic)
            .expect("one result per topic")
            .map_err(|e| e.to_string())
    })
    .await
}

/// Waits until the broker no longer describes `topic`.
async fn gone(admin: &Admin, topic: &str) {
    eventually(&format!("topic {topic} is gone"), || async {
        let described = admin
            .describe_topics(&[topic])
            .await
            .map_err(|e| e.to_string())?;
        match &described[topic] {
            Err(e) if e.code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([broker.bootstrap().to_string()])
        .build()
        .await
        .expect("admin connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_topics_maps_each_topic_to_its_partitions_and_replicas() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let (a, b) = (unique_topic("admin-list-a"), unique_topic("admin-list-b"));
    broker.create_topic(&a, 3);
    broker.create_topic(&b, 1);

    let topics = admin.list_topics(false).await.expect("list topics");
    let detail = topics
        .get(&a)
        .unwrap_or_else(|| panic!("{a} listed in {:?}", topics.keys()));
    assert_eq!(detail.num_partitions, 3);
    assert_eq!(detail.replication_factor, 1);
    assert_eq!(
        detail
            .replica_assignment
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(detail.replica_assignment.values().all(|r| r.len() == 1));
    assert!(!detail.internal);
    assert_eq!(topics[&b].num_partitions, 1);
    assert!(
        topics.values().all(|t| !t.internal),
        "internal topics are left out by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_three_topics_where_one_exists_gives_two_successes_and_one_error() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let existing = unique_topic("admin-exists");
    broker.create_topic(&existing, 1);
    let (new1, new2) = (unique_topic("admin-new"), unique_topic("admin-new"));

    let results = admin
        .create_topics(
            &[
                NewTopic::new(&new1, 2),
                NewTopic::new(&existing, 1),
                NewTopic::new(&new2, 4).replication_factor(1),
            ],
            false,
        )
        .await
        .expect("the call as a whole succeeds");
    assert_eq!(results.len(), 3);
    assert!(results[&new1].is_ok(), "{:?}", results[&new1]);
    assert!(results[&new2].is_ok(), "{:?}", results[&new2]);
    let err = results[&existing]
        .as_ref()
        .expect_err("the existing topic fails alone");
    assert_eq!(err.code(), Some(ErrorCode::TOPIC_ALREADY_EXISTS));
    assert_eq!(err.topic(), Some(existing.as_str()));

    assert_eq!(described(&admin, &new1).await.partitions.len(), 2);
    assert_eq!(described(&admin, &new2).await.partitions.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topics_names_leaders_replicas_and_isr_and_unknown_topics_fail_alone() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let topic = unique_topic("admin-describe");
    broker.create_topic(&topic, 2);
    let missing = unique_topic("admin-missing");

    let described = admin
        .describe_topics(&[&topic, &missing])
        .await
        .expect("describe");
    let t = described[&topic].as_ref().expect("the topic is described");
    assert_eq!(t.name, topic);
    assert_eq!(
        t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        [0, 1]
    );
    for p in &t.partitions {
        let leader = p.leader.expect("a leader");
        assert_eq!(p.replicas, [leader]);
        assert_eq!(p.isr, [leader]);
        assert!(p.offline.is_empty());
        assert!(p.error.is_none());
    }
    let err = described[&missing].as_ref().expect_err("unknown topic");
    assert_eq!(err.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_only_creates_nothing_and_delete_reports_each_topic() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let checked = unique_topic("admin-validate");
    let results = admin
        .create_topics(&[NewTopic::new(&checked, 1)], true)
        .await
        .expect("validate");
    assert!(results[&checked].is_ok(), "{:?}", results[&checked]);
    if !broker.has_tansu_bug("CreateTopics ignores validate_only and creates the topic") {
        let described = admin.describe_topics(&[&checked]).await.expect("describe");
        assert_eq!(
            described[&checked]
                .as_ref()
                .expect_err("validate-only created nothing")
                .code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
    }

    let doomed = unique_topic("admin-delete");
    broker.create_topic(&doomed, 1);
    let never = unique_topic("admin-never");
    let deleted = admin
        .delete_topics(&[&doomed, &never])
        .await
        .expect("delete");
    assert!(deleted[&doomed].is_ok(), "{:?}", deleted[&doomed]);
    assert_eq!(
        deleted[&never].as_ref().expect_err("unknown topic").code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    gone(&admin, &doomed).await;
    let listed = admin.list_topics(false).await.expect("list");
    assert!(!listed.contains_key(&doomed), "deleted topic still listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_deleted_by_id() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let topic = unique_topic("admin-by-id");
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 1)], false)
        .await
        .expect("create");
    let id = match created[&topic].as_ref().expect("created").id {
        Some(id) => id,
        None => described(&admin, &topic).await.id,
    };
    assert!(!id.is_zero(), "the broker names topics by id");
    let deleted = admin
        .delete_topics_by_id(&[id])
        .await
        .expect("delete by id");
    assert!(deleted[&id].is_ok(), "{:?}", deleted[&id]);
    gone(&admin, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_with_explicit_assignments_and_configs_have_them() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let cluster = admin.describe_cluster().await.expect("describe cluster");
    let node = cluster.brokers[0].id;
    let topic = unique_topic("admin-assigned");
    let new = NewTopic {
        name: topic.clone(),
        ..Default::default()
    }
    .assign(0, vec![node])
    .assign(1, vec![node])
    .config("cleanup.policy", "compact");
    let created = admin.create_topics(&[new], false).await.expect("create");
    assert!(created[&topic].is_ok(), "{:?}", created[&topic]);

    let partitions = described(&admin, &topic).await.partitions;
    assert!(partitions.iter().all(|p| p.replicas == [node]));
    if !broker.has_tansu_bug(
        "CreateTopics ignores replica assignments and makes its default partition count",
    ) {
        assert_eq!(partitions.len(), 2, "as many partitions as assignments");
    }

    let resource = ConfigResource::Topic(topic.clone());
    let configs = admin
        .describe_configs(std::slice::from_ref(&resource), false)
        .await
        .expect("describe configs");
    let entries = configs[&resource].as_ref().expect("the topic's configs");
    let policy = entries.iter().find(|e| e.name == "cleanup.policy");
    assert_eq!(
        policy.and_then(|e| e.value.as_deref()),
        Some("compact"),
        "{entries:?}"
    );
}
