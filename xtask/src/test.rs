//! The test commands: `test`, `lint`, `test-kafka` and `demo`.

use anyhow::{Result, bail};

use crate::util::{Steps, cargo, run, succeeds};
use crate::{codegen, layers, tansu};

/// The bootstrap list of `docker/docker-compose.yml`'s three brokers.
const DOCKER_BROKERS: &str = "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";

/// `cargo xtask test [cargo test args]`: everything CI checks.
///
/// Every step runs even when an earlier one failed, so a lint failure does not
/// hide a test failure; the command fails at the end if any step failed.
pub fn test(args: &[String]) -> Result<()> {
    let mut steps = Steps::default();
    steps.step("codegen --check", || codegen::run(&["--check".to_owned()]));
    lint_steps(&mut steps);
    steps.step("check-layers", || layers::run_command(&[]));
    steps.step("cargo test --workspace (with tansu)", || {
        let tansu = tansu::ensure()?;
        run(cargo(["test", "--workspace", "--no-fail-fast"])
            .args(args)
            .env("KAFKIT_TANSU", tansu))
    });
    steps.finish()
}

/// `cargo xtask lint`: rustfmt and clippy, warnings denied.
pub fn lint(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask lint");
    }
    let mut steps = Steps::default();
    lint_steps(&mut steps);
    steps.finish()
}

fn lint_steps(steps: &mut Steps) {
    if succeeds(&mut cargo(["fmt", "--version"])) {
        steps.step("cargo fmt --all --check", || {
            run(&mut cargo(["fmt", "--all", "--check"]))
        });
    } else {
        steps.skip("cargo fmt --all --check", "rustfmt is not installed");
    }
    if succeeds(&mut cargo(["clippy", "--version"])) {
        steps.step("cargo clippy --workspace --all-targets -D warnings", || {
            run(&mut cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        });
    } else {
        steps.skip("cargo clippy", "clippy is not installed");
    }
}

/// `cargo xtask test-kafka [--docker] [cargo test args]`: the integration tests.
///
/// By default each test starts its own tansu broker. With `--docker` they run
/// against the three-broker Apache Kafka cluster of `docker/docker-compose.yml`
/// instead, which must already be up (`docker compose -f docker/docker-compose.yml
/// up -d`); our development machines have no Docker engine, so that mode is for
/// users' machines only.
pub fn test_kafka(args: &[String]) -> Result<()> {
    let (docker, rest): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "--docker");
    let mut cmd = cargo(["test", "-p", "kafkit-tests"]);
    cmd.args(rest);
    if docker.is_empty() {
        cmd.env("KAFKIT_TANSU", tansu::ensure()?);
    } else {
        println!("running against the docker-compose cluster at {DOCKER_BROKERS}");
        println!("(start it first: docker compose -f docker/docker-compose.yml up -d)");
        cmd.env("KAFKIT_BROKERS", DOCKER_BROKERS);
    }
    run(&mut cmd)
}

/// `cargo xtask demo [--brokers host:port]`: a produce-then-consume round trip.
///
/// Without `--brokers`, the example starts tansu on a free loopback port,
/// creates a topic, produces three records, fetches them back, prints them and
/// stops the broker. This will switch to the `kafkit` CLI when it exists.
pub fn demo(args: &[String]) -> Result<()> {
    let mut cmd = cargo([
        "run",
        "--quiet",
        "-p",
        "kafkit-tests",
        "--example",
        "roundtrip",
    ]);
    match args {
        [] => {
            cmd.env("KAFKIT_TANSU", tansu::ensure()?);
        }
        [flag, brokers] if flag == "--brokers" => {
            cmd.args(["--", brokers.as_str()]);
        }
        _ => bail!("usage: cargo xtask demo [--brokers host:port]"),
    }
    run(&mut cmd)
}
