//! kafkit-admin's cluster-wide calls against Apache Kafka 4.3.1: the twins
//! of `admin_scripted_cluster.rs`'s elections, reassignments and log dirs
//! test and of `admin_scripted_security.rs`'s quota test.
//!
//! - On a private three-node cluster (one test, since each costs ~1.5 GB
//!   and a minute of CPU): DescribeCluster names the three brokers,
//!   DescribeLogDirs shows a written partition on each broker hosting it,
//!   a reassignment that reorders replicas completes at once and leaves the
//!   leader where it was, a preferred election then moves it to the first
//!   replica, a reassignment to a broker that is down stays in progress
//!   (listed with the replica being added) until it is cancelled.
//! - On the run's shared broker: client quotas of a user, a client id and
//!   both are set, described with their exact values (strictly or not)
//!   and removed.
//!
//! Changes show in Metadata and DescribeClientQuotas a moment after the
//! controller answers, so reads after writes go through [`eventually`].

use std::collections::BTreeMap;

use kafkit_admin::{
    Admin, ElectionType, ErrorCode, IsolationLevel, NewTopic, OffsetSpec, PartitionDescription,
    QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch, Reassignment, TopicPartition,
};
use kafkit_conn::Message as Record;
use kafkit_tests::{KafkaCluster, KafkaOptions, Listener, TestBroker, eventually, unique_topic};
use tokio::task::block_in_place;

