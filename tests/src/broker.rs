//! [`TestBroker`]: the broker a test talks to: Apache Kafka, tansu, or an
//! external cluster.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::kafka::{KafkaCluster, KafkaOptions, Listener};
use crate::supervised::{Supervised, log_tail};
use crate::{RawClient, TestPki};

/// How long tansu gets to accept connections (it usually needs about 0.1 s).
const TANSU_STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a created topic may take to have a leader for every partition.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// Which broker a test gets when it starts one of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Apache Kafka 4.3.1 in KRaft mode (the default).
    Kafka,
    /// tansu with in-memory storage (`KAFKIT_TEST_BROKER=tansu`).
    Tansu,
}

impl BrokerKind {
    /// `KAFKIT_TEST_BROKER`: `kafka` (the default) or `tansu`.
    pub fn from_env() -> BrokerKind {
        match std::env::var("KAFKIT_TEST_BROKER").as_deref() {
            Ok("tansu") => BrokerKind::Tansu,
            Ok("kafka") | Ok("") | Err(_) => BrokerKind::Kafka,
            Ok(other) => panic!("KAFKIT_TEST_BROKER={other}: expected `kafka` or `tansu`"),
        }
    }
}

/// A Kafka broker for one test.
///
/// [`TestBroker::start`] gives the broker of the run: `KAFKIT_BROKERS` when
/// it is set (`cargo xtask test-kafka` starts one Apache Kafka node for the
/// whole suite and passes it this way, with its TLS and SASL listeners in
/// `KAFKIT_BROKERS_SSL`, `_SASL_PLAINTEXT`, `_SASL_SSL` and its certificates
/// in `KAFKIT_BROKERS_PKI`); otherwise one Apache Kafka node started once
/// for this test process, or with `KAFKIT_TEST_BROKER=tansu` a fresh tansu.
/// Tests that kill or restart the broker use [`TestBroker::start_private`],
/// which always starts their own.
#[derive(Debug)]
pub struct TestBroker {
    bootstrap: Vec<String>,
    addr: SocketAddr,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    /// Named by `KAFKIT_BROKERS`.
    External {
        kind: BrokerKind,
        pki: Option<TestPki>,
    },
    /// This process's Apache Kafka node, shared by its tests.
    Shared(&'static KafkaCluster),
    /// An Apache Kafka node of this test's own.
    Kafka(Box<KafkaCluster>),
    /// A tansu of this test's own; `None` while stopped.
    Tansu(Option<Supervised>),
}

impl TestBroker {
    /// The broker of the run (see the type's docs).
    ///
    /// # Panics
    ///
    /// If the broker is not installed (`cargo xtask install-kafka`, or
    /// `install-tansu`), or does not come up.
    pub fn start() -> TestBroker {
        if let Some(list) = std::env::var("KAFKIT_BROKERS")
            .ok()
            .filter(|l| !l.trim().is_empty())
        {
            return TestBroker::external(&list);
        }
        match BrokerKind::from_env() {
            BrokerKind::Tansu => TestBroker::start_private(),
            BrokerKind::Kafka => {
                static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
                let cluster = SHARED.get_or_init(|| KafkaCluster::start(KafkaOptions::default()));
                TestBroker::on_kafka(Backend::Shared(cluster), cluster)
            }
        }
    }

    /// [`TestBroker::start`], or `None` (with a note) when the run's broker
    /// is tansu: for tests that pin Apache Kafka's own answers.
    pub fn start_kafka() -> Option<TestBroker> {
        let broker = TestBroker::start();
        if broker.is_tansu() {
            eprintln!("skipping an Apache Kafka twin: the broker is tansu");
            return None;
        }
        Some(broker)
    }

