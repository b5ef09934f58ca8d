//! The Go and Java peers (`tests/peers`): where they are and how a
//! benchmark child is started with them. Their `bench-produce` and
//! `bench-consume` commands print a settings line and a result line in the
//! same JSON as this binary's children (see the peers' README.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::run::CHILD_TIMEOUT;
use crate::workload::{BUFFER_BYTES, JAVA_BATCH_SIZE, LINGER, Shape};
use crate::{Client, Runtime};

/// The built peers: from `KAFKIT_PEER_GO` and `KAFKIT_PEER_JAVA` (set by
/// `cargo xtask bench`), else `.tools/peers/` of the workspace.
#[derive(Debug, Clone)]
pub struct Peers {
    pub go: PathBuf,
    pub java: PathBuf,
}

impl Peers {
    pub fn locate() -> Peers {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/peers");
        let from_env = |name: &str, default: PathBuf| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        Peers {
            go: from_env("KAFKIT_PEER_GO", tools.join("kafkit-peer-go")),
            java: from_env("KAFKIT_PEER_JAVA", tools.join("kafkit-peer-java.jar")),
        }
    }

    /// Fails, before anything runs, if a peer that `clients` need is missing.
    pub fn check(&self, clients: &[Client]) -> Result<()> {
        for &client in clients {
            let path = match client.runtime() {
                Runtime::Rust => continue,
                Runtime::Go(_) => &self.go,
                Runtime::Java => &self.java,
            };
            if !path.is_file() {
                bail!(
                    "{} needs {}, which is missing: run `cargo xtask build-peers`, or set \
                     KAFKIT_PEER_GO / KAFKIT_PEER_JAVA, or leave it out with --clients",
                    client.name(),
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// The command that runs `client` (a peer) producing `shape` to `topic`.
    pub fn produce(&self, client: Client, brokers: &str, topic: &str, shape: Shape) -> Command {
        let mut cmd = self.base(client, "bench-produce", brokers, topic, shape.records);
        cmd.args(["--size", &shape.record_size.to_string()])
            .args(["--partitions", &shape.partitions.to_string()])
            .args(["--linger-ms", &LINGER.as_millis().to_string()])
            .args(["--acks", "all", "--codec", "none"]);
        let partitioner = if shape.keys > 0 {
            cmd.args(["--keys", &shape.keys.to_string()]);
            // Java's default partitioner is murmur2; the Go clients name it.
            if client == Client::Java {
                "default"
            } else {
                "murmur2"
            }
        } else {
            "manual"
        };
        cmd.args(["--partitioner", partitioner]);
        if client == Client::Java {
            cmd.args(["--idempotent", "true"])
                .args(["--batch-size", &JAVA_BATCH_SIZE.to_string()])
                .args(["--client-config", &format!("buffer.memory={BUFFER_BYTES}")]);
        }
        // The Go peer is idempotent unless told otherwise, except kafka-go,
        // which has no idempotent producer and says so in its settings.
        cmd
    }

    /// The command that runs `client` (a peer) reading `records` records
    /// from the start of every partition of `topic`.
    pub fn consume(&self, client: Client, brokers: &str, topic: &str, records: u64) -> Command {
        self.base(client, "bench-consume", brokers, topic, records)
    }

    fn base(&self, client: Client, command: &str, brokers: &str, topic: &str, n: u64) -> Command {
        let mut cmd = match client.runtime() {
            Runtime::Go(name) => {
                let mut cmd = Command::new(&self.go);
                cmd.args([name, command]);
                cmd
            }
            Runtime::Java => {
                let mut cmd = Command::new("java");
                cmd.arg("-jar").arg(&self.java).arg(command);
                cmd
            }
            Runtime::Rust => unreachable!("{} is not a peer", client.name()),
        };
        cmd.args(["--brokers", brokers, "--topic", topic])
            .args(["--count", &n.to_string()])
            .args(["--timeout-ms", &CHILD_TIMEOUT.as_millis().to_string()]);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Bench;

    fn args(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn peer_commands_carry_the_workload() {
        let peers = Peers {
            go: PathBuf::from("/p/go"),
            java: PathBuf::from("/p/j.jar"),
        };
        let shape = Bench::Produce.shape(1000);
        let go = args(&peers.produce(Client::KafkaGo, "b:1", "t", shape)).join(" ");
        assert!(
            go.starts_with("/p/go kafka-go bench-produce --brokers b:1 --topic t --count 1000")
        );
        assert!(go.contains("--size 100 --partitions 6 --linger-ms 5 --acks all --codec none"));
        assert!(go.ends_with("--partitioner manual"));
        let keyed = Bench::ProduceKeyed.shape(1000);
        let java = args(&peers.produce(Client::Java, "b:1", "t", keyed)).join(" ");
        assert!(java.starts_with("java -jar /p/j.jar bench-produce"));
        assert!(java.contains("--keys 10000 --partitioner default --idempotent true"));
        assert!(java.contains("--batch-size 1048576 --client-config buffer.memory=16777216"));
        let franz = args(&peers.produce(Client::FranzGo, "b:1", "t", keyed)).join(" ");
        assert!(franz.contains("--keys 10000 --partitioner murmur2"));
        let c = args(&peers.consume(Client::ConfluentGo, "b:1", "t", 5)).join(" ");
        assert!(c.starts_with("/p/go confluent bench-consume --brokers b:1 --topic t --count 5"));
        assert!(peers.check(&[Client::Kafkit, Client::Librdkafka]).is_ok());
        assert!(peers.check(&[Client::Sarama]).is_err());
    }
}
