//! `cargo xtask reliability [--full] [--cluster] [--broker kafka|tansu]`: runs the
//! reliability scenarios (`tests/tests/reliability_*.rs`) against one Apache
//! Kafka node (or tansu), as `test-kafka` does, and prints a table per
//! scenario: records sent, received, lost, duplicated, and the time to
//! recover. Scenarios that kill brokers start nodes of their own: private
//! ones, or, for `reliability_cluster_*`, a three-node cluster each.
//!
//! Each scenario prints one machine-readable line to stdout,
//! `RELIABILITY scenario=... sent=... received=... lost=... duplicated=...
//! recover_ms=...` (see `kafkit_tests::Reliability`); this command runs
//! each test file with `--nocapture`, echoes its output, and collects those
//! lines. `--full` sets `KAFKIT_RELIABILITY_FULL=1`: the sizes
//! (a million records, minute-long storms) instead of CI's. `--cluster`
//! runs only the three-node scenarios (`reliability_cluster_*`), at full
//! size.

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::broker::Broker;
use crate::kafka_run::KafkaRun;
use crate::util::{cargo, display, fmt_duration, workspace_root};
use crate::{deps, kafka, tansu};

/// One `RELIABILITY` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    scenario: String,
    fields: BTreeMap<String, String>,
}

impl Row {
    /// Parses `RELIABILITY key=value ...`, wherever it starts in the line
    /// (with `--nocapture` it follows libtest's `test name ... `); `None`
    /// for any other line.
    fn parse(line: &str) -> Option<Row> {
        let at = line.find("RELIABILITY ")?;
        let rest = &line[at + "RELIABILITY ".len()..];
        let fields: BTreeMap<String, String> = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Row {
            scenario: fields.get("scenario")?.clone(),
            fields,
        })
    }

    fn get(&self, key: &str) -> &str {
        self.fields.get(key).map_or("-", String::as_str)
    }
}

