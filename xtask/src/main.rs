//! Project automation: `cargo xtask <command>`. Run `cargo xtask help` for the list.
//!
//! - `codegen [--check]`: regenerate kafkit-protocol's messages from
//!   `crates/protocol/schema` (Kafka 4.3.1's JSON definitions) (with `--check`, fail if the checked-in code is stale).
//! - `test`, `lint`, `test-kafka`, `demo`: see [`mod@test`].
//! - `check-layers`: see [`layers`].
//! - `install-tansu`: see [`tansu`]; `broker`: see [`broker`].
//! - `bench`: see [`mod@bench`].
//! - `fuzz`: see [`mod@fuzz`]; `reliability`: see [`reliability`].

mod bench;
mod broker;
mod codegen;
mod deps;
mod fuzz;
mod kafka;
mod kafka_run;
mod layers;
mod peers;
mod reliability;
mod tansu;
mod test;
mod util;

use std::process::ExitCode;

use anyhow::{Result, bail};

const HELP: &str = "\
usage: cargo xtask <command> [args]

commands:
  demo [--brokers host:port]   start tansu, produce three records and fetch them back
  test [cargo test args]       everything CI runs: codegen --check, fmt, clippy,
                               check-layers, unit and doc tests, then test-kafka, then
                               fuzz for 60 s a target (KAFKIT_FUZZ_SECONDS: other, 0: skip)
  lint                         cargo fmt --check, clippy and cargo doc, warnings denied
  test-kafka [--broker kafka|tansu] [--docker] [args]
                               start one Apache Kafka 4.3.1 node (or tansu), run the
                               integration tests (kafkit-tests) against it, stop it;
                               or with --docker run them against docker-compose.yml's
                               cluster at 127.0.0.1:9092-9094 (needs a Docker engine)
  check-layers                 fail if a crate depends on one not below it:
                               protocol <- conn <- reader/writer/admin <- kafkit/cli
  bench produce|consume|all [--records N] [--runs N] [--clients a,b] [--workloads a,b]
                               kafkit, librdkafka, franz-go, sarama, kafka-go,
                               confluent-kafka-go and Java: throughput, CPU and memory
                               on one Apache Kafka node (--broker tansu: on tansu)
  fuzz [SECONDS]               run every cargo-fuzz target of crates/protocol/fuzz for
                               SECONDS each (default 60) from the committed seeds;
                               fail on a crash (installs cargo-fuzz if missing)
  reliability [--full] [--cluster] [--broker kafka|tansu]
                               run the reliability scenarios (tests/tests/reliability_*.rs)
                               against one Apache Kafka node (scenarios that kill brokers
                               start their own) and print sent, received, lost,
                               duplicated and time to recover per scenario
  broker [--port PORT]         run tansu on 127.0.0.1:PORT (default 9092) until Ctrl-C
  broker --kafka [--nodes N]   run N Apache Kafka nodes (default 1) on free ports until Ctrl-C
  install-tansu [--force]      install the tansu test broker at .tools/tansu
  install-kafka [--force]      fetch Apache Kafka 4.3.1's broker jars with Maven into
                               .tools/kafka-4.3.1 (installs java and mvn when root)
  build-peers [go|java] [--force]
                               build the Go and Java interop peers (tests/peers) into
                               .tools/peers, when their sources changed
  codegen [--check]            regenerate kafkit-protocol's messages (--check: fail if stale)
  help                         this text
";

fn main() -> ExitCode {
    match dispatch() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        bail!("no command given");
    };
    match command.as_str() {
        "codegen" => codegen::run(rest),
        "demo" => test::demo(rest),
        "test" => test::test(rest),
        "lint" => test::lint(rest),
        "test-kafka" => test::test_kafka(rest),
        "check-layers" => layers::run_command(rest),
        "install-tansu" => tansu::run_command(rest),
        "install-kafka" => kafka::run_command(rest),
        "bench" => bench::run_command(rest),
        "broker" => broker::run_command(rest),
        "reliability" => reliability::run_command(rest),
        "fuzz" => fuzz::run_command(rest),
        "build-peers" => peers::run_command(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => {
            print!("{HELP}");
            bail!("unknown xtask command `{other}`")
        }
    }
}
