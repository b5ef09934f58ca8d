//! A test-only at-least-once group consumer, run as a child process by
//! `tests/tests/reliability_consumer_sigkill.rs` so the test can SIGKILL it
//! mid-batch.
//!
//! ```text
//! group_consumer BOOTSTRAP GROUP TOPIC [--batch N] [--process-delay-us N]
//! ```
//!
//! It joins GROUP on TOPIC and loops: `fetch_message` up to N records
//! (default 200; a batch also ends after 200 ms without a record), "processes"
//! each one (sleeps `--process-delay-us`, default 200 µs, standing for real
//! work), then `commit_messages` the batch. Stdout, flushed line by line:
//!
//! - `P <partition> <offset> <value>`: a record processed (before its
//!   batch is committed);
//! - `C <count>`: the batch of `count` records just committed.
//!
//! When stdin reaches its end it commits the batch in hand, closes the
//! Reader (leaving the group) and exits 0. Any error is printed to stderr
//! and exits 1. Logs go to stderr, filtered by `RUST_LOG` (default `warn`).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kafkit_reader::Reader;

/// How long a batch waits for its next record before it is committed short.
const IDLE: Duration = Duration::from_millis(200);

/// Parsed command line.
#[derive(Debug)]
struct Args {
    bootstrap: String,
    group: String,
    topic: String,
    batch: usize,
    process_delay: Duration,
}

fn parse(args: &[String]) -> Result<Args> {
    let usage = "usage: group_consumer BOOTSTRAP GROUP TOPIC [--batch N] [--process-delay-us N]";
    let [bootstrap, group, topic, rest @ ..] = args else {
        bail!("{usage}");
    };
    let mut parsed = Args {
        bootstrap: bootstrap.clone(),
        group: group.clone(),
        topic: topic.clone(),
        batch: 200,
        process_delay: Duration::from_micros(200),
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        let number: u64 = value
            .parse()
            .with_context(|| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--batch" if number > 0 => parsed.batch = number as usize,
            "--process-delay-us" => parsed.process_delay = Duration::from_micros(number),
            _ => bail!("bad option {flag} {value}; {usage}"),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = parse(&args).and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("tokio runtime")?
            .block_on(consume(args))
    });
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("group_consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets the returned flag once stdin reaches its end (or fails).
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut sink = String::new();
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

async fn consume(args: Args) -> Result<()> {
    let stop = stop_on_stdin_eof();
    let mut reader = Reader::builder([args.bootstrap.as_str()])
        .group_id(&args.group)
        .topics([args.topic.as_str()])
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(300))
        .build()
        .await
        .context("joining the group")?;
    let mut out = std::io::stdout().lock();
    let mut batch = Vec::with_capacity(args.batch);
    loop {
        batch.clear();
        while batch.len() < args.batch && !stop.load(Ordering::SeqCst) {
            let Ok(message) = tokio::time::timeout(IDLE, reader.fetch_message()).await else {
                break;
            };
            let message = message.context("fetch_message")?;
            if !args.process_delay.is_zero() {
                // The "work": blocking on purpose, as CPU-bound processing would.
                std::thread::sleep(args.process_delay);
            }
            let value = String::from_utf8_lossy(message.value_bytes());
            writeln!(out, "P {} {} {value}", message.partition, message.offset)?;
            out.flush()?;
            batch.push(message);
        }
        if !batch.is_empty() {
            reader
                .commit_messages(&batch)
                .await
                .context("commit_messages")?;
            writeln!(out, "C {}", batch.len())?;
            out.flush()?;
        }
        if stop.load(Ordering::SeqCst) {
            return reader.close().await.context("close");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_command_line() {
        let a = parse(&strings(&["b:1", "g", "t"])).unwrap();
        assert_eq!(
            (a.batch, a.process_delay),
            (200, Duration::from_micros(200))
        );
        let a = parse(&strings(&[
            "b:1",
            "g",
            "t",
            "--batch",
            "7",
            "--process-delay-us",
            "0",
        ]))
        .unwrap();
        assert_eq!((a.batch, a.process_delay), (7, Duration::ZERO));
        assert!(parse(&strings(&["b:1", "g"])).is_err());
        assert!(parse(&strings(&["b:1", "g", "t", "--batch", "0"])).is_err());
        assert!(parse(&strings(&["b:1", "g", "t", "--batch"])).is_err());
        assert!(parse(&strings(&["b:1", "g", "t", "--nope", "1"])).is_err());
    }
}
