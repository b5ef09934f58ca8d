//! kafkit's throughput benchmarks: kafkit against six other Kafka clients
//! (librdkafka through the rdkafka crate, franz-go, sarama, kafka-go,
//! confluent-kafka-go and the Java client) on the same workloads, against
//! the same broker, in the same run.
//!
//! ```text
//! kafkit-bench produce|consume|all --brokers HOST:PORT [--records N] [--runs N]
//!              [--clients a,b,...] [--workloads a,b,...]
//! ```
//!
//! `cargo xtask bench` builds this in release mode, builds the Go and Java
//! peers (`tests/peers`), starts an Apache Kafka broker and runs it. Each
//! client runs in a child process of its own: kafkit and librdkafka in this
//! binary (the hidden `child` command), the Go clients in `kafkit-peer-go`,
//! the Java client in `kafkit-peer-java.jar`. Every child measures itself
//! over the timed section only (CPU time of the whole process, user +
//! system, every thread; peak RSS) and prints its effective settings and
//! its result as JSON lines; this process adds the broker's CPU time over
//! each child's run. See README.md for the workloads.

mod alloc;
mod broker_cpu;
mod cells;
mod client;
mod kafkit;
mod librdkafka;
mod measure;
mod peer;
mod report;
mod run;
mod sockets;
mod workload;

use std::time::Duration;

use anyhow::{Context, Result, bail};

pub use crate::client::{Client, Mode, Runtime};
use crate::workload::Bench;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// What one child process is asked to do.
#[derive(Debug, Clone)]
pub struct Workload {
    pub brokers: String,
    /// The topics (one, but for `consume-1000p`); unkeyed record `i` goes
    /// where [`workload::Shape::place`] puts it.
    pub topics: Vec<String>,
    pub records: u64,
    pub record_size: usize,
    /// Partitions of each topic.
    pub partitions: u32,
    /// Distinct keys: record `i` carries key `i % keys` and goes where the
    /// client's murmur2 partitioner puts it. 0: no keys, and record `i` goes
    /// to partition `i % partitions` (of topic `i % topics`).
    pub keys: u32,
    pub linger: Duration,
}

impl Workload {
    /// The one topic of a produce workload (the first of several).
    pub fn topic(&self) -> &str {
        &self.topics[0]
    }
}

/// The benchmark's record value: `size` bytes of printable filler.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The benchmark's `n` distinct keys, `key-000000`, `key-000001`, ...: the
/// same bytes every client sends.
pub fn keys(n: u32) -> Vec<bytes::Bytes> {
    (0..n)
        .map(|j| bytes::Bytes::from(format!("key-{j:06}")))
        .collect()
}

const USAGE: &str = "usage: kafkit-bench produce|consume|sizes|all --brokers HOST:PORT [--records N] \
                     [--runs N] [--clients a,b,...] [--workloads a,b,...]";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some(mode @ ("produce" | "consume" | "sizes" | "all")) => {
            let options = Options::parse(mode, &args[1..])?;
            run::benchmarks(&options)
        }
        _ => bail!("{USAGE}"),
    }
}

/// The orchestrator's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub brokers: String,
    pub records: u64,
    pub runs: u32,
    pub clients: Vec<Client>,
    pub workloads: Vec<Bench>,
}

impl Options {
    fn parse(mode: &str, args: &[String]) -> Result<Options> {
        let mut options = Options {
            brokers: String::new(),
            records: 1_000_000,
            runs: 1,
            clients: Client::DEFAULT.to_vec(),
            workloads: Bench::for_mode(mode).to_vec(),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--brokers" => options.brokers = value.clone(),
                "--records" => options.records = value.parse().context("--records")?,
                "--runs" => options.runs = value.parse().context("--runs")?,
                "--clients" => options.clients = parse_clients(value)?,
                "--workloads" => {
                    let picked = parse_workloads(value)?;
                    options.workloads.retain(|b| picked.contains(b));
                    if options.workloads.is_empty() {
                        bail!("--workloads {value}: none of them is a `{mode}` workload");
                    }
                }
                _ => bail!("unknown option {flag}\n{USAGE}"),
            }
        }
        if options.brokers.is_empty() {
            bail!("--brokers is required\n{USAGE}");
        }
        if options.records == 0 || options.runs == 0 {
            bail!("--records and --runs must be positive");
        }
        Ok(options)
    }
}

/// `a,b,c` into clients, in the order given; `all` is every default client.
fn parse_clients(list: &str) -> Result<Vec<Client>> {
    let mut clients = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let add: Vec<Client> = if name == "all" {
            Client::DEFAULT.to_vec()
        } else {
            let names: Vec<&str> = Client::ALL.iter().map(|c| c.name()).collect();
            vec![Client::from_name(name).with_context(|| {
                format!("unknown client `{name}`; the clients: {}", names.join(", "))
            })?]
        };
        for c in add {
            if !clients.contains(&c) {
                clients.push(c);
            }
        }
    }
    if clients.is_empty() {
        bail!("--clients names no client");
    }
    Ok(clients)
}

