//! Memory stays bounded when the broker stalls while a producer keeps
//! writing: the `Writer`'s buffer limit (`buffer_bytes`) makes writes wait
//! and `try_produce` fail with `BufferFull`, instead of growing. Once the
//! broker answers again every record is delivered, once.
//!
//! CI size: 6,000 records of 1 KiB, a 1 MiB buffer, a 3 s stall.
//! `KAFKIT_RELIABILITY_FULL=1`: 1,000,000 records, a 60 s stall.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_tests::{FaultProxy, Reliability, reliability_full, unique_topic};
use kafkit_writer::{Error, Message, Writer};

const BUFFER: usize = 1 << 20;
const VALUE: usize = 1024;

/// Resident memory of this process, from /proc (Linux), in bytes.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A 1 KiB value that starts with the record's id.
fn value(i: u64) -> String {
    let id = i.to_string();
    format!("{id}{}", " ".repeat(VALUE - id.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_makes_writes_wait_instead_of_growing_memory() {
    let (records, stall) = if reliability_full() {
        (1_000_000u64, Duration::from_secs(60))
    } else {
        (6_000, Duration::from_secs(3))
    };
    let (broker, proxy) = FaultProxy::with_private_broker();
    let topic = unique_topic("rel-backpressure");
    broker.create_topic(&topic, 1);
    let writer = Writer::builder([proxy.addr().to_string()])
        .topic(&topic)
        .buffer_bytes(BUFFER)
        .max_message_bytes(64 << 10)
        .request_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    writer
        .send(Message::new(value(0)))
        .await
        .unwrap()
        .await
        .unwrap();
    let writer = Arc::new(writer);

    proxy.stall(true);
    let producer = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for i in 1..records {
                let m = Message::new(value(i));
                writer.produce(&m).await.unwrap();
            }
        })
    };
    // Let the buffer fill, then watch it while the producer keeps trying.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    let (mut peak, start) = (0, Instant::now());
    while start.elapsed() < stall {
        let (_, bytes) = writer.buffered();
        peak = peak.max(bytes);
        assert!(
            bytes <= BUFFER + 2 * VALUE,
            "{bytes} bytes buffered over a {BUFFER} limit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = before.zip(rss()).map(|(b, a)| a.saturating_sub(b));
    let refused = writer.try_produce(&Message::new(value(records)));
    assert!(
        matches!(refused, Err(Error::BufferFull { .. })),
        "{refused:?}"
    );
    assert!(
        !producer.is_finished(),
        "the producer should wait for space"
    );
    assert!(
        peak > BUFFER / 2,
        "the buffer never filled: peak {peak} bytes"
    );
    // Everything the producer tried while stalled stayed in its buffer:
    // the process may not grow by more than a few buffers' worth.
    if let Some(grown) = grown {
        eprintln!("peak buffered {peak} bytes; RSS grew {grown} bytes while stalled");
        assert!(
            grown < 16 * BUFFER as u64,
            "RSS grew {grown} bytes while stalled"
        );
    }

    proxy.stall(false);
    let resumed = Instant::now();
    tokio::time::timeout(Duration::from_secs(120), producer)
        .await
        .expect("the producer finishes once the broker answers")
        .unwrap();
    writer.flush().await.expect("every record is delivered");
    let recover = resumed.elapsed();
    writer.close().await.unwrap();

    let addr = broker.addr();
    let read = tokio::task::spawn_blocking(move || read_ids(addr, &topic))
        .await
        .unwrap();
    let sent: Vec<u64> = (0..records).collect();
    let report = Reliability::count("backpressure", &sent, &read, recover);
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report}");
}

/// The ids at the start of every value of partition 0.
fn read_ids(addr: std::net::SocketAddr, topic: &str) -> Vec<u64> {
    let mut client = kafkit_tests::RawClient::connect(addr);
    let (mut next, mut ids) = (0, Vec::new());
    loop {
        let data = client.fetch(topic, 0, next);
        let set = kafkit_protocol::records::RecordSet::new(data.records.unwrap_or_default());
        let before = ids.len();
        for record in set.records() {
            let record = record.unwrap();
            if record.offset >= next {
                next = record.offset + 1;
                let v = std::str::from_utf8(record.value.as_deref().unwrap()).unwrap();
                ids.push(v.trim_end().parse().unwrap());
            }
        }
        if ids.len() == before {
            return ids;
        }
    }
}
