//! [`TransportConfig`]: how a [`Transport`](crate::Transport) finds the
//! cluster, keeps its metadata fresh and retries.

use std::time::Duration;

use crate::{Backoff, ConnConfig, Error};

/// Settings for a [`Transport`](crate::Transport). Every field documents its
/// default and why; [`Transport::connect`](crate::Transport::connect) checks
/// them with [`validate`](TransportConfig::validate).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `host:port` addresses to learn the cluster from; tried in order
    /// until one answers. Only needed at start and when every known broker
    /// is unreachable.
    pub bootstrap: Vec<String>,
    /// The settings of every connection.
    pub conn: ConnConfig,
    /// How often a background task refreshes the metadata even when nothing
    /// went wrong, and the age past which a lookup refreshes it first.
    /// Default 5 minutes, Java's `metadata.max.age.ms` and franz-go's
    /// `MetadataMaxAge`: leadership changes are normally learned sooner,
    /// from errors (see [`Transport::on_error`](crate::Transport::on_error));
    /// the timer catches new partitions and brokers that no error reveals.
    pub metadata_max_age: Duration,
    /// The least time between two refreshes triggered by errors; a caller
    /// that wants a refresh sooner waits for the rest of it (and shares the
    /// refresh with every other caller waiting). Default 100 ms, as Java
    /// spaces metadata refreshes by `retry.backoff.ms`: a burst of
    /// `NOT_LEADER_OR_FOLLOWER` answers from one election then costs one
    /// Metadata request, not one per failed request, while a moved leader
    /// is still found within a retry's first backoff. (franz-go's
    /// `MetadataMinAge` defaults to a more conservative 5 s.) Failed
    /// refreshes back off further, doubling up to `backoff.max`.
    pub metadata_min_age: Duration,
    /// Topics no lookup asked about for this long drop out of the refreshes
    /// (they are fetched again on their next lookup). Default 5 minutes,
    /// Java's `metadata.max.idle.ms`: a client that stopped writing to a
    /// topic should not keep paying for its metadata.
    pub metadata_idle: Duration,
    /// Whether Metadata requests ask the broker to create the topics they
    /// name. Default `false`, as in franz-go: the transport looks topics up
    /// for reads, retries and periodic refreshes, and with `true` a typo, a
    /// consumer of a deleted topic, or a refresh racing a `DeleteTopics`
    /// would silently (re)create a topic with the broker's default
    /// partitions and replication. Producers that rely on the broker's
    /// `auto.create.topics.enable` can opt in.
    pub allow_auto_topic_creation: bool,
    /// How [`Transport::retry`](crate::Transport::retry) spaces its
    /// attempts, and how many it makes (defaults: 100 ms doubling to 1 s,
    /// Java's `retry.backoff.ms` and `retry.backoff.max.ms`, ±20 % jitter,
    /// 5 attempts, 60 s in all).
    pub backoff: Backoff,
    /// What to do when the known brokers fail a metadata refresh. Default
    /// [`MetadataRecovery::Rebootstrap`], as Java's
    /// `metadata.recovery.strategy` since Kafka 4.0: a cluster whose
    /// brokers were all replaced (new hosts or ports, as after a
    /// redeployment) is found again through the bootstrap list.
    pub metadata_recovery: MetadataRecovery,
    /// How long refreshes may fail before the next one asks the bootstrap
    /// addresses first (KIP-1102). Default 5 minutes, Java's
    /// `metadata.recovery.rebootstrap.trigger.ms`. Only with
    /// [`MetadataRecovery::Rebootstrap`].
    pub rebootstrap_trigger: Duration,
}

/// What a [`Transport`](crate::Transport) does when the brokers of its
/// metadata fail it (KIP-899, KIP-1102).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataRecovery {
    /// Rebootstrap: ask the bootstrap addresses again, resolving their
    /// host names anew, when every known broker fails a refresh, when
    /// refreshes have failed for `rebootstrap_trigger`, or when a broker
    /// answers `REBOOTSTRAP_REQUIRED`; the cluster they describe replaces
    /// the known one.
    #[default]
    Rebootstrap,
    /// After the first metadata, ask only the brokers it names (Java's
    /// behaviour before Kafka 3.8): a client whose brokers all moved
    /// stays lost until it is restarted.
    None,
}

