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

use crate::kafkit::partitioner;
use crate::measure::{Measurement, Snapshot, print_settings};
use crate::run::IDLE_TIMEOUT;
use crate::workload::{BUFFER_BYTES, BUFFER_RECORDS, Shape};
use crate::{Workload, keys, payload};

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
        // Idempotence allows five requests in flight; librdkafka lowers its
        // default (1,000,000) to that itself, set here so the settings show it.
        .set("max.in.flight.requests.per.connection", "5")
        // The same buffer budget as kafkit's writer defaults (16 MiB, at
        // most 1M records); librdkafka's own are 1 GiB and 100k records.
        .set(
            "queue.buffering.max.kbytes",
            (BUFFER_BYTES / 1024).to_string(),
        )
        .set("queue.buffering.max.messages", BUFFER_RECORDS.to_string());
    if w.keys > 0 {
        // Java's placement of keyed records, as every client here uses.
        config.set("partitioner", "murmur2_random");
    }
    config
}

/// librdkafka's effective value of each of `keys` (its default where not set).
fn effective(config: &ClientConfig, keys: &[&str]) -> Result<Vec<String>> {
    let native = config
        .create_native_config()
        .context("librdkafka configuration")?;
    keys.iter()
        .map(|k| {
            native
                .get(k)
                .with_context(|| format!("librdkafka setting {k}"))
        })
        .collect()
}

/// Produces `w.records` records and waits for every acknowledgement.
pub fn produce(w: &Workload) -> Result<Measurement> {
    let config = producer_config(w);
    let [
        acks,
        idempotent,
        linger,
        compression,
        batch_bytes,
        batch_records,
        in_flight,
        kbytes,
        messages,
    ] = <[String; 9]>::try_from(effective(
        &config,
        &[
            "acks",
            "enable.idempotence",
            "linger.ms",
            "compression.type",
            "batch.size",
            "batch.num.messages",
            "max.in.flight.requests.per.connection",
            "queue.buffering.max.kbytes",
            "queue.buffering.max.messages",
        ],
    )?)
    .expect("nine values");
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("create the librdkafka producer")?;
    let value = payload(w.record_size);
    let keys = keys(w.keys);
    // Connect and learn the topics' partitions before the clock starts, as
    // the kafkit side does when it builds its writer.
    for topic in &w.topics {
        producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("librdkafka metadata")?;
    }
    print_settings(serde_json::json!({
        "client": "librdkafka",
        "records": w.records,
        "size": w.record_size,
        "topics": w.topics.len(),
        "partitions": w.partitions,
        "keys": w.keys,
        // librdkafka reports acks=all as -1.
        "acks": if acks == "-1" { "all".to_owned() } else { acks },
        "idempotent": idempotent == "true",
        "linger_ms": linger
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| linger.clone().into()),
        "compression": compression,
        "partitioner": partitioner(w),
        "batch_max_bytes": batch_bytes.parse::<u64>().ok(),
        "batch_max_records": batch_records.parse::<u64>().ok(),
        "max_in_flight": format!("{in_flight} per connection"),
        "buffer": format!("{kbytes} KiB, {messages} records"),
        "path": "BaseProducer::send, outcomes to a delivery callback",
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
    }));

    let topics = w.topics.len() as u32;
    let start = Snapshot::take();
    for i in 0..w.records {
        let mut record: BaseRecord<'_, [u8], [u8]>;
        if keys.is_empty() {
            let (topic, partition) = Shape::place(topics, w.partitions, i);
            record = BaseRecord::to(&w.topics[topic])
                .payload(&value[..])
                .partition(partition);
        } else {
            record = BaseRecord::to(w.topic())
                .payload(&value[..])
                .key(&keys[(i % keys.len() as u64) as usize][..]);
        }
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

/// Consumes `w.records` records from the start of every partition of every
/// topic.
pub fn consume(w: &Workload) -> Result<Measurement> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &w.brokers)
        // Never joined: librdkafka wants a group.id even for assign().
        .set("group.id", "kafkit-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    let [min, max, partition_max, wait, kbytes, min_messages] = <[String; 6]>::try_from(effective(
        &config,
        &[
            "fetch.min.bytes",
            "fetch.max.bytes",
            "max.partition.fetch.bytes",
            "fetch.wait.max.ms",
            "queued.max.messages.kbytes",
            "queued.min.messages",
        ],
    )?)
    .expect("six values");
    let consumer: BaseConsumer = config.create().context("create the librdkafka consumer")?;
    print_settings(serde_json::json!({
        "client": "librdkafka",
        "records": w.records,
        "topics": w.topics.len(),
        "partitions": w.partitions,
        "path": "BaseConsumer::assign + poll",
        "fetch_min_bytes": min.parse::<u64>().ok(),
        "fetch_max_bytes": max.parse::<u64>().ok(),
        "partition_max_bytes": partition_max.parse::<u64>().ok(),
        "fetch_max_wait_ms": wait.parse::<u64>().ok(),
        "buffer": format!("{kbytes} KiB, {min_messages} records per partition"),
        // librdkafka has no incremental fetch sessions (KIP-227): every
        // fetch is a full one.
        "fetch_sessions": false,
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
    }));
    let mut assignment = TopicPartitionList::new();
    for topic in &w.topics {
        for partition in 0..w.partitions as i32 {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .context("assignment")?;
        }
        // Connected, the topics known: timed from the assignment, as every
        // client.
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("librdkafka metadata")?;
    }

    let start = Snapshot::take();
    consumer.assign(&assignment).context("librdkafka assign")?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    while records < w.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
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
    Ok(Measurement::since(start, records, bytes))
}

fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("create the librdkafka admin client")
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The sum of `topic`'s end offsets (high watermarks) over its partitions
/// `0..partitions`: the records written to it, no transactions being used.
pub fn end_offsets(brokers: &str, topic: &str, partitions: u32) -> Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("create the librdkafka client")?;
    let mut sum = 0u64;
    for p in 0..partitions as i32 {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .with_context(|| format!("end offset of {topic}[{p}]"))?;
        sum += u64::try_from(high).unwrap_or(0);
    }
    Ok(sum)
}

/// Deletes `topic`, to keep the broker's disk use down between runs.
pub fn delete_topic(brokers: &str, topic: &str) -> Result<()> {
    let results = current_thread()?
        .block_on(admin(brokers)?.delete_topics(&[topic], &AdminOptions::new()))
        .context("DeleteTopics")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("cannot delete topic {name}: {code}");
        }
    }
    Ok(())
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(brokers: &str, topic: &str, partitions: u32) -> Result<()> {
    let admin = admin(brokers)?;
    let runtime = current_thread()?;
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
    wait_for_leaders(brokers, topic, partitions)
}

/// Waits until every partition of a new `topic` has a leader, so that no
/// client's clock runs while they are being elected.
fn wait_for_leaders(brokers: &str, topic: &str, partitions: u32) -> Result<()> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("create the librdkafka client")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the partitions of {topic} have no leaders after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
