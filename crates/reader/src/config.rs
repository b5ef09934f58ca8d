//! [`ReaderConfig`]: kafka-go's `ReaderConfig` shape with `Duration`s and
//! documented defaults, and [`ReaderBuilder`], which checks the rules that
//! span fields and connects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kafkit_conn::{ConnConfig, MetadataRecovery, TransportConfig};

use crate::group::{Assignor, CooperativeStickyAssignor, RebalanceListener};
use crate::{Error, FetchConfig, OffsetReset, Reader, StartOffset};

/// Settings of a [`Reader`]. Either *partition mode* (`topic` and
/// `partition`, reading from `start_offset`) or *group mode* (`group_id`
/// and one or more `group_topics`, or `topic` alone). Each field documents
/// its default and why.
#[derive(Clone)]
pub struct ReaderConfig {
    /// Bootstrap brokers, `host:port`. No default: required.
    pub brokers: Vec<String>,
    /// The topic of a partition reader, or the one topic of a group
    /// reader. Default none.
    pub topic: Option<String>,
    /// The partition of a partition reader. Default none (group mode).
    pub partition: Option<i32>,
    /// Where a partition reader starts. Default [`StartOffset::Earliest`]
    /// (kafka-go's `FirstOffset`): a new reader sees the whole log.
    pub start_offset: StartOffset,
    /// The consumer group. Setting it selects group mode. Default none.
    pub group_id: Option<String>,
    /// The topics a group reader subscribes to (with or instead of
    /// `topic`). Default empty.
    pub group_topics: Vec<String>,
    /// A static member id (KIP-345): a member that restarts with the same
    /// id within `session_timeout` gets its partitions back without a
    /// rebalance, and `close()` does not leave the group. Default none.
    pub group_instance_id: Option<String>,
    /// Where a group reader starts a partition the group has no committed
    /// offset for. Default [`OffsetReset::Earliest`] (kafka-go's
    /// `StartOffset` default): nothing already written is skipped.
    pub auto_offset_reset: OffsetReset,
    /// How long the coordinator waits for a heartbeat before it drops the
    /// member and rebalances. Default 45 s, Java's `session.timeout.ms`
    /// since KIP-735: rides out a GC pause or a broker restart.
    pub session_timeout: Duration,
    /// How long the coordinator waits for every member to rejoin during a
    /// rebalance; also how long a member may take to finish revoking.
    /// Default 30 s (kafka-go's `RebalanceTimeout`).
    pub rebalance_timeout: Duration,
    /// The time between heartbeats, sent by a background task on the
    /// coordinator's own connection. Default 3 s (Java's and kafka-go's):
    /// under a third of `session_timeout`, and how fast a member notices a
    /// rebalance.
    pub heartbeat_interval: Duration,
    /// Commit in the background every this long instead of at each
    /// `commit_messages`/`read_message`. Default none (kafka-go's
    /// `CommitInterval` 0): synchronous commits, nothing processed is ever
    /// left uncommitted when a call returns.
    pub commit_interval: Option<Duration>,
    /// The assignors offered, in order of preference; the group picks one
    /// every member offers. Default `[cooperative-sticky]`: balanced,
    /// sticky, and members keep consuming during rebalances (KIP-429).
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// How messages are fetched (sizes, waits, isolation, out-of-range
    /// policy). Default [`FetchConfig::default`].
    pub fetch: FetchConfig,
    /// Connection settings (TLS, SASL, timeouts) of every connection.
    /// Default [`ConnConfig::default`].
    pub conn: ConnConfig,
    /// The wait before a failed group request (join, sync) is retried.
    /// Default 100 ms (Java's `retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// Pushes the reader's metrics to the cluster (client telemetry,
    /// KIP-714) when a broker asks for them: only clusters whose operator
    /// installed a client-metrics plugin and subscribed to metrics do.
    /// Default `true`, as the Java consumer's `enable.metrics.push` and
    /// librdkafka's.
    pub metrics_push: bool,
    /// What the reader's transport does when the brokers it knows fail
    /// it: by default it goes back to `brokers` (rebootstrap, KIP-899);
    /// see [`MetadataRecovery`].
    pub metadata_recovery: MetadataRecovery,
}

impl Default for ReaderConfig {
    fn default() -> ReaderConfig {
        ReaderConfig {
            brokers: Vec::new(),
            topic: None,
            partition: None,
            start_offset: StartOffset::Earliest,
            group_id: None,
            group_topics: Vec::new(),
            group_instance_id: None,
            auto_offset_reset: OffsetReset::Earliest,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(3),
            commit_interval: None,
            assignors: vec![Arc::new(CooperativeStickyAssignor)],
            fetch: FetchConfig::default(),
            conn: ConnConfig::default(),
            retry_backoff: Duration::from_millis(100),
            metrics_push: true,
            metadata_recovery: MetadataRecovery::Rebootstrap,
        }
    }
}