    /// A broker for this test alone, whatever `KAFKIT_BROKERS` says: for
    /// tests that kill, stall or restart it. Its kind is `KAFKIT_TEST_BROKER`'s.
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`].
    pub fn start_private() -> TestBroker {
        TestBroker::start_private_with(None)
    }

    /// A private broker that tells clients (in Metadata and FindCoordinator
    /// answers) to connect to `advertised` instead of its own address: a
    /// proxy such as [`FaultProxy`](crate::FaultProxy) listening there then
    /// sees every connection a client opens. On Kafka, brokers talk to each
    /// other on a listener of their own, which the proxy does not see.
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`].
    pub fn start_private_advertising(advertised: SocketAddr) -> TestBroker {
        TestBroker::start_private_with(Some(advertised))
    }

    fn start_private_with(advertised: Option<SocketAddr>) -> TestBroker {
        match BrokerKind::from_env() {
            BrokerKind::Kafka => {
                let cluster = Box::new(KafkaCluster::start(KafkaOptions {
                    advertise: advertised.map(|addr| (1, addr)).into_iter().collect(),
                    ..KafkaOptions::default()
                }));
                let addr = cluster.addr(1, Listener::Plaintext);
                TestBroker {
                    bootstrap: vec![addr.to_string()],
                    addr,
                    backend: Backend::Kafka(cluster),
                }
            }
            BrokerKind::Tansu => {
                let binary = tansu_binary();
                let mut last_error = String::new();
                // A port found free can be taken by another process before
                // tansu binds it; the broker then exits at once.
                for _ in 0..3 {
                    let port = free_port().unwrap_or_else(|e| panic!("no free loopback port: {e}"));
                    match start_tansu(&binary, port, advertised) {
                        Ok(process) => return TestBroker::on_tansu(port, process),
                        Err(e) => last_error = e,
                    }
                }
                panic!("could not start tansu ({}): {last_error}", binary.display())
            }
        }
    }

    fn on_kafka(backend: Backend, cluster: &KafkaCluster) -> TestBroker {
        let addr = cluster.addr(1, Listener::Plaintext);
        TestBroker {
            bootstrap: vec![addr.to_string()],
            addr,
            backend,
        }
    }

    fn on_tansu(port: u16, process: Supervised) -> TestBroker {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TestBroker {
            bootstrap: vec![addr.to_string()],
            addr,
            backend: Backend::Tansu(Some(process)),
        }
    }

    fn external(list: &str) -> TestBroker {
        let bootstrap = split_list(list);
        assert!(
            !bootstrap.is_empty(),
            "KAFKIT_BROKERS=`{list}` names no broker"
        );
        let addr = resolve(&bootstrap[0]);
        let tansu = std::env::var("KAFKIT_BROKERS_KIND").is_ok_and(|v| v == "tansu")
            || std::env::var("KAFKIT_BROKERS_TANSU").is_ok_and(|v| v == "1");
        let kind = if tansu {
            BrokerKind::Tansu
        } else {
            BrokerKind::Kafka
        };
        let pki = std::env::var_os("KAFKIT_BROKERS_PKI").map(|d| TestPki::existing(d.into()));
        TestBroker {
            bootstrap,
            addr,
            backend: Backend::External { kind, pki },
        }
    }
}

