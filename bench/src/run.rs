//! The orchestrator: topics, one child process per client and run, the
//! check of what each producer wrote, and the best run of each client into
//! the report.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::measure::Measurement;
use crate::peer::Peers;
use crate::report::{Section, Settings};
use crate::workload::{Bench, Shape};
use crate::{Client, Mode, Options, Runtime, librdkafka};

/// How long a consumer of this binary may see no record before it gives
/// up: the records it waits for were all written before it started.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one child may run before it is killed and its run fails (the
/// peers get it as their own `--timeout-ms`, and a little longer here).
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// What a child printed: its settings line and its result line.
#[derive(Debug, Clone)]
struct Output {
    settings: Settings,
    measurement: Measurement,
}

/// Runs the chosen workloads with the chosen clients and prints a report
/// per workload as it ends. Fails at the end if any client's run failed.
pub fn benchmarks(options: &Options) -> Result<()> {
    let peers = Peers::locate();
    peers.check(&options.clients)?;
    let mut failures = 0;
    for &bench in &options.workloads {
        let section = if bench.is_produce() {
            produce(bench, options, &peers)?
        } else {
            consume(bench, options, &peers)?
        };
        // Each report as soon as its workload is done.
        print!("\n{section}");
        failures += section.failures();
    }
    if failures > 0 {
        bail!("{failures} client(s) failed a workload; see `Failed:` under the tables");
    }
    Ok(())
}

fn produce(bench: Bench, options: &Options, peers: &Peers) -> Result<Section> {
    let shape = bench.shape(options.records);
    let brokers = options.brokers.as_str();
    let mut section = Section::new(bench, bench.title(options.records));
    for &client in options.clients.iter().filter(|c| c.runs(bench)) {
        let outcome = best_of(options.runs, bench, client, |run| {
            // A fresh topic per run: every run writes to empty partitions.
            let topic = format!(
                "bench-{}-{}-{}-{run}",
                bench.name(),
                client.name(),
                std::process::id()
            );
            librdkafka::create_topic(brokers, &topic, shape.partitions)?;
            let cmd = match client.runtime() {
                Runtime::Rust => rust_child(client, Mode::Produce, brokers, &topic, shape),
                _ => peers.produce(client, brokers, &topic, shape),
            };
            let out = child(client, cmd)?;
            check_written(brokers, &topic, shape)
                .with_context(|| format!("checking what {} wrote", client.name()))?;
            if let Err(e) = librdkafka::delete_topic(brokers, &topic) {
                eprintln!("warning: {e:#}");
            }
            Ok(out)
        });
        section.add(client, outcome);
    }
    Ok(section)
}

fn consume(bench: Bench, options: &Options, peers: &Peers) -> Result<Section> {
    let shape = bench.shape(options.records);
    let brokers = options.brokers.as_str();
    let topic = format!("bench-{}-{}", bench.name(), std::process::id());
    librdkafka::create_topic(brokers, &topic, shape.partitions)?;
    let fill = child(
        Client::Librdkafka,
        rust_child(Client::Librdkafka, Mode::Fill, brokers, &topic, shape),
    )
    .context("writing the records to consume")?;
    let written = librdkafka::end_offsets(brokers, &topic, shape.partitions)?;
    if written != shape.records {
        bail!(
            "{topic} holds {written} records, not {}, after the fill",
            shape.records
        );
    }
    eprintln!(
        "filled {topic} with {} records in {:.1?}",
        fill.measurement.records, fill.measurement.wall
    );

    let mut section = Section::new(bench, bench.title(options.records));
    for &client in options.clients.iter().filter(|c| c.runs(bench)) {
        let outcome = best_of(options.runs, bench, client, |_| {
            let cmd = match client.runtime() {
                Runtime::Rust => rust_child(client, Mode::Consume, brokers, &topic, shape),
                _ => peers.consume(client, brokers, &topic, shape.records),
            };
            let out = child(client, cmd)?;
            if out.measurement.records != shape.records {
                bail!(
                    "{} read {} records, not {}",
                    client.name(),
                    out.measurement.records,
                    shape.records
                );
            }
            Ok(out)
        });
        section.add(client, outcome);
    }
    if let Err(e) = librdkafka::delete_topic(brokers, &topic) {
        eprintln!("warning: {e:#}");
    }
    Ok(section)
}

