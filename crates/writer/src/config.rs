//! [`WriterConfig`]: every setting, its default and why.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kafkit_conn::{Compression, RequiredAcks};

use crate::balancer::{Balancer, DefaultBalancer};
use crate::{DeliveryReport, Error};

/// The callback that receives fire-and-forget outcomes.
pub type DeliveryCallback = Arc<dyn Fn(DeliveryReport) + Send + Sync>;

/// Settings of a [`Writer`](crate::Writer). Each field documents its default and why;
/// [`WriterBuilder::build`](crate::WriterBuilder::build) checks the rules that span fields.
#[derive(Clone)]
pub struct WriterConfig {
    /// The writer-wide topic. Default `None`: each message names its own.
    /// Setting both is an error at write time, never a silent choice.
    pub topic: Option<Arc<str>>,
    /// Picks partitions for messages without an explicit one. Default
    /// [`DefaultBalancer`]: keyed records go where the Java client puts
    /// them (murmur2), keyless ones stick to a partition per batch
    /// (KIP-480/794), which fills batches instead of spreading one record
    /// per partition.
    pub balancer: Arc<dyn Balancer>,
    /// Which replicas must have a batch before it counts as written.
    /// Default [`RequiredAcks::All`]: the only setting that keeps
    /// acknowledged records through a leader failure (Kafka 3.0+ default).
    pub required_acks: RequiredAcks,
    /// Idempotent produce (KIP-98): a producer id and per-partition
    /// sequence numbers, so retries never duplicate or reorder. Default
    /// `None`: on with `required_acks` all (as in Java 3.0+), off otherwise,
    /// since the broker needs acks=all for it. `Some(true)` with other acks
    /// is a configuration error.
    pub idempotent: Option<bool>,
    /// Records after which a partition's batch is sealed. Default 10,000,
    /// librdkafka's `batch.num.messages`: large enough that small records
    /// fill `batch_bytes` or `linger` first.
    pub batch_size: usize,
    /// Bytes (uncompressed) after which a batch is sealed. Default 1 MiB,
    /// kafka-go's `BatchBytes` and the broker's default
    /// `message.max.bytes`: big batches cost the broker least per record
    /// (tansu handles only a few thousand requests a second).
    pub batch_bytes: usize,
    /// How long a batch may wait for more records before it is sent.
    /// Default 5 ms, as in librdkafka and Java 3.x: a few milliseconds of
    /// latency buy full batches under load.
    pub linger: Duration,
    /// Produce requests in flight per broker. Default 5, the most
    /// idempotence keeps in order (Kafka remembers the last five batches
    /// per producer and partition). At most 5 when idempotent.
    pub max_in_flight: usize,
    /// The codec of each batch. Default none: the cheapest in CPU; pick
    /// lz4 or zstd when the network is the bottleneck.
    pub compression: Compression,
    /// The codec's level; `None` uses the codec's default.
    pub compression_level: Option<i32>,
    /// Tries per batch, the first included, before its records fail with
    /// the last error. Default unlimited, as Java's `retries`: a batch is
    /// retried until `delivery_timeout`. A killed leader stays named in the
    /// metadata until its session expires (9 s on Kafka), so a small count
    /// would fail records that a wait would deliver.
    pub max_attempts: u32,
    /// The first retry delay; it doubles up to `backoff_max`. Default
    /// 100 ms, Java's `retry.backoff.ms`.
    pub backoff: Duration,
    /// The largest retry delay. Default 1 s, Java's `retry.backoff.max.ms`.
    pub backoff_max: Duration,
    /// Whether writing to a topic that does not exist asks the broker to
    /// create it (with `auto.create.topics.enable` on the broker). Default
    /// `false`, as kafka-go: a typo should fail, not create a topic.
    pub allow_auto_topic_creation: bool,
    /// How long the broker and the connection wait for a produce answer.
    /// Default 30 s, Java's `request.timeout.ms`.
    pub request_timeout: Duration,
    /// How long a record may wait, from write to acknowledgement, retries
    /// included, before it fails with [`Error::DeliveryTimeout`]. Default
    /// 2 minutes, Java's `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// Bytes of records buffered (written but not yet acknowledged) before
    /// writes wait, or [`try_send`](crate::Writer::try_send) fails with
    /// [`Error::BufferFull`]. Default 16 MiB (Java's `buffer.memory` is
    /// 32 MB): seconds of a typical producer, so an election stalls
    /// callers only when it lasts longer. Measured with the benchmark's
    /// producer (1M records of 100 B, 6 partitions, one Kafka node), 16 MiB
    /// gave the highest rate (4.3M records/s against 3.6M at 64 MiB) at
    /// half the peak RSS (64-72 MB against 136-177 MB); below 8 MiB the
    /// rate falls (2.5M at 4 MiB, 1.7M at 2 MiB).
    pub buffer_bytes: usize,
    /// Records buffered before writes wait. Default 1,000,000 (librdkafka
    /// allows 100,000): 100-byte records fill `buffer_bytes` at about
    /// 150,000, so this rarely binds.
    pub max_buffered_records: usize,
    /// The largest record accepted. Default 1 MiB, the broker's default
    /// `message.max.bytes`; larger records fail at once with
    /// [`Error::MessageTooLarge`] instead of after a round trip.
    pub max_message_bytes: usize,
    /// Receives the outcome of each [`produce`](crate::Writer::produce)d record.
    /// Default `None`: outcomes are counted in the stats only.
    pub on_delivery: Option<DeliveryCallback>,
    /// Makes the writer transactional (KIP-98): records are written only
    /// inside [`begin_transaction`](crate::Writer::begin_transaction) ..
    /// [`commit_transaction`](crate::Writer::commit_transaction) /
    /// [`abort_transaction`](crate::Writer::abort_transaction). The id names the
    /// producer across restarts: building a writer with an id fences
    /// (makes fail for good) any older writer with the same id and aborts
    /// its open transaction. Implies idempotence and needs
    /// `required_acks` all. Default `None`: not transactional, since
    /// transactions cost a coordinator round trip per partition and per
    /// commit and only consume-transform-produce pipelines need them.
    pub transactional_id: Option<Arc<str>>,
    /// How long a transaction may stay open before the broker's
    /// transaction coordinator aborts it (the broker caps it at its
    /// `transaction.max.timeout.ms`, 15 minutes by default). A writer
    /// that is fenced or dies mid-transaction holds up read_committed
    /// readers of its partitions for at most this long. Default 60 s, the
    /// Java client's `transaction.timeout.ms`. Only used with
    /// `transactional_id`.
    pub transaction_timeout: Duration,
    /// Pushes the writer's metrics to the cluster (client telemetry,
    /// KIP-714) when a broker asks for them: only clusters whose operator
    /// installed a client-metrics plugin and subscribed to metrics do.
    /// Default `true`, as the Java producer's `enable.metrics.push` and
    /// librdkafka's `enable.metrics.push`.
    pub metrics_push: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            topic: None,
            balancer: Arc::new(DefaultBalancer::default()),
            required_acks: RequiredAcks::All,
            idempotent: None,
            batch_size: 10_000,
            batch_bytes: 1 << 20,
            linger: Duration::from_millis(5),
            max_in_flight: 5,
            compression: Compression::None,
            compression_level: None,
            max_attempts: u32::MAX,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            allow_auto_topic_creation: false,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            buffer_bytes: 16 << 20,
            max_buffered_records: 1_000_000,
            max_message_bytes: 1 << 20,
            on_delivery: None,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            metrics_push: true,
        }
    }
}

