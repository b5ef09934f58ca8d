//! kafkit-admin and the other clients' admin APIs agree, on a real Apache
//! Kafka broker (its authorizer is on, so ACLs work):
//!
//! - kafkit-admin creates a topic (3 partitions, `retention.ms=12345`), an
//!   ACL (`User:alice` may READ the topic), a SCRAM-SHA-256 credential
//!   (4096 iterations), a user quota (`producer_byte_rate=1024`) and a
//!   group's committed offsets; the Java client's Admin and franz-go's kadm
//!   (through the peers' `admin` commands) read back exactly those values.
//! - The Java client creates the same kinds of things; kafkit-admin reads
//!   back exactly those values.
//!
//! The broker is shared by the tests of this process, so every name (topic,
//! SCRAM user, quota user, group) is unique to the test, and the listings
//! (every ACL, every SCRAM user, every quota) are searched for ours.

use std::collections::BTreeMap;

use kafkit_admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Admin, ConfigResource,
    ConfigSource, NewTopic, PatternType, QuotaAlteration, QuotaFilter, QuotaMatch, ResourceType,
    ScramAlteration, ScramCredentialInfo, ScramMechanism, TopicPartition,
};
use kafkit_tests::{Peer, PeerClient, TestBroker, eventually, unique_topic};
use serde_json::{Value, json};

const PARTITIONS: i32 = 3;
const RETENTION_MS: &str = "12345";
const ACL_PRINCIPAL: &str = "User:alice";
const SCRAM_ITERATIONS: i32 = 4096;
const BYTE_RATE: f64 = 1024.0;

/// The committed offsets each test sets: partition -> next offset.
const OFFSETS: [(i32, i64); 3] = [(0, 5), (1, 7), (2, 11)];

fn kafka_broker() -> Option<TestBroker> {
    let broker = TestBroker::start();
    if broker.is_tansu() {
        eprintln!("!!!!!!!! SKIPPING an Apache Kafka interop test: the broker is tansu");
        return None;
    }
    Some(broker)
}

/// Runs a peer's `admin SUBCOMMAND --brokers B flags...` and returns its one
/// result line, or why it has none (failed, or printed no single line).
fn peer_admin(
    peer: &Peer,
    brokers: &str,
    subcommand: &str,
    flags: &[(&str, &str)],
) -> Result<Value, String> {
    let out = tokio::task::block_in_place(|| {
        peer.command("admin")
            .arg(subcommand)
            .flag("--brokers", brokers)
            .flags(flags)
            .output()
    });
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {:?}",
            out.command,
            out.status,
            out.error()
        ));
    }
    match out.lines.as_slice() {
        [line] => Ok(line.clone()),
        lines => Err(format!(
            "`{}` printed {} lines, not one",
            out.command,
            lines.len()
        )),
    }
}

/// Ok when `actual == expected`, else the difference as the reason.
fn same(what: &str, actual: &Value, expected: &Value) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {actual}, expected {expected}"))
    }
}

/// The elements of `line[field]` (an array) for which `keep` holds.
fn matching(line: &Value, field: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    line.get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter(|v| keep(v)).cloned().collect())
        .unwrap_or_default()
}

