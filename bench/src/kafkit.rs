//! The kafkit side: a [`Writer`] fed with `produce` (fire and forget, the
//! outcome to a delivery callback), as librdkafka's side is; and a
//! [`Reader`] in a consumer group of its own, which gets every partition;
//! and, to tell the Reader's cost from the fetching's, the [`Fetcher`]
//! under it with the partitions assigned, as librdkafka's side is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use kafkit_conn::{Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, OffsetReset, Reader, StartOffset, TopicPartition};
use kafkit_writer::{Message, RequiredAcks, Writer};

use crate::measure::{Measurement, Snapshot};
use crate::run::IDLE_TIMEOUT;
use crate::{Workload, payload};

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
        .topic(&w.topic)
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
        .cluster_for(&[&w.topic])
        .await
        .context("kafkit metadata")?;

    // One message, its partition changed per record: like librdkafka's
    // side, nothing is allocated per record by the benchmark itself.
    let mut message = Message::new(Bytes::from(payload(w.record_size)));
    let start = Snapshot::take();
    for i in 0..w.records {
        message.partition = Some((i % u64::from(w.partitions)) as i32);
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

/// Consumes `w.records` records from the start of every partition, timed
/// from the first record (the group join before it is not counted).
pub fn consume(w: &Workload) -> Result<Measurement> {
    runtime()?.block_on(consume_async(w))
}

async fn consume_async(w: &Workload) -> Result<Measurement> {
    let group = format!("kafkit-bench-{}", std::process::id());
    let mut reader = Reader::builder([w.brokers.as_str()])
        .group_id(group)
        .topics([w.topic.as_str()])
        .auto_offset_reset(OffsetReset::Earliest)
        // tansu completes a join in about half the session timeout.
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(500))
        .connect()
        .await
        .context("connect the kafkit reader")?;
    let next = async |reader: &mut Reader| {
        within_idle_timeout(reader.fetch_message())
            .await
            .context("kafkit consume")?
            .context("kafkit consume")
    };
    let first = next(&mut reader).await?;
    let start = Snapshot::take();
    let (mut records, mut bytes) = (1u64, first.value_bytes().len() as u64);
    drop(first);
    while records < w.records {
        let message = next(&mut reader).await?;
        records += 1;
        bytes += message.value_bytes().len() as u64;
    }
    let measurement = Measurement::since(start, records, bytes);
    reader.close().await.context("kafkit reader close")?;
    Ok(measurement)
}

/// Consumes `w.records` records with a bare [`Fetcher`], the partitions
/// assigned from their start, timed from the first record.
pub fn consume_fetcher(w: &Workload) -> Result<Measurement> {
    runtime()?.block_on(consume_fetcher_async(w))
}

async fn consume_fetcher_async(w: &Workload) -> Result<Measurement> {
    let transport = Transport::connect(TransportConfig::new([w.brokers.as_str()]))
        .await
        .context("kafkit transport")?;
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    let topic: Arc<str> = Arc::from(w.topic.as_str());
    fetcher.assign(
        (0..w.partitions as i32)
            .map(|p| (TopicPartition::new(topic.clone(), p), StartOffset::Earliest))
            .collect(),
    );
    let mut next = async || {
        within_idle_timeout(fetcher.next())
            .await
            .context("kafkit fetcher")?
            .context("kafkit fetcher")
    };
    let first = next().await?;
    let start = Snapshot::take();
    let (mut records, mut bytes) = (1u64, first.value_bytes().len() as u64);
    drop(first);
    while records < w.records {
        let message = next().await?;
        records += 1;
        bytes += message.value_bytes().len() as u64;
    }
    let measurement = Measurement::since(start, records, bytes);
    let stats = fetcher.stats();
    eprintln!(
        "kafkit fetcher: {} fetches ({:.0} KB each), {} errors",
        stats.fetches,
        stats.bytes as f64 / 1e3 / stats.fetches.max(1) as f64,
        stats.errors
    );
    Ok(measurement)
}
