//! [`MockCluster`]: librdkafka's mock cluster (N brokers on loopback with
//! fault injection), driven over the stdin and stdout of a small C program,
//! `tests/mock/mock_cluster.c`.
//!
//! The program is built on first use with `gcc`, against Debian's
//! `librdkafka-dev` headers (installed with apt when missing and running as
//! root, as in CI) and linked against the librdkafka 2.16 library of the
//! confluent-kafka wheel ([`crate::librdkafka_library`]). The binary lives
//! at `<workspace>/.tools/mock_cluster/mock_cluster-<hash>`, the hash
//! covering the C source and the library, so an edited source is rebuilt.
//! Builds and the apt install run under a lock file, so parallel test
//! processes build it once.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The program's source, compiled into the test crate so its hash names
/// the binary built from it.
const SOURCE: &str = include_str!("../mock/mock_cluster.c");
/// The librdkafka header the program needs, from Debian's `librdkafka-dev`.
const MOCK_HEADER: &str = "/usr/include/librdkafka/rdkafka_mock.h";
/// Version caps applied at start, as `(api key, (min, max))`.
///
/// librdkafka 2.16's mock brokers end every Metadata response of a flexible
/// version (v9+) with one byte too many (the top-level tagged fields are
/// written twice, it seems), which a strict decoder rejects; so Metadata stops
/// at v8. Metadata v8 has no topic ids, so Fetch stops at v12, the last
/// version that names topics. [`MockCluster::set_api_versions`] lifts a cap.
pub const DEFAULT_API_VERSIONS: &[(i16, (i16, i16))] = &[(3, (0, 8)), (1, (0, 12))];
/// How long one command may take to be acknowledged.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// librdkafka's mock cluster, running in a child process.
///
/// Brokers have ids `1..=brokers`. Some API versions are capped to work
/// around mock bugs (see [`DEFAULT_API_VERSIONS`]). Topics come from
/// [`create_topic`](MockCluster::create_topic) or from auto-creation on a
/// client's Metadata request. [`Drop`] kills the process; the program also
/// exits by itself when this process goes away (its stdin closes).
///
/// Every method panics if the program rejects the command or does not
/// answer within 15 seconds, with the program's stderr in the message.
#[derive(Debug)]
pub struct MockCluster {
    child: Child,
    io: Mutex<Io>,
    bootstrap: String,
    brokers: u32,
    log: PathBuf,
}

#[derive(Debug)]
struct Io {
    stdin: Option<ChildStdin>,
    /// Lines the program printed, forwarded by a reader thread so a reply
    /// can be awaited with a timeout.
    lines: Receiver<String>,
}