/// kafkit-admin creates; Java and franz-go read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_read_back_what_kafkit_admin_creates() {
    let Some(broker) = kafka_broker() else { return };
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let Some(franz) = Peer::get(PeerClient::FranzGo) else {
        return;
    };
    let brokers = broker.bootstrap();
    let topic = unique_topic("interop-admin-kafkit");
    let scram_user = format!("{topic}-scram");
    let quota_user = format!("{topic}-quota");
    let group = format!("{topic}-group");
    let admin = Admin::builder([&brokers]).build().await.unwrap();

    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, PARTITIONS).config("retention.ms", RETENTION_MS)],
            false,
        )
        .await
        .unwrap();
    created[&topic].as_ref().unwrap();
    let acl = AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: topic.clone(),
        pattern_type: PatternType::Literal,
        principal: ACL_PRINCIPAL.into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermissionType::Allow,
    };
    for result in admin.create_acls(&[acl]).await.unwrap() {
        result.unwrap();
    }
    let scram = admin
        .alter_user_scram_credentials(&[ScramAlteration::Upsert {
            user: scram_user.clone(),
            mechanism: ScramMechanism::Sha256,
            iterations: SCRAM_ITERATIONS,
            password: "alice-secret".into(),
        }])
        .await
        .unwrap();
    scram[&scram_user].as_ref().unwrap();
    let quotas = admin
        .alter_client_quotas(
            &[QuotaAlteration {
                entity: BTreeMap::from([("user".to_owned(), Some(quota_user.clone()))]),
                ops: BTreeMap::from([("producer_byte_rate".to_owned(), Some(BYTE_RATE))]),
            }],
            false,
        )
        .await
        .unwrap();
    for (entity, result) in quotas {
        result.unwrap_or_else(|e| panic!("quota on {entity:?}: {e:?}"));
    }
    let offsets: BTreeMap<TopicPartition, i64> = OFFSETS
        .iter()
        .map(|&(p, o)| (TopicPartition::new(&topic, p), o))
        .collect();
    for (tp, result) in admin.commit_offsets(&group, &offsets).await.unwrap() {
        result.unwrap_or_else(|e| panic!("commit {tp:?}: {e:?}"));
    }

    let topic_line = json!({"topic": topic, "partitions": PARTITIONS, "replication_factor": 1});
    let offsets_line = json!({"offsets": OFFSETS
        .iter()
        .map(|&(p, o)| json!({"topic": topic, "partition": p, "offset": o}))
        .collect::<Vec<_>>()});

    // The Java client's Admin.
    eventually("java: describe-topic", || async {
        let line = peer_admin(&java, &brokers, "describe-topic", &[("--topic", &topic)])?;
        same("java describe-topic", &line, &topic_line)
    })
    .await;
    eventually("java: describe-configs", || async {
        let line = peer_admin(&java, &brokers, "describe-configs", &[("--topic", &topic)])?;
        same(
            "java retention.ms",
            &line["configs"]["retention.ms"],
            &json!(RETENTION_MS),
        )
    })
    .await;
    eventually("java: list-acls", || async {
        let line = peer_admin(&java, &brokers, "list-acls", &[])?;
        let ours = matching(&line, "acls", |a| a["name"] == json!(topic));
        same(
            "java ACLs on the topic",
            &json!(ours),
            &json!([{
                "resource_type": "TOPIC", "name": topic, "pattern_type": "LITERAL",
                "principal": ACL_PRINCIPAL, "host": "*", "operation": "READ", "permission": "ALLOW",
            }]),
        )
    })
    .await;
    eventually("java: describe-scram", || async {
        let line = peer_admin(&java, &brokers, "describe-scram", &[])?;
        let ours = matching(&line, "users", |u| u["user"] == json!(scram_user));
        same(
            "java SCRAM user",
            &json!(ours),
            &json!([{"user": scram_user, "mechanisms": [
                {"mechanism": "SCRAM-SHA-256", "iterations": SCRAM_ITERATIONS}
            ]}]),
        )
    })
    .await;
    eventually("java: describe-quotas", || async {
        let line = peer_admin(&java, &brokers, "describe-quotas", &[])?;
        let ours = matching(&line, "quotas", |q| {
            q["entity"] == json!({"user": quota_user})
        });
        same(
            "java quota",
            &json!(ours),
            &json!([{"entity": {"user": quota_user}, "values": {"producer_byte_rate": BYTE_RATE}}]),
        )
    })
    .await;
    eventually("java: group-offsets", || async {
        let line = peer_admin(&java, &brokers, "group-offsets", &[("--group", &group)])?;
        same("java group offsets", &line, &offsets_line)
    })
    .await;

    // franz-go's kadm.
    eventually("franz-go: describe-topic", || async {
        let line = peer_admin(&franz, &brokers, "describe-topic", &[("--topic", &topic)])?;
        same("franz-go describe-topic", &line, &topic_line)
    })
    .await;
    eventually("franz-go: describe-configs", || async {
        let line = peer_admin(&franz, &brokers, "describe-configs", &[("--topic", &topic)])?;
        same(
            "franz-go retention.ms",
            &json!([
                &line["configs"]["retention.ms"],
                &line["sources"]["retention.ms"]
            ]),
            &json!([RETENTION_MS, "DYNAMIC_TOPIC_CONFIG"]),
        )
    })
    .await;
    eventually("franz-go: list-acls", || async {
        let line = peer_admin(&franz, &brokers, "list-acls", &[])?;
        let ours = matching(&line, "acls", |a| a["resource_name"] == json!(topic));
        same(
            "franz-go ACLs on the topic",
            &json!(ours),
            &json!([{
                "principal": ACL_PRINCIPAL, "host": "*", "resource_type": "TOPIC",
                "resource_name": topic, "pattern_type": "LITERAL", "operation": "READ",
                "permission": "ALLOW",
            }]),
        )
    })
    .await;
    eventually("franz-go: describe-scram", || async {
        let line = peer_admin(&franz, &brokers, "describe-scram", &[])?;
        let ours = matching(&line, "users", |u| u["user"] == json!(scram_user));
        same(
            "franz-go SCRAM user",
            &json!(ours),
            &json!([{"user": scram_user, "mechanisms": ["SCRAM-SHA-256"], "iterations": [SCRAM_ITERATIONS]}]),
        )
    })
    .await;
    eventually("franz-go: describe-quotas", || async {
        let line = peer_admin(&franz, &brokers, "describe-quotas", &[])?;
        let ours = matching(&line, "quotas", |q| {
            q["entity"] == json!([{"type": "user", "name": quota_user}])
        });
        // kadm's value is a float64 that Go prints as an integer: compare numbers.
        match ours.as_slice() {
            [q] if q["values"]["producer_byte_rate"].as_f64() == Some(BYTE_RATE)
                && q["values"].as_object().map(serde_json::Map::len) == Some(1) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "franz-go quota: got {ours:?}, expected one with producer_byte_rate {BYTE_RATE}"
            )),
        }
    })
    .await;
    eventually("franz-go: group-offsets", || async {
        let line = peer_admin(
            &franz,
            &brokers,
            "group-offsets",
            &[("--group", &group), ("--topic", &topic)],
        )?;
        same("franz-go group offsets", &line, &offsets_line)
    })
    .await;
}

