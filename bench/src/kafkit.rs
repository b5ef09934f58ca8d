//! The kafkit side: a [`Writer`] fed with `produce` (fire and forget, the
//! outcome to a delivery callback), as librdkafka's side is; the
//! [`Fetcher`] with every partition assigned from its start (no group), as
//! every other client reads (on request, `kafkit-no-sessions`, with fetch
//! sessions off); and, on request (`kafkit-reader`), a [`Reader`] in a
//! consumer group of its own, which gets every partition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use kafkit_conn::{Transport, TransportConfig};
use kafkit_reader::group::{Rebalance, RebalanceKind};
use kafkit_reader::{FetchConfig, Fetcher, OffsetReset, Reader, StartOffset, TopicPartition};
use kafkit_writer::{Message, RequiredAcks, Writer};

use crate::measure::{Measurement, Snapshot, print_settings};
use crate::run::IDLE_TIMEOUT;
use crate::{Workload, keys, payload};

/// Awaits `next` with the idle timeout armed only when it has to wait, as
/// librdkafka's `poll(timeout)` only waits on an empty queue: a timer per
/// record would charge the harness's clock reads to kafkit.
async fn within_idle_timeout<T>(next: impl Future<Output = T>) -> Result<T> {
    let mut next = std::pin::pin!(next);
    let first = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(value) => Ok(value),
        Poll::Pending => tokio::time::timeout(IDLE_TIMEOUT, next)
            .await
            .context("no record for a while"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")
}

/// Produces `w.records` records and waits for every acknowledgement.
pub fn produce(w: &Workload) -> Result<Measurement> {
    runtime()?.block_on(produce_async(w))
}

async fn produce_async(w: &Workload) -> Result<Measurement> {
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (a, f) = (acked.clone(), failed.clone());
    let writer = Writer::builder([w.brokers.as_str()])
        .topic(w.topic())
        .required_acks(RequiredAcks::All)
        .idempotent(true)
        .linger(w.linger)
        .on_delivery(move |report| {
            match report.result {
                Ok(_) => a.fetch_add(1, Ordering::Relaxed),
                Err(_) => f.fetch_add(1, Ordering::Relaxed),
            };
        })
        .build()
        .await
        .context("build the kafkit writer")?;
    // Connect and learn the topic's partitions before the clock starts, as
    // the librdkafka side does.
    writer
        .transport()
        .cluster_for(&[w.topic()])
        .await
        .context("kafkit metadata")?;
    let c = writer.config();
    print_settings(serde_json::json!({
        "client": "kafkit",
        "records": w.records,
        "size": w.record_size,
        "partitions": w.partitions,
        "keys": w.keys,
        "acks": format!("{:?}", c.required_acks).to_lowercase(),
        "idempotent": c.is_idempotent(),
        "linger_ms": c.linger.as_millis() as u64,
        "compression": format!("{:?}", c.compression).to_lowercase(),
        "partitioner": partitioner(w),
        "batch_max_bytes": c.batch_bytes,
        "batch_max_records": c.batch_size,
        "max_in_flight": format!("{} per broker", c.max_in_flight),
        "buffer": format!("{} B, {} records", c.buffer_bytes, c.max_buffered_records),
        "path": "Writer::produce, outcomes to on_delivery",
    }));

    // One message, its partition or key changed per record: like the
    // librdkafka side, nothing is allocated per record by the benchmark
    // itself (a key is a reference-counted `Bytes`).
    let keys = keys(w.keys);
    let mut message = Message::new(Bytes::from(payload(w.record_size)));
    let start = Snapshot::take();
    for i in 0..w.records {
        if keys.is_empty() {
            message.partition = Some((i % u64::from(w.partitions)) as i32);
        } else {
            message.key = Some(keys[(i % keys.len() as u64) as usize].clone());
        }
        writer.produce(&message).await.context("kafkit produce")?;
    }
    writer.flush().await.context("kafkit flush")?;
    let measurement = Measurement::since(start, w.records, w.records * w.record_size as u64);
    let stats = writer.stats();
    eprintln!(
        "kafkit writer: {} batches ({:.0} records each), {} requests, {} retries",
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64,
        stats.requests,
        stats.retries
    );
    writer.close().await.context("kafkit close")?;
    let (acked, failed) = (
        acked.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    if acked != w.records || failed != 0 {
        bail!(
            "kafkit: {acked} records acknowledged, {failed} failed, of {}",
            w.records
        );
    }
    Ok(measurement)
}

/// Where a producer's record `i` goes: the same rule for every client.
pub fn partitioner(w: &Workload) -> String {
    if w.keys == 0 {
        format!("manual: record i to partition i % {}", w.partitions)
    } else {
        "default (murmur2 of the key)".to_owned()
    }
}

/// The consumer settings line of a [`FetchConfig`].
fn fetch_settings(client: &str, path: &str, w: &Workload, f: &FetchConfig) -> serde_json::Value {
    serde_json::json!({
        "client": client,
        "records": w.records,
        "topics": w.topics.len(),
        "partitions": w.partitions,
        "path": path,
        "fetch_min_bytes": f.min_bytes,
        "fetch_max_bytes": f.max_bytes,
        "partition_max_bytes": f.max_partition_bytes,
        "fetch_max_wait_ms": f.max_wait.as_millis() as u64,
        "buffer": format!("{} B", f.max_buffered_bytes),
        "fetch_sessions": f.sessions,
    })
}

/// Consumes `w.records` records with a [`Reader`] in a group of its own,
/// timed from its assignment (the rebalance listener's `Assigned`), so the
/// group join before it is not counted.
pub fn consume_reader(w: &Workload) -> Result<Measurement> {
    runtime()?.block_on(consume_reader_async(w))
}

async fn consume_reader_async(w: &Workload) -> Result<Measurement> {
    let group = format!("kafkit-bench-{}", std::process::id());
    let assigned: Arc<Mutex<Option<Snapshot>>> = Arc::default();
    let slot = assigned.clone();
    let mut reader = Reader::builder([w.brokers.as_str()])
        .group_id(group)
        .topics(w.topics.iter().map(String::as_str))
        .auto_offset_reset(OffsetReset::Earliest)
        // A short session: a join completes sooner.
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(500))
        .on_rebalance(move |r: &mut Rebalance<'_>| {
            if r.kind() == RebalanceKind::Assigned {
                let mut slot = slot.lock().expect("not poisoned");
                slot.get_or_insert_with(Snapshot::take);
            }
        })
        .build()
        .await
        .context("connect the kafkit reader")?;
    print_settings(fetch_settings(
        "kafkit-reader",
        "Reader in a consumer group of its own, fetch_message",
        w,
        &reader.config().fetch,
    ));
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < w.records {
        let message = within_idle_timeout(reader.fetch_message())
            .await
            .context("kafkit consume")?
            .context("kafkit consume")?;
        records += 1;
        bytes += message.value_bytes().len() as u64;
    }
    let start = assigned
        .lock()
        .expect("not poisoned")
        .take()
        .context("records came without an assignment")?;
    let measurement = Measurement::since(start, records, bytes);
    reader.close().await.context("kafkit reader close")?;
    Ok(measurement)
}

