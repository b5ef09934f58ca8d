//! The librdkafka side, through the rdkafka crate: a `BaseProducer` with a
//! delivery callback, and a `BaseConsumer` with the partitions assigned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::measure::{Measurement, Snapshot};
use crate::run::IDLE_TIMEOUT;
use crate::{Workload, payload};

/// Counts acknowledged and failed records.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn producer_config(w: &Workload) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &w.brokers)
        .set("acks", "all")
        .set("linger.ms", w.linger.as_millis().to_string())
        .set("compression.type", "none")
        // kafkit's writer is idempotent by default with acks=all (as Java 3.0+);
        // librdkafka is not, so it is turned on to compare like with like.
        .set("enable.idempotence", "true")
        // The same buffer budget as kafkit's writer defaults (64 MiB, at
        // most 1M records); librdkafka's own are 1 GiB and 100k records.
        .set("queue.buffering.max.kbytes", "65536")
        .set("queue.buffering.max.messages", "1000000");
    config
}

/// Produces `w.records` records and waits for every acknowledgement.
pub fn produce(w: &Workload) -> Result<Measurement> {
    let producer: BaseProducer<Deliveries> = producer_config(w)
        .create_with_context(Deliveries::default())
        .context("create the librdkafka producer")?;
    let value = payload(w.record_size);
    // Connect and learn the topic's partitions before the clock starts, as
    // the kafkit side does when it builds its writer.
    producer
        .client()
        .fetch_metadata(Some(&w.topic), Duration::from_secs(10))
        .context("librdkafka metadata")?;

    let start = Snapshot::take();
    for i in 0..w.records {
        let partition = (i % u64::from(w.partitions)) as i32;
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&w.topic)
            .payload(&value[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("librdkafka send: {e}"),
            }
        }
        // Serve delivery callbacks now and then, as an application would.
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("librdkafka flush")?;
    let measurement = Measurement::since(start, w.records, w.records * w.record_size as u64);
    let context = producer.context();
    let (acked, failed) = (
        context.acked.load(Ordering::Relaxed),
        context.failed.load(Ordering::Relaxed),
    );
    if acked != w.records || failed != 0 {
        bail!(
            "librdkafka: {acked} records acknowledged, {failed} failed, of {}",
            w.records
        );
    }
    Ok(measurement)
}

/// Consumes `w.records` records from the start of every partition.
pub fn consume(w: &Workload) -> Result<Measurement> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &w.brokers)
        .set("group.id", "kafkit-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("create the librdkafka consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..w.partitions as i32 {
        assignment
            .add_partition_offset(&w.topic, partition, Offset::Beginning)
            .context("assignment")?;
    }

    consumer.assign(&assignment).context("librdkafka assign")?;
    // Timed from the first record, as the kafkit side is.
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut start = None;
    let mut last = Instant::now();
    while records < w.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if start.is_none() {
                    start = Some(Snapshot::take());
                }
                records += 1;
                bytes += message.payload().map_or(0, |p| p.len() as u64);
                last = Instant::now();
            }
            Some(Err(e)) => bail!("librdkafka consume: {e}"),
            None if last.elapsed() > IDLE_TIMEOUT => {
                bail!(
                    "librdkafka consume: only {records} of {} records",
                    w.records
                )
            }
            None => {}
        }
    }
    let start = start.expect("at least one record");
    Ok(Measurement::since(start, records, bytes))
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(brokers: &str, topic: &str, partitions: u32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("create the librdkafka admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let results = runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .context("CreateTopics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}
