//! The orchestrator: topics, one child process per client and run (with
//! the broker's CPU time over it), the check of what each producer wrote,
//! and the best run of each client into the report.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::broker_cpu::Broker;
use crate::measure::Measurement;
use crate::peer::Peers;
use crate::report::{Section, Settings};
use crate::workload::{Bench, Shape};
use crate::{Client, Mode, Options, Runtime, librdkafka};

/// How long a consumer of this binary may see no record before it gives
/// up: the records it waits for were all written before it started.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most records the broker's warm-up before a workload writes or reads.
pub const WARM_UP_RECORDS: u64 = 200_000;
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
    let broker = Broker::locate(&options.brokers);
    let mut failures = 0;
    for &bench in &options.workloads {
        let section = if bench.is_produce() {
            produce(bench, options, &peers, broker)?
        } else {
            consume(bench, options, &peers, broker)?
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

/// A section for `bench`, noting the chosen clients that do not run it.
fn section(bench: Bench, options: &Options) -> Section {
    let mut section = Section::new(bench, bench.title(options.records));
    for &client in &options.clients {
        if let Some(why) = client.skips(bench) {
            section.skip(client, why);
        }
    }
    section
}

fn produce(
    bench: Bench,
    options: &Options,
    peers: &Peers,
    broker: Option<Broker>,
) -> Result<Section> {
    let shape = bench.shape(options.records);
    let brokers = options.brokers.as_str();
    let mut section = section(bench, options);
    warm_up_produce(bench, brokers, shape);
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
            let out = child(client, cmd, broker)?;
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

fn consume(
    bench: Bench,
    options: &Options,
    peers: &Peers,
    broker: Option<Broker>,
) -> Result<Section> {
    let shape = bench.shape(options.records);
    let brokers = options.brokers.as_str();
    let base = format!("bench-{}-{}", bench.name(), std::process::id());
    let topic_names = shape.topic_names(&base);
    for topic in &topic_names {
        librdkafka::create_topic(brokers, topic, shape.partitions)?;
    }
    // Every topic of a child's command line, comma-separated.
    let topics = topic_names.join(",");
    let shown = match topic_names.len() {
        1 => base.clone(),
        n => format!("{base}-0..{}", n - 1),
    };
    let fill = child(
        Client::Librdkafka,
        rust_child(Client::Librdkafka, Mode::Fill, brokers, &topics, shape),
        None,
    )
    .context("writing the records to consume")?;
    let mut written = 0;
    for topic in &topic_names {
        written += librdkafka::end_offsets(brokers, topic, shape.partitions)?;
    }
    if written != shape.records {
        bail!(
            "{shown} hold {written} records, not {}, after the fill",
            shape.records
        );
    }
    eprintln!(
        "filled {shown} with {} records in {:.1?}",
        fill.measurement.records, fill.measurement.wall
    );

    let mut section = section(bench, options);
    // The broker's warm-up: librdkafka reads (up to WARM_UP_RECORDS of) the
    // records once, unmeasured, so that the first client measured does not
    // pay for the broker's JIT compiling its fetch path.
    let warm = Shape {
        records: shape.records.min(WARM_UP_RECORDS),
        ..shape
    };
    let warm_up = rust_child(Client::Librdkafka, Mode::Consume, brokers, &topics, warm);
    if let Err(e) = child(Client::Librdkafka, warm_up, None) {
        eprintln!("warning: the broker's warm-up read failed: {e:#}");
    }
    for &client in options.clients.iter().filter(|c| c.runs(bench)) {
        let outcome = best_of(options.runs, bench, client, |_| {
            let cmd = match client.runtime() {
                Runtime::Rust => rust_child(client, Mode::Consume, brokers, &topics, shape),
                _ => peers.consume(client, brokers, &topics, shape.records),
            };
            let out = child(client, cmd, broker)?;
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
    for topic in &topic_names {
        if let Err(e) = librdkafka::delete_topic(brokers, topic) {
            eprintln!("warning: {e:#}");
        }
    }
    Ok(section)
}

/// The broker's warm-up before a produce workload: librdkafka writes (up to
/// [`WARM_UP_RECORDS`] of) the workload to a scratch topic, unmeasured, so
/// that the first client measured does not pay for the broker's JIT
/// compiling its produce path. A failure is only a warning.
fn warm_up_produce(bench: Bench, brokers: &str, shape: Shape) {
    let topic = format!("bench-{}-warm-up-{}", bench.name(), std::process::id());
    let warm = Shape {
        records: shape.records.min(WARM_UP_RECORDS),
        ..shape
    };
    let result = librdkafka::create_topic(brokers, &topic, shape.partitions).and_then(|()| {
        let cmd = rust_child(Client::Librdkafka, Mode::Fill, brokers, &topic, warm);
        child(Client::Librdkafka, cmd, None)
    });
    if let Err(e) = result.and_then(|_| librdkafka::delete_topic(brokers, &topic)) {
        eprintln!("warning: the broker's warm-up write failed: {e:#}");
    }
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
                    "{} {} run {run}: {:.0} records/s, {:.3} us CPU/record, {:.1} MB peak RSS, \
                     broker {} us CPU/record, {} B sent ({} B written)",
                    bench.name(),
                    client.name(),
                    m.records_per_sec(),
                    m.cpu_us_per_record(),
                    m.peak_rss as f64 / (1 << 20) as f64,
                    m.broker_cpu_us_per_record()
                        .map_or("?".to_owned(), |c| format!("{c:.3}")),
                    m.sent.map_or("?".to_owned(), |b| b.to_string()),
                    m.written.map_or("?".to_owned(), |b| b.to_string()),
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
        None,
    )
    .context("reading the records back")?;
    Ok(())
}

/// This binary's `child` command for a Rust client; `topics` is one topic
/// or several, comma-separated.
fn rust_child(client: Client, mode: Mode, brokers: &str, topics: &str, shape: Shape) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "kafkit-bench".into());
    let mut cmd = Command::new(exe);
    cmd.args(["child", client.name(), mode.name(), brokers, topics])
        .arg(shape.records.to_string())
        .arg(shape.record_size.to_string())
        .arg(shape.partitions.to_string())
        .arg(shape.keys.to_string());
    cmd
}

/// Runs a child and reads its settings and result lines. Its stderr is
/// passed through; a child that fails, prints `{"error":...}` or no
/// result, or outlives [`CHILD_TIMEOUT`], fails the run. With a `broker`,
/// the broker's CPU time from just before the child starts to just after
/// it exits goes into the measurement.
fn child(client: Client, mut cmd: Command, broker: Option<Broker>) -> Result<Output> {
    let broker_before = broker.and_then(Broker::cpu);
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
    let broker_cpu = broker
        .and_then(Broker::cpu)
        .zip(broker_before)
        .map(|(after, before)| after.saturating_sub(before));
    let out = reader.join().unwrap_or_default();
    let parsed = parse_output(&out).map(|mut o| {
        o.measurement.broker_cpu = broker_cpu;
        o
    });
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
