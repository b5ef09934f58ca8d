//! The Go and Java interop peers as Rust tests see them: other Kafka
//! clients, run as child processes that speak JSON lines (not to be
//! confused with [`crate::peer`], librdkafka through Python).
//!
//! - `kafkit-peer-go` (`tests/peers/go`, contract in its README.md):
//!   sarama, kafka-go, franz-go and confluent-kafka-go, picked by the
//!   first argument.
//! - `kafkit-peer-java.jar` (`tests/peers/java`): the official Java
//!   client, kafka-clients 4.3.1, run with `java -jar`.
//!
//! [`Peer::get`] finds a peer: `KAFKIT_PEER_GO` / `KAFKIT_PEER_JAVA`
//! (which `cargo xtask test-kafka` sets after building them), or else it
//! runs `cargo xtask build-peers go|java` once per test process (a no-op
//! when `.tools/peers` is up to date) and uses `.tools/peers/...`. When the
//! toolchain is missing (`go`; `java` or `mvn`) it returns `None` after a
//! loud message on stderr, so the test can skip, unless `CI` is set: in
//! CI a missing peer fails the test.
//!
//! ```no_run
//! use kafkit_tests::{Peer, PeerClient, PeerRecord};
//!
//! let Some(java) = Peer::get(PeerClient::Java) else { return };
//! let acks = java.produce("127.0.0.1:9092", "t", &[PeerRecord::value(b"v")], &[]);
//! let records = java.consume("127.0.0.1:9092", "t", 1, &[]);
//! assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
//! # let _ = acks;
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a peer command may run before it is killed and the test fails;
/// the peers' own deadline (`--timeout-ms`) is 60 s by default.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(180);

/// A client a peer program drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerClient {
    /// The official Java client (kafka-clients 4.3.1).
    Java,
    /// IBM/sarama.
    Sarama,
    /// segmentio/kafka-go.
    KafkaGo,
    /// twmb/franz-go.
    FranzGo,
    /// confluent-kafka-go (librdkafka 2.11, linked statically).
    Confluent,
}

impl PeerClient {
    /// Every client, the Java one first.
    pub const ALL: [PeerClient; 5] = [
        PeerClient::Java,
        PeerClient::Sarama,
        PeerClient::KafkaGo,
        PeerClient::FranzGo,
        PeerClient::Confluent,
    ];

    /// The client's name, as the Go peer's first argument takes it.
    pub fn name(self) -> &'static str {
        match self {
            PeerClient::Java => "java",
            PeerClient::Sarama => "sarama",
            PeerClient::KafkaGo => "kafka-go",
            PeerClient::FranzGo => "franz-go",
            PeerClient::Confluent => "confluent",
        }
    }

    /// True for the clients of the Go peer.
    pub fn is_go(self) -> bool {
        self != PeerClient::Java
    }
}

/// One record header as the peers print and read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeader {
    /// The header's name.
    pub key: String,
    /// Its value; `None` is null, distinct from empty.
    pub value: Option<Vec<u8>>,
}

/// A record to produce through a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerRecord {
    /// The key; `None` is null.
    pub key: Option<Vec<u8>>,
    /// The value; `None` is null.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<PeerHeader>,
    /// An explicit partition (the `manual` partitioner on the Go peer).
    pub partition: Option<i32>,
}

impl PeerRecord {
    /// A keyless record with this value.
    pub fn value(value: impl Into<Vec<u8>>) -> PeerRecord {
        PeerRecord {
            value: Some(value.into()),
            ..PeerRecord::default()
        }
    }

    /// A record with this key and value.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> PeerRecord {
        PeerRecord {
            key: Some(key.into()),
            value: Some(value.into()),
            ..PeerRecord::default()
        }
    }

    /// The record as one line of the peers' `produce` input.
    pub fn to_json(&self) -> Value {
        let mut line = json!({
            "key": self.key.as_deref().map(base64_encode),
            "value": self.value.as_deref().map(base64_encode),
            "headers": headers_to_json(&self.headers),
        });
        if let Some(p) = self.partition {
            line["partition"] = json!(p);
        }
        line
    }
}

/// Where the peer says a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    /// The record's index in the input.
    pub i: usize,
    /// Its partition.
    pub partition: i32,
    /// Its offset (-1 with acks 0).
    pub offset: i64,
}

