//! The test commands: `test`, `lint`, `test-kafka` and `demo`.

use anyhow::{Result, bail};

use crate::broker::Broker;
use crate::util::{Steps, cargo, run, succeeds};
use crate::{codegen, deps, layers, tansu};

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
    steps.step("cargo test (unit and doc tests)", || {
        run(cargo([
            "test",
            "--workspace",
            "--exclude",
            "kafkit-tests",
            "--no-fail-fast",
        ])
        .args(args))
    });
    steps.step("cargo xtask test-kafka", || test_kafka(args));
    steps.finish()
}

/// `cargo xtask lint`: rustfmt, clippy and rustdoc, warnings denied.
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
    steps.step("cargo doc --workspace (warnings denied)", || {
        run(cargo(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))
    });
}

/// `cargo xtask test-kafka [--docker] [cargo test args]`: the integration tests.
///
/// By default this installs tansu if needed, starts one broker on a free
/// loopback port, runs `cargo test -p kafkit-tests` with `KAFKIT_BROKERS`
/// (and `KAFKIT_BROKERS_TANSU=1`, so tests skip only tansu's known bugs)
/// pointing at it, and stops the broker afterwards, whether the tests passed
/// or not. Tests that stop or restart a broker start a private one. It
/// also installs `socat` (for the TLS tests) and `librdkafka-dev` (for the
/// librdkafka mock cluster harness) when missing and this runs as root, as
/// CI does.
///
/// With `--docker` the tests run against the three-broker Apache Kafka
/// cluster of `docker/docker-compose.yml` instead, which must already be up
/// (`docker compose -f docker/docker-compose.yml up -d`); our development
/// machines have no Docker engine, so that mode is for users' machines only.
pub fn test_kafka(args: &[String]) -> Result<()> {
    let (docker, rest): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "--docker");
    let mut cmd = cargo(["test", "-p", "kafkit-tests", "--no-fail-fast"]);
    cmd.args(rest);
    if !docker.is_empty() {
        println!("running against the docker-compose cluster at {DOCKER_BROKERS}");
        println!("(start it first: docker compose -f docker/docker-compose.yml up -d)");
        return run(cmd.env("KAFKIT_BROKERS", DOCKER_BROKERS));
    }
    let binary = tansu::ensure()?;
    // The TLS tests put socat in front of tansu, which has no TLS.
    deps::ensure_socat()?;
    // The mock cluster harness compiles a C program against these headers.
    deps::ensure_librdkafka_dev()?;
    // Dropped (killed and reaped) when this function returns, pass or fail.
    let broker = Broker::start(&binary, 0, true)?;
    println!(
        "started tansu at {} for the integration tests",
        broker.addr()
    );
    run(cmd
        .env("KAFKIT_TANSU", &binary)
        .env("KAFKIT_BROKERS", broker.addr().to_string())
        .env("KAFKIT_BROKERS_TANSU", "1"))
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