impl TransportConfig {
    /// Defaults, bootstrapping from `bootstrap`: `host:port` addresses,
    /// each entry also read as a comma-separated list (Java's
    /// `bootstrap.servers`), so `["a:9092,b:9092"]` names two brokers;
    /// blanks around an address are dropped, and so are empty entries.
    pub fn new<S: Into<String>>(bootstrap: impl IntoIterator<Item = S>) -> TransportConfig {
        let bootstrap = bootstrap
            .into_iter()
            .flat_map(|entry| {
                let entry: String = entry.into();
                entry
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        TransportConfig {
            bootstrap,
            conn: ConnConfig::default(),
            metadata_max_age: Duration::from_secs(5 * 60),
            metadata_min_age: Duration::from_millis(100),
            metadata_idle: Duration::from_secs(5 * 60),
            allow_auto_topic_creation: false,
            backoff: Backoff::default(),
            metadata_recovery: MetadataRecovery::Rebootstrap,
            rebootstrap_trigger: Duration::from_secs(5 * 60),
        }
    }

    /// Checks the rules that span fields, and the connection settings.
    pub fn validate(&self) -> Result<(), Error> {
        if self.bootstrap.is_empty() {
            return Err(Error::config("the bootstrap list is empty"));
        }
        if self.metadata_max_age.is_zero() {
            return Err(Error::config("metadata_max_age must be positive"));
        }
        if self.metadata_min_age > self.metadata_max_age {
            return Err(Error::config(
                "metadata_min_age must not exceed metadata_max_age",
            ));
        }
        if self.rebootstrap_trigger.is_zero() {
            return Err(Error::config("rebootstrap_trigger must be positive"));
        }
        if !(0.0..=1.0).contains(&self.backoff.jitter) {
            return Err(Error::config("backoff.jitter must be within 0.0..=1.0"));
        }
        if self.backoff.initial > self.backoff.max {
            return Err(Error::config("backoff.initial must not exceed backoff.max"));
        }
        self.conn.validate()
    }

    /// The spacing of refreshes: `metadata_min_age`, doubling after each
    /// failed refresh up to `backoff.max`.
    pub(crate) fn refresh_backoff(&self) -> Backoff {
        Backoff {
            initial: self.metadata_min_age,
            max: self.backoff.max.max(self.metadata_min_age),
            jitter: self.backoff.jitter,
            max_attempts: u32::MAX,
            deadline: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_entry_may_list_several_brokers() {
        let config = TransportConfig::new(["a:9092, b:9092,", "c:9092"]);
        assert_eq!(config.bootstrap, ["a:9092", "b:9092", "c:9092"]);
        let config = TransportConfig::new([String::from(" d:9092 "), String::new()]);
        assert_eq!(
            config.bootstrap,
            ["d:9092"],
            "trimmed, empty entries dropped"
        );
        assert!(TransportConfig::new([","]).validate().is_err());
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let c = TransportConfig::new(["a:9092", "b:9092"]);
        assert_eq!(c.bootstrap, ["a:9092", "b:9092"]);
        assert_eq!(c.metadata_max_age, Duration::from_secs(300));
        assert_eq!(c.metadata_min_age, Duration::from_millis(100));
        assert!(!c.allow_auto_topic_creation);
        assert_eq!(c.backoff.initial, Duration::from_millis(100));
        assert_eq!(c.backoff.max, Duration::from_secs(1));
        assert_eq!(c.backoff.max_attempts, 5);
        assert_eq!(c.backoff.deadline, Some(Duration::from_secs(60)));
        assert_eq!(c.metadata_recovery, MetadataRecovery::Rebootstrap);
        assert_eq!(c.rebootstrap_trigger, Duration::from_secs(300));
        c.validate().unwrap();
    }

    #[test]
    fn rules_across_fields_are_checked() {
        let mut c = TransportConfig::new(["a:9092"]);
        c.metadata_min_age = Duration::from_secs(600);
        assert!(c.validate().is_err());
        let mut c = TransportConfig::new(["a:9092"]);
        c.backoff.jitter = 2.0;
        assert!(c.validate().is_err());
        let mut c = TransportConfig::new(["a:9092"]);
        c.metadata_max_age = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = TransportConfig::new(["a:9092"]);
        c.rebootstrap_trigger = Duration::ZERO;
        assert!(c.validate().is_err());
        assert!(
            TransportConfig::new(Vec::<String>::new())
                .validate()
                .is_err()
        );
    }
}
