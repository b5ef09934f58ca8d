//! [`TestBroker`]: a real broker for one test, or an external cluster.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long tansu gets to accept connections (it usually needs about 0.1 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long Drop waits for the broker to exit after asking it to.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs tansu under a tiny `sh` supervisor whose stdin is a pipe from the test
/// process. When that pipe closes, because [`TestBroker`] was dropped *or*
/// because the test process died without unwinding (abort, SIGKILL, a timeout
/// in CI), the watcher subshell reads EOF and kills tansu. This gives the
/// guarantee of `PR_SET_PDEATHSIG` without `unsafe` `pre_exec` code.
///
/// `$0` is the tansu binary and `$@` its arguments. The background job gets
/// `/dev/null` as stdin and must not inherit fd 3 (the pipe), or it would keep
/// the pipe open itself. The supervisor prints tansu's pid, then waits for it,
/// so the supervisor exits exactly when tansu does.
const SUPERVISOR: &str = r#"
exec 3<&0
"$0" "$@" 3<&- </dev/null &
pid=$!
echo "$pid"
( read -r _ <&3; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
"#;

/// A Kafka broker for one test.
///
/// By default [`TestBroker::start`] starts a fresh tansu broker with in-memory
/// storage on a free loopback port, and [`Drop`] kills it. Each test gets its
/// own broker: tansu starts in about 0.1 s and shares no state between tests.
///
/// With `KAFKIT_BROKERS=host:port[,host:port...]` set, the tests use that
/// cluster instead: `cargo xtask test-kafka` starts one tansu broker for the
/// whole run and passes it this way (with `KAFKIT_BROKERS_TANSU=1`, so the
/// known tansu bugs are still skipped), and `--docker` points it at
/// `docker/docker-compose.yml`'s Apache Kafka. Tests that stop or restart the
/// broker use [`TestBroker::start_private`], which always starts their own.
#[derive(Debug)]
pub struct TestBroker {
    bootstrap: Vec<String>,
    addr: SocketAddr,
    tansu: Option<Tansu>,
    /// `KAFKIT_BROKERS` names a tansu broker started outside the test.
    external_tansu: bool,
    /// The binary of a tansu broker [`TestBroker::stop`] stopped.
    stopped: Option<PathBuf>,
}

#[derive(Debug)]
struct Tansu {
    binary: PathBuf,
    supervisor: Child,
    /// Dropping this closes the pipe, which makes the supervisor kill tansu.
    lifeline: Option<ChildStdin>,
    pid: u32,
    log: PathBuf,
}

impl TestBroker {
    /// Starts a tansu broker, or connects to `KAFKIT_BROKERS` when it is set.
    ///
    /// # Panics
    ///
    /// If the tansu binary is missing (run `cargo xtask install-tansu`), or the
    /// broker does not accept connections within 15 s.
    pub fn start() -> TestBroker {
        if let Some(list) = std::env::var("KAFKIT_BROKERS")
            .ok()
            .filter(|l| !l.trim().is_empty())
        {
            return TestBroker::external(&list);
        }
        TestBroker::start_private()
    }

    /// Starts a tansu broker for this test alone, whatever `KAFKIT_BROKERS`
    /// says: for tests that kill, stall or restart the broker.
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`].
    pub fn start_private() -> TestBroker {
        let binary = tansu_binary();
        // A port found free can be taken by another process before tansu
        // binds it; the broker then exits at once and we try another port.
        let mut last_error = String::new();
        for _ in 0..3 {
            match start_tansu(&binary) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start tansu ({}): {last_error}", binary.display())
    }

    /// Starts a private tansu broker that tells clients (in Metadata and
    /// FindCoordinator answers) to connect to `advertised` instead of its
    /// own address: a proxy such as [`FaultProxy`](crate::FaultProxy)
    /// listening there then sees every connection a client opens.
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`].
    pub fn start_private_advertising(advertised: SocketAddr) -> TestBroker {
        let binary = tansu_binary();
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = match free_port() {
                Ok(port) => port,
                Err(e) => panic!("no free loopback port: {e}"),
            };
            match start_tansu_advertising(&binary, port, Some(advertised)) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start tansu ({}): {last_error}", binary.display())
    }

    fn external(list: &str) -> TestBroker {
        let bootstrap: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        assert!(
            !bootstrap.is_empty(),
            "KAFKIT_BROKERS=`{list}` names no broker"
        );
        let addr = bootstrap[0]
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("KAFKIT_BROKERS: cannot resolve `{}`", bootstrap[0]));
        TestBroker {
            bootstrap,
            addr,
            tansu: None,
            external_tansu: std::env::var("KAFKIT_BROKERS_TANSU").is_ok_and(|v| v == "1"),
            stopped: None,
        }
    }

    /// The address of one broker (the first of the bootstrap list).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap list as a client takes it: `host:port[,host:port...]`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.join(",")
    }

    /// True when the broker is tansu: started by this test, or named by
    /// `KAFKIT_BROKERS` together with `KAFKIT_BROKERS_TANSU=1`.
    pub fn is_tansu(&self) -> bool {
        self.tansu.is_some() || self.external_tansu
    }

    /// True, with a note on stderr, when the broker is tansu and so has the
    /// named bug (see shared BROKERS.md). A test skips only the assertion the
    /// bug breaks:
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

    /// The tansu binary's pid, if this broker is a tansu this process started.
    pub fn pid(&self) -> Option<u32> {
        self.tansu.as_ref().map(|t| t.pid)
    }

    /// Creates `name` with `partitions` partitions, using `tansu topic create`
    /// (replication factor 1), or a CreateTopics request on an external cluster.
    ///
    /// # Panics
    ///
    /// If the topic cannot be created.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let Some(tansu) = &self.tansu else {
            return self.create_topic_with_request(name, partitions);
        };
        let output = Command::new(&tansu.binary)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr))
            .output()
            .unwrap_or_else(|e| panic!("could not run `tansu topic create`: {e}"));
        assert!(
            output.status.success(),
            "`tansu topic create {name} --partitions {partitions}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

impl TestBroker {
    /// CreateTopics through the protocol, for clusters that are not tansu.
    fn create_topic_with_request(&self, name: &str, partitions: u32) {
        let partitions = i32::try_from(partitions).expect("partition count fits in int32");
        let response = crate::RawClient::connect(self.addr).create_topics(name, partitions);
        let result = &response.topics[0];
        assert_eq!(
            result.error_code,
            kafkit_protocol::ErrorCode::NONE,
            "cannot create topic {name}: {:?}",
            result.error_message
        );
    }
}

impl TestBroker {
    /// Kills the broker (as `kill -9` would), keeping its address: clients
    /// see their connections drop. A no-op on an external cluster or a
    /// broker already stopped.
    pub fn stop(&mut self) {
        if let Some(mut tansu) = self.tansu.take() {
            kill(&mut tansu);
            self.stopped = Some(tansu.binary);
        }
    }

    /// Stops the broker if it runs, then starts a fresh one (empty
    /// in-memory storage) on the same port.
    ///
    /// # Panics
    ///
    /// On an external cluster, or if the new broker does not start (the
    /// port is retried for a few seconds in case it is still held).
    pub fn restart(&mut self) {
        self.stop();
        let binary = self
            .stopped
            .take()
            .expect("restart needs a tansu broker this process started");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match start_tansu_on(&binary, self.addr.port()) {
                Ok(mut fresh) => {
                    self.tansu = fresh.tansu.take();
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("could not restart tansu on {}: {e}", self.addr)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Closes the lifeline, which makes the supervisor's watcher kill -9
/// tansu; the supervisor then reaps it and exits, and we reap the
/// supervisor.
fn kill(tansu: &mut Tansu) {
    drop(tansu.lifeline.take());
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    loop {
        match tansu.supervisor.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = tansu.supervisor.kill();
                let _ = tansu.supervisor.wait();
                break;
            }
        }
    }
    let _ = fs::remove_file(&tansu.log);
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(tansu) = &mut self.tansu {
            kill(tansu);
        }
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

/// True when a tansu binary is installed, so [`TestBroker::start_private`]
/// can run. Against an external cluster without tansu (the docker mode),
/// tests that need a broker of their own skip themselves.
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
         Run `cargo xtask install-tansu` (or `cargo xtask test-kafka`, which installs it), \
         or set KAFKIT_TANSU=/path/to/tansu, or KAFKIT_BROKERS=host:port to use another cluster.",
        path.display()
    );
    path
}

fn start_tansu(binary: &Path) -> Result<TestBroker, String> {
    let port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
    start_tansu_on(binary, port)
}

fn start_tansu_on(binary: &Path, port: u16) -> Result<TestBroker, String> {
    start_tansu_advertising(binary, port, None)
}

fn start_tansu_advertising(
    binary: &Path,
    port: u16,
    advertised: Option<SocketAddr>,
) -> Result<TestBroker, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("tcp://{addr}");
    let advertised_url = format!("tcp://{}", advertised.unwrap_or(addr));
    let log = std::env::temp_dir().join(format!("kafkit-tansu-{}-{port}.log", std::process::id()));
    let log_file =
        fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut supervisor = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg(binary)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
        ])
        .args(["--storage-engine", "memory://tansu/", "--silent"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run sh to start tansu: {e}"))?;
    let lifeline = supervisor.stdin.take();
    let mut pid_line = String::new();
    let stdout = supervisor.stdout.take().expect("stdout is piped");
    let _ = BufReader::new(stdout).read_line(&mut pid_line);
    let mut tansu = Tansu {
        binary: binary.to_owned(),
        supervisor,
        lifeline,
        pid: 0,
        log,
    };
    tansu.pid = pid_line.trim().parse().unwrap_or(0);
    // From here on, `broker`'s Drop cleans up on every early return.
    let mut broker = TestBroker {
        bootstrap: vec![addr.to_string()],
        addr,
        tansu: Some(tansu),
        external_tansu: false,
        stopped: None,
    };
    wait_until_accepting(&mut broker)?;
    Ok(broker)
}

fn wait_until_accepting(broker: &mut TestBroker) -> Result<(), String> {
    let addr = broker.addr;
    let tansu = broker.tansu.as_mut().expect("a tansu broker");
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        // The supervisor exits exactly when tansu does (it waits for it).
        let exited = !matches!(tansu.supervisor.try_wait(), Ok(None));
        let log = || fs::read_to_string(&tansu.log).unwrap_or_default();
        if exited {
            return Err(format!(
                "tansu exited before accepting connections on {addr}; its output:\n{}",
                log()
            ));
        }
        if start.elapsed() > STARTUP_TIMEOUT {
            return Err(format!(
                "tansu did not accept connections on {addr} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