/// A record a peer consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key; `None` is null.
    pub key: Option<Vec<u8>>,
    /// The value; `None` is null.
    pub value: Option<Vec<u8>>,
    /// The headers, in record order.
    pub headers: Vec<PeerHeader>,
    /// The record timestamp (-1 if the client reports none).
    pub timestamp_ms: i64,
}

/// A peer program, ready to run commands for one client.
#[derive(Debug, Clone)]
pub struct Peer {
    client: PeerClient,
    /// The Go binary, or the Java jar.
    program: PathBuf,
}

impl Peer {
    /// The peer for `client`, built if needed (see the module docs).
    /// `None`, after a message on stderr, when its toolchain is missing
    /// and `CI` is not set: the caller skips its test.
    ///
    /// # Panics
    ///
    /// When the toolchain is missing in CI, when `KAFKIT_PEER_GO` /
    /// `KAFKIT_PEER_JAVA` names a missing file, or when the build fails.
    pub fn get(client: PeerClient) -> Option<Peer> {
        static GO: OnceLock<Option<PathBuf>> = OnceLock::new();
        static JAVA: OnceLock<Option<PathBuf>> = OnceLock::new();
        let program = if client.is_go() {
            GO.get_or_init(|| locate("go", "KAFKIT_PEER_GO", "kafkit-peer-go", &["go"]))
        } else {
            JAVA.get_or_init(|| {
                locate(
                    "java",
                    "KAFKIT_PEER_JAVA",
                    "kafkit-peer-java.jar",
                    &["java", "mvn"],
                )
            })
        };
        let program = program.clone()?;
        Some(Peer { client, program })
    }

    /// The client this peer drives.
    pub fn client(&self) -> PeerClient {
        self.client
    }

    /// A command (`produce`, `consume`, `txn-produce`, ...) to configure
    /// and run.
    pub fn command(&self, command: &str) -> PeerCommand<'_> {
        PeerCommand {
            peer: self,
            args: vec![command.to_owned()],
            stdin: String::new(),
            timeout: PEER_TIMEOUT,
        }
    }

    /// Produces `records` to `topic` with the peer's `produce` command and
    /// `flags` (`--codec`, `--partitioner`, ...), and returns one ack per
    /// record, sorted by input index.
    ///
    /// # Panics
    ///
    /// If the command fails, or does not acknowledge every record exactly
    /// once.
    pub fn produce(
        &self,
        brokers: &str,
        topic: &str,
        records: &[PeerRecord],
        flags: &[(&str, &str)],
    ) -> Vec<ProduceAck> {
        let out = self
            .command("produce")
            .flag("--brokers", brokers)
            .flag("--topic", topic)
            .flags(flags)
            .stdin(records.iter().map(PeerRecord::to_json))
            .run();
        let mut acks: Vec<ProduceAck> = out
            .lines
            .iter()
            .filter(|l| l.get("i").is_some())
            .map(|l| ProduceAck {
                i: usize::try_from(int(l, "i")).expect("i >= 0"),
                partition: i32::try_from(int(l, "partition")).expect("partition fits in int32"),
                offset: int(l, "offset"),
            })
            .collect();
        acks.sort_by_key(|a| a.i);
        let indexes: Vec<usize> = acks.iter().map(|a| a.i).collect();
        assert!(
            indexes.iter().copied().eq(0..records.len()),
            "{}: expected one ack per record (0..{}), got {} acks",
            out.command,
            records.len(),
            acks.len()
        );
        assert_eq!(
            out.done().map(|d| int(d, "count")),
            Some(records.len() as i64),
            "{}: done line",
            out.command
        );
        acks
    }

    /// Consumes `count` records of `topic` with the peer's `consume`
    /// command and `flags` (`--from earliest` unless `flags` has `--group`
    /// or `--from`), in arrival order; rebalance events are left out.
    ///
    /// # Panics
    ///
    /// If the command fails (fewer than `count` records within its
    /// deadline included).
    pub fn consume(
        &self,
        brokers: &str,
        topic: &str,
        count: usize,
        flags: &[(&str, &str)],
    ) -> Vec<ConsumedRecord> {
        let mut cmd = self
            .command("consume")
            .flag("--brokers", brokers)
            .flag("--topic", topic)
            .flag("--count", &count.to_string());
        if !flags.iter().any(|(f, _)| *f == "--group" || *f == "--from") {
            cmd = cmd.flag("--from", "earliest");
        }
        let out = cmd.flags(flags).run();
        let records: Vec<ConsumedRecord> = out
            .lines
            .iter()
            .filter(|l| l.get("offset").is_some())
            .map(consumed_from_json)
            .collect();
        assert_eq!(
            records.len(),
            count,
            "{}: record lines, then done",
            out.command
        );
        records
    }
}