impl MockCluster {
    /// Starts a cluster of `brokers` mock brokers, building the program
    /// first if needed.
    ///
    /// # Panics
    ///
    /// If the program cannot be built or started (see the module docs for
    /// what it needs).
    pub fn start(brokers: u32) -> MockCluster {
        assert!(brokers >= 1, "a mock cluster needs at least one broker");
        let binary = mock_cluster_binary();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "kafkit-mock-cluster-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(&binary)
            .arg(brokers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cluster = MockCluster {
            io: Mutex::new(Io {
                stdin: child.stdin.take(),
                lines,
            }),
            child,
            bootstrap: String::new(),
            brokers,
            log,
        };
        let first = cluster.next_line("the bootstrap list");
        cluster.bootstrap = first
            .strip_prefix("bootstrap ")
            .unwrap_or_else(|| panic!("the mock cluster printed `{first}`, not its bootstrap list"))
            .to_owned();
        for (api_key, versions) in DEFAULT_API_VERSIONS {
            cluster.set_api_versions(*api_key, Some(*versions));
        }
        cluster
    }

    /// The bootstrap list: `127.0.0.1:port,...`, one entry per broker.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// How many brokers the cluster has (ids `1..=n`).
    pub fn broker_count(&self) -> u32 {
        self.brokers
    }

    /// Creates `topic` with `partitions` partitions, each with
    /// `replication` replicas (at most the number of brokers).
    pub fn create_topic(&self, topic: &str, partitions: u32, replication: u32) {
        self.command(&format!("topic {topic} {partitions} {replication}"));
    }

    /// Takes a broker down: it closes its connections and refuses new
    /// ones. Leadership does not move (see
    /// [`set_partition_leader`](MockCluster::set_partition_leader)).
    pub fn broker_down(&self, broker_id: i32) {
        self.command(&format!("down {broker_id}"));
    }

    /// Brings a broker back up.
    pub fn broker_up(&self, broker_id: i32) {
        self.command(&format!("up {broker_id}"));
    }

    /// Delays every response of a broker (`-1`: every broker) by `rtt`.
    pub fn set_rtt(&self, broker_id: i32, rtt: Duration) {
        self.command(&format!("rtt {broker_id} {}", rtt.as_millis()));
    }

    /// The next `errors.len()` requests of `api_key`, to any broker, fail
    /// with these error codes, in order (`0` lets one through).
    pub fn push_request_errors(&self, api_key: i16, errors: &[i16]) {
        assert!(!errors.is_empty(), "push at least one error");
        let codes: Vec<String> = errors.iter().map(i16::to_string).collect();
        self.command(&format!("errors {api_key} {}", codes.join(" ")));
    }

    /// Like [`push_request_errors`](MockCluster::push_request_errors) for
    /// one broker, each answer also delayed by its duration.
    pub fn push_broker_request_errors(
        &self,
        broker_id: i32,
        api_key: i16,
        errors: &[(i16, Duration)],
    ) {
        assert!(!errors.is_empty(), "push at least one error");
        let pairs: Vec<String> = errors
            .iter()
            .map(|(code, rtt)| format!("{code}:{}", rtt.as_millis()))
            .collect();
        self.command(&format!(
            "broker_errors {broker_id} {api_key} {}",
            pairs.join(" ")
        ));
    }

    /// Forgets the errors still queued for `api_key`.
    pub fn clear_request_errors(&self, api_key: i16) {
        self.command(&format!("clear_errors {api_key}"));
    }

    /// Makes `broker_id` the leader of a partition (`-1`: no leader).
    pub fn set_partition_leader(&self, topic: &str, partition: i32, broker_id: i32) {
        self.command(&format!("leader {topic} {partition} {broker_id}"));
    }

    /// The replica the broker tells consumers to read from (KIP-392).
    pub fn set_partition_follower(&self, topic: &str, partition: i32, broker_id: i32) {
        self.command(&format!("follower {topic} {partition} {broker_id}"));
    }

    /// Metadata answers `error` for `topic` from now on (`0` clears it).
    pub fn set_topic_error(&self, topic: &str, error: i16) {
        self.command(&format!("topic_error {topic} {error}"));
    }

    /// Pins the coordinator of a group (`key_type` `"group"`) or a
    /// transactional id (`"transaction"`) to a broker.
    pub fn set_coordinator(&self, key_type: &str, key: &str, broker_id: i32) {
        self.command(&format!("coordinator {key_type} {key} {broker_id}"));
    }

    /// The versions of `api_key` the brokers advertise and accept (`None`:
    /// the API is not offered at all).
    pub fn set_api_versions(&self, api_key: i16, versions: Option<(i16, i16)>) {
        let (min, max) = versions.unwrap_or((-1, -1));
        self.command(&format!("apiversion {api_key} {min} {max}"));
    }

    /// Starts recording the requests the brokers receive.
    pub fn start_request_tracking(&self) {
        self.command("track");
    }

    /// The requests recorded since the last call (or since
    /// [`start_request_tracking`](MockCluster::start_request_tracking)), as
    /// `(broker id, api key)`, oldest first.
    pub fn take_requests(&self) -> Vec<(i32, i16)> {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let count = self.exchange(&mut io, "requests");
        let count: usize = count
            .parse()
            .unwrap_or_else(|_| panic!("`requests` answered `ok {count}`"));
        (0..count)
            .map(|_| {
                let line = self.receive(&io, "a recorded request");
                let mut fields = line.split_whitespace().map(str::parse::<i32>);
                match (fields.next(), fields.next()) {
                    (Some(Ok(broker)), Some(Ok(key))) => {
                        (broker, i16::try_from(key).expect("api key"))
                    }
                    _ => panic!("bad recorded request line `{line}`"),
                }
            })
            .collect()
    }

    /// Sends one command and returns what follows `ok` in the reply.
    fn command(&self, line: &str) -> String {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        self.exchange(&mut io, line)
    }

    fn exchange(&self, io: &mut Io, line: &str) -> String {
        let stdin = io.stdin.as_mut().expect("stdin is open until drop");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!(
                "cannot send `{line}` to the mock cluster: {e}{}",
                self.stderr()
            );
        }
        let reply = self.receive(io, line);
        match reply.strip_prefix("ok") {
            Some(rest) => rest.trim().to_owned(),
            None => panic!("the mock cluster rejected `{line}`: {reply}"),
        }
    }