/// Consumes `w.records` records with a bare [`Fetcher`], the partitions of
/// every topic assigned from their start, timed from the assignment
/// (connected, the topics' metadata known) to the last record; with fetch
/// sessions (KIP-227) on, kafkit's default, or off.
pub fn consume_fetcher(w: &Workload, sessions: bool) -> Result<Measurement> {
    runtime()?.block_on(consume_fetcher_async(w, sessions))
}

async fn consume_fetcher_async(w: &Workload, sessions: bool) -> Result<Measurement> {
    let transport = Transport::connect(TransportConfig::new([w.brokers.as_str()]))
        .await
        .context("kafkit transport")?;
    let names: Vec<&str> = w.topics.iter().map(String::as_str).collect();
    transport
        .cluster_for(&names)
        .await
        .context("kafkit metadata")?;
    let config = FetchConfig {
        sessions,
        ..FetchConfig::default()
    };
    let (client, path) = if sessions {
        ("kafkit", "Fetcher, every partition assigned from its start")
    } else {
        (
            "kafkit-no-sessions",
            "Fetcher without fetch sessions, every partition assigned from its start",
        )
    };
    print_settings(fetch_settings(client, path, w, &config));
    let mut fetcher = Fetcher::new(transport, config);
    let assignment = w
        .topics
        .iter()
        .flat_map(|t| {
            let topic: Arc<str> = Arc::from(t.as_str());
            (0..w.partitions as i32)
                .map(move |p| (TopicPartition::new(topic.clone(), p), StartOffset::Earliest))
        })
        .collect();
    let start = Snapshot::take();
    fetcher.assign(assignment);
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < w.records {
        // The buffered messages first, without a future per message (the
        // documented tight loop), then a wait for the next answer.
        let message = match fetcher.try_next() {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(e).context("kafkit fetcher"),
            None => within_idle_timeout(fetcher.next())
                .await
                .context("kafkit fetcher")?
                .context("kafkit fetcher")?,
        };
        records += 1;
        bytes += message.value_bytes().len() as u64;
    }
    let mut measurement = Measurement::since(start, records, bytes);
    let stats = fetcher.stats();
    measurement.fetches = Some((stats.fetches, Some(stats.incremental_fetches)));
    eprintln!(
        "{client} fetcher: {} fetches ({} incremental, {:.0} KB each), {} errors",
        stats.fetches,
        stats.incremental_fetches,
        stats.bytes as f64 / 1e3 / stats.fetches.max(1) as f64,
        stats.errors
    );
    Ok(measurement)
}
