//! The test commands: `test`, `lint`, `test-kafka` and `demo`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::broker::Broker;
use crate::kafka_run::KafkaRun;
use crate::util::{Steps, cargo, run, run_tests, succeeds, workspace_root};
use crate::{codegen, deps, fuzz, kafka, layers, peers, tansu};

/// The bootstrap list of `docker/docker-compose.yml`'s three brokers.
const DOCKER_BROKERS: &str = "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";

/// `cargo xtask test [cargo test args]`: everything CI checks, the
/// cargo-fuzz targets last (each for [`fuzz::CI_SECONDS`], or
/// `KAFKIT_FUZZ_SECONDS`; 0 skips them).
///
/// Every step runs even when an earlier one failed, so a lint failure does not
/// hide a test failure; the command fails at the end if any step failed.
pub fn test(args: &[String]) -> Result<()> {
    let mut steps = Steps::default();
    steps.step("codegen --check", || codegen::run(&["--check".to_owned()]));
    lint_steps(&mut steps);
    steps.step("check-layers", || layers::run_command(&[]));
    steps.step("cargo test (unit and doc tests)", || {
        run_tests(
            cargo([
                "test",
                "--workspace",
                "--exclude",
                "kafkit-tests",
                "--features",
                "kafkit/otel,kafkit/prometheus",
                "--no-fail-fast",
            ])
            .args(args),
        )
    });
    steps.step("cargo xtask test-kafka", || test_kafka(args));
    match fuzz::ci_seconds()? {
        0 => steps.skip("cargo xtask fuzz", "KAFKIT_FUZZ_SECONDS=0"),
        seconds => steps.step(&format!("cargo xtask fuzz {seconds}"), || {
            fuzz::fuzz(seconds)
        }),
    }
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
                // The off-by-default facade feature, so its example is linted.
                "--features",
                "kafkit/otel,kafkit/prometheus",
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

/// `cargo xtask test-kafka [--broker kafka|tansu] [--docker] [cargo test args]`:
/// the integration tests.
///
/// By default this installs Apache Kafka 4.3.1 (`cargo xtask install-kafka`)
/// and tansu, starts one Kafka node for the whole run (see [`KafkaRun`]),
/// and runs `cargo test -p kafkit-tests` with `KAFKIT_BROKERS` (and the
/// secured listeners' variables) pointing at it. Tests that stop or restart
/// a broker start a private node, and the fault tests a three-node cluster.
/// Then (without extra args) it runs the `exactly_once` example of the
/// `kafkit` crate against the same node, and stops the node afterwards,
/// whether the tests passed or not. It also installs `socat` (the TLS tests
/// put it in front of tansu) and `librdkafka-dev` (for the librdkafka mock
/// cluster harness) when missing and this runs as root, as CI does.
///
/// `--broker tansu` runs the same suite against tansu instead, where tests
/// skip only the assertions its known bugs break. With `--docker` the tests
/// run against the three-broker cluster of `docker/docker-compose.yml`,
/// which must already be up; our machines have no Docker engine, so that
/// mode is for users' machines only.
pub fn test_kafka(args: &[String]) -> Result<()> {
    let mut broker = "kafka".to_owned();
    let mut docker = false;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--docker" => docker = true,
            "--broker" => {
                broker = iter
                    .next()
                    .context("--broker takes kafka or tansu")?
                    .clone()
            }
            _ => rest.push(arg.clone()),
        }
    }
    let mut cmd = cargo(["test", "-p", "kafkit-tests", "--no-fail-fast"]);
    cmd.args(&rest);
    if docker {
        println!("running against the docker-compose cluster at {DOCKER_BROKERS}");
        println!("(start it first: docker compose -f docker/docker-compose.yml up -d)");
        return run(cmd.env("KAFKIT_BROKERS", DOCKER_BROKERS));
    }
    let tansu_binary = tansu::ensure()?;
    cmd.env("KAFKIT_TANSU", &tansu_binary);
    // The TLS tests put socat in front of tansu, which has no TLS.
    deps::ensure_socat()?;
    // The mock cluster harness compiles a C program against these headers.
    deps::ensure_librdkafka_dev()?;
    // Each is dropped (stopped and reaped) when this function returns.
    let (_kafka, _tansu, bootstrap) = match broker.as_str() {
        "kafka" => {
            kafka::ensure()?;
            // The Go and Java interop peers (tests/peers), rebuilt if stale.
            peers::ensure()?.apply(&mut cmd);
            let kafka = KafkaRun::start(1, &[])?;
            println!(
                "started Apache Kafka {} at {} for the integration tests",
                kafka::VERSION,
                kafka.bootstrap()
            );
            kafka.apply(&mut cmd);
            let bootstrap = kafka.bootstrap().to_owned();
            cmd.env("KAFKIT_TEST_BROKER", "kafka");
            (Some(kafka), None, bootstrap)
        }
        "tansu" => {
            let tansu = Broker::start(&tansu_binary, 0, true)?;
            println!(
                "started tansu at {} for the integration tests",
                tansu.addr()
            );
            let bootstrap = tansu.addr().to_string();
            cmd.env("KAFKIT_BROKERS", &bootstrap)
                .env("KAFKIT_BROKERS_KIND", "tansu")
                .env("KAFKIT_TEST_BROKER", "tansu");
            (None, Some(tansu), bootstrap)
        }
        other => bail!("--broker takes kafka or tansu, not `{other}`"),
    };
    let tests = run_tests(&mut cmd);
    if !rest.is_empty() {
        return tests;
    }
    // The exactly-once example runs end to end too (it checks its own
    // output and fails otherwise), against the same broker.
    let example = run(
        cargo(["run", "-q", "-p", "kafkit", "--example", "exactly_once"])
            .env("KAFKIT_BROKERS", &bootstrap),
    );
    tests.and(example)
}

