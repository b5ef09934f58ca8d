//! Mixed consumer groups on a real Apache Kafka broker: kafkit `Reader`
//! members and other clients' members (the peers' `group-member` command)
//! share one classic group on a 6-partition topic.
//!
//! 600 records are written up front; then members join one by one, some
//! leave and another joins, and after each change 60 more records are
//! written (10 a partition) and the test waits until the group has processed
//! everything so far. Every member commits each record it processes and
//! leaves cleanly (kafkit's `close`, a peer's stdin reaching EOF), so:
//!
//! - every record is processed exactly once across the members (no record
//!   missed, none twice: a clean handover commits before it revokes);
//! - every member that joined processed records (the clients really share
//!   the partitions; none is left out of the assignment);
//! - the group's committed offsets are the partitions' end offsets, read
//!   back by kafkit-admin and by the Java client's Admin.
//!
//! Assignors and members:
//!
//! - cooperative-sticky: kafkit, Java, franz-go, sarama;
//! - range: kafkit, Java, confluent (librdkafka);
//! - roundrobin: kafkit, sarama, kafka-go, with kafkit leading while
//!   kafka-go is a member (kafka-go's subscription claims a version it does
//!   not write; see that test).
//!
//! kafka-go is never in a group with confluent: neither can parse the
//! other's classic subscription metadata (tests/peers/go/README.md, "Known
//! client limitations"), so such a group ends with one side owning every
//! partition.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_admin::{Admin, IsolationLevel, OffsetSpec, TopicPartition};
use kafkit_reader::group::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor,
};
use kafkit_reader::{Error, Reader};
use kafkit_tests::{Peer, PeerClient, TestBroker, unique_topic};
use kafkit_writer::{Message, Writer};
use serde_json::Value;

const PARTITIONS: i32 = 6;
const UP_FRONT: usize = 600;
/// Records written after each membership change (a multiple of PARTITIONS).
const BATCH: usize = 60;
/// How long the group may take to process what was written, or a member to
/// get partitions after joining (a JVM starting included).
const SETTLE: Duration = Duration::from_secs(60);
/// How long a member may take to commit, leave and exit.
const LEAVE: Duration = Duration::from_secs(60);

fn kafka_broker() -> Option<TestBroker> {
    let broker = TestBroker::start();
    if broker.is_tansu() {
        eprintln!("!!!!!!!! SKIPPING an Apache Kafka interop test: the broker is tansu");
        return None;
    }
    Some(broker)
}

/// A member of the group: kafkit, or a peer client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Kafkit,
    Peer(PeerClient),
}

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A new member joins.
    Join(Who),
    /// The member that joined `n`th (from 0) leaves cleanly.
    Leave(usize),
}

/// Where `Peer::get` left the peer program: the variable `cargo xtask
/// test-kafka` sets, else the `.tools/peers` file its build writes.
fn peer_program(client: PeerClient) -> PathBuf {
    let (env, file) = if client.is_go() {
        ("KAFKIT_PEER_GO", "kafkit-peer-go")
    } else {
        ("KAFKIT_PEER_JAVA", "kafkit-peer-java.jar")
    };
    match std::env::var_os(env).filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.tools/peers")
            .join(file),
    }
}

/// What a member processed and owns, shared with its task or thread.
#[derive(Default)]
struct Progress {
    /// (partition, offset) of each record processed, in order.
    seen: Mutex<Vec<(i32, i64)>>,
    /// The partitions it owns now.
    owned: Mutex<BTreeSet<i32>>,
    /// Whether the client reports its assignment (kafka-go does not).
    reports_assignment: AtomicBool,
}

enum Handle {
    Kafkit {
        stop: Arc<AtomicBool>,
        task: tokio::task::JoinHandle<Result<(), Error>>,
    },
    Peer {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: std::thread::JoinHandle<Result<Vec<Value>, String>>,
        stderr: std::thread::JoinHandle<Vec<u8>>,
    },
}

struct Member {
    name: String,
    progress: Arc<Progress>,
    handle: Option<Handle>,
}

