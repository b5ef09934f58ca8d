//! [`KafkaRun`]: Apache Kafka nodes held for the length of an xtask command.
//!
//! The nodes are started by kafkit-tests' `kafka_cluster` binary, the same
//! code that starts the tests' private clusters, so the suite's shared node
//! and a test's own are configured alike. It prints `ready` once every node
//! serves clients, writes the tests' environment to a file, and stops the
//! nodes when its stdin closes: when this value is dropped, or when xtask dies.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, run, workspace_root};

/// Running nodes; dropping this stops them.
#[derive(Debug)]
pub struct KafkaRun {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `NAME=VALUE` pairs for the tests: `KAFKIT_BROKERS` and the rest.
    env: Vec<(String, String)>,
    bootstrap: String,
}

impl KafkaRun {
    /// Builds `kafka_cluster`, starts `nodes` nodes with the given feature
    /// levels and waits until they serve (the binary fails a node that does
    /// not, printing the end of its log).
    pub fn start(nodes: u32, features: &[String]) -> Result<KafkaRun> {
        run(&mut cargo([
            "build",
            "--quiet",
            "-p",
            "kafkit-tests",
            "--bin",
            "kafka_cluster",
        ]))?;
        let run_dir = workspace_root().join(".tools").join("run");
        std::fs::create_dir_all(&run_dir)?;
        let env_file = run_dir.join(format!("kafka-{}.env", std::process::id()));
        let mut cmd = Command::new(binary("kafka_cluster"));
        cmd.args(["--nodes", &nodes.to_string(), "--env-file"])
            .arg(&env_file);
        for feature in features {
            cmd.args(["--feature", feature]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start kafka_cluster")?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        let stdout = child.stdout.take().context("kafka_cluster's stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(bootstrap) = line.trim().strip_prefix("ready ").map(str::to_owned) else {
            let status = child.wait()?;
            bail!("Apache Kafka did not start ({status}); see the messages above");
        };
        let text = std::fs::read_to_string(&env_file)
            .with_context(|| format!("cannot read {}", env_file.display()))?;
        let _ = std::fs::remove_file(&env_file);
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(KafkaRun {
            child,
            stdin,
            env,
            bootstrap,
        })
    }

    /// The plaintext bootstrap list.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Sets the tests' environment on `cmd`.
    pub fn apply(&self, cmd: &mut Command) {
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
    }

    /// Waits until the nodes exit (they run until killed).
    pub fn wait(mut self) -> Result<()> {
        let status = self.child.wait()?;
        bail!("kafka_cluster exited: {status}")
    }
}

impl Drop for KafkaRun {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A binary of the workspace's debug build.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_relative() {
        workspace_root().join(target)
    } else {
        target
    };
    target
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
