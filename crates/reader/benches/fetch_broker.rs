//! End-to-end consume throughput and client CPU per record of a
//! [`Fetcher`] against a real broker: the records are written first (not
//! measured), then read from offset 0 while the process's CPU time
//! (user + system, from `/proc/self/stat`) and the wall clock run.
//!
//! ```text
//! KAFKIT_BROKERS=127.0.0.1:9092 cargo bench -p kafkit-reader --bench fetch_broker
//! ```
//!
//! `KAFKIT_BENCH_RECORDS` (default 1,000,000) sets the number of 100-byte
//! records, `KAFKIT_BENCH_PARTITIONS` (default 6) how many partitions they
//! are spread over. Without `KAFKIT_BROKERS` the bench says so and does nothing,
//! so `cargo bench` without a broker still passes. The broker's own CPU is
//! not counted: it runs in another process.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_conn::{Conn, Message as Produce, Purpose, TopicConfig, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};

const RECORD_SIZE: usize = 100;
const PER_REQUEST: usize = 10_000;

fn main() {
    let Ok(brokers) = std::env::var("KAFKIT_BROKERS") else {
        eprintln!("fetch_broker: set KAFKIT_BROKERS=host:port to run against a broker; skipped");
        return;
    };
    let records: usize = std::env::var("KAFKIT_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let partitions: usize = std::env::var("KAFKIT_BENCH_PARTITIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(brokers, records, partitions));
}

async fn run(brokers: String, records: usize, partitions: usize) {
    let bootstrap: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let topic = format!("kafkit-reader-bench-{}", std::process::id());
    let conn = Conn::dial(&bootstrap[0]).await.expect("dial");
    let controller = Conn::dial(conn.controller().await.expect("controller").addr())
        .await
        .expect("dial the controller");
    for result in controller
        .create_topics(&[TopicConfig::new(&topic, partitions as i32)])
        .await
        .expect("create the topic")
    {
        result.result.expect("topic created");
    }
    let transport = Transport::connect(TransportConfig::new(bootstrap))
        .await
        .expect("transport");

    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..partitions {
        let conn = transport
            .partition_conn(&topic, p as i32, Purpose::Produce)
            .await
            .expect("the partition's leader");
        producers.push(conn);
    }
    let value = Bytes::from(vec![b'x'; RECORD_SIZE]);
    let batch: Vec<Produce> = (0..PER_REQUEST)
        .map(|_| Produce::new(value.clone()))
        .collect();
    let mut written = 0;
    let mut next = 0;
    while written < records {
        let n = PER_REQUEST.min(records - written);
        producers[next % partitions]
            .write_messages(&batch[..n])
            .await
            .expect("produce");
        written += n;
        next += 1;
    }
    eprintln!(
        "wrote {records} records of {RECORD_SIZE} B to {partitions} partitions in {:.2?}",
        started.elapsed()
    );

    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(
        (0..partitions)
            .map(|p| {
                (
                    TopicPartition::new(topic.as_str(), p as i32),
                    StartOffset::Offset(0),
                )
            })
            .collect(),
    );
    let cpu = cpu_time();
    let wall = Instant::now();
    // One timeout around the loop: a timer per record would cost more
    // than the fetcher does.
    let read_all = async {
        let mut bytes = 0usize;
        for _ in 0..records {
            let message = fetcher.next().await.expect("no error");
            bytes += message.value_bytes().len();
        }
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(300), read_all)
        .await
        .expect("every record within 300 s");
    let wall = wall.elapsed();
    let cpu = cpu_time() - cpu;
    assert_eq!(bytes, records * RECORD_SIZE);
    let stats = fetcher.stats();
    println!(
        "consumed {records} records in {wall:.2?}: {:.0} records/s, {:.1} MB/s, client CPU {:.3} us/record ({} fetches)",
        records as f64 / wall.as_secs_f64(),
        bytes as f64 / wall.as_secs_f64() / 1e6,
        cpu.as_secs_f64() * 1e6 / records as f64,
        stats.fetches,
    );
}

/// The process's user + system CPU time (`/proc/self/stat`, in clock
/// ticks of 10 ms on Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at
    // field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
