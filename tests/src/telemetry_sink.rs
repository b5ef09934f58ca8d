//! The broker side of the client telemetry tests (KIP-714): a small Java
//! metrics plugin, `tests/telemetry-sink/KafkitTelemetrySink.java`,
//! compiled here with `javac` against the broker's own jars and put on
//! the test node's class path. The broker advertises the telemetry APIs
//! only with such a plugin, and hands it every push; it parses each with
//! the OTLP classes Kafka bundles and appends a JSON line per push to a
//! file that [`TelemetrySink::pushes`] reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::KafkaOptions;
use crate::kafka::kafka_home;

/// The plugin's class, as `metric.reporters` names it.
const CLASS: &str = "KafkitTelemetrySink";

/// A compiled sink and the file it writes.
#[derive(Debug)]
pub struct TelemetrySink {
    dir: PathBuf,
    file: PathBuf,
}

/// One push as the broker received it.
#[derive(Debug, Clone)]
pub struct Push {
    /// The client instance id, 32 hex digits.
    pub instance: String,
    pub terminating: bool,
    pub content_type: String,
    pub client_id: String,
    /// The resource attributes.
    pub resource: serde_json::Map<String, Value>,
    /// `"name version"` of each instrumentation scope.
    pub scopes: Vec<String>,
    /// Each metric: `name`, `kind` (`gauge` or `sum`), `temporality`
    /// (1 delta, 2 cumulative) and `monotonic` for sums, and `points`
    /// (`start`, `time`, `int` or `double`, `attributes`).
    pub metrics: Vec<Value>,
}

impl Push {
    /// The metric named `name`, if the push has it.
    pub fn metric(&self, name: &str) -> Option<&Value> {
        self.metrics.iter().find(|m| m["name"] == name)
    }

    /// The metrics' names.
    pub fn names(&self) -> Vec<String> {
        let names = self.metrics.iter().filter_map(|m| m["name"].as_str());
        names.map(str::to_owned).collect()
    }
}

impl TelemetrySink {
    /// Compiles the sink into a fresh directory.
    ///
    /// # Panics
    ///
    /// If Kafka is not installed or `javac` fails.
    pub fn compile() -> TelemetrySink {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let home = kafka_home().unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(format!(
            "kafkit-telemetry-sink-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let classes = dir.join("classes");
        std::fs::create_dir_all(&classes).expect("a directory for the sink");
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("telemetry-sink")
            .join(format!("{CLASS}.java"));
        let output = Command::new("javac")
            .arg("-cp")
            .arg(home.join("libs/*"))
            .arg("-d")
            .arg(&classes)
            .arg(&source)
            .output()
            .expect("javac (a JDK) is installed");
        assert!(
            output.status.success(),
            "javac {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let file = dir.join("pushes.jsonl");
        TelemetrySink { dir, file }
    }

    /// `options` with the sink on the class path and configured.
    pub fn install(&self, mut options: KafkaOptions) -> KafkaOptions {
        options.classpath.push(self.dir.join("classes"));
        options.overrides.extend([
            ("metric.reporters".to_owned(), CLASS.to_owned()),
            (
                "kafkit.telemetry.file".to_owned(),
                self.file.display().to_string(),
            ),
        ]);
        options
    }

    /// Every push received so far, in order.
    pub fn pushes(&self) -> Vec<Push> {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("the sink wrote {line:?}: {e}"));
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                Push {
                    instance: text("instance"),
                    terminating: v["terminating"].as_bool().unwrap_or(false),
                    content_type: text("content_type"),
                    client_id: text("client_id"),
                    resource: v["resource"].as_object().cloned().unwrap_or_default(),
                    scopes: v["scopes"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    metrics: v["metrics"].as_array().cloned().unwrap_or_default(),
                }
            })
            .collect()
    }
}

impl Drop for TelemetrySink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
