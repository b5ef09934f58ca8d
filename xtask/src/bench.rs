//! `cargo xtask bench produce|consume|sizes|all [--records N] [--runs N]
//! [--clients a,b,...] [--workloads a,b,...] [--broker kafka|tansu]`: kafkit
//! against librdkafka, franz-go, sarama, kafka-go, confluent-kafka-go and
//! the Java client, on one Apache Kafka 4.3.1 broker.
//!
//! Builds the `bench/` crate (outside the workspace: it compiles librdkafka
//! with cmake) in release mode, installing `cmake` and libcurl's headers
//! first if needed; builds the Go and Java peers (`tests/peers`, through
//! [`peers::ensure`]) when a chosen client needs them; starts one Apache
//! Kafka node (or, with `--broker tansu`, tansu) and runs the benchmark
//! binary against it with the peers' paths in `KAFKIT_PEER_GO` and
//! `KAFKIT_PEER_JAVA`. The broker is stopped afterwards, pass or fail. The
//! binary runs each client in its own process and prints, per workload, a
//! Markdown table (records/s, MB/s, CPU per record, the broker's CPU per
//! record, which it finds by the broker's port, peak RSS, allocations, and
//! for consumers the request bytes per record, each against kafkit), the
//! fastest and the leanest client, and every client's effective settings
//! side by side. See bench/README.md.

use std::process::Command;

use anyhow::{Result, bail};

use crate::broker::Broker;
use crate::kafka_run::KafkaRun;
use crate::util::{cargo, run, workspace_root};
use crate::{deps, kafka, peers, tansu};

const USAGE: &str = "usage: cargo xtask bench produce|consume|sizes|all [--records N] [--runs N] \
                     [--clients a,b,...] [--workloads a,b,...] [--broker kafka|tansu]";

/// The benchmark's clients and workloads (bench/src/main.rs and
/// workload.rs have the same names), checked here before the long build.
const CLIENTS: &[&str] = &[
    "all",
    "kafkit",
    "librdkafka",
    "franz-go",
    "sarama",
    "kafka-go",
    "confluent-kafka-go",
    "java",
    "kafkit-reader",
    "kafkit-no-sessions",
];
/// The clients that run in a peer (`tests/peers`).
const PEER_CLIENTS: &[&str] = &[
    "all",
    "franz-go",
    "sarama",
    "kafka-go",
    "confluent-kafka-go",
    "java",
];
const WORKLOADS: &[&str] = &[
    "produce",
    "consume",
    "produce-keyed",
    "consume-100p",
    "consume-1000p",
    "produce-1k",
    "consume-1k",
    "produce-10k",
    "consume-10k",
    "produce-100k",
    "consume-100k",
];

/// Which broker the benchmark runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerKind {
    Kafka,
    Tansu,
}

/// The checked options: the broker, whether a peer is needed, and the
/// arguments passed on to the benchmark binary.
#[derive(Debug)]
struct Parsed {
    broker: BrokerKind,
    needs_peers: bool,
    passed: Vec<String>,
}

