//! [`ProcessorConfig`], [`RetryPolicy`] and [`ProcessorBuilder`].

use std::time::Duration;

use kafkit_reader::{IsolationLevel, ReaderConfig};
use kafkit_writer::WriterConfig;

use crate::{Error, Processor};

/// What happens to a record whose function call fails: it is tried again
/// up to [`attempts`](RetryPolicy::attempts) times in all, with a backoff
/// between tries, then sent to the dead-letter topic (in the same
/// transaction as everything else), or, without one, the processor stops
/// with the error.
///
/// Retries run inside the open transaction: keep
/// `attempts x max_backoff` well under the transaction timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times the function runs for one record, the first call
    /// included. Default 3: transient failures (a lookup timing out) get
    /// two more chances; `1` means no retry.
    pub attempts: u32,
    /// The pause before the first retry; it doubles after each one.
    /// Default 100 ms, as Kafka's own `retry.backoff.ms`.
    pub backoff: Duration,
    /// The longest pause between two tries. Default 5 s, so that a record
    /// cannot hold a transaction for long.
    pub max_backoff: Duration,
    /// Where records go once every attempt failed, with the error and the
    /// record's origin in headers (see the crate docs). Default `None`:
    /// the failure aborts the transaction and stops the processor, since
    /// silently skipping records is not a safe default.
    pub dead_letter_topic: Option<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            dead_letter_topic: None,
        }
    }
}

impl RetryPolicy {
    /// The pause before try number `attempt + 1`, after `attempt` failures.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Everything a [`Processor`] needs. Build one with
/// [`Processor::builder`], or fill the fields and call
/// [`Processor::new`].
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Bootstrap brokers. Required.
    pub brokers: Vec<String>,
    /// The consumer group reading the inputs. Required: offsets are
    /// committed to it, inside each transaction.
    pub group_id: String,
    /// The topics read. Required.
    pub input_topics: Vec<String>,
    /// The writer's transactional id. Required. It must be stable across
    /// restarts of one instance (so that a restarted instance fences the
    /// old one and aborts its open transaction) and unique among the
    /// instances running at once.
    pub transactional_id: String,
    /// What happens to failing records. Default [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// How long a transaction collects records before it commits. Default
    /// 100 ms, as Kafka Streams under exactly-once: outputs become visible
    /// to read_committed readers only at commit, so this is the latency
    /// added, traded against one commit (about five requests) per period.
    pub commit_every: Duration,
    /// The most records one transaction takes. Default 1000, which bounds
    /// the work redone after an abort.
    pub max_records_per_txn: usize,
    /// How long the coordinator lets a transaction stay open before
    /// aborting it. Default 60 s (the Java client's).
    pub transaction_timeout: Duration,
    /// Transactions that may fail in a row with abortable errors (each is
    /// aborted, its inputs rewound, and tried again) before the processor
    /// returns the last error. Default 5.
    pub max_consecutive_aborts: u32,
    /// Base settings of the reader (session timeout, assignors, fetch
    /// sizes, `auto_offset_reset`, connection settings). Its brokers,
    /// group, topics, isolation (always read_committed) and commit
    /// interval (none: offsets go through the transaction) are set from
    /// the fields above. Default [`ReaderConfig::default`].
    pub reader: ReaderConfig,
    /// Base settings of the writer (batching, compression, balancer). Its
    /// topic (none: outputs name theirs), transactional id and timeout are
    /// set from the fields above; its connection settings are the
    /// reader's. Default [`WriterConfig::default`].
    pub writer: WriterConfig,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            brokers: Vec::new(),
            group_id: String::new(),
            input_topics: Vec::new(),
            transactional_id: String::new(),
            retry: RetryPolicy::default(),
            commit_every: Duration::from_millis(100),
            max_records_per_txn: 1000,
            transaction_timeout: Duration::from_secs(60),
            max_consecutive_aborts: 5,
            reader: ReaderConfig::default(),
            writer: WriterConfig::default(),
        }
    }
}

impl ProcessorConfig {
    /// Checks the rules that span fields.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: &str| Err(Error::Config(m.to_owned()));
        if self.brokers.is_empty() {
            return fail("no brokers");
        }
        if self.group_id.is_empty() {
            return fail("group_id is required");
        }
        if self.input_topics.is_empty() {
            return fail("input_topics is required");
        }
        if self.transactional_id.is_empty() {
            return fail("transactional_id is required");
        }
        if self.retry.attempts == 0 {
            return fail("retry.attempts must be at least 1");
        }
        if self.retry.dead_letter_topic.as_deref() == Some("") {
            return fail("retry.dead_letter_topic must not be empty");
        }
        if self.max_records_per_txn == 0 {
            return fail("max_records_per_txn must be at least 1");
        }
        if self.commit_every.is_zero() {
            return fail("commit_every must be positive");
        }
        if self.commit_every >= self.transaction_timeout {
            return fail("commit_every must be shorter than transaction_timeout");
        }
        Ok(())
    }

    /// The reader's configuration: group mode, read_committed, no commits
    /// of its own.
    pub(crate) fn reader_config(&self) -> ReaderConfig {
        let mut reader = self.reader.clone();
        reader.brokers = self.brokers.clone();
        reader.topic = None;
        reader.partition = None;
        reader.group_id = Some(self.group_id.clone());
        reader.group_topics = self.input_topics.clone();
        reader.commit_interval = None;
        reader.fetch.isolation_level = IsolationLevel::ReadCommitted;
        reader
    }
}