impl fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterConfig")
            .field("topic", &self.topic)
            .field("required_acks", &self.required_acks)
            .field("idempotent", &self.is_idempotent())
            .field("batch_size", &self.batch_size)
            .field("batch_bytes", &self.batch_bytes)
            .field("linger", &self.linger)
            .field("max_in_flight", &self.max_in_flight)
            .field("compression", &self.compression)
            .field("max_attempts", &self.max_attempts)
            .field("transactional_id", &self.transactional_id)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("metrics_push", &self.metrics_push)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    /// Whether the writer runs idempotent (see [`WriterConfig::idempotent`];
    /// a transactional writer always is).
    pub fn is_idempotent(&self) -> bool {
        self.transactional_id.is_some()
            || self
                .idempotent
                .unwrap_or(self.required_acks == RequiredAcks::All)
    }

    /// Checks the rules that span fields.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |why: &str| Err(Error::Config(why.to_owned()));
        if let Some(topic) = &self.topic {
            kafkit_conn::validate_topic_name(topic).map_err(Error::Config)?;
        }
        if self.idempotent == Some(true) && self.required_acks != RequiredAcks::All {
            return fail("idempotence needs required_acks = all");
        }
        if self.transactional_id.is_some() {
            if self.required_acks != RequiredAcks::All || self.idempotent == Some(false) {
                return fail("a transactional writer is idempotent and needs required_acks = all");
            }
            if self.transactional_id.as_deref() == Some("") {
                return fail("transactional_id must not be empty");
            }
            let ms = self.transaction_timeout.as_millis();
            if ms == 0 || ms > i32::MAX as u128 {
                return fail("transaction_timeout must be between 1 ms and about 24 days");
            }
        }
        if self.batch_size == 0 || self.batch_bytes == 0 {
            return fail("batch_size and batch_bytes must be positive");
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight must be positive");
        }
        if self.is_idempotent() && self.max_in_flight > 5 {
            return fail("an idempotent writer keeps order with at most 5 requests in flight");
        }
        if self.max_attempts == 0 {
            return fail("max_attempts must be at least 1");
        }
        if self.backoff > self.backoff_max {
            return fail("backoff must not exceed backoff_max");
        }
        if self.buffer_bytes < self.max_message_bytes || self.max_buffered_records == 0 {
            return fail("the buffer must hold at least one record of max_message_bytes");
        }
        Ok(())
    }

    /// The retry delay after `attempts` failed tries.
    pub(crate) fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.backoff.saturating_mul(factor).min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        let c = WriterConfig::default();
        assert_eq!(c.required_acks, RequiredAcks::All);
        assert!(c.is_idempotent());
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.batch_bytes, 1 << 20);
        assert_eq!(c.compression, Compression::None);
        c.validate().unwrap();
    }

    #[test]
    fn idempotence_follows_acks_unless_set() {
        let c = WriterConfig {
            required_acks: RequiredAcks::One,
            ..WriterConfig::default()
        };
        assert!(!c.is_idempotent());
        c.validate().unwrap();
        let c = WriterConfig {
            idempotent: Some(true),
            ..c
        };
        assert!(c.validate().is_err());
        let c = WriterConfig {
            max_in_flight: 6,
            ..WriterConfig::default()
        };
        assert!(c.validate().is_err());
        let c = WriterConfig {
            max_in_flight: 6,
            idempotent: Some(false),
            ..WriterConfig::default()
        };
        c.validate().unwrap();
    }

    #[test]
    fn transactions_imply_idempotence_with_acks_all() {
        let c = WriterConfig {
            transactional_id: Some(Arc::from("t")),
            ..WriterConfig::default()
        };
        assert_eq!(c.transaction_timeout, Duration::from_secs(60));
        assert!(c.is_idempotent());
        c.validate().unwrap();
        let acks_one = WriterConfig {
            required_acks: RequiredAcks::One,
            ..c.clone()
        };
        assert!(acks_one.validate().is_err());
        let not_idempotent = WriterConfig {
            idempotent: Some(false),
            ..c.clone()
        };
        assert!(not_idempotent.validate().is_err());
        let no_timeout = WriterConfig {
            transaction_timeout: Duration::ZERO,
            ..c.clone()
        };
        assert!(no_timeout.validate().is_err());
        let empty = WriterConfig {
            transactional_id: Some(Arc::from("")),
            ..c
        };
        assert!(empty.validate().is_err());
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let c = WriterConfig::default();
        assert_eq!(c.retry_delay(1), Duration::from_millis(100));
        assert_eq!(c.retry_delay(2), Duration::from_millis(200));
        assert_eq!(c.retry_delay(5), Duration::from_secs(1));
        assert_eq!(c.retry_delay(60), Duration::from_secs(1));
    }
}
