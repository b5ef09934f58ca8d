//! A group consumer in its own process (`src/bin/group_consumer.rs`:
//! `fetch_message`, process, `commit_messages` per batch of 200) killed
//! with SIGKILL in the middle of a batch, twice, then restarted: the OS
//! takes the process down with its sockets, no `close()`, no LeaveGroup,
//! no last commit. The group gives the dead member's partitions to the next
//! incarnation once its session times out, which resumes from the last
//! commit: every record is processed at least once and none is skipped;
//! the records of each unfinished batch come again (the redelivered count).
//!
//! The child prints each record it processed (flushed) and each commit,
//! so the test knows exactly what was processed before the kill. Its logs
//! (`RUST_LOG`, default `kafkit_reader=debug`) go to a file under the
//! target's tmp dir, named in any failure.
//!
//! CI size: 10,000 records on 3 partitions. `KAFKIT_RELIABILITY_FULL=1`:
//! 200,000 (each record costs the child 200 µs of "work", which keeps the
//! kill inside a batch).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use kafkit_tests::{Reliability, TestBroker, reliability_full, unique_topic};
use kafkit_writer::{Message as Record, Writer};

const PARTITIONS: u32 = 3;
/// The child's batch: records fetched before each commit.
const BATCH: usize = 200;
/// The kill comes once the current batch has at least this many records
/// processed, so a good part of the batch is left uncommitted.
const KILL_IN_BATCH: usize = 10;
/// The longest an incarnation may go without processing a record.
const STALL: Duration = Duration::from_secs(60);

fn produce(broker: &TestBroker, topic: &str, records: u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let writer = Writer::builder([broker.bootstrap()])
            .topic(topic)
            .build()
            .await
            .unwrap();
        let ids: Vec<u64> = (0..records).collect();
        for chunk in ids.chunks(10_000) {
            let batch: Vec<Record> = chunk
                .iter()
                .map(|i| Record::new(i.to_string()).with_partition((i % 3) as i32))
                .collect();
            for result in writer.write_messages(&batch).await.unwrap() {
                result.unwrap();
            }
        }
        writer.close().await.unwrap();
    });
}

/// One incarnation of the consumer process.
struct Consumer {
    process: Child,
    /// Its stdout, line by line; disconnected once the process is gone.
    lines: Receiver<String>,
    /// Closing it asks the consumer to commit, leave and exit.
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Consumer {
    fn spawn(broker: &TestBroker, group: &str, topic: &str, incarnation: usize) -> Consumer {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{group}-incarnation-{incarnation}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "kafkit_reader=debug".into());
        let mut process = Command::new(env!("CARGO_BIN_EXE_group_consumer"))
            .args([&broker.bootstrap(), group, topic])
            .args(["--batch", &BATCH.to_string(), "--process-delay-us", "200"])
            .env("RUST_LOG", filter)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the group_consumer binary starts");
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = process.stdin.take();
        Consumer {
            process,
            lines,
            stdin,
            log,
        }
    }

    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("log {}:\n{tail}", self.log.display())
    }
}

/// What the test has seen the consumers do, over all incarnations.
#[derive(Default)]
struct Seen {
    /// Every processed record id, redeliveries included.
    processed: Vec<u64>,
    distinct: HashSet<u64>,
    /// Records processed since the last commit line.
    in_batch: usize,
}

impl Seen {
    /// Accounts for one line of a consumer; true for a processed record.
    fn line(&mut self, line: &str) -> bool {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["P", _partition, _offset, value] => {
                let id: u64 = value.parse().expect("record values are ids");
                self.processed.push(id);
                self.distinct.insert(id);
                self.in_batch += 1;
                true
            }
            ["C", _count] => {
                self.in_batch = 0;
                false
            }
            _ => panic!("unexpected consumer output: {line}"),
        }
    }
}

/// Runs one incarnation until it has processed `kill_after` records and is
/// inside a batch, then SIGKILLs it (or, with `None`, until every record
/// was processed, then lets it close). Returns when its first record came
/// and, for a kill, how many processed records it left uncommitted.
fn run(
    consumer: &mut Consumer,
    seen: &mut Seen,
    records: u64,
    kill_after: Option<usize>,
) -> (Option<Instant>, Option<usize>) {
    let (mut first, mut here) = (None, 0);
    seen.in_batch = 0;
    loop {
        let line = match consumer.lines.recv_timeout(STALL) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let _ = consumer.process.kill();
                let _ = consumer.process.wait();
                panic!(
                    "stuck at {} of {records} records: no record for {STALL:?}\n{}",
                    seen.distinct.len(),
                    consumer.log_tail()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = consumer.process.wait().unwrap();
                panic!("the consumer exited ({status})\n{}", consumer.log_tail());
            }
        };
        if seen.line(&line) {
            first.get_or_insert_with(Instant::now);
            here += 1;
        }
        match kill_after {
            Some(k) if here >= k && seen.in_batch >= KILL_IN_BATCH => {
                consumer.process.kill().unwrap(); // SIGKILL
                break;
            }
            None if seen.distinct.len() as u64 == records => {
                consumer.stdin = None; // EOF: commit, leave the group, exit
                break;
            }
            _ => {}
        }
    }
    // What it printed before it died (or while closing) was processed too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = consumer
        .lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        seen.line(&line);
    }
    let status = consumer.process.wait().unwrap();
    match kill_after {
        Some(_) => (first, Some(seen.in_batch)),
        None => {
            assert!(status.success(), "{status}\n{}", consumer.log_tail());
            assert_eq!(seen.in_batch, 0, "the last batch was committed at close");
            (first, None)
        }
    }
}

#[test]
fn a_consumer_process_sigkilled_mid_batch_loses_nothing_after_restart() {
    let records: u64 = if reliability_full() { 200_000 } else { 10_000 };
    let broker = TestBroker::start();
    let topic = unique_topic("rel-sigkill");
    let group = unique_topic("rel-sigkill-group");
    broker.create_topic(&topic, PARTITIONS);
    produce(&broker, &topic, records);

    let mut seen = Seen::default();
    let mut recover = Duration::ZERO;
    let mut killed_at: Option<Instant> = None;
    let third = (records / 3) as usize;
    for (incarnation, kill_after) in [Some(third), Some(third), None].into_iter().enumerate() {
        let mut consumer = Consumer::spawn(&broker, &group, &topic, incarnation);
        let (first, uncommitted) = run(&mut consumer, &mut seen, records, kill_after);
        if let (Some(killed), Some(first)) = (killed_at, first) {
            recover = recover.max(first - killed);
        }
        if let Some(uncommitted) = uncommitted {
            assert!(
                uncommitted > 0,
                "the kill landed between batches, not inside one"
            );
            println!("incarnation {incarnation}: SIGKILLed with {uncommitted} records uncommitted");
            killed_at = Some(Instant::now());
        }
    }

    let sent: Vec<u64> = (0..records).collect();
    let report = Reliability::count("consumer_sigkill", &sent, &seen.processed, recover);
    assert_eq!(report.lost, 0, "{report}");
    // The uncommitted part of the killed batches came again.
    assert!(report.duplicated > 0, "{report}");
    assert!(recover < Duration::from_secs(20), "{report}");
}