fn parse_workloads(list: &str) -> Result<Vec<Bench>> {
    let mut picked = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let names: Vec<&str> = Bench::ALL.iter().map(|b| b.name()).collect();
        picked.push(Bench::from_name(name).with_context(|| {
            format!(
                "unknown workload `{name}`; the workloads: {}",
                names.join(", ")
            )
        })?);
    }
    if picked.is_empty() {
        bail!("--workloads names no workload");
    }
    Ok(picked)
}

/// `child CLIENT MODE BROKERS TOPICS RECORDS SIZE PARTITIONS KEYS`: runs one
/// Rust client and prints its settings line and its result line (JSON).
/// TOPICS is a comma-separated list; PARTITIONS is per topic.
fn child(args: &[String]) -> Result<()> {
    let [
        client,
        mode,
        brokers,
        topics,
        records,
        size,
        partitions,
        keys,
    ] = args
    else {
        bail!("usage: kafkit-bench child CLIENT MODE BROKERS TOPICS RECORDS SIZE PARTITIONS KEYS");
    };
    let client = Client::from_name(client).with_context(|| format!("unknown client {client}"))?;
    let mode = Mode::from_name(mode).with_context(|| format!("unknown mode {mode}"))?;
    let workload = Workload {
        brokers: brokers.clone(),
        topics: topics.split(',').map(str::to_owned).collect(),
        records: records.parse().context("records")?,
        record_size: size.parse().context("size")?,
        partitions: partitions.parse().context("partitions")?,
        keys: keys.parse().context("keys")?,
        linger: workload::LINGER,
    };
    let measurement = match (client, mode) {
        (Client::Librdkafka, Mode::Produce | Mode::Fill) => librdkafka::produce(&workload)?,
        (Client::Librdkafka, Mode::Consume) => librdkafka::consume(&workload)?,
        (Client::Kafkit, Mode::Produce) => kafkit::produce(&workload)?,
        (Client::Kafkit, Mode::Consume) => kafkit::consume_fetcher(&workload, true)?,
        (Client::KafkitNoSessions, Mode::Consume) => kafkit::consume_fetcher(&workload, false)?,
        (Client::KafkitReader, Mode::Consume) => kafkit::consume_reader(&workload)?,
        (c, m) => bail!("{} has no child for {}", c.name(), m.name()),
    };
    println!("{}", measurement.to_json(client));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = Options::parse("all", &args(&["--brokers", "h:1"])).unwrap();
        assert_eq!(
            (o.brokers.as_str(), o.records, o.runs),
            ("h:1", 1_000_000, 1)
        );
        assert_eq!(o.clients, Client::DEFAULT);
        assert_eq!(o.workloads, Bench::for_mode("all"));
        let o = Options::parse(
            "all",
            &args(&[
                "--brokers",
                "h:1",
                "--records",
                "5",
                "--runs",
                "2",
                "--clients",
                "java,kafkit,java",
                "--workloads",
                "consume-100p,produce",
            ]),
        )
        .unwrap();
        assert_eq!((o.records, o.runs), (5, 2));
        assert_eq!(o.clients, [Client::Java, Client::Kafkit]);
        // In the mode's order, not the list's.
        assert_eq!(o.workloads, [Bench::Produce, Bench::Consume100]);
        let o = Options::parse("consume", &args(&["--brokers", "h:1"])).unwrap();
        assert_eq!(
            o.workloads,
            [Bench::Consume, Bench::Consume100, Bench::Consume1000]
        );
        assert!(Options::parse("all", &args(&[])).is_err());
        assert!(Options::parse("all", &args(&["--brokers"])).is_err());
        assert!(Options::parse("all", &args(&["--brokers", "h:1", "--runs", "0"])).is_err());
        assert!(Options::parse("all", &args(&["--brokers", "h:1", "--x", "1"])).is_err());
        assert!(
            Options::parse("all", &args(&["--brokers", "h:1", "--clients", "kafkaa"])).is_err()
        );
        assert!(
            Options::parse(
                "consume",
                &args(&["--brokers", "h:1", "--workloads", "produce"])
            )
            .is_err()
        );
    }

    #[test]
    fn client_lists_and_payloads() {
        assert_eq!(
            parse_clients("all,kafkit-reader").unwrap().len(),
            Client::DEFAULT.len() + 1
        );
        assert_eq!(payload(30).len(), 30);
        assert_eq!(keys(3)[2].as_ref(), b"key-000002");
    }
}