/// Builds a [`Processor`]: `Processor::builder(brokers)`, settings, then
/// [`build`](ProcessorBuilder::build).
#[derive(Debug, Clone)]
pub struct ProcessorBuilder {
    config: ProcessorConfig,
}

impl ProcessorBuilder {
    pub(crate) fn new<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> Self {
        ProcessorBuilder {
            config: ProcessorConfig {
                brokers: brokers.into_iter().map(Into::into).collect(),
                ..ProcessorConfig::default()
            },
        }
    }

    /// Replaces every setting but the brokers.
    pub fn config(mut self, config: ProcessorConfig) -> Self {
        let brokers = std::mem::take(&mut self.config.brokers);
        self.config = config;
        if self.config.brokers.is_empty() {
            self.config.brokers = brokers;
        }
        self
    }

    /// The consumer group ([`ProcessorConfig::group_id`]).
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.config.group_id = group_id.into();
        self
    }

    /// The topics read ([`ProcessorConfig::input_topics`]).
    pub fn input_topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.config.input_topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// The transactional id ([`ProcessorConfig::transactional_id`]).
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.config.transactional_id = id.into();
        self
    }

    /// Retries and the dead-letter topic ([`ProcessorConfig::retry`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// Commit period ([`ProcessorConfig::commit_every`]).
    pub fn commit_every(mut self, every: Duration) -> Self {
        self.config.commit_every = every;
        self
    }

    /// Records per transaction ([`ProcessorConfig::max_records_per_txn`]).
    pub fn max_records_per_txn(mut self, max: usize) -> Self {
        self.config.max_records_per_txn = max;
        self
    }

    /// Transaction timeout ([`ProcessorConfig::transaction_timeout`]).
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.config.transaction_timeout = timeout;
        self
    }

    /// Base reader settings ([`ProcessorConfig::reader`]).
    pub fn reader(mut self, reader: ReaderConfig) -> Self {
        self.config.reader = reader;
        self
    }

    /// Base writer settings ([`ProcessorConfig::writer`]).
    pub fn writer(mut self, writer: WriterConfig) -> Self {
        self.config.writer = writer;
        self
    }

    /// The client [`Hook`](kafkit_conn::Hook) of the reader and the writer
    /// (they share the reader's connection settings): `kafkit-otel`'s,
    /// say. With a hook installed, each output carries its input's trace
    /// context headers unless it sets its own.
    pub fn hooks(mut self, hooks: kafkit_conn::Hooks) -> Self {
        self.config.reader.conn.hooks = hooks;
        self
    }

    /// Validates the settings, builds the transactional writer (which
    /// fences an older instance with the same transactional id and aborts
    /// its open transaction) and then joins the group.
    ///
    /// Cancel safety: safe; nothing is shared until it returns (a writer
    /// built before the cancel has already fenced its predecessor).
    pub async fn build(self) -> Result<Processor, Error> {
        Processor::new(self.config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ProcessorConfig {
        ProcessorConfig {
            brokers: vec!["localhost:9092".into()],
            group_id: "g".into(),
            input_topics: vec!["in".into()],
            transactional_id: "t".into(),
            ..ProcessorConfig::default()
        }
    }

    #[test]
    fn required_fields_and_limits_are_checked() {
        valid().validate().unwrap();
        type Breaks = fn(&mut ProcessorConfig);
        let cases: [(&str, Breaks); 7] = [
            ("group_id", |c| c.group_id.clear()),
            ("input_topics", |c| c.input_topics.clear()),
            ("transactional_id", |c| c.transactional_id.clear()),
            ("attempts", |c| c.retry.attempts = 0),
            ("dead_letter_topic", |c| {
                c.retry.dead_letter_topic = Some(String::new())
            }),
            ("max_records_per_txn", |c| c.max_records_per_txn = 0),
            ("shorter than transaction_timeout", |c| {
                c.commit_every = c.transaction_timeout
            }),
        ];
        for (what, break_it) in cases {
            let mut c = valid();
            break_it(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
    }

    #[test]
    fn the_reader_is_a_read_committed_group_reader_without_commits() {
        let mut c = valid();
        c.reader.commit_interval = Some(Duration::from_secs(1));
        c.reader.topic = Some("other".into());
        let r = c.reader_config();
        assert_eq!(r.group_id.as_deref(), Some("g"));
        assert_eq!(r.group_topics, ["in"]);
        assert_eq!(r.topic, None);
        assert_eq!(r.commit_interval, None);
        assert_eq!(r.fetch.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(r.brokers, ["localhost:9092"]);
        r.validate().unwrap();
    }

    #[test]
    fn retry_backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        let delays: Vec<u128> = (1..=4).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }

    #[test]
    fn the_builder_keeps_its_brokers_under_a_config_without_any() {
        let b = ProcessorBuilder::new(["a:1"]).config(ProcessorConfig {
            group_id: "g".into(),
            ..ProcessorConfig::default()
        });
        assert_eq!(b.config.brokers, ["a:1"]);
        assert_eq!(b.config.group_id, "g");
    }
}
