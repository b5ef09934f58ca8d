//! `kafkit produce TOPIC`: one record per input line, from stdin or a file,
//! through a kafkit-writer [`Writer`] (batching, idempotent with acks=all).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafkit_admin::Admin;
use kafkit_conn::{Compression, RequiredAcks};
use kafkit_writer::{DeliveryReport, Message, Writer};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tracing::Instrument;

use crate::connect::{ConnectArgs, parse_duration};
use crate::error::{Exit, Failure, Result};
use crate::progress::Progress;
use crate::stats::StatsTicker;
use crate::topics::describe_one;

/// Produce records: one per line of stdin (or --file).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  echo hello | kafkit produce greetings
  printf 'user-1:hello\\nuser-2:bye\\n' | kafkit produce greetings --key-separator :
  kafkit produce events -f events.txt -H source=import -H version=2 --compression zstd
  seq 1000000 | kafkit produce numbers --acks 1 --linger 20ms

Each line (without its line ending) is one record's value; empty lines are
empty records. A summary (records, bytes, time) goes to stderr.")]
pub struct ProduceArgs {
    /// The topic to write to (it must exist).
    pub topic: String,

    /// Read records from this file instead of stdin.
    #[arg(short = 'f', long, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Split each line at the first SEP into key and value (a line without
    /// SEP has no key).
    #[arg(short = 'K', long, value_name = "SEP")]
    pub key_separator: Option<String>,

    /// Add a header to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Write every record to this partition (default: keyed records by key
    /// hash, keyless ones spread in batches).
    #[arg(short = 'p', long, value_name = "N")]
    pub partition: Option<i32>,

    /// Print a JSON snapshot of the client's statistics to stderr every
    /// DURATION (per-broker round trips, per-partition offsets and lag,
    /// the group's state), one object per line.
    #[arg(long, value_parser = crate::connect::parse_duration, value_name = "DURATION")]
    pub stats: Option<Duration>,

    /// Which replicas must have a record before it counts as written.
    #[arg(long, value_enum, default_value = "all", allow_hyphen_values = true)]
    pub acks: Acks,

    /// Compress batches with this codec.
    #[arg(short = 'z', long, value_enum, default_value = "none")]
    pub compression: Codec,

    /// How long a batch waits for more records before it is sent.
    #[arg(long, default_value = "5ms", value_parser = parse_duration, value_name = "DURATION")]
    pub linger: Duration,
}

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// Every in-sync replica (idempotent: retries never duplicate).
    #[value(name = "all", alias = "-1")]
    All,
    /// The leader only.
    #[value(name = "1")]
    One,
    /// No acknowledgement at all (fastest; failures go unnoticed).
    #[value(name = "0")]
    None,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// What the delivery callback counts.
#[derive(Debug, Default)]
struct Outcomes {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<kafkit_writer::Error>>,
}

