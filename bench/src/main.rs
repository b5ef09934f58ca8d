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
//! its result as JSON lines. See README.md for the workloads.

mod alloc;
mod kafkit;
mod librdkafka;
mod measure;
mod peer;
mod report;
mod run;
mod workload;

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::workload::Bench;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// What one child process is asked to do.
#[derive(Debug, Clone)]
pub struct Workload {
    pub brokers: String,
    pub topic: String,
    pub records: u64,
    pub record_size: usize,
    pub partitions: u32,
    /// Distinct keys: record `i` carries key `i % keys` and goes where the
    /// client's murmur2 partitioner puts it. 0: no keys, and record `i` goes
    /// to partition `i % partitions`.
    pub keys: u32,
    pub linger: Duration,
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

/// How a client is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This binary's `child` command.
    Rust,
    /// `kafkit-peer-go NAME ...`, NAME being the peer's client name.
    Go(&'static str),
    /// `java -jar kafkit-peer-java.jar ...`.
    Java,
}

/// A client measured by the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Kafkit,
    Librdkafka,
    FranzGo,
    Sarama,
    KafkaGo,
    ConfluentGo,
    Java,
    /// kafkit's `Reader` in a consumer group of its own (consume only, on
    /// request): the `kafkit` row of a consume table is its `Fetcher` with
    /// the partitions assigned, as every other client reads.
    KafkitReader,
}

impl Client {
    /// Every client, in table order.
    pub const ALL: &[Client] = &[
        Client::Kafkit,
        Client::Librdkafka,
        Client::FranzGo,
        Client::Sarama,
        Client::KafkaGo,
        Client::ConfluentGo,
        Client::Java,
        Client::KafkitReader,
    ];

    /// The clients measured when `--clients` is not given.
    pub const DEFAULT: &[Client] = &[
        Client::Kafkit,
        Client::Librdkafka,
        Client::FranzGo,
        Client::Sarama,
        Client::KafkaGo,
        Client::ConfluentGo,
        Client::Java,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::Kafkit => "kafkit",
            Client::Librdkafka => "librdkafka",
            Client::FranzGo => "franz-go",
            Client::Sarama => "sarama",
            Client::KafkaGo => "kafka-go",
            Client::ConfluentGo => "confluent-kafka-go",
            Client::Java => "java",
            Client::KafkitReader => "kafkit-reader",
        }
    }

    pub fn from_name(name: &str) -> Option<Client> {
        Client::ALL.iter().copied().find(|c| c.name() == name)
    }

    pub fn runtime(self) -> Runtime {
        match self {
            Client::Kafkit | Client::Librdkafka | Client::KafkitReader => Runtime::Rust,
            Client::FranzGo => Runtime::Go("franz-go"),
            Client::Sarama => Runtime::Go("sarama"),
            Client::KafkaGo => Runtime::Go("kafka-go"),
            Client::ConfluentGo => Runtime::Go("confluent"),
            Client::Java => Runtime::Java,
        }
    }

    /// Whether the client takes part in `bench`.
    pub fn runs(self, bench: Bench) -> bool {
        self != Client::KafkitReader || !bench.is_produce()
    }

    /// Whether the counting allocator sees this client's allocations: only
    /// Rust code's (librdkafka uses C's malloc, the peers are other processes).
    pub fn counts_allocations(self) -> bool {
        matches!(self, Client::Kafkit | Client::KafkitReader)
    }
}

/// What a child process of this binary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Produce,
    Consume,
    /// Writes a consume benchmark's records (with librdkafka); not measured.
    Fill,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::Fill => "fill",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        [Mode::Produce, Mode::Consume, Mode::Fill]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

const USAGE: &str = "usage: kafkit-bench produce|consume|all --brokers HOST:PORT [--records N] \
                     [--runs N] [--clients a,b,...] [--workloads a,b,...]";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some(mode @ ("produce" | "consume" | "all")) => {
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

/// `child CLIENT MODE BROKERS TOPIC RECORDS SIZE PARTITIONS KEYS`: runs one
/// Rust client and prints its settings line and its result line (JSON).
fn child(args: &[String]) -> Result<()> {
    let [
        client,
        mode,
        brokers,
        topic,
        records,
        size,
        partitions,
        keys,
    ] = args
    else {
        bail!("usage: kafkit-bench child CLIENT MODE BROKERS TOPIC RECORDS SIZE PARTITIONS KEYS");
    };
    let client = Client::from_name(client).with_context(|| format!("unknown client {client}"))?;
    let mode = Mode::from_name(mode).with_context(|| format!("unknown mode {mode}"))?;
    let workload = Workload {
        brokers: brokers.clone(),
        topic: topic.clone(),
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
        (Client::Kafkit, Mode::Consume) => kafkit::consume_fetcher(&workload)?,
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
        assert_eq!(o.workloads, Bench::ALL);
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
        assert_eq!(o.workloads, [Bench::Consume, Bench::Consume100]);
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
    fn clients_and_modes_round_trip_their_names() {
        for &c in Client::ALL {
            assert_eq!(Client::from_name(c.name()), Some(c));
        }
        for m in [Mode::Produce, Mode::Consume, Mode::Fill] {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert!(!Client::KafkitReader.runs(Bench::Produce));
        assert!(Client::KafkitReader.runs(Bench::Consume));
        assert_eq!(
            parse_clients("all,kafkit-reader").unwrap().len(),
            Client::DEFAULT.len() + 1
        );
        assert_eq!(payload(30).len(), 30);
        assert_eq!(keys(3)[2].as_ref(), b"key-000002");
    }
}