/// Waits until partition `tp` is described as `check` wants it.
async fn partition_becomes(
    admin: &Admin,
    tp: &TopicPartition,
    what: &str,
    check: impl Fn(&PartitionDescription) -> bool,
) -> PartitionDescription {
    let what = format!("{}/{}: {what}", tp.topic, tp.partition);
    eventually(&what, || async {
        let described = admin.describe_topics(&[&tp.topic]).await;
        let mut described = described.map_err(|e| e.to_string())?;
        let topic = described.remove(&*tp.topic).expect("asked");
        let partitions = topic.map_err(|e| e.to_string())?.partitions;
        match partitions.into_iter().find(|p| p.partition == tp.partition) {
            Some(p) if check(&p) => Ok(p),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// `tp`'s latest offset, once its leader serves it: Metadata names a
/// leader a moment before it does (until then it answers
/// NOT_LEADER_OR_FOLLOWER).
async fn served_end(admin: &Admin, tp: &TopicPartition) -> i64 {
    let what = format!("{}/{}'s leader serves", tp.topic, tp.partition);
    let specs = BTreeMap::from([(tp.clone(), OffsetSpec::Latest)]);
    let listed = eventually(&what, || async {
        let answer = admin
            .list_offsets(&specs, IsolationLevel::ReadUncommitted)
            .await;
        let mut answer = answer.map_err(|e| e.to_string())?;
        answer.remove(tp).expect("asked").map_err(|e| e.to_string())
    })
    .await;
    listed.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignments_elections_and_log_dirs_on_three_brokers() {
    let mut cluster = block_in_place(|| KafkaCluster::start(KafkaOptions::three_nodes()));
    let admin = Admin::builder([&cluster.bootstrap(Listener::Plaintext)])
        .build()
        .await
        .expect("admin connects");

    let described = admin.describe_cluster().await.expect("describe cluster");
    let brokers: Vec<(i32, &str, i32, bool)> = described
        .brokers
        .iter()
        .map(|b| (b.id, b.host.as_str(), b.port, b.fenced))
        .collect();
    let port = |id: u32| i32::from(cluster.addr(id, Listener::Plaintext).port());
    let expected: Vec<(i32, &str, i32, bool)> = (1..=3)
        .map(|id| (id as i32, "127.0.0.1", port(id), false))
        .collect();
    assert_eq!(brokers, expected);
    assert!(described.controller.is_some_and(|c| (1..=3).contains(&c)));
    assert!(described.cluster_id.is_some_and(|id| !id.is_empty()));

    // p0 on all three brokers; p1, of a topic replicated twice, on 1 and 2
    // (KRaft wants one replication factor per topic).
    let (wide, narrow) = (unique_topic("akc-wide"), unique_topic("akc-narrow"));
    let on = |topic: &str, brokers: Vec<i32>| {
        let new = NewTopic {
            name: topic.to_owned(),
            ..NewTopic::default()
        };
        new.assign(0, brokers)
    };
    let created = admin
        .create_topics(&[on(&wide, vec![1, 2, 3]), on(&narrow, vec![1, 2])], false)
        .await
        .expect("create");
    assert!(created.values().all(Result::is_ok), "{created:?}");
    let [p0, p1] = [&wide, &narrow].map(|t| TopicPartition::new(t, 0));
    for tp in [&p0, &p1] {
        assert_eq!(served_end(&admin, tp).await, 0, "{tp:?} is empty");
    }
    let conn = kafkit_conn::dial_leader(cluster.addr(1, Listener::Plaintext), &wide, 0)
        .await
        .expect("dial the leader");
    let records: Vec<Record> = (0..20).map(|i| Record::new(format!("r{i}"))).collect();
    conn.write_messages(&records).await.expect("acks=all write");

    // acks=all: every in-sync replica has appended the records, and
    // followers append the leader's batches as they are.
    let dirs = admin
        .describe_log_dirs(&[1, 2, 3], Some(&[p0.clone(), p1.clone()]))
        .await
        .expect("describe log dirs");
    let mut sizes = Vec::new();
    for id in 1..=3 {
        let dirs = dirs[&id].as_ref().expect("each broker answers");
        assert_eq!(dirs.len(), 1, "broker {id} has one log dir");
        let dir = &dirs[0];
        assert!(
            dir.path.ends_with(&format!("node-{id}/data")),
            "{}",
            dir.path
        );
        assert!(dir.error.is_none(), "{:?}", dir.error);
        let (total, usable) = (dir.total_bytes, dir.usable_bytes);
        let fits = usable.is_some_and(|u| u > 0 && Some(u) <= total);
        assert!(fits, "usable {usable:?} of {total:?} bytes (v4+)");
        let held = &dir.partitions[&p0];
        assert!(
            held.size > 0 && held.offset_lag == 0 && !held.is_future,
            "{held:?}"
        );
        sizes.push(held.size);
        let empty = dir.partitions.get(&p1).map(|p| p.size);
        assert_eq!(empty, (id != 3).then_some(0), "broker {id}'s p1");
    }
    assert!(
        sizes.iter().all(|s| *s == sizes[0]),
        "identical replicas: {sizes:?}"
    );

    // Reordering completes at once and keeps the leader; a broker that
    // does not exist fails its partition alone.
    let moves = BTreeMap::from([
        (p0.clone(), Some(vec![3, 1, 2])),
        (p1.clone(), Some(vec![1, 2, 4])),
    ]);
    let moved = admin
        .alter_partition_reassignments(&moves)
        .await
        .expect("reassign");
    assert!(moved[&p0].is_ok(), "{:?}", moved[&p0]);
    let e = moved[&p1].as_ref().expect_err("no broker 4");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_REPLICA_ASSIGNMENT));
    assert!(e.to_string().contains("broker 4"), "{e}");
    let before = partition_becomes(&admin, &p0, "replicas [3, 1, 2]", |p| {
        p.replicas == [3, 1, 2]
    })
    .await;
    assert_eq!(
        before.leader,
        Some(1),
        "reordering does not move the leader"
    );
    let ongoing = admin
        .list_partition_reassignments(Some(&[p0.clone(), p1.clone()]))
        .await
        .expect("list reassignments");
    assert!(ongoing.is_empty(), "{ongoing:?}");

    // A preferred election moves the leader to the first replica.
    let p9 = TopicPartition::new(&wide, 9);
    let elected = admin
        .elect_leaders(
            ElectionType::Preferred,
            Some(&[p0.clone(), p1.clone(), p9.clone()]),
        )
        .await
        .expect("elect");
    assert!(elected[&p0].is_ok(), "{:?}", elected[&p0]);
    let code = |r: &Result<(), kafkit_admin::Error>| r.as_ref().err().and_then(|e| e.code());
    assert_eq!(code(&elected[&p1]), Some(ErrorCode::ELECTION_NOT_NEEDED));
    assert_eq!(
        code(&elected[&p9]),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let after = partition_becomes(&admin, &p0, "led by 3", |p| p.leader == Some(3)).await;
    assert!(
        after.leader_epoch > before.leader_epoch,
        "{after:?} after {before:?}"
    );
    let again = admin
        .elect_leaders(ElectionType::Preferred, Some(std::slice::from_ref(&p0)))
        .await
        .expect("elect");
    assert_eq!(code(&again[&p0]), Some(ErrorCode::ELECTION_NOT_NEEDED));
    assert_eq!(served_end(&admin, &p0).await, 20, "all there");

    // Broker 3 stopped (fenced, still registered): adding it to p1 stays
    // in progress, listed with the replica being added, until cancelled.
    block_in_place(|| cluster.shutdown(3));
    let expand = BTreeMap::from([(p1.clone(), Some(vec![1, 2, 3]))]);
    let moved = admin
        .alter_partition_reassignments(&expand)
        .await
        .expect("reassign");
    assert!(moved[&p1].is_ok(), "{:?}", moved[&p1]);
    let ongoing = admin
        .list_partition_reassignments(None)
        .await
        .expect("list");
    let expected = Reassignment {
        replicas: vec![1, 2, 3],
        adding: vec![3],
        removing: vec![],
    };
    assert_eq!(ongoing, BTreeMap::from([(p1.clone(), expected)]));
    let growing = partition_becomes(&admin, &p1, "replicas [1, 2, 3]", |p| {
        p.replicas == [1, 2, 3]
    })
    .await;
    assert_eq!(growing.isr, [1, 2], "broker 3 never caught up");

    let cancel = BTreeMap::from([(p1.clone(), None)]);
    let cancelled = admin
        .alter_partition_reassignments(&cancel)
        .await
        .expect("cancel");
    assert!(cancelled[&p1].is_ok(), "{:?}", cancelled[&p1]);
    let ongoing = admin
        .list_partition_reassignments(None)
        .await
        .expect("list");
    assert!(ongoing.is_empty(), "{ongoing:?}");
    partition_becomes(&admin, &p1, "back on [1, 2]", |p| p.replicas == [1, 2]).await;
    let cancelled = admin
        .alter_partition_reassignments(&cancel)
        .await
        .expect("cancel");
    let e = cancelled[&p1].as_ref().expect_err("nothing to cancel");
    assert_eq!(e.code(), Some(ErrorCode::NO_REASSIGNMENT_IN_PROGRESS));
}

/// The run's broker, or `None` (the test returns) on tansu: these twins
/// pin Apache Kafka's own answers, which tansu does not give.
/// A quota entity of one (type, name) or more.
fn entity(parts: &[(&str, &str)]) -> QuotaEntity {
    parts
        .iter()
        .map(|(t, n)| (t.to_string(), Some(n.to_string())))
        .collect()
}

/// Sets (`Some`) or removes (`None`) quotas of `entity`.
fn alter(entity: &QuotaEntity, ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
    let ops = ops.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    QuotaAlteration {
        entity: entity.clone(),
        ops,
    }
}

fn exact(entity_type: &str, name: &str) -> QuotaFilter {
    QuotaFilter {
        entity_type: entity_type.into(),
        matching: QuotaMatch::Exact(name.into()),
    }
}

/// Waits until the quotas matching `filter` are exactly `expected`.
async fn quotas_are(
    admin: &Admin,
    filter: &[QuotaFilter],
    strict: bool,
    expected: &[(&QuotaEntity, &[(&str, f64)])],
) {
    let mut expected: Vec<(QuotaEntity, BTreeMap<String, f64>)> = expected
        .iter()
        .map(|(e, q)| {
            (
                (*e).clone(),
                q.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            )
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let what = format!("quotas of {filter:?} (strict: {strict}) are {expected:?}");
    eventually(&what, || async {
        let described = admin.describe_client_quotas(filter, strict).await;
        let mut got = described.map_err(|e| e.to_string())?;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        if got == expected {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quotas_are_set_described_exactly_and_removed() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = Admin::builder([&broker.bootstrap()])
        .build()
        .await
        .expect("admin connects");
    let (user, client) = (unique_topic("akc-user"), unique_topic("akc-client"));
    let by_user = entity(&[("user", &user)]);
    let by_client = entity(&[("client-id", &client)]);
    let both = entity(&[("user", &user), ("client-id", &client)]);

    let checked = admin
        .alter_client_quotas(
            &[alter(&by_user, &[("request_percentage", Some(10.0))])],
            true,
        )
        .await
        .expect("validate");
    assert!(checked[0].1.is_ok(), "{checked:?}");

    let user_quotas = [
        ("consumer_byte_rate", 2_097_152.0),
        ("producer_byte_rate", 1_048_576.0),
    ];
    let set = [
        alter(&by_user, &user_quotas.map(|(k, v)| (k, Some(v)))),
        alter(&by_client, &[("producer_byte_rate", Some(512_000.0))]),
        alter(&both, &[("request_percentage", Some(50.0))]),
    ];
    let altered = admin.alter_client_quotas(&set, false).await.expect("alter");
    // One result per entity, in Kafka's order (a hash map's), not ours.
    let result = |altered: &[(QuotaEntity, Result<(), kafkit_admin::Error>)], entity| {
        let found = altered.iter().find(|(e, _)| e == entity);
        found.map(|(_, r)| r.clone()).expect("answered")
    };
    assert_eq!(altered.len(), 3);
    for entity in [&by_user, &by_client, &both] {
        assert!(result(&altered, entity).is_ok(), "{altered:?}");
    }

    // Strict: the user's own entity alone, with exactly the two quotas set
    // (the validated request_percentage never was). Not strict: the
    // (user, client-id) entity too.
    let (user_filter, client_filter) = ([exact("user", &user)], [exact("client-id", &client)]);
    quotas_are(&admin, &user_filter, true, &[(&by_user, &user_quotas)]).await;
    let both_quotas: &[(&str, f64)] = &[("request_percentage", 50.0)];
    let expected = [(&by_user, &user_quotas[..]), (&both, both_quotas)];
    quotas_are(&admin, &user_filter, false, &expected).await;
    let client_quotas: &[(&str, f64)] = &[("producer_byte_rate", 512_000.0)];
    quotas_are(&admin, &client_filter, true, &[(&by_client, client_quotas)]).await;
    let both_filter = [exact("user", &user), exact("client-id", &client)];
    quotas_are(&admin, &both_filter, true, &[(&both, both_quotas)]).await;

    // A key Kafka does not know fails its entity alone.
    let stranger = entity(&[("user", &unique_topic("akc-stranger"))]);
    let set = [
        alter(&stranger, &[("no_such_quota", Some(1.0))]),
        alter(&by_client, &[("consumer_byte_rate", Some(1024.0))]),
    ];
    let altered = admin.alter_client_quotas(&set, false).await.expect("alter");
    let e = result(&altered, &stranger).expect_err("unknown key");
    assert_eq!(e.code(), Some(ErrorCode::INVALID_REQUEST), "{e}");
    assert!(result(&altered, &by_client).is_ok(), "{altered:?}");
    let client_quotas: &[(&str, f64)] = &[
        ("consumer_byte_rate", 1024.0),
        ("producer_byte_rate", 512_000.0),
    ];
    quotas_are(&admin, &client_filter, true, &[(&by_client, client_quotas)]).await;

    let remove = [
        alter(&by_user, &user_quotas.map(|(k, _)| (k, None))),
        alter(
            &by_client,
            &[("producer_byte_rate", None), ("consumer_byte_rate", None)],
        ),
        alter(&both, &[("request_percentage", None)]),
    ];
    let removed = admin
        .alter_client_quotas(&remove, false)
        .await
        .expect("remove");
    assert!(removed.iter().all(|(_, r)| r.is_ok()), "{removed:?}");
    quotas_are(&admin, &user_filter, false, &[]).await;
    quotas_are(&admin, &client_filter, false, &[]).await;
}