impl fmt::Debug for ReaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let assignors: Vec<&str> = self.assignors.iter().map(|a| a.name()).collect();
        f.debug_struct("ReaderConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("start_offset", &self.start_offset)
            .field("group_id", &self.group_id)
            .field("group_topics", &self.group_topics)
            .field("group_instance_id", &self.group_instance_id)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("session_timeout", &self.session_timeout)
            .field("rebalance_timeout", &self.rebalance_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("commit_interval", &self.commit_interval)
            .field("assignors", &assignors)
            .field("fetch", &self.fetch)
            .field("retry_backoff", &self.retry_backoff)
            .field("metrics_push", &self.metrics_push)
            .field("metadata_recovery", &self.metadata_recovery)
            .finish_non_exhaustive()
    }
}

impl ReaderConfig {
    /// True in group mode.
    pub fn is_group(&self) -> bool {
        self.group_id.is_some()
    }

    /// The topics a group reader subscribes to: `group_topics` and `topic`.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut topics = self.group_topics.clone();
        topics.extend(self.topic.clone());
        topics.sort();
        topics.dedup();
        topics
    }

    /// Checks the rules that span fields.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::config(why.to_owned()));
        for topic in self.topic.iter().chain(&self.group_topics) {
            kafkit_conn::validate_topic_name(topic).map_err(Error::config)?;
        }
        if self.brokers.is_empty() {
            return bad("brokers: at least one bootstrap broker is required");
        }
        match &self.group_id {
            Some(group) => {
                if group.is_empty() {
                    return bad("group_id must not be empty");
                }
                if self.partition.is_some() {
                    return bad("partition and group_id exclude each other");
                }
                if self.subscribed_topics().is_empty() {
                    return bad("a group reader needs topic or group_topics");
                }
                if self.assignors.is_empty() {
                    return bad("a group reader needs at least one assignor");
                }
                if self.heartbeat_interval.is_zero()
                    || self.heartbeat_interval >= self.session_timeout
                {
                    return bad("heartbeat_interval must be above zero and below session_timeout");
                }
                if self.auto_offset_reset == OffsetReset::Error {
                    return bad("auto_offset_reset must be Earliest or Latest");
                }
                if self.commit_interval.is_some_and(|d| d.is_zero()) {
                    return bad("commit_interval must be above zero (None commits synchronously)");
                }
            }
            None => {
                if self.topic.is_none() || self.partition.is_none() {
                    return bad("a partition reader needs topic and partition (or set group_id)");
                }
                if !self.group_topics.is_empty() || self.group_instance_id.is_some() {
                    return bad("group_topics and group_instance_id need group_id");
                }
                if self.partition.is_some_and(|p| p < 0) {
                    return bad("partition must not be negative");
                }
            }
        }
        self.fetch.validate()
    }

    pub(crate) fn transport_config(&self) -> TransportConfig {
        let mut t = TransportConfig::new(self.brokers.clone());
        t.conn = self.conn.clone();
        t.metadata_recovery = self.metadata_recovery;
        t
    }
}

/// Builds a [`Reader`]: setters for the common [`ReaderConfig`] fields,
/// plus the rebalance listener. Start from [`Reader::builder`].
#[must_use]
pub struct ReaderBuilder {
    pub(crate) config: ReaderConfig,
    pub(crate) listener: Option<Box<dyn RebalanceListener>>,
}

