//! kafkit-admin's config calls against Apache Kafka 4.3.1: the twins of
//! `admin_scripted_cluster.rs`'s config test, with the real broker's answers.
//!
//! - IncrementalAlterConfigs sets, appends to, subtracts from and deletes
//!   topic configs; DescribeConfigs shows each value with its source and,
//!   asked, the synonyms it overrides.
//! - The legacy AlterConfigs replaces a topic's whole set of configs.
//! - A broker's dynamic config is set, described as DYNAMIC_BROKER_CONFIG
//!   over its default, and deleted again.
//! - An unknown config name, or a topic that does not exist, fails its
//!   resource alone.
//!
//! A change shows in DescribeConfigs a moment after the controller answers
//! (the broker's metadata cache applies it then), so reads after writes go
//! through [`eventually`]. Validate-only calls are checked by ordering: a
//! real change sent after them is waited for, and Kafka applies changes in
//! order, so had the validation applied anything it would show by then.

use std::collections::BTreeMap;

use kafkit_admin::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, ConfigType, ErrorCode,
    NewTopic,
};
use kafkit_tests::{TestBroker, eventually, unique_topic};

/// The run's broker, or `None` (the test returns) on tansu: these twins
/// pin Apache Kafka's own answers, which tansu does not give.
async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([&broker.bootstrap()])
        .build()
        .await
        .expect("admin connects")
}

/// (value, source) of each of `names` in `entries`.
fn values(entries: &[ConfigEntry], names: &[&str]) -> Vec<(Option<String>, ConfigSource)> {
    names
        .iter()
        .map(|name| {
            let entry = entries.iter().find(|e| e.name == *name);
            let entry = entry.unwrap_or_else(|| panic!("{name} described"));
            (entry.value.clone(), entry.source)
        })
        .collect()
}