/// One peer command line, with its input, to run.
#[derive(Debug)]
pub struct PeerCommand<'a> {
    peer: &'a Peer,
    args: Vec<String>,
    stdin: String,
    timeout: Duration,
}

impl PeerCommand<'_> {
    /// Adds one argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Adds `name value`.
    pub fn flag(mut self, name: &str, value: &str) -> Self {
        self.args.push(name.to_owned());
        self.args.push(value.to_owned());
        self
    }

    /// Adds `name value` for each pair; an empty value adds the name alone
    /// (the Go peer's boolean flags).
    pub fn flags(mut self, flags: &[(&str, &str)]) -> Self {
        for (name, value) in flags {
            self.args.push((*name).to_owned());
            if !value.is_empty() {
                self.args.push((*value).to_owned());
            }
        }
        self
    }

    /// The JSON lines written to the command's stdin (then closed).
    pub fn stdin(mut self, lines: impl IntoIterator<Item = Value>) -> Self {
        for line in lines {
            self.stdin.push_str(&line.to_string());
            self.stdin.push('\n');
        }
        self
    }

    /// Kills the command after `timeout` instead of [`PEER_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the command and returns its output.
    ///
    /// # Panics
    ///
    /// If it cannot start, runs past its timeout (it is killed), exits
    /// non-zero or prints anything but JSON lines: with its stderr.
    pub fn run(self) -> PeerOutput {
        let out = self.output();
        if !out.status.success() {
            out.fail(&format!("failed ({})", out.status));
        }
        out
    }

    /// Runs the command and returns its output, whatever its exit status.
    ///
    /// # Panics
    ///
    /// If it cannot start, runs past its timeout or prints anything but
    /// JSON lines.
    pub fn output(self) -> PeerOutput {
        let mut cmd = if self.peer.client.is_go() {
            let mut cmd = Command::new(&self.peer.program);
            cmd.arg(self.peer.client.name());
            cmd
        } else {
            let mut cmd = Command::new("java");
            cmd.arg("-jar").arg(&self.peer.program);
            cmd
        };
        cmd.args(&self.args);
        let shown = format!(
            "{} {}{}",
            self.peer
                .program
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            if self.peer.client.is_go() {
                format!("{} ", self.peer.client.name())
            } else {
                String::new()
            },
            self.args.join(" ")
        );
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = self.stdin;
        // A peer reads its input while we read its output: each on a
        // thread, so neither side can stall the other on a full pipe.
        let writer = std::thread::spawn(move || {
            // A peer that exits early closes the pipe: not our failure.
            let _ = stdin.write_all(input.as_bytes());
        });
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + self.timeout;
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait().expect("wait for the peer") {
                break (status, false);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                break (child.wait().expect("reap the peer"), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = writer.join();
        let stdout = stdout.join().expect("stdout reader");
        let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
        let text = String::from_utf8_lossy(&stdout).into_owned();
        let mut out = PeerOutput {
            command: shown,
            status,
            lines: Vec::new(),
            stdout: text,
            stderr,
        };
        if timed_out {
            out.fail(&format!("was killed after {:?}", self.timeout));
        }
        for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(value) => out.lines.push(value),
                Err(e) => out.fail(&format!(
                    "printed a line that is not JSON ({e}): {line:.200}"
                )),
            }
        }
        out
    }
}

/// What a finished peer command printed.
#[derive(Debug)]
pub struct PeerOutput {
    /// The command line, for messages.
    pub command: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout, one JSON value a line.
    pub lines: Vec<Value>,
    /// Its stdout as text.
    pub stdout: String,
    /// Its stderr (client logs, never parsed).
    pub stderr: String,
}

impl PeerOutput {
    /// The final `{"done":true,...}` line, if the command printed one.
    pub fn done(&self) -> Option<&Value> {
        self.lines
            .last()
            .filter(|l| l.get("done").and_then(Value::as_bool) == Some(true))
    }