impl fmt::Debug for ReaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderBuilder")
            .field("config", &self.config)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl ReaderBuilder {
    pub(crate) fn new<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> Self {
        ReaderBuilder {
            config: ReaderConfig {
                brokers: brokers.into_iter().map(Into::into).collect(),
                ..ReaderConfig::default()
            },
            listener: None,
        }
    }

    /// Starts from a whole configuration (its `brokers` included).
    pub fn config(mut self, config: ReaderConfig) -> Self {
        self.config = config;
        self
    }
    /// Partition mode: read `partition` of `topic`.
    pub fn partition(mut self, topic: impl Into<String>, partition: i32) -> Self {
        self.config.topic = Some(topic.into());
        self.config.partition = Some(partition);
        self
    }
    /// Where a partition reader starts.
    pub fn start_offset(mut self, start: StartOffset) -> Self {
        self.config.start_offset = start;
        self
    }
    /// Group mode: join `group_id`.
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.config.group_id = Some(group_id.into());
        self
    }
    /// The topics a group reader subscribes to.
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.config.group_topics = topics.into_iter().map(Into::into).collect();
        self
    }
    /// A static member id (KIP-345).
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.config.group_instance_id = Some(id.into());
        self
    }
    /// Where partitions without a committed offset start.
    pub fn auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.config.auto_offset_reset = reset;
        self
    }
    /// [`ReaderConfig::metrics_push`]: client telemetry on or off.
    pub fn metrics_push(mut self, on: bool) -> Self {
        self.config.metrics_push = on;
        self
    }
    /// [`ReaderConfig::metadata_recovery`]: rebootstrap or not.
    pub fn metadata_recovery(mut self, recovery: MetadataRecovery) -> Self {
        self.config.metadata_recovery = recovery;
        self
    }
    /// The client [`Hook`](kafkit_conn::Hook) (metrics, traces: see
    /// `kafkit-otel`), kept in the connection settings
    /// ([`ConnConfig::hooks`](kafkit_conn::ConnConfig::hooks)).
    pub fn hooks(mut self, hooks: kafkit_conn::Hooks) -> Self {
        self.config.conn.hooks = hooks;
        self
    }
    /// The session timeout.
    pub fn session_timeout(mut self, d: Duration) -> Self {
        self.config.session_timeout = d;
        self
    }
    /// The rebalance timeout.
    pub fn rebalance_timeout(mut self, d: Duration) -> Self {
        self.config.rebalance_timeout = d;
        self
    }
    /// The heartbeat interval.
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.config.heartbeat_interval = d;
        self
    }
    /// Commit in the background every `d`.
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.config.commit_interval = Some(d);
        self
    }
    /// The assignors offered, replacing the default.
    pub fn assignors(mut self, assignors: Vec<Arc<dyn Assignor>>) -> Self {
        self.config.assignors = assignors;
        self
    }
    /// The fetch settings.
    pub fn fetch(mut self, fetch: FetchConfig) -> Self {
        self.config.fetch = fetch;
        self
    }
    /// The consumer's rack, [`FetchConfig::rack`] (Kafka's `client.rack`):
    /// fetch from a replica in the same rack where the cluster allows it.
    pub fn rack(mut self, rack: impl Into<String>) -> Self {
        self.config.fetch.rack = Some(rack.into());
        self
    }
    /// Incremental fetch sessions (KIP-227), [`FetchConfig::sessions`]:
    /// on by default; `false` makes every fetch a full one.
    pub fn fetch_sessions(mut self, on: bool) -> Self {
        self.config.fetch.sessions = on;
        self
    }
    /// Called on every rebalance with the partitions assigned, revoked or
    /// lost (see [`RebalanceListener`]).
    pub fn on_rebalance(mut self, listener: impl RebalanceListener) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Validates the configuration, connects and, for a group reader,
    /// starts joining (see [`Reader::new`]). Every client's builder ends
    /// with `build`.
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn build(self) -> Result<Reader, Error> {
        Reader::start(self.config, self.listener).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> ReaderConfig {
        ReaderConfig {
            brokers: vec!["b:9092".into()],
            group_id: Some("g".into()),
            topic: Some("t".into()),
            ..ReaderConfig::default()
        }
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let c = ReaderConfig::default();
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        assert_eq!(c.rebalance_timeout, Duration::from_secs(30));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(c.commit_interval, None);
        assert_eq!(c.start_offset, StartOffset::Earliest);
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.assignors.len(), 1);
        assert_eq!(c.assignors[0].name(), "cooperative-sticky");
    }

    #[test]
    fn modes_are_checked() {
        assert!(group().validate().is_ok());
        let partition = ReaderConfig {
            brokers: vec!["b:9092".into()],
            topic: Some("t".into()),
            partition: Some(0),
            ..ReaderConfig::default()
        };
        assert!(partition.validate().is_ok());
        let both = ReaderConfig {
            partition: Some(0),
            ..group()
        };
        assert!(both.validate().is_err());
        let no_topic = ReaderConfig {
            topic: None,
            ..group()
        };
        assert!(no_topic.validate().is_err());
        let no_partition = ReaderConfig {
            partition: None,
            ..partition.clone()
        };
        assert!(no_partition.validate().is_err());
        assert!(
            ReaderConfig::default().validate().is_err(),
            "brokers required"
        );
    }

    #[test]
    fn group_timings_are_checked() {
        let slow_heartbeat = ReaderConfig {
            heartbeat_interval: Duration::from_secs(60),
            ..group()
        };
        assert!(slow_heartbeat.validate().is_err());
        let zero_interval = ReaderConfig {
            commit_interval: Some(Duration::ZERO),
            ..group()
        };
        assert!(zero_interval.validate().is_err());
        let no_assignor = ReaderConfig {
            assignors: vec![],
            ..group()
        };
        assert!(no_assignor.validate().is_err());
    }

    #[test]
    fn subscribed_topics_merge_topic_and_group_topics() {
        let c = ReaderConfig {
            group_topics: vec!["b".into(), "t".into()],
            ..group()
        };
        assert_eq!(c.subscribed_topics(), ["b", "t"]);
    }
}
