//! Incremental fetch sessions (KIP-227) against full fetches, for a
//! [`Fetcher`] of many partitions (default 10 topics x 100 partitions)
//! against a real broker: bytes per Fetch request and per response (from
//! the fetch connections' counters) and the consumer's CPU time (every
//! thread of this process but the producer's, from
//! `/proc/self/task/*/schedstat`), sessions off and on, in three phases:
//!
//! - `catch-up`: read the whole log from offset 0 of every partition: the
//!   records written beforehand (100 B each, spread evenly) and the earlier
//!   runs' trickles;
//! - `idle`: 5 s with nothing new: long polls only;
//! - `trickle`: 5 s of a steady trickle (one record every 5 ms at most,
//!   partition after partition, acks=all), each read as it comes, then
//!   the rest drained.
//!
//! ```text
//! KAFKIT_BROKERS=127.0.0.1:9092 cargo bench -p kafkit-reader --bench fetch_sessions
//! ```
//!
//! `KAFKIT_BENCH_TOPICS` (10), `KAFKIT_BENCH_PARTITIONS` (per topic, 100),
//! `KAFKIT_BENCH_RECORDS` (written first, 300,000) and `KAFKIT_BENCH_RUNS`
//! (2: off, on, off, on) change the shape. Without `KAFKIT_BROKERS` the
//! bench says so and does nothing. The producer runs on a thread and
//! runtime of its own, not counted. With `KAFKIT_BENCH_BROKER_PID` (a
//! broker on this machine) the broker's CPU time per phase is shown too
//! (`/proc/PID/stat`, in 10 ms ticks).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_conn::{Conn, Message as Produce, PartitionConn, Purpose, TopicConfig};
use kafkit_conn::{Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};

