//! kafkit-admin against librdkafka 2.16 (confluent-kafka's AdminClient) on
//! the same tansu: what one client creates or commits, the other sees.

use std::collections::BTreeMap;

use kafkit_admin::{Admin, NewTopic, TopicPartition};
use kafkit_tests::{TestBroker, run_python, unique_topic};

/// librdkafka's view of `topics`: name -> partition -> replicas.
const LIST_TOPICS: &str = r#"
import json, sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
md = admin.list_topics(timeout=10)
print(json.dumps({t: {str(p): v.replicas for p, v in md.topics[t].partitions.items()}
                  for t in sys.argv[2:] if t in md.topics}))
"#;

/// Creates a topic with librdkafka: name, partitions.
const CREATE_TOPIC: &str = r#"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
futures = admin.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), 1)])
futures[sys.argv[2]].result(10)
"#;

/// A group's committed offsets as librdkafka reads them: "topic/partition" -> offset.
const GROUP_OFFSETS: &str = r#"
import json, sys
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(sys.argv[2])])
offsets = result[sys.argv[2]].result(10)
print(json.dumps({f"{tp.topic}/{tp.partition}": tp.offset for tp in offsets.topic_partitions}))
"#;

async fn python(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(script, &args)
    })
    .await
    .expect("the python script ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_by_either_client_are_listed_alike_by_both() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap().to_string();
    let admin = Admin::builder([&bootstrap])
        .build()
        .await
        .expect("admin connects");
    let ours = unique_topic("admin-interop-ours");
    let theirs = unique_topic("admin-interop-theirs");
    let created = admin
        .create_topics(&[NewTopic::new(&ours, 3)], false)
        .await
        .expect("create");
    assert!(created[&ours].is_ok(), "{:?}", created[&ours]);
    python(
        CREATE_TOPIC,
        vec![bootstrap.clone(), theirs.clone(), "4".into()],
    )
    .await;

    let listed = admin.list_topics(false).await.expect("list topics");
    let out = python(LIST_TOPICS, vec![bootstrap, ours.clone(), theirs.clone()]).await;
    let rdkafka: BTreeMap<String, BTreeMap<String, Vec<i32>>> =
        serde_json::from_str(out.trim()).expect("librdkafka's JSON");
    for topic in [&ours, &theirs] {
        let mine: BTreeMap<String, Vec<i32>> = listed[topic]
            .replica_assignment
            .iter()
            .map(|(p, r)| (p.to_string(), r.clone()))
            .collect();
        assert_eq!(mine, rdkafka[topic], "{topic}: kafkit and librdkafka agree");
    }
    assert_eq!(listed[&theirs].num_partitions, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_committed_by_kafkit_admin_are_read_by_librdkafka() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap().to_string();
    let admin = Admin::builder([&bootstrap])
        .build()
        .await
        .expect("admin connects");
    let topic = unique_topic("admin-interop-offsets");
    broker.create_topic(&topic, 2);
    let group = unique_topic("admin-interop-group");
    let offsets = BTreeMap::from([
        (TopicPartition::new(&topic, 0), 11),
        (TopicPartition::new(&topic, 1), 22),
    ]);
    let committed = admin
        .commit_offsets(&group, &offsets)
        .await
        .expect("commit");
    assert!(committed.values().all(Result::is_ok), "{committed:?}");

    let out = python(GROUP_OFFSETS, vec![bootstrap, group]).await;
    let rdkafka: BTreeMap<String, i64> =
        serde_json::from_str(out.trim()).expect("librdkafka's JSON");
    let expected: BTreeMap<String, i64> = offsets
        .iter()
        .map(|(tp, o)| (format!("{}/{}", tp.topic, tp.partition), *o))
        .collect();
    assert_eq!(rdkafka, expected);
}