/// Runs `one` `runs` times and keeps the fastest run; the first failure
/// ends the client's runs and becomes its row.
fn best_of(
    runs: u32,
    bench: Bench,
    client: Client,
    mut one: impl FnMut(u32) -> Result<Output>,
) -> Result<(Measurement, Settings), String> {
    let mut best: Option<Output> = None;
    for run in 0..runs {
        match one(run) {
            Ok(out) => {
                let m = &out.measurement;
                eprintln!(
                    "{} {} run {run}: {:.0} records/s, {:.3} us CPU/record, {:.1} MB peak RSS",
                    bench.name(),
                    client.name(),
                    m.records_per_sec(),
                    m.cpu_us_per_record(),
                    m.peak_rss as f64 / (1 << 20) as f64
                );
                best = Some(match best {
                    Some(b) if b.measurement.wall <= out.measurement.wall => b,
                    _ => out,
                });
            }
            Err(e) => {
                eprintln!("{} {} run {run} FAILED: {e:#}", bench.name(), client.name());
                return Err(format!("run {run}: {e:#}"));
            }
        }
    }
    let best = best.expect("runs > 0");
    Ok((best.measurement, best.settings))
}

/// What a producer wrote to `topic` is all there: its end offsets sum to
/// the records sent (no more, no fewer: idempotence, no duplicates), and
/// librdkafka reads every one of them back.
fn check_written(brokers: &str, topic: &str, shape: Shape) -> Result<()> {
    let written = librdkafka::end_offsets(brokers, topic, shape.partitions)?;
    if written != shape.records {
        bail!(
            "the end offsets of {topic} sum to {written}, not the {} records sent",
            shape.records
        );
    }
    child(
        Client::Librdkafka,
        rust_child(Client::Librdkafka, Mode::Consume, brokers, topic, shape),
    )
    .context("reading the records back")?;
    Ok(())
}

/// This binary's `child` command for a Rust client.
fn rust_child(client: Client, mode: Mode, brokers: &str, topic: &str, shape: Shape) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "kafkit-bench".into());
    let mut cmd = Command::new(exe);
    cmd.args(["child", client.name(), mode.name(), brokers, topic])
        .arg(shape.records.to_string())
        .arg(shape.record_size.to_string())
        .arg(shape.partitions.to_string())
        .arg(shape.keys.to_string());
    cmd
}

/// Runs a child and reads its settings and result lines. Its stderr is
/// passed through; a child that fails, prints `{"error":...}` or no
/// result, or outlives [`CHILD_TIMEOUT`], fails the run.
fn child(client: Client, mut cmd: Command) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {:?}", cmd.get_program()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + CHILD_TIMEOUT + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} took longer than {CHILD_TIMEOUT:?}", client.name());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    let parsed = parse_output(&out);
    if !status.success() {
        let why = parsed
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| out.clone());
        bail!("{} failed ({status}): {why}", client.name());
    }
    parsed.with_context(|| format!("{}'s output", client.name()))
}

/// The settings line and the result line among a child's stdout lines.
fn parse_output(out: &str) -> Result<Output> {
    let mut settings = None;
    let mut measurement = None;
    for line in out.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(s) = value.get("settings").and_then(|s| s.as_object()) {
            settings = Some(s.clone());
        } else if let Some(e) = value.get("error") {
            bail!("{}", e.as_str().unwrap_or(&e.to_string()));
        } else if let Some(m) = Measurement::from_json(&value) {
            measurement = Some(m);
        }
    }
    let measurement = measurement.with_context(|| format!("no result line in:\n{out}"))?;
    let settings = settings.with_context(|| format!("no settings line in:\n{out}"))?;
    Ok(Output {
        settings,
        measurement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_lines_are_parsed() {
        let out = "{\"settings\":{\"client\":\"sarama\",\"acks\":\"all\"}}\n\
                   not json\n\
                   {\"client\":\"sarama\",\"records\":5,\"bytes\":500,\"seconds\":0.5,\
                   \"cpu_seconds\":0.1,\"peak_rss_bytes\":1000}\n";
        let o = parse_output(out).unwrap();
        assert_eq!(o.settings["acks"], "all");
        assert_eq!(o.measurement.records, 5);
        assert!(parse_output("{\"error\":\"stopped after 3 of 5 records\"}").is_err());
        assert!(parse_output("{\"settings\":{}}").is_err());
        let no_settings = "{\"records\":5,\"bytes\":1,\"seconds\":1,\"cpu_seconds\":0,\
                           \"peak_rss_bytes\":1}";
        assert!(parse_output(no_settings).is_err());
    }

    #[test]
    fn rust_children_get_the_shape() {
        let cmd = rust_child(
            Client::Kafkit,
            Mode::Produce,
            "b:1",
            "t",
            Bench::ProduceKeyed.shape(1000),
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "child", "kafkit", "produce", "b:1", "t", "200", "1024", "6", "10000"
            ]
        );
    }
}