const RECORD_SIZE: usize = 100;
const PHASE: Duration = Duration::from_secs(5);
const TRICKLE_EVERY: Duration = Duration::from_millis(5);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let Ok(brokers) = std::env::var("KAFKIT_BROKERS") else {
        eprintln!("fetch_sessions: set KAFKIT_BROKERS=host:port to run against a broker; skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(brokers));
}

async fn run(brokers: String) {
    let (topics, per_topic) = (
        env("KAFKIT_BENCH_TOPICS", 10),
        env("KAFKIT_BENCH_PARTITIONS", 100),
    );
    let (records, runs) = (
        env("KAFKIT_BENCH_RECORDS", 300_000),
        env("KAFKIT_BENCH_RUNS", 2),
    );
    let bootstrap: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let names: Vec<String> = (0..topics)
        .map(|t| format!("kafkit-sessions-bench-{}-{t}", std::process::id()))
        .collect();
    let conn = Conn::dial(&bootstrap[0]).await.expect("dial");
    let controller = Conn::dial(conn.controller().await.expect("controller").addr())
        .await
        .expect("dial the controller");
    let configs: Vec<TopicConfig> = names
        .iter()
        .map(|n| TopicConfig::new(n, per_topic as i32))
        .collect();
    for result in controller.create_topics(&configs).await.expect("create") {
        result.result.expect("topic created");
    }
    let tps: Vec<TopicPartition> = names
        .iter()
        .flat_map(|n| (0..per_topic as i32).map(move |p| TopicPartition::new(n.as_str(), p)))
        .collect();
    let producer = Producer::start(bootstrap.clone(), tps.clone());
    let started = Instant::now();
    let each = records / tps.len();
    let mut in_log = tokio::task::block_in_place(|| producer.run(Job::Fill(each)));
    eprintln!(
        "wrote {in_log} records of {RECORD_SIZE} B to {} partitions ({topics} topics) in {:.1?}",
        tps.len(),
        started.elapsed()
    );
    println!(
        "| sessions | phase | records | fetches answered (incremental) | B per Fetch request | B per Fetch response | wall | consumer CPU | broker CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in 0..runs * 2 {
        let sessions = run % 2 == 1;
        let transport = Transport::connect(TransportConfig::new(bootstrap.clone()))
            .await
            .expect("transport");
        let config = FetchConfig {
            sessions,
            ..FetchConfig::default()
        };
        let mut fetcher = Fetcher::new(transport.clone(), config);
        let mut meter = Meter::start(&transport, &fetcher, &producer.tid).await;
        let from_start = tps.iter().map(|tp| (tp.clone(), StartOffset::Offset(0)));
        fetcher.assign(from_start.collect());
        // Every run reads the whole log, earlier trickles included.
        read(&mut fetcher, in_log).await;
        meter
            .report(sessions, "catch-up", in_log, &transport, &fetcher)
            .await;
        tokio::time::sleep(PHASE).await;
        meter
            .report(sessions, "idle", 0, &transport, &fetcher)
            .await;
        producer.jobs.send(Job::Trickle).expect("the producer");
        let mut read_n = 0;
        let written = loop {
            if let Ok(written) = producer.done.try_recv() {
                break written;
            }
            let next = tokio::time::timeout(Duration::from_millis(50), fetcher.next());
            if next.await.is_ok() {
                read_n += 1;
            }
        };
        read(&mut fetcher, written - read_n).await;
        in_log += written;
        meter
            .report(sessions, "trickle", written, &transport, &fetcher)
            .await;
        fetcher.close();
    }
}

/// What the producer does next.
enum Job {
    /// `n` records to every partition.
    Fill(usize),
    /// One record every [`TRICKLE_EVERY`] (at most) for [`PHASE`],
    /// partition after partition.
    Trickle,
}

/// The writing side, on a thread with a runtime (and so connections) of
/// its own, whose CPU time is left out.
struct Producer {
    tid: String,
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<usize>,
}

impl Producer {
    fn start(bootstrap: Vec<String>, tps: Vec<TopicPartition>) -> Producer {
        let (jobs, job_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tid_tx.send(thread_id());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let conns = runtime.block_on(leaders(bootstrap, &tps));
            while let Ok(job) = job_rx.recv() {
                let written = runtime.block_on(produce(&conns, job));
                if done_tx.send(written).is_err() {
                    return;
                }
            }
        });
        let tid = tid_rx.recv().expect("the producer thread");
        Producer { tid, jobs, done }
    }

    /// Runs `job` and waits for it: blocking.
    fn run(&self, job: Job) -> usize {
        self.jobs.send(job).expect("the producer");
        self.done.recv().expect("the producer")
    }
}

