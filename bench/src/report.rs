//! A workload's report: the results table (one row per client, with its
//! ratios to kafkit), a line naming the fastest client and the one with
//! the least CPU per record, and the clients' effective settings side by
//! side, as each child printed them.

use std::fmt;

use serde_json::{Map, Value};

use crate::Client;
use crate::measure::Measurement;
use crate::workload::Bench;

/// A child's settings line, `{"settings":{...}}`, unwrapped.
pub type Settings = Map<String, Value>;

/// One client's outcome: its best run and its settings, or why it failed.
#[derive(Debug)]
pub struct Row {
    pub client: Client,
    pub result: Result<(Measurement, Settings), String>,
}

/// One workload's results.
#[derive(Debug)]
pub struct Section {
    bench: Bench,
    title: String,
    rows: Vec<Row>,
}

impl Section {
    pub fn new(bench: Bench, title: String) -> Section {
        Section {
            bench,
            title,
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, client: Client, result: Result<(Measurement, Settings), String>) {
        self.rows.push(Row { client, result });
    }

    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.result.is_err()).count()
    }

    fn measured(&self) -> impl Iterator<Item = (Client, &Measurement, &Settings)> {
        self.rows
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|(m, s)| (r.client, m, s)))
    }

    fn kafkit(&self) -> Option<&Measurement> {
        self.measured()
            .find(|(c, _, _)| *c == Client::Kafkit)
            .map(|(_, m, _)| m)
    }

    /// "Fastest: ..." and "Least CPU per record: ...", each against the
    /// runner-up.
    fn leaders(&self) -> Vec<String> {
        let mut by_rate: Vec<(Client, &Measurement)> =
            self.measured().map(|(c, m, _)| (c, m)).collect();
        if by_rate.is_empty() {
            return Vec::new();
        }
        by_rate.sort_by(|a, b| b.1.records_per_sec().total_cmp(&a.1.records_per_sec()));
        let mut by_cpu = by_rate.clone();
        by_cpu.sort_by(|a, b| a.1.cpu_us_per_record().total_cmp(&b.1.cpu_us_per_record()));
        let (fast, f) = by_rate[0];
        let (lean, l) = by_cpu[0];
        let fastest = match by_rate.get(1) {
            Some((next, n)) => format!(
                "Fastest: **{}**, {:.0} records/s, {:.0}% more than the next, {} ({:.0} records/s).",
                fast.name(),
                f.records_per_sec(),
                (f.records_per_sec() / n.records_per_sec() - 1.0) * 100.0,
                next.name(),
                n.records_per_sec()
            ),
            None => format!(
                "Fastest: **{}**, {:.0} records/s (the only client measured).",
                fast.name(),
                f.records_per_sec()
            ),
        };
        let leanest = match by_cpu.get(1) {
            Some((next, n)) => format!(
                "Least CPU per record: **{}**, {:.3} us, {:.0}% less than the next, {} ({:.3} us).",
                lean.name(),
                l.cpu_us_per_record(),
                (1.0 - l.cpu_us_per_record() / n.cpu_us_per_record()) * 100.0,
                next.name(),
                n.cpu_us_per_record()
            ),
            None => format!(
                "Least CPU per record: **{}**, {:.3} us (the only client measured).",
                lean.name(),
                l.cpu_us_per_record()
            ),
        };
        vec![fastest, leanest]
    }
}

/// `x` as a ratio to kafkit's `k`, or "-" without kafkit.
fn ratio(x: f64, k: Option<f64>) -> String {
    match k {
        Some(k) if k > 0.0 => format!("{:.2}x", x / k),
        _ => "-".to_owned(),
    }
}