impl TestBroker {
    /// The address of one broker (the first of the bootstrap list).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap list as a client takes it: `host:port[,host:port...]`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.join(",")
    }

    /// What kind of broker this is.
    pub fn kind(&self) -> BrokerKind {
        match &self.backend {
            Backend::External { kind, .. } => *kind,
            Backend::Shared(_) | Backend::Kafka(_) => BrokerKind::Kafka,
            Backend::Tansu(_) => BrokerKind::Tansu,
        }
    }

    /// True when the broker is tansu.
    pub fn is_tansu(&self) -> bool {
        self.kind() == BrokerKind::Tansu
    }

    /// The bootstrap list of one of the broker's secured listeners, when it
    /// has them (Apache Kafka started by this harness; tansu has none).
    pub fn listener(&self, listener: Listener) -> Option<String> {
        match &self.backend {
            Backend::External { .. } => std::env::var(listener.env_var()).ok(),
            Backend::Shared(cluster) => Some(cluster.bootstrap(listener)),
            Backend::Kafka(cluster) => Some(cluster.bootstrap(listener)),
            Backend::Tansu(_) => None,
        }
    }

    /// The certificates of the broker's TLS listeners, when it has them.
    pub fn pki(&self) -> Option<&TestPki> {
        match &self.backend {
            Backend::External { pki, .. } => pki.as_ref(),
            Backend::Shared(cluster) => Some(cluster.pki()),
            Backend::Kafka(cluster) => Some(cluster.pki()),
            Backend::Tansu(_) => None,
        }
    }

    /// True, with a note on stderr, when the broker is tansu and so has the
    /// named bug (see README's "The test brokers"). A test skips only the
    /// assertion the bug breaks:
    ///
    /// ```no_run
    /// # let broker = kafkit_tests::TestBroker::start();
    /// # let (offset, expected) = (0, 0);
    /// if !broker.has_tansu_bug("ListOffsets by timestamp always answers 0") {
    ///     assert_eq!(offset, expected);
    /// }
    /// ```
    pub fn has_tansu_bug(&self, bug: &str) -> bool {
        if self.is_tansu() {
            eprintln!("skipping an assertion: known tansu bug: {bug}");
        }
        self.is_tansu()
    }

    /// The broker process's pid, if this test started its own.
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Kafka(cluster) => cluster.pid(1),
            Backend::Tansu(process) => process.as_ref().map(Supervised::pid),
            Backend::External { .. } | Backend::Shared(_) => None,
        }
    }

    /// Creates `name` with `partitions` partitions (replication factor: the
    /// broker's default) and waits until every partition has a leader.
    ///
    /// # Panics
    ///
    /// If the topic cannot be created.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let partitions = i32::try_from(partitions).expect("partition count fits in int32");
        let mut client = RawClient::connect(self.addr);
        let response = client.create_topics(name, partitions);
        let result = &response.topics[0];
        assert_eq!(
            result.error_code,
            kafkit_protocol::ErrorCode::NONE,
            "cannot create topic {name}: {:?}",
            result.error_message
        );
        // A large topic takes the controller and broker longer.
        let timeout = TOPIC_TIMEOUT + Duration::from_millis(100) * partitions.unsigned_abs();
        wait_for_leaders(&mut client, name, Some(partitions), timeout);
    }
}

