//! A workload's report: the results table (one row per client, with its
//! ratios to kafkit, the broker's CPU per record and, for consumers, the
//! request bytes per record and kafkit's fetch counts), a line naming the
//! fastest client and the one with the least CPU per record, the clients
//! that do not run the workload, and the clients' effective settings side
//! by side, as each child printed them.

use std::fmt;

use serde_json::{Map, Value};

use crate::Client;
use crate::cells::{batch, cell};
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
    /// Chosen clients that do not run this workload, and why.
    skipped: Vec<(Client, &'static str)>,
}

impl Section {
    pub fn new(bench: Bench, title: String) -> Section {
        Section {
            bench,
            title,
            rows: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Notes that `client` does not run this workload, and why.
    pub fn skip(&mut self, client: Client, why: &'static str) {
        self.skipped.push((client, why));
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

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "### {}", self.title)?;
        writeln!(f)?;
        let consume = !self.bench.is_produce();
        let (extra_head, extra_rule) = if consume {
            (" request B/record | fetches (incremental) |", "---:|---:|")
        } else {
            ("", "")
        };
        writeln!(
            f,
            "| client | records/s | vs kafkit | MB/s | CPU us/record | vs kafkit | \
             broker CPU us/record | peak RSS (MB) | vs kafkit | allocs/record |{extra_head}"
        )?;
        writeln!(
            f,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{extra_rule}"
        )?;
        let k = self.kafkit();
        for row in &self.rows {
            let Ok((m, _)) = &row.result else {
                let blanks = if consume { " | |" } else { "" };
                writeln!(
                    f,
                    "| {} | failed | | | | | | | | |{blanks}",
                    row.client.name()
                )?;
                continue;
            };
            let allocations = match (row.client.counts_allocations(), m.allocations_per_record()) {
                (true, Some(a)) => format!("{a:.3}"),
                _ => "n/a".to_owned(),
            };
            let rss = m.peak_rss as f64 / (1 << 20) as f64;
            let broker = m
                .broker_cpu_us_per_record()
                .map_or("n/a".to_owned(), |c| format!("{c:.3}"));
            let extra = if consume {
                let request = match m.request_bytes_per_record() {
                    Some((b, false)) => format!("{b:.2}"),
                    Some((b, true)) => format!("{b:.2} (w)"),
                    None => "n/a".to_owned(),
                };
                let fetches = m.fetches.map_or("n/a".to_owned(), |(all, inc)| match inc {
                    Some(inc) => format!("{all} ({inc})"),
                    None => all.to_string(),
                });
                format!(" {request} | {fetches} |")
            } else {
                String::new()
            };
            writeln!(
                f,
                "| {} | {:.0} | {} | {:.1} | {:.3} | {} | {} | {:.1} | {} | {} |{extra}",
                row.client.name(),
                m.records_per_sec(),
                ratio(m.records_per_sec(), k.map(Measurement::records_per_sec)),
                m.mb_per_sec(),
                m.cpu_us_per_record(),
                ratio(m.cpu_us_per_record(), k.map(Measurement::cpu_us_per_record)),
                broker,
                rss,
                ratio(rss, k.map(|k| k.peak_rss as f64 / (1 << 20) as f64)),
                allocations,
            )?;
        }
        writeln!(f)?;
        for line in self.leaders() {
            writeln!(f, "{line}")?;
        }
        if consume
            && self
                .measured()
                .any(|(_, m, _)| m.request_bytes_per_record().is_some())
        {
            writeln!(
                f,
                "Request bytes: what the client's TCP connections sent during the timed \
                 section; `(w)`: what its write calls wrote (its sockets and any other file)."
            )?;
        }
        if !self.skipped.is_empty() {
            let notes: Vec<String> = self
                .skipped
                .iter()
                .map(|(c, why)| format!("{} ({why})", c.name()))
                .collect();
            writeln!(f, "Not run: {}.", notes.join(", "))?;
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
                "| client | fetch min | fetch max | partition max | max wait ms | buffer | \
                 fetch sessions | API |"
            )?;
            writeln!(f, "|---|---|---|---|---|---|---|---|")?;
            for (client, _, s) in self.measured() {
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    client.name(),
                    cell(s, "fetch_min_bytes", true),
                    cell(s, "fetch_max_bytes", true),
                    cell(s, "partition_max_bytes", true),
                    cell(s, "fetch_max_wait_ms", false),
                    cell(s, "buffer", false),
                    cell(s, "fetch_sessions", false),
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
            written: None,
            sent: None,
            fetches: None,
            broker_cpu: None,
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
            "| kafkit | 1000000 | 1.00x | 100.0 | 0.500 | 1.00x | n/a | 20.0 | 1.00x | 0.002 |"
        );
        assert_eq!(
            lines[5],
            "| librdkafka | 500000 | 0.50x | 50.0 | 1.000 | 2.00x | n/a | 40.0 | 2.00x | n/a |"
        );
        assert_eq!(lines[6], "| sarama | failed | | | | | | | | |");
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
        let mut java = m(1, 500, 20, None);
        java.broker_cpu = Some(Duration::from_millis(250));
        java.written = Some(2_000_000);
        s.add(Client::Java, Ok((java, Settings::new())));
        s.skip(Client::Sarama, "one topic");
        let text = s.to_string();
        assert!(text.contains(
            "| java | 1000000 | - | 100.0 | 0.500 | - | 0.250 | 20.0 | - | n/a | 2.00 (w) | n/a |"
        ));
        assert!(text.contains("Not run: sarama (one topic)."));
        assert!(text.contains("(the only client measured)"));
        assert!(text.contains("| client | fetch min |"));
    }
}