/// Bytes the way a person reads them: `64 MiB`, `1 KiB`, `1000000 B`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Free text with `N B` and `N KiB` in it, the numbers made readable.
fn humanize(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let unit = words
            .get(i + 1)
            .map(|u| u.trim_end_matches([',', ';', ')']));
        let scale = match unit {
            Some("B") => Some(1),
            Some("KiB") => Some(1024),
            _ => None,
        };
        match (words[i].parse::<u64>(), scale) {
            (Ok(n), Some(scale)) => {
                let rest = &words[i + 1][unit.map_or(0, str::len)..];
                out.push(format!("{}{rest}", bytes(n * scale)));
                i += 2;
            }
            _ => {
                out.push(words[i].to_owned());
                i += 1;
            }
        }
    }
    out.join(" ")
}

/// A setting as a table cell; `as_bytes` for sizes.
fn cell(settings: &Settings, key: &str, as_bytes: bool) -> String {
    let text = match settings.get(key) {
        None | Some(Value::Null) => return "-".to_owned(),
        Some(Value::Bool(b)) => return if *b { "yes" } else { "no" }.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    match text.parse::<f64>() {
        Ok(n) if as_bytes && n >= 0.0 && n.fract() == 0.0 => bytes(n as u64),
        _ => humanize(&text).replace('|', "/"),
    }
}

/// The producer's batch limit: bytes, and records when there is a limit.
fn batch(settings: &Settings) -> String {
    let b = cell(settings, "batch_max_bytes", true);
    match settings.get("batch_max_records") {
        Some(Value::Number(n)) => format!("{b}, {n} records"),
        _ => b,
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "### {}", self.title)?;
        writeln!(f)?;
        writeln!(
            f,
            "| client | records/s | vs kafkit | MB/s | CPU us/record | vs kafkit | \
             peak RSS (MB) | vs kafkit | allocs/record |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let k = self.kafkit();
        for row in &self.rows {
            let Ok((m, _)) = &row.result else {
                writeln!(f, "| {} | failed | | | | | | | |", row.client.name())?;
                continue;
            };
            let allocations = match (row.client.counts_allocations(), m.allocations_per_record()) {
                (true, Some(a)) => format!("{a:.3}"),
                _ => "n/a".to_owned(),
            };
            let rss = m.peak_rss as f64 / (1 << 20) as f64;
            writeln!(
                f,
                "| {} | {:.0} | {} | {:.1} | {:.3} | {} | {:.1} | {} | {} |",
                row.client.name(),
                m.records_per_sec(),
                ratio(m.records_per_sec(), k.map(Measurement::records_per_sec)),
                m.mb_per_sec(),
                m.cpu_us_per_record(),
                ratio(m.cpu_us_per_record(), k.map(Measurement::cpu_us_per_record)),
                rss,
                ratio(rss, k.map(|k| k.peak_rss as f64 / (1 << 20) as f64)),
                allocations,
            )?;
        }
        writeln!(f)?;
        for line in self.leaders() {
            writeln!(f, "{line}")?;
        }
        writeln!(f)?;

        writeln!(
            f,
            "Settings ({}), as each client reported them:",
            self.bench.name()
        )?;
        writeln!(f)?;
        if self.bench.is_produce() {
            writeln!(
                f,
                "| client | acks | idempotent | linger ms | compression | partitioner | \
                 batch limit | in flight | buffer | API |"
            )?;
            writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
            for (client, _, s) in self.measured() {
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    client.name(),
                    cell(s, "acks", false),
                    cell(s, "idempotent", false),
                    cell(s, "linger_ms", false),
                    cell(s, "compression", false),
                    cell(s, "partitioner", false),
                    batch(s),
                    cell(s, "max_in_flight", false),
                    cell(s, "buffer", false),
                    cell(s, "path", false),
                )?;
            }
        } else {
            writeln!(
                f,
                "| client | fetch min | fetch max | partition max | max wait ms | buffer | API |"
            )?;
            writeln!(f, "|---|---|---|---|---|---|---|")?;
            for (client, _, s) in self.measured() {
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    client.name(),
                    cell(s, "fetch_min_bytes", true),
                    cell(s, "fetch_max_bytes", true),
                    cell(s, "partition_max_bytes", true),
                    cell(s, "fetch_max_wait_ms", false),
                    cell(s, "buffer", false),
                    cell(s, "path", false),
                )?;
            }
        }
        let failed: Vec<&Row> = self.rows.iter().filter(|r| r.result.is_err()).collect();
        if !failed.is_empty() {
            writeln!(f)?;
            writeln!(f, "Failed:")?;
            for row in failed {
                if let Err(e) = &row.result {
                    let first = e.lines().next().unwrap_or_default();
                    writeln!(f, "- {}: {first}", row.client.name())?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn m(secs: u64, cpu_ms: u64, rss_mb: u64, allocations: Option<u64>) -> Measurement {
        Measurement {
            records: 1_000_000,
            payload_bytes: 100_000_000,
            wall: Duration::from_secs(secs),
            cpu: Duration::from_millis(cpu_ms),
            peak_rss: rss_mb << 20,
            allocations,
        }
    }

    fn settings(v: Value) -> Settings {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_table_has_a_row_per_client_ratios_and_leaders() {
        let mut s = Section::new(Bench::Produce, "produce: test".to_owned());
        s.add(
            Client::Kafkit,
            Ok((
                m(1, 500, 20, Some(2_000)),
                settings(serde_json::json!({"acks": "all", "idempotent": true,
                    "batch_max_bytes": 1048576, "batch_max_records": 10000,
                    "buffer": "67108864 B, 1000000 records"})),
            )),
        );
        s.add(
            Client::Librdkafka,
            Ok((m(2, 1000, 40, None), Settings::new())),
        );
        s.add(
            Client::Sarama,
            Err("stopped after 3 of 5 records".to_owned()),
        );
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "### produce: test");
        assert_eq!(
            lines[4],
            "| kafkit | 1000000 | 1.00x | 100.0 | 0.500 | 1.00x | 20.0 | 1.00x | 0.002 |"
        );
        assert_eq!(
            lines[5],
            "| librdkafka | 500000 | 0.50x | 50.0 | 1.000 | 2.00x | 40.0 | 2.00x | n/a |"
        );
        assert_eq!(lines[6], "| sarama | failed | | | | | | | |");
        assert!(text.contains(
            "Fastest: **kafkit**, 1000000 records/s, 100% more than the next, librdkafka \
             (500000 records/s)."
        ));
        assert!(text.contains(
            "Least CPU per record: **kafkit**, 0.500 us, 50% less than the next, librdkafka \
             (1.000 us)."
        ));
        assert!(text.contains(
            "| kafkit | all | yes | - | - | - | 1 MiB, 10000 records | - | 64 MiB, 1000000 records | - |"
        ));
        assert!(text.contains("- sarama: stopped after 3 of 5 records"));
        assert_eq!(s.failures(), 1);
    }

    #[test]
    fn without_kafkit_there_are_no_ratios() {
        let mut s = Section::new(Bench::Consume, "consume".to_owned());
        s.add(Client::Java, Ok((m(1, 500, 20, None), Settings::new())));
        let text = s.to_string();
        assert!(text.contains("| java | 1000000 | - | 100.0 | 0.500 | - | 20.0 | - | n/a |"));
        assert!(text.contains("(the only client measured)"));
        assert!(text.contains("| client | fetch min |"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(52428800), "50 MiB");
        assert_eq!(bytes(16384), "16 KiB");
        assert_eq!(bytes(1000012), "1000012 B");
        assert_eq!(
            humanize("65536 KiB, 100000 records per partition"),
            "64 MiB, 100000 records per partition"
        );
        assert_eq!(humanize("67108864 B"), "64 MiB");
        assert_eq!(humanize("5 per broker"), "5 per broker");
        let s = settings(serde_json::json!({"a": "1048576", "b": 500, "c": null}));
        assert_eq!(cell(&s, "a", true), "1 MiB");
        assert_eq!(cell(&s, "b", false), "500");
        assert_eq!(cell(&s, "c", false), "-");
    }
}
