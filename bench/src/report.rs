//! The results table: one row per client, then kafkit / librdkafka.

use std::fmt;

use crate::Client;
use crate::measure::Measurement;

/// One benchmark's results.
#[derive(Debug)]
pub struct Table {
    title: String,
    rows: Vec<(Client, Measurement)>,
}

impl Table {
    pub fn new(title: String) -> Table {
        Table {
            title,
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, client: Client, m: Measurement) {
        self.rows.push((client, m));
    }

    fn row(&self, client: Client) -> Option<&Measurement> {
        self.rows.iter().find(|(c, _)| *c == client).map(|(_, m)| m)
    }
}

/// Allocations are counted in Rust's global allocator, which librdkafka
/// (C, malloc) does not use: only kafkit's figure means anything.
fn allocations(client: Client, m: &Measurement) -> String {
    match client {
        Client::Librdkafka => "n/a".to_owned(),
        Client::Kafkit | Client::KafkitFetcher => format!("{:.3}", m.allocations_per_record()),
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        writeln!(
            f,
            "| client | records/s | MB/s | CPU us/record | peak RSS (MB) | allocs/record |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for (client, m) in &self.rows {
            writeln!(
                f,
                "| {} | {:.0} | {:.1} | {:.3} | {:.1} | {} |",
                client.name(),
                m.records_per_sec(),
                m.mb_per_sec(),
                m.cpu_us_per_record(),
                m.peak_rss as f64 / (1 << 20) as f64,
                allocations(*client, m),
            )?;
        }
        if let (Some(k), Some(l)) = (self.row(Client::Kafkit), self.row(Client::Librdkafka)) {
            writeln!(
                f,
                "| kafkit / librdkafka | {:.2}x | {:.2}x | {:.2}x | {:.2}x | |",
                k.records_per_sec() / l.records_per_sec(),
                k.mb_per_sec() / l.mb_per_sec(),
                k.cpu_us_per_record() / l.cpu_us_per_record(),
                k.peak_rss as f64 / l.peak_rss as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn m(secs: u64, cpu_ms: u64, rss_mb: u64, allocations: u64) -> Measurement {
        Measurement {
            records: 1_000_000,
            payload_bytes: 100_000_000,
            wall: Duration::from_secs(secs),
            cpu: Duration::from_millis(cpu_ms),
            peak_rss: rss_mb << 20,
            allocations,
            allocated_bytes: 0,
        }
    }

    #[test]
    fn the_table_has_a_row_per_client_and_the_ratio() {
        let mut table = Table::new("produce".to_owned());
        table.add(Client::Librdkafka, m(2, 1000, 40, 5));
        table.add(Client::Kafkit, m(1, 500, 20, 2_000));
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "produce");
        assert_eq!(
            lines[3],
            "| librdkafka | 500000 | 50.0 | 1.000 | 40.0 | n/a |"
        );
        assert_eq!(
            lines[4],
            "| kafkit | 1000000 | 100.0 | 0.500 | 20.0 | 0.002 |"
        );
        assert_eq!(
            lines[5],
            "| kafkit / librdkafka | 2.00x | 2.00x | 0.50x | 0.50x | |"
        );
    }

    #[test]
    fn no_ratio_without_both_clients() {
        let mut table = Table::new("consume".to_owned());
        table.add(Client::KafkitFetcher, m(1, 500, 20, 0));
        assert!(!table.to_string().contains(" / "));
    }
}
