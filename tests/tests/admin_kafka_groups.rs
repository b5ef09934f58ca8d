//! kafkit-admin's group calls against Apache Kafka 4.3.1: the twins of
//! `admin_scripted_groups.rs` (DescribeGroups, ListGroups, DeleteGroups,
//! OffsetDelete), with the real broker's answers about live kafkit readers.
//!
//! Two group readers, each with its own client id, read and commit a
//! topic: DescribeGroups shows them with their client ids, hosts,
//! subscriptions and assignments (the union is the topic's partitions,
//! each member's part is what its own reader owns); OffsetFetch shows
//! their commits; ListGroups filters by state; the offsets of a subscribed
//! topic cannot be deleted, nor can the group while it has members. Once
//! they leave, the group is Empty and both can; a deleted group is
//! GROUP_ID_NOT_FOUND.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_admin::{Admin, ErrorCode, GroupDescription, TopicPartition};
use kafkit_reader::{Reader, ReaderConfig};
use kafkit_tests::{TestBroker, unique_topic};
use tokio::sync::watch;

/// The run's broker, or `None` (the test returns) on tansu: these twins
/// pin Apache Kafka's own answers, which tansu does not give.
async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([&broker.bootstrap()])
        .build()
        .await
        .expect("admin connects")
}

/// A group member reading (and committing) in its own task, publishing the
/// partitions its reader owns, until told to stop; then it leaves.
struct Member {
    owned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn join(broker: &TestBroker, group: &str, topic: &str, client_id: &str) -> Member {
    let mut config = ReaderConfig {
        brokers: vec![broker.bootstrap()],
        group_id: Some(group.into()),
        group_topics: vec![topic.into()],
        session_timeout: Duration::from_secs(6),
        heartbeat_interval: Duration::from_millis(500),
        ..ReaderConfig::default()
    };
    config.conn.client_id = Some(client_id.into());
    let mut reader = Reader::new(config).await.expect("reader");
    let owned = Arc::new(Mutex::new(BTreeSet::new()));
    let (stop, mut stopped) = watch::channel(false);
    let published = owned.clone();
    let task = tokio::spawn(async move {
        while !*stopped.borrow() {
            tokio::select! {
                m = reader.fetch_message() => {
                    let m = m.expect("fetch");
                    reader.commit_messages(&[m]).await.expect("commit");
                }
                _ = stopped.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            *published.lock().unwrap() = reader
                .assignment()
                .into_iter()
                .map(|tp| TopicPartition::new(tp.topic.to_string(), tp.partition))
                .collect();
        }
        reader.close().await.expect("leave the group");
    });
    Member { owned, stop, task }
}

impl Member {
    fn owned(&self) -> BTreeSet<TopicPartition> {
        self.owned.lock().unwrap().clone()
    }

    async fn leave(self) {
        self.stop.send(true).expect("the task runs");
        self.task.await.expect("the member's task");
    }
}

/// How long the members may take to settle: cooperative-sticky may need
/// two join rounds, members learn of a rebalance by heartbeat (500 ms),
/// then they read and commit in their own tasks.
const SETTLE: Duration = Duration::from_secs(30);

/// Polls `check` until it gives `Ok` (at most [`SETTLE`]); panics with
/// `what` and the last `Err`.
async fn settle<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() > SETTLE => {
                panic!("not {what} after {SETTLE:?}: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Describes `group` until `check` accepts it. Until a member's JoinGroup
/// creates it, the group is GROUP_ID_NOT_FOUND.
async fn group_when(
    admin: &Admin,
    group: &str,
    what: &str,
    check: impl Fn(&GroupDescription) -> bool,
) -> GroupDescription {
    settle(&format!("{group}: {what}"), || async {
        let mut described = admin.describe_groups(&[group]).await.expect("describe");
        match described.remove(group).expect("asked") {
            Ok(g) if check(&g) => Ok(g),
            Ok(g) => Err(format!("{} with {} members", g.state, g.members.len())),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// A member's assignment as the coordinator holds it.
fn assigned(g: &GroupDescription, client_id: &str) -> BTreeSet<TopicPartition> {
    let m = g.members.iter().find(|m| m.client_id == client_id);
    let assignment = m.and_then(|m| m.assignment.as_ref());
    let partitions = assignment.map(|a| a.as_ref().expect("decodes").partitions.clone());
    partitions.unwrap_or_default().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_group_is_described_listed_and_deleted_only_once_empty() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let (topic, group) = (unique_topic("akg-topic"), unique_topic("akg-group"));
    broker.create_topic(&topic, 4);
    for p in 0..4 {
        let conn = kafkit_conn::dial_leader(broker.bootstrap(), &topic, p)
            .await
            .unwrap();
        let records = [0, 1].map(|i| kafkit_conn::Message::new(format!("{p}:{i}")));
        conn.write_messages(&records).await.expect("produce");
    }
    let all: BTreeSet<TopicPartition> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
    let (a, b) = ("kafkit-member-a", "kafkit-member-b");
    let member_a = join(&broker, &group, &topic, a).await;
    let member_b = join(&broker, &group, &topic, b).await;

    // Stable, two members with two partitions each, as their readers own them.
    let g = group_when(&admin, &group, "split between a and b", |g| {
        let (got_a, got_b) = (assigned(g, a), assigned(g, b));
        g.state == "Stable"
            && got_a.len() == 2
            && got_b.len() == 2
            && got_a.union(&got_b).eq(all.iter())
            && got_a == member_a.owned()
            && got_b == member_b.owned()
    })
    .await;
    assert_eq!(g.group_id, group);
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol.as_str()),
        ("consumer", "cooperative-sticky")
    );
    assert_eq!(g.coordinator, broker.addr().to_string());
    let mut members: Vec<_> = g.members.iter().collect();
    members.sort_by(|x, y| x.client_id.cmp(&y.client_id));
    let ids: Vec<&str> = members.iter().map(|m| m.client_id.as_str()).collect();
    assert_eq!(ids, [a, b]);
    for m in members {
        assert!(
            m.member_id.starts_with(&format!("{}-", m.client_id)),
            "{}",
            m.member_id
        );
        assert_eq!(
            (m.client_host.as_str(), m.group_instance_id.as_deref()),
            ("/127.0.0.1", None)
        );
        let subscription = m
            .subscription
            .as_ref()
            .expect("a consumer")
            .as_ref()
            .expect("decodes");
        assert_eq!(subscription.topics, std::slice::from_ref(&topic));
    }

    // The members read and commit the two records of each partition.
    let committed = settle("every partition committed at 2", || async {
        let fetched = admin.fetch_offsets(&group, None).await.expect("fetch");
        let offsets: BTreeMap<TopicPartition, i64> = fetched
            .into_iter()
            .map(|(tp, o)| (tp, o.expect("committed").offset))
            .collect();
        match offsets.len() == 4 && offsets.values().all(|o| *o == 2) {
            true => Ok(offsets),
            false => Err(format!("{offsets:?}")),
        }
    })
    .await;
    assert_eq!(committed.into_keys().collect::<BTreeSet<_>>(), all);

    let stable = admin.list_groups(&["Stable"]).await.expect("list");
    assert!(stable.errors.is_empty(), "{:?}", stable.errors);
    let listed = stable
        .groups
        .iter()
        .find(|l| l.group_id == group)
        .expect("listed as Stable");
    let listing = (
        listed.protocol_type.as_str(),
        listed.state.as_deref(),
        listed.group_type.as_deref(),
    );
    assert_eq!(listing, ("consumer", Some("Stable"), Some("classic")));
    assert_eq!(listed.coordinator, 1);
    let empty = admin.list_groups(&["Empty"]).await.expect("list");
    assert!(
        !empty.groups.iter().any(|l| l.group_id == group),
        "not Empty"
    );

    // While the group has members it keeps its offsets and itself.
    let tp0 = TopicPartition::new(&topic, 0);
    let kept = admin
        .delete_offsets(&group, std::slice::from_ref(&tp0))
        .await
        .expect("call");
    let e = kept[&tp0].as_ref().expect_err("subscribed");
    assert_eq!(e.code(), Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC));
    let nobody = unique_topic("akg-nobody");
    let kept = admin.delete_groups(&[&group, &nobody]).await.expect("call");
    let code = |r: &Result<(), kafkit_admin::Error>| r.as_ref().err().and_then(|e| e.code());
    assert_eq!(code(&kept[&group]), Some(ErrorCode::NON_EMPTY_GROUP));
    assert_eq!(code(&kept[&nobody]), Some(ErrorCode::GROUP_ID_NOT_FOUND));

    // Both leave: the group is Empty and keeps its offsets until deleted.
    member_a.leave().await;
    member_b.leave().await;
    let g = group_when(&admin, &group, "Empty", |g| g.state == "Empty").await;
    assert!(g.members.is_empty(), "{:?}", g.members);
    let empty = admin.list_groups(&["Empty"]).await.expect("list");
    assert!(
        empty.groups.iter().any(|l| l.group_id == group),
        "listed as Empty"
    );
    let deleted = admin
        .delete_offsets(&group, std::slice::from_ref(&tp0))
        .await
        .expect("call");
    assert!(deleted[&tp0].is_ok(), "{:?}", deleted[&tp0]);
    let fetched = admin.fetch_offsets(&group, None).await.expect("fetch");
    let left: BTreeSet<TopicPartition> = fetched.into_keys().collect();
    assert_eq!(left, all.iter().filter(|tp| **tp != tp0).cloned().collect());

    let deleted = admin.delete_groups(&[&group]).await.expect("delete");
    assert!(deleted[&group].is_ok(), "{:?}", deleted[&group]);
    // DescribeGroups v6 (KIP-1043) answers GROUP_ID_NOT_FOUND, not "Dead".
    let described = admin.describe_groups(&[&group]).await.expect("describe");
    let e = described[&group].as_ref().expect_err("deleted");
    assert_eq!(e.code(), Some(ErrorCode::GROUP_ID_NOT_FOUND));
    let listed = admin.list_groups(&[]).await.expect("list");
    assert!(
        !listed.groups.iter().any(|l| l.group_id == group),
        "deleted"
    );
    let again = admin.delete_groups(&[&group]).await.expect("delete");
    assert_eq!(code(&again[&group]), Some(ErrorCode::GROUP_ID_NOT_FOUND));
}