    fn next_line(&self, what: &str) -> String {
        let io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        self.receive(&io, what)
    }

    fn receive(&self, io: &Io, what: &str) -> String {
        io.lines.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "no answer from the mock cluster to `{what}` ({e}){}",
                self.stderr()
            )
        })
    }

    /// The program's stderr so far, for panic messages.
    fn stderr(&self) -> String {
        match fs::read_to_string(&self.log) {
            Ok(text) if !text.trim().is_empty() => format!("\n--- mock cluster stderr ---\n{text}"),
            _ => String::new(),
        }
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        // Closing stdin alone would let it exit, but librdkafka's teardown
        // can take a while; a kill is immediate, so the wait is short.
        if let Ok(io) = self.io.get_mut() {
            drop(io.stdin.take());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}

/// The built program, building it on first use (see the module docs).
///
/// # Panics
///
/// If the headers cannot be installed or gcc fails, with its output.
pub fn mock_cluster_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let library = crate::librdkafka_library();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/mock_cluster");
    let hash = fnv1a(
        SOURCE.as_bytes(),
        fnv1a(library.as_os_str().as_encoded_bytes(), FNV_OFFSET),
    );
    let binary = dir.join(format!("mock_cluster-{hash:016x}"));
    if binary.is_file() {
        return binary;
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    // One builder at a time across processes: apt and gcc run once.
    let lock = File::create(dir.join("build.lock")).expect("create the build lock file");
    lock.lock().expect("lock the build lock file");
    if binary.is_file() {
        return binary;
    }
    ensure_headers();
    let source = dir.join(format!("mock_cluster-{hash:016x}.c"));
    fs::write(&source, SOURCE).expect("write the C source");
    let partial = dir.join(format!("mock_cluster-{hash:016x}.partial"));
    let libdir = library.parent().expect("the library has a directory");
    let output = Command::new(std::env::var_os("CC").unwrap_or_else(|| "gcc".into()))
        .args(["-O2", "-Wall", "-o"])
        .arg(&partial)
        .arg(&source)
        .arg(&library)
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc to build the mock cluster: {e}"));
    assert!(
        output.status.success(),
        "gcc could not build {} ({}):\n{}",
        source.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    fs::rename(&partial, &binary).expect("move the mock cluster binary into place");
    let _ = fs::remove_file(&source);
    binary
}

/// Installs Debian's `librdkafka-dev` if its mock header is missing and
/// this runs as root (as CI does); otherwise says how.
fn ensure_headers() {
    if Path::new(MOCK_HEADER).is_file() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    assert!(
        root,
        "{MOCK_HEADER} is missing: install Debian's librdkafka-dev \
         (`sudo apt-get install librdkafka-dev`) or run `cargo xtask test-kafka`"
    );
    for args in [
        &["update", "-q"][..],
        &[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "librdkafka-dev",
        ],
    ] {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("cannot run apt-get: {e}"));
        assert!(
            output.status.success(),
            "apt-get {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        Path::new(MOCK_HEADER).is_file(),
        "librdkafka-dev is installed but {MOCK_HEADER} is still missing"
    );
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: a hash that stays the same across Rust releases, for file names.
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b"", FNV_OFFSET), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar", FNV_OFFSET), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_source_documents_every_command_it_handles() {
        for command in [
            "topic",
            "down",
            "up",
            "rtt",
            "errors",
            "broker_errors",
            "clear_errors",
            "leader",
            "follower",
            "topic_error",
            "coordinator",
            "track",
            "requests",
            "quit",
        ] {
            assert!(
                SOURCE.contains(&format!("!strcmp(cmd, \"{command}\")")),
                "{command} is not handled"
            );
            assert!(
                SOURCE.contains(&format!(" *   {command}")),
                "{command} is not documented"
            );
        }
    }
}