/// Waits until `resource`'s configs `names` have the (value, source)
/// pairs `expected`, and returns every entry (with synonyms).
async fn described_as(
    admin: &Admin,
    resource: &ConfigResource,
    expected: &[(&str, Option<&str>, ConfigSource)],
) -> Vec<ConfigEntry> {
    let names: Vec<&str> = expected.iter().map(|(n, _, _)| *n).collect();
    let want: Vec<(Option<String>, ConfigSource)> = expected
        .iter()
        .map(|(_, v, s)| (v.map(str::to_owned), *s))
        .collect();
    eventually(&format!("{resource:?} has {expected:?}"), || async {
        let mut described = admin
            .describe_configs(std::slice::from_ref(resource), true)
            .await
            .map_err(|e| e.to_string())?;
        let entries = described.remove(resource).expect("asked");
        let entries = entries.map_err(|e| e.to_string())?;
        let got = values(&entries, &names);
        if got == want {
            Ok(entries)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

/// The synonyms of `name` as (name, value, source).
fn synonyms(entries: &[ConfigEntry], name: &str) -> Vec<(String, Option<String>, ConfigSource)> {
    let entry = entries.iter().find(|e| e.name == name).expect("described");
    entry
        .synonyms
        .iter()
        .map(|s| (s.name.clone(), s.value.clone(), s.source))
        .collect()
}

fn set(name: &str, value: &str) -> AlterConfigOp {
    AlterConfigOp::Set(name.into(), value.into())
}

fn syn(name: &str, value: &str, source: ConfigSource) -> (String, Option<String>, ConfigSource) {
    (name.into(), Some(value.into()), source)
}

const WEEK_MS: &str = "604800000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_sets_appends_subtracts_and_deletes_topic_configs() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let (name, other) = (unique_topic("akc-incr"), unique_topic("akc-incr-other"));
    broker.create_topic(&name, 1);
    broker.create_topic(&other, 1);
    let (topic, other) = (ConfigResource::Topic(name), ConfigResource::Topic(other));
    let append = AlterConfigOp::Append("cleanup.policy".into(), "compact".into());

    // Checked only: nothing changes (see the module docs).
    let checked = admin
        .incremental_alter_configs(&[(topic.clone(), vec![set("segment.ms", "7200000")])], true)
        .await
        .expect("validate");
    assert!(checked[&topic].is_ok(), "{:?}", checked[&topic]);

    let ops = vec![
        set("retention.ms", "3600000"),
        set("max.message.bytes", "2000000"),
        append,
    ];
    let altered = admin
        .incremental_alter_configs(&[(topic.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&topic].is_ok(), "{:?}", altered[&topic]);
    let dynamic = ConfigSource::DynamicTopic;
    let entries = described_as(
        &admin,
        &topic,
        &[
            ("retention.ms", Some("3600000"), dynamic),
            ("max.message.bytes", Some("2000000"), dynamic),
            ("cleanup.policy", Some("delete,compact"), dynamic),
            (
                "min.insync.replicas",
                Some("1"),
                ConfigSource::DynamicDefaultBroker,
            ),
        ],
    )
    .await;
    let segment = values(&entries, &["segment.ms"]);
    assert_eq!(
        segment[0].1,
        ConfigSource::Default,
        "validate-only changed nothing"
    );
    // The topic's value first, then the broker's settings it overrides,
    // most specific first: the cluster-wide dynamic default (Kafka 4's
    // controller records min.insync.replicas so when the cluster first
    // starts, for eligible leader replicas), server.properties, then
    // Kafka's default.
    let (cluster_default, static_broker, default) = (
        ConfigSource::DynamicDefaultBroker,
        ConfigSource::StaticBroker,
        ConfigSource::Default,
    );
    assert_eq!(
        synonyms(&entries, "max.message.bytes"),
        [
            syn("max.message.bytes", "2000000", dynamic),
            syn("message.max.bytes", "1048588", default),
        ]
    );
    assert_eq!(
        synonyms(&entries, "min.insync.replicas"),
        [
            syn("min.insync.replicas", "1", cluster_default),
            syn("min.insync.replicas", "1", static_broker),
            syn("min.insync.replicas", "1", default),
        ]
    );
    // Kafka lists broker synonyms from the first one it names for the
    // config (log.retention.ms), which has no value: log.retention.hours'
    // default (168) is left out.
    assert_eq!(
        synonyms(&entries, "retention.ms"),
        [syn("retention.ms", "3600000", dynamic)]
    );
    let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
    assert_eq!(retention.config_type, ConfigType::Long);
    assert!(!retention.read_only && !retention.sensitive);
    let policy = entries.iter().find(|e| e.name == "cleanup.policy").unwrap();
    assert_eq!(policy.config_type, ConfigType::List);

    // An unknown name fails its resource alone; the other one changes.
    let altered = admin
        .incremental_alter_configs(
            &[
                (topic.clone(), vec![set("no.such.config", "1")]),
                (other.clone(), vec![set("retention.ms", "7200000")]),
            ],
            false,
        )
        .await
        .expect("alter");
    let e = altered[&topic].as_ref().expect_err("unknown config");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_CONFIG), "{e}");
    assert!(altered[&other].is_ok(), "{:?}", altered[&other]);
    described_as(
        &admin,
        &other,
        &[("retention.ms", Some("7200000"), dynamic)],
    )
    .await;

    let ops = vec![
        AlterConfigOp::Subtract("cleanup.policy".into(), "delete".into()),
        AlterConfigOp::Delete("retention.ms".into()),
    ];
    let altered = admin
        .incremental_alter_configs(&[(topic.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&topic].is_ok(), "{:?}", altered[&topic]);
    let entries = described_as(
        &admin,
        &topic,
        &[
            ("retention.ms", Some(WEEK_MS), ConfigSource::Default),
            ("cleanup.policy", Some("compact"), dynamic),
        ],
    )
    .await;
    assert!(synonyms(&entries, "retention.ms").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_alter_configs_replaces_a_topics_whole_set_and_fails_bad_resources_alone() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let name = unique_topic("akc-legacy");
    let new = NewTopic::new(&name, 1)
        .config("retention.ms", "3600000")
        .config("max.message.bytes", "2000000");
    let created = admin.create_topics(&[new], false).await.expect("create");
    assert!(created[&name].is_ok(), "{:?}", created[&name]);
    let topic = ConfigResource::Topic(name);
    let (missing, bad) = (unique_topic("akc-missing"), unique_topic("akc-bad"));
    broker.create_topic(&bad, 1);
    let (missing, bad) = (ConfigResource::Topic(missing), ConfigResource::Topic(bad));
    let dynamic = ConfigSource::DynamicTopic;
    described_as(
        &admin,
        &topic,
        &[("max.message.bytes", Some("2000000"), dynamic)],
    )
    .await;

    let only = |name: &str, value: &str| BTreeMap::from([(name.to_owned(), value.to_owned())]);
    // The configs left out go back to their defaults.
    let altered = admin
        .alter_configs(
            &[
                (topic.clone(), only("retention.ms", "7200000")),
                (bad.clone(), only("no.such.config", "1")),
            ],
            false,
        )
        .await
        .expect("alter");
    assert!(altered[&topic].is_ok(), "{:?}", altered[&topic]);
    let e = altered[&bad].as_ref().expect_err("unknown config");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_CONFIG), "{e}");
    described_as(
        &admin,
        &topic,
        &[
            ("retention.ms", Some("7200000"), dynamic),
            ("max.message.bytes", Some("1048588"), ConfigSource::Default),
        ],
    )
    .await;

    // Validate-only, then a real incremental change (which leaves the
    // others alone): had the validation replaced the set, retention.ms
    // would be back to its default and segment.ms set by the time the
    // incremental change shows.
    let checked = admin
        .alter_configs(&[(topic.clone(), only("segment.ms", "1"))], true)
        .await
        .expect("validate");
    assert!(checked[&topic].is_ok(), "{:?}", checked[&topic]);
    let ops = vec![set("delete.retention.ms", "3600000")];
    let altered = admin
        .incremental_alter_configs(&[(topic.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&topic].is_ok(), "{:?}", altered[&topic]);
    let fence = [("delete.retention.ms", Some("3600000"), dynamic)];
    let entries = described_as(&admin, &topic, &fence).await;
    let unchanged = values(&entries, &["retention.ms", "segment.ms"]);
    let week = (Some(WEEK_MS.to_owned()), ConfigSource::Default);
    let kept = (Some("7200000".to_owned()), dynamic);
    assert_eq!(unchanged, [kept, week], "validate-only changed nothing");

    // A topic that does not exist fails alone.
    let described = admin
        .describe_configs(&[missing.clone(), topic.clone()], false)
        .await
        .expect("describe");
    let e = described[&missing].as_ref().expect_err("no such topic");
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
    let entries = described[&topic].as_ref().expect("described");
    assert!(
        entries.iter().all(|e| e.synonyms.is_empty()),
        "not asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brokers_dynamic_config_is_described_over_its_default_and_deleted() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let cluster = admin.describe_cluster().await.expect("describe cluster");
    let resource = ConfigResource::Broker(cluster.brokers[0].id);

    // The harness sets num.partitions in server.properties.
    let entries = described_as(
        &admin,
        &resource,
        &[
            ("num.partitions", Some("1"), ConfigSource::StaticBroker),
            ("log.cleaner.threads", Some("1"), ConfigSource::Default),
        ],
    )
    .await;
    assert_eq!(
        synonyms(&entries, "num.partitions"),
        [
            syn("num.partitions", "1", ConfigSource::StaticBroker),
            syn("num.partitions", "1", ConfigSource::Default),
        ]
    );

    let ops = vec![set("log.cleaner.threads", "2")];
    let altered = admin
        .incremental_alter_configs(&[(resource.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&resource].is_ok(), "{:?}", altered[&resource]);
    let dynamic = ConfigSource::DynamicBroker;
    let entries = described_as(
        &admin,
        &resource,
        &[("log.cleaner.threads", Some("2"), dynamic)],
    )
    .await;
    assert_eq!(
        synonyms(&entries, "log.cleaner.threads"),
        [
            syn("log.cleaner.threads", "2", dynamic),
            syn("log.cleaner.threads", "1", ConfigSource::Default),
        ]
    );
    let threads = entries
        .iter()
        .find(|e| e.name == "log.cleaner.threads")
        .unwrap();
    assert_eq!(
        (threads.config_type, threads.read_only),
        (ConfigType::Int, false)
    );

    let ops = vec![AlterConfigOp::Delete("log.cleaner.threads".into())];
    let altered = admin
        .incremental_alter_configs(&[(resource.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&resource].is_ok(), "{:?}", altered[&resource]);
    described_as(
        &admin,
        &resource,
        &[("log.cleaner.threads", Some("1"), ConfigSource::Default)],
    )
    .await;
}
