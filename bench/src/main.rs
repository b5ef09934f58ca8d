//! kafkit's throughput benchmarks: kafkit against librdkafka (through the
//! rdkafka crate), on the same workload, against the same broker.
//!
//! ```text
//! kafkit-bench produce|consume|all --brokers HOST:PORT [--records N] [--runs N]
//! ```
//!
//! `cargo xtask bench` builds this in release mode, starts a tansu broker and
//! runs it. Each client runs in a child process of its own (this binary with
//! the hidden `child` command), so the CPU time (user + system, every
//! thread) and the peak RSS (VmHWM) in the table are that client's alone.
//!
//! - **produce**: 1M records of 100 bytes to 6 partitions (record `i` to
//!   partition `i % 6`), acks=all, linger 5 ms, no compression, timed from
//!   the first record to the last acknowledgement.
//! - **consume**: the same records, written once beforehand, read from the
//!   start of all 6 partitions (librdkafka's `BaseConsumer` with an
//!   assignment, kafkit's `Reader` in a consumer group of its own), timed
//!   from the first record to the last, so neither startup nor the group
//!   join counts. A third row, `kafkit-fetcher`, is the Reader's
//!   `Fetcher` alone with the partitions assigned. A counting global allocator reports allocations per record;
//!   it sees Rust allocations only, so it is shown for kafkit alone.

mod alloc;
mod kafkit;
mod librdkafka;
mod measure;
mod report;
mod run;

use std::time::Duration;

use anyhow::{Context, Result, bail};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// What one client is asked to do.
#[derive(Debug, Clone)]
pub struct Workload {
    pub brokers: String,
    pub topic: String,
    pub records: u64,
    pub record_size: usize,
    pub partitions: u32,
    pub linger: Duration,
}

/// The benchmark's record value: `size` bytes of printable filler.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Which client a child process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Librdkafka,
    Kafkit,
    /// kafkit's `Fetcher` alone (consume only): the Reader minus groups.
    KafkitFetcher,
}

impl Client {
    const ALL: &[Client] = &[Client::Librdkafka, Client::Kafkit, Client::KafkitFetcher];

    /// The clients measured in `mode`.
    pub fn for_mode(mode: Mode) -> &'static [Client] {
        match mode {
            Mode::Consume => Client::ALL,
            Mode::Produce | Mode::Fill => &Client::ALL[..2],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Client::Librdkafka => "librdkafka",
            Client::Kafkit => "kafkit",
            Client::KafkitFetcher => "kafkit-fetcher",
        }
    }

    fn from_name(name: &str) -> Option<Client> {
        Client::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// What a child process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Produce,
    Consume,
    /// Writes the consume bench's records (with librdkafka); not measured.
    Fill,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::Fill => "fill",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        [Mode::Produce, Mode::Consume, Mode::Fill]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

const USAGE: &str =
    "usage: kafkit-bench produce|consume|all --brokers HOST:PORT [--records N] [--runs N]";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some(mode @ ("produce" | "consume" | "all")) => {
            let options = Options::parse(&args[1..])?;
            run::benchmarks(mode, &options)
        }
        _ => bail!("{USAGE}"),
    }
}

/// The orchestrator's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub brokers: String,
    pub records: u64,
    pub runs: u32,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            brokers: String::new(),
            records: 1_000_000,
            runs: 1,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--brokers" => options.brokers = value.clone(),
                "--records" => options.records = value.parse().context("--records")?,
                "--runs" => options.runs = value.parse().context("--runs")?,
                _ => bail!("unknown option {flag}\n{USAGE}"),
            }
        }
        if options.brokers.is_empty() {
            bail!("--brokers is required\n{USAGE}");
        }
        if options.records == 0 || options.runs == 0 {
            bail!("--records and --runs must be positive");
        }
        Ok(options)
    }
}

/// `child CLIENT MODE BROKERS TOPIC RECORDS`: runs one client and prints its
/// [`measure::Measurement`] line.
fn child(args: &[String]) -> Result<()> {
    let [client, mode, brokers, topic, records] = args else {
        bail!("usage: kafkit-bench child CLIENT MODE BROKERS TOPIC RECORDS");
    };
    let client = Client::from_name(client).with_context(|| format!("unknown client {client}"))?;
    let mode = Mode::from_name(mode).with_context(|| format!("unknown mode {mode}"))?;
    let workload = run::workload(brokers, topic, records.parse().context("records")?);
    let measurement = match (client, mode) {
        (Client::Librdkafka, Mode::Produce | Mode::Fill) => librdkafka::produce(&workload)?,
        (Client::Librdkafka, Mode::Consume) => librdkafka::consume(&workload)?,
        (Client::Kafkit, Mode::Produce | Mode::Fill) => kafkit::produce(&workload)?,
        (Client::Kafkit, Mode::Consume) => kafkit::consume(&workload)?,
        (Client::KafkitFetcher, Mode::Consume) => kafkit::consume_fetcher(&workload)?,
        (Client::KafkitFetcher, _) => bail!("kafkit-fetcher only consumes"),
    };
    println!("{measurement}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = Options::parse(&args(&["--brokers", "h:1"])).unwrap();
        assert_eq!(
            (o.brokers.as_str(), o.records, o.runs),
            ("h:1", 1_000_000, 1)
        );
        let o = Options::parse(&args(&[
            "--brokers",
            "h:1",
            "--records",
            "5",
            "--runs",
            "2",
        ]))
        .unwrap();
        assert_eq!((o.records, o.runs), (5, 2));
        assert!(Options::parse(&args(&[])).is_err());
        assert!(Options::parse(&args(&["--brokers"])).is_err());
        assert!(Options::parse(&args(&["--brokers", "h:1", "--runs", "0"])).is_err());
        assert!(Options::parse(&args(&["--brokers", "h:1", "--x", "1"])).is_err());
    }

    #[test]
    fn clients_and_modes_round_trip_their_names() {
        for &c in Client::ALL {
            assert_eq!(Client::from_name(c.name()), Some(c));
        }
        for m in [Mode::Produce, Mode::Consume, Mode::Fill] {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert!(!Client::for_mode(Mode::Produce).contains(&Client::KafkitFetcher));
        assert_eq!(payload(30).len(), 30);
    }
}