impl Drop for Member {
    /// A member still running when the test fails: its process must not
    /// outlive the test.
    fn drop(&mut self) {
        if let Some(Handle::Peer { child, .. }) = &mut self.handle {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn kafkit_member(
    name: String,
    brokers: &str,
    topic: &str,
    group: &str,
    assignor: Arc<dyn Assignor>,
) -> Member {
    let mut reader = Reader::builder([brokers])
        .group_id(group)
        .topics([topic])
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
        .assignors(vec![assignor])
        .build()
        .await
        .unwrap();
    let progress = Arc::new(Progress::default());
    progress.reports_assignment.store(true, Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let (p, st) = (progress.clone(), stop.clone());
    let task = tokio::spawn(async move {
        while !st.load(Ordering::SeqCst) {
            match tokio::time::timeout(Duration::from_millis(100), reader.fetch_message()).await {
                Ok(Ok(m)) => {
                    reader.commit_messages(std::slice::from_ref(&m)).await?;
                    p.seen.lock().unwrap().push((m.partition, m.offset));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
            *p.owned.lock().unwrap() = reader.assignment().iter().map(|tp| tp.partition).collect();
        }
        reader.close().await
    });
    Member {
        name,
        progress,
        handle: Some(Handle::Kafkit { stop, task }),
    }
}

/// The partitions of a peer's rebalance event: numbers (Go peer) or
/// `{"topic","partition"}` objects (Java peer).
fn event_partitions(line: &Value) -> Result<Vec<i32>, String> {
    let list = line["partitions"]
        .as_array()
        .ok_or_else(|| format!("event without partitions: {line}"))?;
    list.iter()
        .map(|p| {
            p.as_i64()
                .or_else(|| p["partition"].as_i64())
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| format!("bad partition in {line}"))
        })
        .collect()
}

fn peer_member(
    name: String,
    client: PeerClient,
    brokers: &str,
    topic: &str,
    group: &str,
    assignor: &str,
) -> Member {
    let program = peer_program(client);
    let mut cmd = if client.is_go() {
        let mut cmd = Command::new(&program);
        cmd.arg(client.name());
        cmd
    } else {
        let mut cmd = Command::new("java");
        cmd.arg("-jar").arg(&program);
        cmd
    };
    cmd.args(["group-member", "--brokers", brokers, "--topic", topic])
        .args(["--group", group, "--assignor", assignor]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
    let stdin = child.stdin.take();
    let out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let progress = Arc::new(Progress::default());
    progress
        .reports_assignment
        .store(client != PeerClient::KafkaGo, Ordering::SeqCst);
    let p = progress.clone();
    let stdout = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading stdout: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(&line).map_err(|e| format!("not JSON ({e}): {line}"))?;
            if let Some(offset) = value["offset"].as_i64() {
                let partition = value["partition"]
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| format!("record without partition: {line}"))?;
                p.seen.lock().unwrap().push((partition, offset));
            } else if let Some(event) = value["event"].as_str() {
                let partitions = event_partitions(&value)?;
                let mut owned = p.owned.lock().unwrap();
                match event {
                    "assigned" => owned.extend(partitions),
                    "revoked" | "lost" => {
                        for q in partitions {
                            owned.remove(&q);
                        }
                    }
                    other => return Err(format!("unknown event {other}: {line}")),
                }
            }
            lines.push(value);
        }
        Ok(lines)
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    Member {
        name,
        progress,
        handle: Some(Handle::Peer {
            child,
            stdin,
            stdout,
            stderr,
        }),
    }
}

impl Member {
    fn seen_count(&self) -> usize {
        self.progress.seen.lock().unwrap().len()
    }

    fn owns_something(&self) -> bool {
        !self.progress.owned.lock().unwrap().is_empty()
    }

    /// Leaves cleanly (commit, LeaveGroup) and returns what it processed.
    ///
    /// # Panics
    ///
    /// If the member failed, or does not leave within [`LEAVE`].
    async fn leave(mut self) -> Vec<(i32, i64)> {
        match self.handle.take().expect("a member leaves once") {
            Handle::Kafkit { stop, task } => {
                stop.store(true, Ordering::SeqCst);
                tokio::time::timeout(LEAVE, task)
                    .await
                    .unwrap_or_else(|_| panic!("{} did not close within {LEAVE:?}", self.name))
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{} failed: {e:?}", self.name));
            }
            Handle::Peer {
                mut child,
                stdin,
                stdout,
                stderr,
            } => {
                // EOF on stdin: the member commits, leaves and exits.
                drop(stdin);
                let deadline = Instant::now() + LEAVE;
                let status = loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break Some(status);
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                let lines = stdout.join().expect("stdout thread");
                let stderr =
                    String::from_utf8_lossy(&stderr.join().expect("stderr thread")).into_owned();
                let mut cut = stderr.len().saturating_sub(6000);
                while !stderr.is_char_boundary(cut) {
                    cut += 1;
                }
                let tail = &stderr[cut..];
                let Some(status) = status else {
                    panic!(
                        "{} did not leave within {LEAVE:?}; stderr:\n{tail}",
                        self.name
                    );
                };
                let lines = lines.unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{tail}", self.name));
                assert!(
                    status.success(),
                    "{} exited with {status}: {:?}; stderr:\n{tail}",
                    self.name,
                    lines.last()
                );
                let count = self.seen_count();
                let done = lines.last().cloned().unwrap_or_default();
                assert_eq!(
                    (done["done"].as_bool(), done["count"].as_u64()),
                    (Some(true), Some(count as u64)),
                    "{}: the done line counts every record printed: {done}",
                    self.name
                );
            }
        }
        self.progress.seen.lock().unwrap().clone()
    }
}

/// Waits, at most [`SETTLE`], until `done`.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < SETTLE, "not within {SETTLE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits, at most [`SETTLE`], until the coordinator says the group is
/// stable with exactly `members` in it, each with partitions of `topic`,
/// together all of them once; and until each member that reports its
/// assignment (all but kafka-go) owns partitions too.
async fn wait_for_assignment(admin: &Admin, group: &str, topic: &str, members: &[&Member]) {
    let start = Instant::now();
    loop {
        let described = admin.describe_groups(&[group]).await;
        let (settled, last) = match described.as_ref().map(|d| d.get(group)) {
            Ok(Some(Ok(g))) => {
                let mut all: Vec<i32> = Vec::new();
                let mut each_has_some = true;
                let mut per_member = Vec::new();
                for m in &g.members {
                    let partitions: Vec<i32> = match &m.assignment {
                        Some(Ok(a)) => a
                            .partitions
                            .iter()
                            .filter(|tp| *tp.topic == *topic)
                            .map(|tp| tp.partition)
                            .collect(),
                        _ => Vec::new(),
                    };
                    each_has_some &= !partitions.is_empty();
                    per_member.push(format!(
                        "{}: {partitions:?}{}",
                        m.client_id,
                        match &m.assignment {
                            Some(Err(e)) => format!(" (undecodable: {e:?})"),
                            None => " (none)".to_owned(),
                            Some(Ok(_)) => String::new(),
                        }
                    ));
                    all.extend(partitions);
                }
                all.sort_unstable();
                let settled = g.state == "Stable"
                    && g.members.len() == members.len()
                    && each_has_some
                    && all == (0..PARTITIONS).collect::<Vec<_>>();
                let last = format!(
                    "state {}, {} members, partitions {all:?}, by member {per_member:?}",
                    g.state,
                    g.members.len()
                );
                (settled, last)
            }
            other => (false, format!("{other:?}")),
        };
        let clients_know = members
            .iter()
            .all(|m| !m.progress.reports_assignment.load(Ordering::SeqCst) || m.owns_something());
        if settled && clients_know {
            return;
        }
        let names: Vec<String> = members
            .iter()
            .map(|m| format!("{} owns {:?}", m.name, m.progress.owned.lock().unwrap()))
            .collect();
        assert!(
            start.elapsed() < SETTLE,
            "group {group} of {names:?} not assigned within {SETTLE:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `count` records, spread evenly over the partitions, and returns
/// where they landed.
async fn write(writer: &Writer, tag: &str, count: usize) -> Vec<(i32, i64)> {
    let messages: Vec<Message> = (0..count)
        .map(|i| {
            Message::new(format!("{tag}-{i}")).with_partition((i % PARTITIONS as usize) as i32)
        })
        .collect();
    writer
        .write_messages(&messages)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let meta = r.unwrap();
            (meta.partition, meta.offset)
        })
        .collect()
}

async fn mixed_group(assignor_name: &str, assignor: Arc<dyn Assignor>, steps: &[Step]) {
    let Some(broker) = kafka_broker() else { return };
    for step in steps {
        if let Step::Join(Who::Peer(client)) = step
            && Peer::get(*client).is_none()
        {
            return;
        }
    }
    let Some(java) = Peer::get(PeerClient::Java) else {
        return;
    };
    let brokers = broker.bootstrap();
    let topic = unique_topic(&format!("interop-groups-{assignor_name}"));
    let group = format!("{topic}-group");
    tokio::task::block_in_place(|| broker.create_topic(&topic, PARTITIONS as u32));
    let writer = Writer::builder([brokers.clone()])
        .topic(&topic)
        .build()
        .await
        .unwrap();
    let mut written = write(&writer, "up-front", UP_FRONT).await;
    let admin = Admin::builder([&brokers]).build().await.unwrap();

    let mut members: Vec<Option<Member>> = Vec::new();
    let mut left: Vec<(String, Vec<(i32, i64)>)> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        match *step {
            Step::Join(who) => {
                let name = match who {
                    Who::Kafkit => format!("kafkit#{}", members.len()),
                    Who::Peer(c) => format!("{}#{}", c.name(), members.len()),
                };
                let member = match who {
                    Who::Kafkit => {
                        kafkit_member(name, &brokers, &topic, &group, assignor.clone()).await
                    }
                    Who::Peer(client) => tokio::task::block_in_place(|| {
                        peer_member(name, client, &brokers, &topic, &group, assignor_name)
                    }),
                };
                members.push(Some(member));
            }
            Step::Leave(index) => {
                let member = members[index].take().expect("a member leaves once");
                let name = member.name.clone();
                left.push((name, member.leave().await));
            }
        }
        let active: Vec<&Member> = members.iter().flatten().collect();
        wait_for_assignment(&admin, &group, &topic, &active).await;
        written.extend(write(&writer, &format!("step{n}"), BATCH).await);
        let total = written.len();
        let processed = |members: &[Option<Member>], left: &[(String, Vec<(i32, i64)>)]| {
            let mut all: BTreeSet<(i32, i64)> = BTreeSet::new();
            for m in members.iter().flatten() {
                all.extend(m.progress.seen.lock().unwrap().iter().copied());
            }
            for (_, seen) in left {
                all.extend(seen.iter().copied());
            }
            all.len()
        };
        wait_until(
            &format!("the group processes all {total} records after step {n} ({step:?})"),
            || processed(&members, &left) >= total,
        )
        .await;
    }
    for member in members.iter_mut() {
        if let Some(member) = member.take() {
            let name = member.name.clone();
            left.push((name, member.leave().await));
        }
    }
    writer.close().await.unwrap();

    // Exactly once: every record written, none twice.
    let mut by_record: BTreeMap<(i32, i64), Vec<&str>> = BTreeMap::new();
    for (name, seen) in &left {
        for record in seen {
            by_record.entry(*record).or_default().push(name);
        }
    }
    let expected: BTreeSet<(i32, i64)> = written.iter().copied().collect();
    assert_eq!(
        expected.len(),
        written.len(),
        "the writer's acks are distinct"
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| !by_record.contains_key(r))
        .collect();
    assert!(missing.is_empty(), "records never processed: {missing:?}");
    let unexpected: Vec<_> = by_record.keys().filter(|r| !expected.contains(r)).collect();
    assert!(
        unexpected.is_empty(),
        "records processed but never written: {unexpected:?}"
    );
    let twice: Vec<_> = by_record.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "records processed more than once (every member left cleanly): {} of them, first {:?}",
        twice.len(),
        &twice[..twice.len().min(20)]
    );
    for (name, seen) in &left {
        assert!(!seen.is_empty(), "{name} processed no record");
    }

    // Committed offsets = end offsets.
    let mut end = BTreeMap::new();
    for (p, o) in &written {
        let next = end.entry(*p).or_insert(0i64);
        *next = (*next).max(o + 1);
    }
    let specs: BTreeMap<TopicPartition, OffsetSpec> = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(&topic, p), OffsetSpec::Latest))
        .collect();
    let listed: BTreeMap<i32, i64> = admin
        .list_offsets(&specs, IsolationLevel::ReadUncommitted)
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, o)| (tp.partition, o.unwrap().offset))
        .collect();
    assert_eq!(listed, end, "end offsets: what the writer's acks say");
    let committed: BTreeMap<i32, i64> = admin
        .fetch_offsets(&group, None)
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, o)| {
            assert_eq!(*tp.topic, *topic);
            (tp.partition, o.unwrap().offset)
        })
        .collect();
    assert_eq!(
        committed, end,
        "committed offsets (kafkit-admin) = end offsets"
    );
    let java_line = tokio::task::block_in_place(|| {
        java.command("admin")
            .arg("group-offsets")
            .flag("--brokers", &brokers)
            .flag("--group", &group)
            .run()
    });
    let java_offsets: BTreeMap<i32, i64> = java_line.lines[0]["offsets"]
        .as_array()
        .unwrap_or_else(|| panic!("java group-offsets: {:?}", java_line.lines))
        .iter()
        .map(|o| {
            assert_eq!(o["topic"].as_str(), Some(topic.as_str()));
            (
                i32::try_from(o["partition"].as_i64().unwrap()).unwrap(),
                o["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        java_offsets, end,
        "committed offsets (Java Admin) = end offsets"
    );
}

/// kafkit, Java, franz-go and sarama under cooperative-sticky.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_kafkit_java_franz_sarama() {
    use Step::{Join, Leave};
    mixed_group(
        "cooperative-sticky",
        Arc::new(CooperativeStickyAssignor),
        &[
            Join(Who::Kafkit),
            Join(Who::Peer(PeerClient::Java)),
            Join(Who::Peer(PeerClient::FranzGo)),
            Join(Who::Peer(PeerClient::Sarama)),
            Leave(1),
            Join(Who::Kafkit),
            Leave(0),
            Leave(2),
        ],
    )
    .await;
}

/// kafkit, Java and confluent (librdkafka) under range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_kafkit_java_confluent() {
    use Step::{Join, Leave};
    mixed_group(
        "range",
        Arc::new(RangeAssignor),
        &[
            Join(Who::Kafkit),
            Join(Who::Peer(PeerClient::Java)),
            Join(Who::Peer(PeerClient::Confluent)),
            Leave(0),
            Join(Who::Kafkit),
            Leave(1),
        ],
    )
    .await;
}

/// kafkit, sarama and kafka-go under roundrobin, kafkit leading: it joins
/// first and stays while the others join and leave.
///
/// kafka-go's JoinGroup metadata says ConsumerProtocolSubscription version
/// 1 but carries only the version 0 fields (no `owned_partitions` array;
/// kafka-go 0.4.51 writes version, topics, user data). kafkit's leader once
/// failed to decode it and assigned kafka-go nothing; it now reads such a
/// body at the version it fits (`decode_subscription`), and this test, with
/// kafkit running the assignor while kafka-go is a member, checks that
/// kafka-go gets its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_kafkit_sarama_kafka_go() {
    use Step::{Join, Leave};
    mixed_group(
        "roundrobin",
        Arc::new(RoundRobinAssignor),
        &[
            Join(Who::Kafkit),
            Join(Who::Peer(PeerClient::KafkaGo)),
            Join(Who::Peer(PeerClient::Sarama)),
            Leave(2),
            Join(Who::Peer(PeerClient::Sarama)),
            Leave(1),
        ],
    )
    .await;
}