/// The Java client creates; kafkit-admin reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkit_admin_reads_back_what_java_creates() {
    let Some(broker) = kafka_broker() else { return };
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let brokers = broker.bootstrap();
    let topic = unique_topic("interop-admin-java");
    let scram_user = format!("{topic}-scram");
    let quota_user = format!("{topic}-quota");
    let group = format!("{topic}-group");
    let ok = |subcommand: &str, flags: &[(&str, &str)]| {
        let line = peer_admin(&java, &brokers, subcommand, flags)
            .unwrap_or_else(|e| panic!("java admin {subcommand}: {e}"));
        assert_eq!(line["ok"], json!(true), "java admin {subcommand}: {line}");
    };
    let partitions = PARTITIONS.to_string();
    let retention = format!("retention.ms={RETENTION_MS}");
    ok(
        "create-topic",
        &[
            ("--topic", &topic),
            ("--partitions", &partitions),
            ("--config", &retention),
        ],
    );
    ok(
        "create-acl",
        &[
            ("--principal", ACL_PRINCIPAL),
            ("--topic", &topic),
            ("--operation", "READ"),
            ("--permission", "ALLOW"),
        ],
    );
    let iterations = SCRAM_ITERATIONS.to_string();
    ok(
        "alter-scram",
        &[
            ("--user", &scram_user),
            ("--password", "alice-secret"),
            ("--mechanism", "SCRAM-SHA-256"),
            ("--iterations", &iterations),
        ],
    );
    ok(
        "alter-quota",
        &[
            ("--user", &quota_user),
            ("--key", "producer_byte_rate"),
            ("--value", "1024"),
        ],
    );
    for (p, o) in OFFSETS {
        let (p, o) = (p.to_string(), o.to_string());
        ok(
            "alter-group-offsets",
            &[
                ("--group", &group),
                ("--topic", &topic),
                ("--partition", &p),
                ("--offset", &o),
            ],
        );
    }

    let admin = Admin::builder([&brokers]).build().await.unwrap();
    eventually("kafkit: describe_topics", || async {
        let described = admin
            .describe_topics(&[&topic])
            .await
            .map_err(|e| format!("{e:?}"))?;
        let description = described[&topic].as_ref().map_err(|e| format!("{e:?}"))?;
        let layout: Vec<(i32, usize)> = description
            .partitions
            .iter()
            .map(|p| (p.partition, p.replicas.len()))
            .collect();
        if layout == [(0, 1), (1, 1), (2, 1)] {
            Ok(())
        } else {
            Err(format!("partitions and replica counts: {layout:?}"))
        }
    })
    .await;
    eventually("kafkit: describe_configs", || async {
        let resource = ConfigResource::Topic(topic.clone());
        let configs = admin
            .describe_configs(std::slice::from_ref(&resource), false)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let entries = configs[&resource].as_ref().map_err(|e| format!("{e:?}"))?;
        let retention: Vec<(Option<&str>, ConfigSource)> = entries
            .iter()
            .filter(|e| e.name == "retention.ms")
            .map(|e| (e.value.as_deref(), e.source))
            .collect();
        if retention == [(Some(RETENTION_MS), ConfigSource::DynamicTopic)] {
            Ok(())
        } else {
            Err(format!("retention.ms: {retention:?}"))
        }
    })
    .await;
    eventually("kafkit: describe_acls", || async {
        let filter = AclBindingFilter {
            resource_name: Some(topic.clone()),
            ..AclBindingFilter::any()
        };
        let acls = admin
            .describe_acls(&filter)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let expected = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.clone(),
            pattern_type: PatternType::Literal,
            principal: ACL_PRINCIPAL.into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        };
        if acls == [expected] {
            Ok(())
        } else {
            Err(format!("ACLs on the topic: {acls:?}"))
        }
    })
    .await;
    eventually("kafkit: describe_user_scram_credentials", || async {
        let users = admin
            .describe_user_scram_credentials(Some(&[&scram_user]))
            .await
            .map_err(|e| format!("{e:?}"))?;
        let credentials = users
            .get(&scram_user)
            .ok_or("user not listed")?
            .as_ref()
            .map_err(|e| format!("{e:?}"))?;
        let expected = ScramCredentialInfo {
            mechanism: ScramMechanism::Sha256,
            iterations: SCRAM_ITERATIONS,
        };
        if users.len() == 1 && credentials == &[expected] {
            Ok(())
        } else {
            Err(format!("SCRAM users: {users:?}"))
        }
    })
    .await;
    eventually("kafkit: describe_client_quotas", || async {
        let filter = QuotaFilter {
            entity_type: "user".into(),
            matching: QuotaMatch::Exact(quota_user.clone()),
        };
        let quotas = admin
            .describe_client_quotas(&[filter], true)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let expected = vec![(
            BTreeMap::from([("user".to_owned(), Some(quota_user.clone()))]),
            BTreeMap::from([("producer_byte_rate".to_owned(), BYTE_RATE)]),
        )];
        if quotas == expected {
            Ok(())
        } else {
            Err(format!("quotas: {quotas:?}"))
        }
    })
    .await;
    eventually("kafkit: fetch_offsets", || async {
        let fetched = admin
            .fetch_offsets(&group, None)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let offsets: Vec<(String, i32, i64)> = fetched
            .into_iter()
            .map(|(tp, o)| {
                o.map(|o| (tp.topic.to_string(), tp.partition, o.offset))
                    .map_err(|e| format!("{e:?}"))
            })
            .collect::<Result<_, _>>()?;
        let expected: Vec<(String, i32, i64)> = OFFSETS
            .iter()
            .map(|&(p, o)| (topic.clone(), p, o))
            .collect();
        if offsets == expected {
            Ok(())
        } else {
            Err(format!("committed offsets: {offsets:?}"))
        }
    })
    .await;
}