/// `cargo xtask bench ...`.
pub fn run_command(args: &[String]) -> Result<()> {
    let Some((mode, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    if !matches!(mode.as_str(), "produce" | "consume" | "sizes" | "all") {
        bail!("unknown benchmark `{mode}`\n{USAGE}");
    }
    let options = parse_options(rest)?;

    deps::ensure_bench_packages()?;
    let manifest = workspace_root().join("bench").join("Cargo.toml");
    run(cargo(["build", "--release", "--manifest-path"]).arg(&manifest))?;
    let binary = workspace_root().join("bench/target/release/kafkit-bench");
    let mut cmd = Command::new(binary);
    cmd.arg(mode);
    if options.needs_peers {
        peers::ensure()?.apply(&mut cmd);
    }

    // Each is dropped (stopped) when this function returns, pass or fail.
    match options.broker {
        BrokerKind::Kafka => {
            kafka::ensure()?;
            let kafka = KafkaRun::start(1, &[])?;
            println!(
                "started Apache Kafka {} at {} for the benchmarks",
                kafka::VERSION,
                kafka.bootstrap()
            );
            run(cmd
                .args(["--brokers", kafka.bootstrap()])
                .args(&options.passed))
        }
        BrokerKind::Tansu => {
            let tansu = tansu::ensure()?;
            let broker = Broker::start(&tansu, 0, true)?;
            println!("started tansu at {} for the benchmarks", broker.addr());
            run(cmd
                .args(["--brokers", &broker.addr().to_string()])
                .args(&options.passed))
        }
    }
}

/// Checks every option before anything is built.
fn parse_options(args: &[String]) -> Result<Parsed> {
    let mut parsed = Parsed {
        broker: BrokerKind::Kafka,
        needs_peers: true,
        passed: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            bail!("{flag} needs a value\n{USAGE}");
        };
        match flag.as_str() {
            "--records" | "--runs" => match value.parse::<u64>() {
                Ok(n) if n > 0 => {}
                _ => bail!("{flag} takes a positive number\n{USAGE}"),
            },
            "--clients" => {
                let names = list(flag, value, CLIENTS)?;
                parsed.needs_peers = names.iter().any(|n| PEER_CLIENTS.contains(n));
            }
            "--workloads" => {
                list(flag, value, WORKLOADS)?;
            }
            "--broker" => {
                parsed.broker = match value.as_str() {
                    "kafka" => BrokerKind::Kafka,
                    "tansu" => BrokerKind::Tansu,
                    _ => bail!("--broker is kafka or tansu\n{USAGE}"),
                };
                continue;
            }
            _ => bail!("unknown option `{flag}`\n{USAGE}"),
        }
        parsed.passed.push(flag.clone());
        parsed.passed.push(value.clone());
    }
    Ok(parsed)
}

/// The names of a comma-separated list, each one of `known`.
fn list<'a>(flag: &str, value: &'a str, known: &[&str]) -> Result<Vec<&'a str>> {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        bail!("{flag} needs at least one name\n{USAGE}");
    }
    for name in &names {
        if !known.contains(name) {
            bail!("{flag}: unknown `{name}`; one of {}", known.join(", "));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_are_checked_before_anything_is_built() {
        let p = parse_options(&strings(&["--records", "1000", "--runs", "3"])).unwrap();
        assert_eq!(p.broker, BrokerKind::Kafka);
        assert!(p.needs_peers);
        assert_eq!(p.passed, strings(&["--records", "1000", "--runs", "3"]));
        let p = parse_options(&strings(&[
            "--clients",
            "kafkit,librdkafka,kafkit-no-sessions",
            "--broker",
            "tansu",
            "--workloads",
            "produce",
        ]))
        .unwrap();
        assert_eq!(p.broker, BrokerKind::Tansu);
        assert!(!p.needs_peers);
        assert_eq!(
            p.passed,
            strings(&[
                "--clients",
                "kafkit,librdkafka,kafkit-no-sessions",
                "--workloads",
                "produce"
            ])
        );
        assert!(parse_options(&strings(&["--workloads", "consume-1000p"])).is_ok());
        assert!(
            parse_options(&strings(&["--clients", "kafkit,java"]))
                .unwrap()
                .needs_peers
        );
        assert!(parse_options(&strings(&["--records"])).is_err());
        assert!(parse_options(&strings(&["--records", "0"])).is_err());
        assert!(parse_options(&strings(&["--brokers", "x"])).is_err());
        assert!(parse_options(&strings(&["--clients", "kafka"])).is_err());
        assert!(parse_options(&strings(&["--workloads", "produce,nope"])).is_err());
        assert!(parse_options(&strings(&["--broker", "redpanda"])).is_err());
        assert!(run_command(&strings(&["nonsense"])).is_err());
        assert!(run_command(&[]).is_err());
    }
}