    /// The `{"error":...}` message, if the command failed with one.
    pub fn error(&self) -> Option<&str> {
        self.lines.last()?.get("error")?.as_str()
    }

    /// Panics with `what`, the command, the ends of its stdout and stderr.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "peer command `{:.300}` {what}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
            self.command,
            tail(&self.stdout, 4000),
            tail(&self.stderr, 8000),
        )
    }
}

/// The last `max` bytes of `text` (at a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// True when `CI` is set (to anything but the empty string).
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
}

/// The peer program (see [`Peer::get`]): `env` if set, else built by
/// `cargo xtask build-peers <kind>` into `.tools/peers/<file>`.
fn locate(kind: &str, env: &str, file: &str, toolchain: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env}={} names no file (run `cargo xtask build-peers {kind}`)",
            path.display()
        );
        return Some(path);
    }
    let missing: Vec<&str> = toolchain.iter().copied().filter(|b| !on_path(b)).collect();
    if !missing.is_empty() {
        let what = format!(
            "the {kind} interop peer needs {} on PATH, which is missing ({} not set either)",
            missing.join(" and "),
            env
        );
        assert!(
            !in_ci(),
            "{what}; CI is set, so this fails instead of skipping"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPING: {what}. Install the toolchain (see tests/peers/{kind}/README.md) \
             to run this test. !!!!!!!!\n"
        );
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kafkit-tests lives one level below the workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["xtask", "build-peers", kind]).current_dir(root);
    // `cargo test` gave this process the variables of the kafkit-tests
    // package; passed on, they would make cargo rebuild ring (its build
    // script watches CARGO_MANIFEST_DIR) and everything above it.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
        {
            build.env_remove(name);
        }
    }
    eprintln!("kafkit-tests: {env} is not set; running `cargo xtask build-peers {kind}`");
    let output = build
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cargo xtask build-peers {kind}`: {e}"));
    assert!(
        output.status.success(),
        "`cargo xtask build-peers {kind}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = root.join(".tools/peers").join(file);
    assert!(
        path.is_file(),
        "`cargo xtask build-peers {kind}` left no {}",
        path.display()
    );
    Some(path)
}

/// An integer field of a peer's line.
///
/// # Panics
///
/// If `line` has no such integer field.
pub fn int(line: &Value, field: &str) -> i64 {
    line.get(field)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer `{field}` in peer line {}", short(line)))
}

fn consumed_from_json(line: &Value) -> ConsumedRecord {
    let headers = line
        .get("headers")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no `headers` array in {}", short(line)))
        .iter()
        .map(|h| PeerHeader {
            key: h
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("header without key: {}", short(h)))
                .to_owned(),
            value: bytes_field(h, "value"),
        })
        .collect();
    ConsumedRecord {
        partition: i32::try_from(int(line, "partition")).expect("partition fits in int32"),
        offset: int(line, "offset"),
        key: bytes_field(line, "key"),
        value: bytes_field(line, "value"),
        headers,
        timestamp_ms: int(line, "timestamp_ms"),
    }
}

/// A base64 field of a peer's line: `None` for JSON null.
///
/// # Panics
///
/// If the field is missing or neither null nor valid base64.
pub fn bytes_field(line: &Value, field: &str) -> Option<Vec<u8>> {
    match line.get(field) {
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            base64_decode(s)
                .unwrap_or_else(|| panic!("`{field}` is not base64 in {}", short(line))),
        ),
        _ => panic!("no `{field}` (base64 or null) in peer line {}", short(line)),
    }
}

/// A peer line for a message, cut to 300 characters.
fn short(line: &Value) -> String {
    let text = line.to_string();
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

fn headers_to_json(headers: &[PeerHeader]) -> Value {
    headers
        .iter()
        .map(|h| json!({"key": h.key, "value": h.value.as_deref().map(base64_encode)}))
        .collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as the peers use.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard, padded base64; `None` if `text` is not that.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.chunks_exact(4).remainder().is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (index, quad) in text.chunks(4).enumerate() {
        let last = index == text.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = ALPHABET.iter().position(|&a| a == c)?;
            n = n << 6 | v as u32;
        }
        n <<= 6 * pad;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits past the last byte must be zero (canonical encoding).
        let kept = 3 - pad;
        if bytes[kept..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..kept]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zh==", "Zm9v!A=="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