/// `cargo xtask demo [--brokers host:port]`: a produce-then-consume round
/// trip with the `kafkit` CLI.
///
/// It builds the CLI (`cargo build -p kafkit-cli`); without `--brokers` it
/// starts tansu on a free loopback port (stopped when the demo ends, pass
/// or fail). Then it runs, printing each command: `kafkit topics create`,
/// `kafkit produce` with three keyed lines and a header, and `kafkit consume
/// --offset beginning --exit`, and fails unless the three records come back
/// in order.
pub fn demo(args: &[String]) -> Result<()> {
    let brokers = match args {
        [] => None,
        [flag, brokers] if flag == "--brokers" => Some(brokers.clone()),
        _ => bail!("usage: cargo xtask demo [--brokers host:port]"),
    };
    run(&mut cargo(["build", "--quiet", "-p", "kafkit-cli"]))?;
    let kafkit = demo_binary();
    // Dropped (killed and reaped) when this function returns.
    let (_broker, brokers, topic) = match brokers {
        Some(brokers) => {
            // A fresh topic on someone else's cluster, so earlier runs' records don't count.
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            (None, brokers, format!("kafkit-demo-{stamp}"))
        }
        None => {
            let broker = Broker::start(&tansu::ensure()?, 0, true)?;
            println!("started tansu at {}", broker.addr());
            let addr = broker.addr().to_string();
            (Some(broker), addr, "kafkit-demo".to_owned())
        }
    };
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(&kafkit);
        cmd.args(["--brokers", &brokers]).args(args);
        cmd
    };

    let mut create = cli(&[
        "topics",
        "create",
        &topic,
        "--partitions",
        "1",
        "--if-not-exists",
    ]);
    println!("$ {}", demo_display(&create));
    let status = create.status().context("cannot start kafkit")?;
    if !status.success() {
        bail!("kafkit topics create failed ({status})");
    }

    let lines = "user-1:hello\nuser-2:from\nuser-1:kafkit\n";
    let mut produce = cli(&[
        "produce",
        &topic,
        "--key-separator",
        ":",
        "-H",
        "source=kafkit-demo",
        "--compression",
        "zstd",
    ]);
    println!("$ printf {lines:?} | {}", demo_display(&produce));
    let mut child = produce
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot start kafkit")?;
    child
        .stdin
        .take()
        .context("kafkit's stdin")?
        .write_all(lines.as_bytes())
        .context("writing to kafkit produce")?;
    let status = child.wait()?;
    if !status.success() {
        bail!("kafkit produce failed ({status})");
    }

    let mut consume = cli(&[
        "consume",
        &topic,
        "--offset",
        "beginning",
        "--exit",
        "--format",
        "%k=%v (%p@%o) %h",
    ]);
    println!("$ {}", demo_display(&consume));
    let output = consume.output().context("cannot start kafkit")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("kafkit consume failed ({})", output.status);
    }
    let expected = [
        "user-1=hello (0@0) source=kafkit-demo",
        "user-2=from (0@1) source=kafkit-demo",
        "user-1=kafkit (0@2) source=kafkit-demo",
    ];
    let got: Vec<&str> = stdout.lines().collect();
    if got != expected {
        bail!("the records did not come back: expected {expected:?}, got {got:?}");
    }
    println!("demo passed: 3 records produced and consumed back through {brokers}");
    Ok(())
}

/// A demo command line as a shell would take it: the binary relative to
/// the workspace root, arguments with spaces or shell characters quoted.
fn demo_display(cmd: &Command) -> String {
    let program = PathBuf::from(cmd.get_program());
    let root = workspace_root();
    let mut s = program
        .strip_prefix(&root)
        .unwrap_or(&program)
        .display()
        .to_string();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        s.push(' ');
        if arg.contains(|c: char| c.is_whitespace() || "()%'\"$|&;<>*?".contains(c)) {
            s.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            s.push_str(&arg);
        }
    }
    s
}

/// Where `cargo build -p kafkit-cli` put the binary.
fn demo_binary() -> PathBuf {
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
        .join(format!("kafkit{}", std::env::consts::EXE_SUFFIX))
}
