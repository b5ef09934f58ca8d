//! Throughput and client CPU per record: 1M 100-byte records to a
//! 6-partition topic, acks=all, linger 5 ms, through each write API.
//!
//! ```sh
//! cargo run --release -p kafkit-writer --example throughput -- localhost:9092 [records]
//! ```
//!
//! CPU time is this process's (user + system, from `/proc/self/stat`), so
//! a broker on the same machine does not count.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_conn::{Conn, TopicConfig};
use kafkit_writer::{Message, Writer};

/// This process's CPU time so far (Linux; zero elsewhere).
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // After the command name (which may hold spaces) come the state (field
    // 3), ..., utime (field 14) and stime (15), in ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

async fn run(bootstrap: &str, mode: &str, records: usize) -> Result<(), kafkit_writer::Error> {
    let topic = format!("throughput-{mode}-{}", std::process::id());
    let conn = Conn::dial(bootstrap).await?;
    let controller = Conn::dial(conn.controller().await?.addr()).await?;
    for r in controller
        .create_topics(&[TopicConfig::new(&topic, 6)])
        .await?
    {
        r.result?;
    }
    let writer = Writer::builder([bootstrap]).topic(&topic).build().await?;
    let value = Bytes::from(vec![b'x'; 100]);
    let (wall, cpu) = (Instant::now(), cpu_time());
    match mode {
        "write_messages" => {
            let chunk: Vec<Message> = (0..10_000).map(|_| Message::new(value.clone())).collect();
            for _ in 0..records / chunk.len() {
                for r in writer.write_messages(&chunk).await? {
                    r?;
                }
            }
        }
        "write_messages_pipelined" => {
            // Several calls in flight at once, as several tasks would.
            let chunk: Vec<Message> = (0..10_000).map(|_| Message::new(value.clone())).collect();
            let calls = (0..records / chunk.len()).map(|_| writer.write_messages(&chunk));
            for results in futures_util_join(calls.collect()).await {
                for r in results? {
                    r?;
                }
            }
        }
        "produce" => {
            for _ in 0..records {
                writer.produce(&Message::new(value.clone())).await?;
            }
            writer.flush().await?;
        }
        "send" => {
            let mut deliveries = Vec::with_capacity(records);
            for _ in 0..records {
                deliveries.push(writer.send(Message::new(value.clone())).await?);
            }
            writer.flush().await?;
            for d in deliveries {
                d.await?;
            }
        }
        other => panic!("unknown mode {other}"),
    }
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    let stats = writer.stats();
    writer.close().await?;
    println!(
        "{mode:>24}: {records} records in {wall:.2?} ({:.0} rec/s), client CPU {:.3} us/record, {} requests, {} batches, p50 latency {:?}",
        records as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / records as f64,
        stats.requests,
        stats.batches,
        stats.latency.quantile(0.5).unwrap_or_default(),
    );
    Ok(())
}

/// Polls every future to completion concurrently (on this task).
async fn futures_util_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
}

#[tokio::main]
async fn main() -> Result<(), kafkit_writer::Error> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let records: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let modes = args.next();
    let modes: Vec<&str> = match &modes {
        Some(m) => m.split(',').collect(),
        None => vec![
            "write_messages",
            "write_messages_pipelined",
            "produce",
            "send",
        ],
    };
    for mode in modes {
        run(&bootstrap, mode, records).await?;
    }
    Ok(())
}