/// Each partition's leader, once the new topics' metadata names them.
async fn leaders(bootstrap: Vec<String>, tps: &[TopicPartition]) -> Vec<PartitionConn> {
    let transport = Transport::connect(TransportConfig::new(bootstrap))
        .await
        .expect("transport");
    let mut conns = Vec::new();
    for tp in tps {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match transport
                .partition_conn(&tp.topic, tp.partition, Purpose::Produce)
                .await
            {
                Ok(conn) => break conns.push(conn),
                Err(e) if Instant::now() > deadline => panic!("no leader for {tp}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    conns
}

async fn produce(conns: &[PartitionConn], job: Job) -> usize {
    let value = Bytes::from(vec![b'x'; RECORD_SIZE]);
    match job {
        Job::Fill(n) => {
            let batch: Vec<Produce> = (0..n).map(|_| Produce::new(value.clone())).collect();
            for conn in conns {
                write(conn, &batch).await;
            }
            n * conns.len()
        }
        Job::Trickle => {
            let record = [Produce::new(value)];
            let end = Instant::now() + PHASE;
            let mut n = 0;
            while Instant::now() < end {
                write(&conns[n % conns.len()], &record).await;
                n += 1;
                tokio::time::sleep(TRICKLE_EVERY).await;
            }
            n
        }
    }
}

/// Writes `batch`, waiting out a new topic's leaders that the metadata
/// names a moment before they serve.
async fn write(conn: &PartitionConn, batch: &[Produce]) {
    if batch.is_empty() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match conn.write_messages(batch).await {
            Ok(_) => return,
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("produce: {e}"),
        }
    }
}

async fn read(fetcher: &mut Fetcher, n: usize) {
    let all = async {
        for _ in 0..n {
            fetcher.next().await.expect("no error");
        }
    };
    tokio::time::timeout(Duration::from_secs(300), all)
        .await
        .expect("every record within 300 s");
}

/// Counters at the start of a phase.
struct Meter {
    except: String,
    wall: Instant,
    cpu: Duration,
    broker_cpu: Option<Duration>,
    fetches: u64,
    incremental: u64,
    wire: Wire,
}

impl Meter {
    async fn start(transport: &Transport, fetcher: &Fetcher, except: &str) -> Meter {
        let wire = wire(transport).await;
        let stats = fetcher.stats();
        Meter {
            except: except.to_owned(),
            wall: Instant::now(),
            cpu: cpu_time_except(except),
            broker_cpu: broker_cpu(),
            fetches: stats.fetches,
            incremental: stats.incremental_fetches,
            wire,
        }
    }

    /// Prints the phase since the last report and starts the next.
    async fn report(
        &mut self,
        sessions: bool,
        phase: &str,
        records: usize,
        transport: &Transport,
        fetcher: &Fetcher,
    ) {
        let now = Meter::start(transport, fetcher, &self.except).await;
        let requests = (now.wire.requests - self.wire.requests).max(1);
        let responses = (now.wire.responses - self.wire.responses).max(1);
        let cpu = now.cpu.saturating_sub(self.cpu);
        let cpu = if records > 0 {
            format!("{:.2} us/record", cpu.as_secs_f64() * 1e6 / records as f64)
        } else {
            format!("{:.1} ms", cpu.as_secs_f64() * 1e3)
        };
        let broker = match (now.broker_cpu, self.broker_cpu) {
            (Some(now), Some(then)) => format!("{} ms", now.saturating_sub(then).as_millis()),
            _ => "-".to_owned(),
        };
        println!(
            "| {} | {phase} | {records} | {} ({}) | {} | {} | {:.2?} | {cpu} | {broker} |",
            if sessions { "on" } else { "off" },
            now.fetches - self.fetches,
            now.incremental - self.incremental,
            (now.wire.written - self.wire.written) / requests,
            (now.wire.read - self.wire.read) / responses,
            now.wall - self.wall,
        );
        *self = now;
    }
}

/// What crossed the fetch connections of `transport`.
#[derive(Debug, Default, Clone, Copy)]
struct Wire {
    requests: u64,
    responses: u64,
    written: u64,
    read: u64,
}

async fn wire(transport: &Transport) -> Wire {
    let mut w = Wire::default();
    for broker in transport.snapshot().brokers().values() {
        if let Ok(conn) = transport.conn(&broker.addr(), Purpose::Fetch).await {
            let stats = conn.stats();
            w.requests += stats.requests;
            w.responses += stats.responses;
            w.written += stats.bytes_written;
            w.read += stats.bytes_read;
        }
    }
    w
}

/// CPU time of this process's live threads but `except` (the first field
/// of each `/proc/self/task/*/schedstat`, in nanoseconds). Zero off Linux.
fn cpu_time_except(except: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        if task.file_name().to_string_lossy() == except {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let on_cpu = stat.split_whitespace().next().and_then(|f| f.parse().ok());
        ns += on_cpu.unwrap_or(0u64);
    }
    Duration::from_nanos(ns)
}

/// The user + system CPU time of the process `KAFKIT_BENCH_BROKER_PID`.
fn broker_cpu() -> Option<Duration> {
    let pid = std::env::var("KAFKIT_BENCH_BROKER_PID").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces): utime and stime
    // are fields 14 and 15 of the line, 12 and 13 of the rest.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The calling thread's id, as `/proc/self/task` names it.
fn thread_id() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default()
}