/// The scenario test files, `reliability_*`, sorted.
fn scenario_tests() -> Result<Vec<String>> {
    let dir = workspace_root().join("tests/tests");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix("reliability_")?.strip_suffix(".rs")?;
            Some(n.trim_end_matches(".rs").to_owned())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo xtask reliability [--full] [--cluster] [--broker kafka|tansu]`.
pub fn run_command(args: &[String]) -> Result<()> {
    const USAGE: &str =
        "usage: cargo xtask reliability [--full] [--cluster] [--broker kafka|tansu]";
    let mut full = false;
    let mut cluster_only = false;
    let mut on_tansu = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.clone().next().map(String::as_str)) {
            ("--full", _) => full = true,
            ("--cluster", _) => (full, cluster_only) = (true, true),
            ("--broker", Some(kind @ ("kafka" | "tansu"))) => {
                on_tansu = kind == "tansu";
                rest.next();
            }
            _ => bail!(USAGE),
        }
    }
    let mut tests = scenario_tests()?;
    if cluster_only {
        tests.retain(|t| t.starts_with("reliability_cluster_"));
    }
    if tests.is_empty() {
        bail!("no tests/tests/reliability_*.rs found");
    }
    let binary = tansu::ensure()?;
    // The retriable-error scenario runs on librdkafka's mock cluster.
    deps::ensure_librdkafka_dev()?;
    // Private nodes and the three-node cluster start from these jars.
    let kafka_home = kafka::ensure()?;
    // Each is stopped when this function returns, pass or fail.
    let (_tansu, kafka_run, env): (Option<Broker>, Option<KafkaRun>, Vec<(&str, String)>) =
        if on_tansu {
            let broker = Broker::start(&binary, 0, true)?;
            println!(
                "started tansu at {} for the reliability scenarios",
                broker.addr()
            );
            let env = vec![
                ("KAFKIT_BROKERS", broker.addr().to_string()),
                ("KAFKIT_BROKERS_KIND", "tansu".to_owned()),
                ("KAFKIT_TEST_BROKER", "tansu".to_owned()),
            ];
            (Some(broker), None, env)
        } else {
            let kafka = KafkaRun::start(1, &[])?;
            println!(
                "started Apache Kafka {} at {} for the reliability scenarios",
                kafka::VERSION,
                kafka.bootstrap()
            );
            let env = vec![("KAFKIT_TEST_BROKER", "kafka".to_owned())];
            (None, Some(kafka), env)
        };

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for test in &tests {
        let mut cmd = cargo(["test", "-p", "kafkit-tests", "--test", test.as_str()]);
        if let Some(kafka) = &kafka_run {
            kafka.apply(&mut cmd);
        }
        // Scenarios CI skips while a known bug makes them flaky run here.
        cmd.args(["--", "--nocapture", "--test-threads=1", "--include-ignored"])
            .env("KAFKIT_TANSU", &binary)
            .env("KAFKIT_KAFKA_HOME", &kafka_home)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if full {
            cmd.env("KAFKIT_RELIABILITY_FULL", "1");
        }
        println!("$ {}", display(&cmd));
        let start = Instant::now();
        let output = cmd
            .output()
            .with_context(|| format!("could not run `{}`", display(&cmd)))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        let found: Vec<Row> = stdout.lines().filter_map(Row::parse).collect();
        if !output.status.success() || found.is_empty() {
            failed.push(test.clone());
        }
        rows.extend(found.into_iter().map(|r| (r, start.elapsed())));
    }
    print!("{}", table(&rows));
    if !failed.is_empty() {
        bail!(
            "{} scenario file(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// The summary table, one row per scenario.
fn table(rows: &[(Row, Duration)]) -> String {
    let mut out = format!(
        "\n{:<26} {:>9} {:>9} {:>6} {:>10} {:>9} {:>11} {:>8}\n",
        "scenario", "sent", "received", "lost", "duplicated", "reordered", "recover_ms", "run"
    );
    for (row, took) in rows {
        out.push_str(&format!(
            "{:<26} {:>9} {:>9} {:>6} {:>10} {:>9} {:>11} {:>8}\n",
            row.scenario,
            row.get("sent"),
            row.get("received"),
            row.get("lost"),
            row.get("duplicated"),
            row.get("reordered"),
            row.get("recover_ms"),
            fmt_duration(*took),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reliability_lines_only() {
        let row = Row::parse(
            "RELIABILITY scenario=writer_resets sent=10 received=9 lost=1 duplicated=0 reordered=0 \
             recover_ms=5",
        )
        .unwrap();
        assert_eq!(row.scenario, "writer_resets");
        assert_eq!((row.get("lost"), row.get("recover_ms")), ("1", "5"));
        assert_eq!(row.get("missing"), "-");
        assert_eq!(Row::parse("test foo ... ok"), None);
        let interleaved = Row::parse("test x ... RELIABILITY scenario=x sent=1").unwrap();
        assert_eq!(
            (interleaved.scenario.as_str(), interleaved.get("sent")),
            ("x", "1")
        );
        assert_eq!(Row::parse("RELIABILITY sent=1"), None);
    }

    #[test]
    fn the_table_has_a_row_per_scenario() {
        let row =
            Row::parse("RELIABILITY scenario=a sent=1 received=1 lost=0 duplicated=0 recover_ms=2")
                .unwrap();
        let t = table(&[(row, Duration::from_secs(3))]);
        assert_eq!(t.lines().filter(|l| !l.is_empty()).count(), 2);
        assert!(t.contains("a ") && t.contains("3.0s"));
    }

    #[test]
    fn finds_the_scenario_files() {
        let tests = scenario_tests().unwrap();
        assert!(tests.iter().all(|t| t.starts_with("reliability_")));
        for scenario in ["reliability_writer_resets", "reliability_cluster_writes"] {
            assert!(
                tests.iter().any(|t| t == scenario),
                "{scenario} in {tests:?}"
            );
        }
    }
}
