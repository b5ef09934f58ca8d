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