impl Outcomes {
    fn record(&self, report: DeliveryReport) {
        match report.result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Turns one input line into a record.
fn record(line: &[u8], args: &ProduceArgs) -> Message {
    let (key, value) = match args.key_separator.as_deref().map(str::as_bytes) {
        Some(sep) if !sep.is_empty() => match line.windows(sep.len()).position(|w| w == sep) {
            Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
            None => (None, line),
        },
        _ => (None, line),
    };
    let mut m = Message::new(Bytes::copy_from_slice(value));
    if let Some(key) = key {
        m = m.with_key(Bytes::copy_from_slice(key));
    }
    for (k, v) in &args.headers {
        m = m.with_header(k.clone(), Bytes::copy_from_slice(v.as_bytes()));
    }
    if let Some(p) = args.partition {
        m = m.with_partition(p);
    }
    m
}

/// Reads the next line into `buf` (which the caller empties after each
/// line) without its line ending; false at the end.
///
/// Cancel safety: safe; the bytes of a line read before a cancellation
/// stay in `buf`, and the next call reads the rest of the line.
async fn next_line(input: &mut (impl AsyncBufRead + Unpin), buf: &mut Vec<u8>) -> Result<bool> {
    if input.read_until(b'\n', buf).await? == 0 && buf.is_empty() {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

/// Runs `produce`.
pub async fn run(connect: &ConnectArgs, args: &ProduceArgs, quiet: bool) -> Result<()> {
    let span = tracing::info_span!("kafkit_produce", topic = %args.topic);
    async {
        let transport = connect.connect().await?;
        let topic = describe_one(&Admin::new(transport.clone()), &args.topic).await?;
        if let Some(p) = args
            .partition
            .filter(|p| !topic.partitions.iter().any(|d| d.partition == *p))
        {
            return Err(Failure::new(
                Exit::NotFound,
                format!("topic {} has no partition {p}", args.topic),
            ));
        }
        let mut input: Box<dyn AsyncBufRead + Unpin + Send> = match &args.file {
            Some(path) => Box::new(BufReader::new(tokio::fs::File::open(path).await.map_err(
                |e| Failure::from(e).context(format!("cannot open {}", path.display())),
            )?)),
            None => Box::new(BufReader::new(tokio::io::stdin())),
        };
        let outcomes = Arc::new(Outcomes::default());
        let callback = outcomes.clone();
        let writer = Writer::with_transport(transport)
            .topic(&args.topic)
            .required_acks(match args.acks {
                Acks::All => RequiredAcks::All,
                Acks::One => RequiredAcks::One,
                Acks::None => RequiredAcks::None,
            })
            .compression(match args.compression {
                Codec::None => Compression::None,
                Codec::Gzip => Compression::Gzip,
                Codec::Snappy => Compression::Snappy,
                Codec::Lz4 => Compression::Lz4,
                Codec::Zstd => Compression::Zstd,
            })
            .linger(args.linger)
            .on_delivery(move |report| callback.record(report))
            .build()
            .await?;

        let mut progress = Progress::new("produced", !quiet, None);
        let mut line = Vec::new();
        let mut interrupted = false;
        let mut written = Ok(());
        let mut stats = StatsTicker::new(args.stats);
        loop {
            let more = tokio::select! {
                more = next_line(&mut input, &mut line) => more,
                () = stats.tick() => {
                    crate::stats::print("writer", &writer.stats());
                    continue;
                }
                _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
            };
            match more {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    written = Err(e.context("reading input"));
                    break;
                }
            }
            let m = record(&line, args);
            line.clear();
            let size =
                m.value.as_ref().map_or(0, Bytes::len) + m.key.as_ref().map_or(0, Bytes::len);
            if let Err(e) = writer.produce(&m).await {
                written = Err(Failure::from(e));
                break;
            }
            progress.add(size);
        }
        // Everything read is flushed, even after an interrupt or an input error.
        let closed = writer.close().await;
        progress.finish();
        let failed = outcomes.failed.load(Ordering::Relaxed);
        let delivered = outcomes.delivered.load(Ordering::Relaxed);
        if !quiet {
            let mut summary = progress.summary();
            if failed > 0 {
                summary.push_str(&format!(", {delivered} delivered, {failed} failed"));
            }
            if interrupted {
                summary.push_str(" (interrupted)");
            }
            eprintln!("{summary} to {}", args.topic);
        }
        written?;
        if failed > 0 {
            let first = outcomes
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(e) = first {
                return Err(Failure::from(e).context(format!("{failed} records failed; the first")));
            }
        }
        closed.map_err(Failure::from)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn args(extra: &[&str]) -> ProduceArgs {
        Test::try_parse_from(["t", "topic"].iter().chain(extra))
            .unwrap()
            .args
    }

    #[test]
    fn lines_split_into_key_and_value_at_the_first_separator() {
        let a = args(&["-K", "::", "-H", "a=1", "-H", "b=x=y", "-p", "2"]);
        let m = record(b"user-1::hello::world", &a);
        assert_eq!(m.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(m.value.as_deref(), Some(&b"hello::world"[..]));
        assert_eq!(m.partition, Some(2));
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.headers[1].key, "b");
        assert_eq!(m.headers[1].value.as_deref(), Some(&b"x=y"[..]));
        let keyless = record(b"no separator", &a);
        assert_eq!(keyless.key, None);
        assert_eq!(keyless.value.as_deref(), Some(&b"no separator"[..]));
    }

    #[test]
    fn flags_parse_to_writer_settings() {
        let a = args(&["--acks", "1", "-z", "zstd", "--linger", "20ms"]);
        assert_eq!((a.acks, a.compression), (Acks::One, Codec::Zstd));
        assert_eq!(a.linger, Duration::from_millis(20));
        assert_eq!(args(&["--acks", "-1"]).acks, Acks::All);
        assert!(Test::try_parse_from(["t", "topic", "-H", "novalue"]).is_err());
        assert!(Test::try_parse_from(["t", "topic", "--acks", "2"]).is_err());
    }

    #[tokio::test]
    async fn lines_lose_their_endings_only() {
        let mut input = BufReader::new(&b"one\r\ntwo\n\nthree"[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut input, &mut buf).await.unwrap() {
            lines.push(String::from_utf8(std::mem::take(&mut buf)).unwrap());
        }
        assert_eq!(lines, ["one", "two", "", "three"]);
    }
}