/// Waits until every partition of `topic` serves reads at its leader:
/// Kafka answers CreateTopics once the controller has the topic, and its
/// metadata names a leader a moment before that leader's replica manager
/// takes the partition on (until then produce and ListOffsets answer
/// NOT_LEADER_OR_FOLLOWER). So: Metadata until each of the `partitions`
/// partitions has a leader, then ListOffsets at each leader until it answers.
///
/// `partitions` is the count to wait for (`None`: whatever the metadata
/// lists, at least one). `client` must stay connected to a running broker.
pub(crate) fn wait_for_leaders(
    client: &mut RawClient,
    topic: &str,
    partitions: Option<i32>,
    timeout: Duration,
) {
    let start = Instant::now();
    let mut waiting: Option<Vec<i32>> = partitions.map(|n| (0..n).collect());
    // One connection per leader, kept across rounds (a topic may have
    // thousands of partitions).
    let mut leaders: std::collections::HashMap<SocketAddr, RawClient> = Default::default();
    while waiting.as_ref().is_none_or(|w| !w.is_empty()) {
        assert!(
            start.elapsed() < timeout,
            "topic {topic}: partitions {waiting:?} had no serving leader within {timeout:?}"
        );
        let response = client.metadata(Some(&[topic]));
        let Some(found) = response.topics.iter().find(|t| {
            t.name.as_deref() == Some(topic)
                && t.error_code == kafkit_protocol::ErrorCode::NONE
                && !t.partitions.is_empty()
                && partitions.is_none_or(|n| t.partitions.len() == n as usize)
        }) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let waiting = waiting
            .get_or_insert_with(|| found.partitions.iter().map(|p| p.partition_index).collect());
        waiting.retain(|index| {
            let Some(partition) = found
                .partitions
                .iter()
                .find(|p| p.partition_index == *index)
            else {
                return true;
            };
            let Some(leader) = response
                .brokers
                .iter()
                .find(|b| b.node_id == partition.leader_id)
            else {
                return true;
            };
            let addr = resolve(&format!("{}:{}", leader.host, leader.port));
            let leader = leaders
                .entry(addr)
                .or_insert_with(|| RawClient::connect(addr));
            leader.list_offset(topic, *index, -1).error_code != kafkit_protocol::ErrorCode::NONE
        });
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl TestBroker {
    /// Kills the broker (as `kill -9` would), keeping its address: clients
    /// see their connections drop.
    ///
    /// # Panics
    ///
    /// On a broker this test did not start.
    pub fn stop(&mut self) {
        match &mut self.backend {
            Backend::Kafka(cluster) => cluster.kill(1),
            Backend::Tansu(process) => drop(process.take()),
            Backend::External { .. } | Backend::Shared(_) => {
                panic!("stop() needs a broker from TestBroker::start_private")
            }
        }
    }

    /// Starts a stopped broker again on the same port (stopping it first if
    /// it runs). Kafka keeps its data; tansu starts empty, see
    /// [`TestBroker::loses_data_on_restart`].
    ///
    /// # Panics
    ///
    /// On a broker this test did not start, or if it does not come back.
    pub fn restart(&mut self) {
        let port = self.addr.port();
        match &mut self.backend {
            Backend::Kafka(cluster) => {
                cluster.kill(1);
                cluster.restart(1);
            }
            Backend::Tansu(process) => {
                drop(process.take());
                let binary = tansu_binary();
                let deadline = Instant::now() + TANSU_STARTUP_TIMEOUT;
                // The port may still be held for a moment.
                *process = Some(loop {
                    match start_tansu(&binary, port, None) {
                        Ok(fresh) => break fresh,
                        Err(e) if Instant::now() > deadline => {
                            panic!("could not restart tansu on port {port}: {e}")
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                });
            }
            Backend::External { .. } | Backend::Shared(_) => {
                panic!("restart() needs a broker from TestBroker::start_private")
            }
        }
    }

    /// True when a restarted broker has lost its topics (tansu's in-memory
    /// storage); Apache Kafka keeps them on disk.
    pub fn loses_data_on_restart(&self) -> bool {
        self.is_tansu()
    }
}

/// A topic name no other test (or earlier run against an external cluster)
/// has used: `prefix-<pid>-<n>`.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// True when a tansu binary is installed.
pub fn can_start_tansu() -> bool {
    std::env::var_os("KAFKIT_TANSU").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.tools/tansu")
                .is_file()
        },
        |p| Path::new(&p).is_file(),
    )
}

/// The tansu binary: `KAFKIT_TANSU`, else `<workspace>/.tools/tansu`.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KAFKIT_TANSU") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KAFKIT_TANSU={} is not a file",
            path.display()
        );
        return path;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/tansu");
    assert!(
        path.is_file(),
        "the tansu test broker is not installed at {}.\n\
         Run `cargo xtask install-tansu`, or set KAFKIT_TANSU=/path/to/tansu.",
        path.display()
    );
    path
}

fn start_tansu(
    binary: &Path,
    port: u16,
    advertised: Option<SocketAddr>,
) -> Result<Supervised, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = std::env::temp_dir().join(format!("kafkit-tansu-{}-{port}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let args: Vec<String> = [
        "broker",
        "--listener-url",
        &format!("tcp://{addr}"),
        "--advertised-listener-url",
        &format!("tcp://{}", advertised.unwrap_or(addr)),
        "--storage-engine",
        "memory://tansu/",
        "--silent",
    ]
    .map(str::to_owned)
    .into();
    let mut process = Supervised::spawn(binary, &args, &[], &log)?;
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(process);
        }
        let failure = if process.exited() {
            "exited before accepting connections"
        } else if start.elapsed() > TANSU_STARTUP_TIMEOUT {
            "did not accept connections in time"
        } else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        return Err(format!(
            "tansu {failure} on {addr}; its output:\n{}",
            log_tail(&log, 40)
        ));
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn resolve(addr: &str) -> SocketAddr {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve `{addr}`"))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
