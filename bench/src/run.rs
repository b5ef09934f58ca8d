//! The orchestrator: topics, one child process per client and run, and the
//! best run of each client into the report.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::measure::Measurement;
use crate::report::Table;
use crate::{Client, Mode, Options, Workload, librdkafka};

/// The benchmark's fixed shape.
pub const RECORD_SIZE: usize = 100;
pub const PARTITIONS: u32 = 6;
pub const LINGER: Duration = Duration::from_millis(5);
/// How long a consumer may see no record before it gives up: the records
/// it waits for were all written before it started.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one child may run before it is killed and the bench fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

pub fn workload(brokers: &str, topic: &str, records: u64) -> Workload {
    Workload {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        records,
        record_size: RECORD_SIZE,
        partitions: PARTITIONS,
        linger: LINGER,
    }
}

/// Runs `mode` (`produce`, `consume` or `all`) and prints the tables.
pub fn benchmarks(mode: &str, options: &Options) -> Result<()> {
    let mut tables = Vec::new();
    if matches!(mode, "produce" | "all") {
        tables.push(produce(options)?);
    }
    if matches!(mode, "consume" | "all") {
        tables.push(consume(options)?);
    }
    println!();
    for table in &tables {
        println!("{table}");
    }
    Ok(())
}

fn produce(options: &Options) -> Result<Table> {
    let mut table = Table::new(format!(
        "produce: {} records x {RECORD_SIZE} B, {PARTITIONS} partitions, acks=all, linger {} ms",
        options.records,
        LINGER.as_millis()
    ));
    for &client in Client::for_mode(Mode::Produce) {
        let mut best: Option<Measurement> = None;
        for run in 0..options.runs {
            // A fresh topic per run: every run writes to empty partitions.
            let topic = format!(
                "bench-produce-{}-{}-{run}",
                client.name(),
                std::process::id()
            );
            librdkafka::create_topic(&options.brokers, &topic, PARTITIONS)?;
            let m = child(
                client,
                Mode::Produce,
                &options.brokers,
                &topic,
                options.records,
            )?;
            // Every acknowledged record must be readable: librdkafka reads
            // the topic back (a consumer gives up if records are missing).
            child(
                Client::Librdkafka,
                Mode::Consume,
                &options.brokers,
                &topic,
                options.records,
            )
            .with_context(|| format!("reading back what {} produced", client.name()))?;
            eprintln!(
                "produce {:>10} run {run}: {:.0} records/s",
                client.name(),
                m.records_per_sec()
            );
            best = Some(faster(best, m));
        }
        table.add(client, best.expect("runs > 0"));
    }
    Ok(table)
}

fn consume(options: &Options) -> Result<Table> {
    let topic = format!("bench-consume-{}", std::process::id());
    librdkafka::create_topic(&options.brokers, &topic, PARTITIONS)?;
    let fill = child(
        Client::Librdkafka,
        Mode::Fill,
        &options.brokers,
        &topic,
        options.records,
    )?;
    eprintln!(
        "filled {topic} with {} records in {:.1?}",
        fill.records, fill.wall
    );

    let mut table = Table::new(format!(
        "consume: {} records x {RECORD_SIZE} B from {PARTITIONS} partitions",
        options.records
    ));
    for &client in Client::for_mode(Mode::Consume) {
        let mut best: Option<Measurement> = None;
        for run in 0..options.runs {
            let m = child(
                client,
                Mode::Consume,
                &options.brokers,
                &topic,
                options.records,
            )?;
            eprintln!(
                "consume {:>10} run {run}: {:.0} records/s",
                client.name(),
                m.records_per_sec()
            );
            best = Some(faster(best, m));
        }
        table.add(client, best.expect("runs > 0"));
    }
    Ok(table)
}

fn faster(best: Option<Measurement>, m: Measurement) -> Measurement {
    match best {
        Some(b) if b.wall <= m.wall => b,
        _ => m,
    }
}

/// Runs this binary's `child` command and parses its measurement.
fn child(
    client: Client,
    mode: Mode,
    brokers: &str,
    topic: &str,
    records: u64,
) -> Result<Measurement> {
    let exe = std::env::current_exe().context("find this executable")?;
    let mut child = Command::new(exe)
        .args(["child", client.name(), mode.name(), brokers, topic])
        .arg(records.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start a child process")?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} {} took longer than {CHILD_TIMEOUT:?}",
                client.name(),
                mode.name()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{} {} failed ({status}):\n{out}",
            client.name(),
            mode.name()
        );
    }
    out.lines().find_map(Measurement::parse).with_context(|| {
        format!(
            "{} {} printed no result:\n{out}",
            client.name(),
            mode.name()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(wall_ms: u64) -> Measurement {
        Measurement {
            records: 1,
            payload_bytes: 1,
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::ZERO,
            peak_rss: 0,
            allocations: 0,
            allocated_bytes: 0,
        }
    }

    #[test]
    fn the_fastest_run_is_kept() {
        assert_eq!(faster(None, m(5)), m(5));
        assert_eq!(faster(Some(m(5)), m(3)), m(3));
        assert_eq!(faster(Some(m(3)), m(5)), m(3));
    }

    #[test]
    fn the_workload_has_the_fixed_shape() {
        let w = workload("b:1", "t", 10);
        assert_eq!((w.record_size, w.partitions, w.linger), (100, 6, LINGER));
        assert_eq!(
            (w.brokers.as_str(), w.topic.as_str(), w.records),
            ("b:1", "t", 10)
        );
    }
}
