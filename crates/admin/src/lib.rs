//! The kafkit admin client: topics, configs, consumer groups, offsets,
//! ACLs, quotas, SCRAM credentials, transactions and cluster calls, each
//! routed to the broker that must answer it.
//!
//! ```no_run
//! use kafkit_admin::{Admin, NewTopic};
//!
//! # async fn example() -> Result<(), kafkit_admin::Error> {
//! let admin = Admin::builder(["localhost:9092"]).build().await?;
//!
//! // Create two topics; each one succeeds or fails on its own.
//! let created = admin
//!     .create_topics(&[NewTopic::new("orders", 6), NewTopic::new("payments", 3)], false)
//!     .await?;
//! for (name, result) in &created {
//!     match result {
//!         Ok(_) => println!("created {name}"),
//!         Err(e) => println!("{name}: {e}"),
//!     }
//! }
//!
//! // List every topic with its details, as sarama's ClusterAdmin.ListTopics.
//! for (name, topic) in admin.list_topics(false).await? {
//!     println!("{name}: {} partitions x{}", topic.num_partitions, topic.replication_factor);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **Routing.** Each call goes where Kafka wants it: topic creation and
//!   deletion, partition changes, elections and reassignments to the
//!   controller; group calls to the group's coordinator (FindCoordinator,
//!   cached by the [`Transport`]); ListOffsets, DeleteRecords and
//!   DescribeProducers to each partition's leader, one request per leader;
//!   broker configs and log dirs to the broker concerned; ListGroups and
//!   ListTransactions to every broker; the rest to any broker.
//! - **Partial failure is data.** A call about several resources returns a
//!   result per resource (a map keyed by topic, partition, group or config
//!   resource). Creating three topics of which one exists gives two `Ok`
//!   and one `Err` whose [`Error::code`] is `TOPIC_ALREADY_EXISTS`. A call
//!   returns `Err` only when it failed as a whole: the network, a broker
//!   that lacks the API, an error the broker gave for the whole request.
//!   Calls that fan out to several brokers report each broker's failure
//!   next to the others' results.
//! - **Retries.** Calls that only read (describe, list, fetch offsets) are
//!   retried under [`Transport::retry`] when they fail with a retriable
//!   error, after the transport refreshes its metadata or forgets a stale
//!   coordinator; per-partition leadership errors are retried for those
//!   partitions only (DeleteRecords too: deleting up to an offset twice
//!   is harmless). Calls that change the cluster are not retried after
//!   they may have taken effect; but a broker that refused one before
//!   acting (`NOT_CONTROLLER`, `NOT_COORDINATOR`,
//!   `COORDINATOR_LOAD_IN_PROGRESS`) gets it again, or the controller or
//!   coordinator that fresh metadata names does, and so does a broker the
//!   request could not be sent to at all.
//! - **Versions** are negotiated per broker; fields a version lacks are
//!   set only when the broker speaks a version that has them.
//! - **Concurrency.** Requests to several brokers, leaders or
//!   coordinators are sent at once, not one after another.
//! - **Tracing.** Every call runs in a tracing span named after it
//!   (`admin.create_topics`...), around the `kafka_request` spans of
//!   kafkit-conn; retries and re-routes log at debug level.
//!
//! # Cancel safety
//!
//! Dropping a read-only call's future is safe: nothing changes. Dropping a
//! call that changes the cluster may leave it applied on some brokers or
//! resources and not on others, exactly as if the call had failed over the
//! network; describe the resources to learn their state. Each method says
//! which of the two it is.
//!
//! # Features
//!
//! No optional features. SCRAM credentials are salted on the client
//! (KIP-554) with PBKDF2-HMAC-SHA-256/512 from RustCrypto.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acls;
mod builder;
mod cluster;
mod config_alter;
mod configs;
mod error;
mod group_offsets;
mod groups;
mod lag;
mod offsets;
mod quotas;
mod replicas;
mod route;
mod scram;
mod topic_changes;
mod topics;
mod transactions;
mod wire;

use std::time::Duration;

pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, DeletedAcl, PatternType,
    ResourceType,
};
pub use builder::AdminBuilder;
pub use cluster::{BrokerDescription, ClusterDescription};
pub use config_alter::AlterConfigOp;
pub use configs::{ConfigEntry, ConfigResource, ConfigSource, ConfigSynonym, ConfigType};
pub use error::{Error, ErrorKind, Result};
pub use group_offsets::CommittedOffset;
pub use groups::{GroupDescription, GroupListing, GroupListings, MemberDescription};
pub use kafkit_conn::{ErrorCode, Transport, TransportConfig};
pub use kafkit_protocol::Uuid;
pub use kafkit_protocol::consumer_protocol::{Assignment, Subscription};
pub use lag::PartitionLag;
pub use offsets::{IsolationLevel, ListedOffset, OffsetSpec};
pub use quotas::{QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch};
pub use replicas::{ElectionType, LogDir, LogDirPartition, Reassignment};
pub use scram::{ScramAlteration, ScramCredentialInfo, ScramMechanism};
pub use topic_changes::{CreatedTopic, NewPartitions, NewTopic};
pub use topics::{PartitionDescription, TopicDescription, TopicDetail};
pub use transactions::{
    ProducerState, TransactionDescription, TransactionListing, TransactionListings,
};

/// A topic and partition, the key of per-partition results (defined in
/// kafkit-conn, shared with the reader and the writer).
pub use kafkit_conn::TopicPartition;

/// Settings of an [`Admin`] beyond those of its [`Transport`].
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// How long the broker may take over an operation that waits for the
    /// cluster (creating or deleting topics, adding partitions, deleting
    /// records, elections, reassignments): the requests' `timeout_ms`.
    /// Default 30 s, the Java admin client's `default.api.timeout.ms`
    /// halved, so that the broker answers (with `REQUEST_TIMED_OUT` per
    /// resource) well before a client-side request timeout would fire
    /// and lose the per-resource answer.
    pub operation_timeout: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The admin client: a cheap `Clone` handle over a [`Transport`].
#[derive(Debug, Clone)]
pub struct Admin {
    transport: Transport,
    config: AdminConfig,
}

impl Admin {
    /// A builder that connects a transport of its own: `bootstrap` is
    /// `host:port` addresses, each also read as a comma-separated list.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kafkit_admin::Error> {
    /// let admin = kafkit_admin::Admin::builder(["kafka-1:9092", "kafka-2:9092"]).build().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder<S: Into<String>>(bootstrap: impl IntoIterator<Item = S>) -> AdminBuilder {
        AdminBuilder::new(TransportConfig::new(bootstrap))
    }

    /// An admin client over an existing transport (shared with readers and
    /// writers, or configured with TLS or SASL).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kafkit_admin::Error> {
    /// use kafkit_admin::{Transport, TransportConfig};
    /// let transport = Transport::connect(TransportConfig::new(["kafka-1:9092"])).await?;
    /// let admin = kafkit_admin::Admin::new(transport.clone());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(transport: Transport) -> Admin {
        Admin::with_config(transport, AdminConfig::default())
    }

    /// An admin client over `transport` with `config`.
    ///
    /// ```no_run
    /// # fn example(transport: kafkit_admin::Transport) {
    /// use std::time::Duration;
    /// use kafkit_admin::{Admin, AdminConfig};
    /// let config = AdminConfig { operation_timeout: Duration::from_secs(120) };
    /// let admin = Admin::with_config(transport, config);
    /// # }
    /// ```
    pub fn with_config(transport: Transport, config: AdminConfig) -> Admin {
        Admin { transport, config }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// [`AdminConfig::operation_timeout`] in the protocol's milliseconds.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.config.operation_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        assert_eq!(
            AdminConfig::default().operation_timeout,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn topic_partitions_sort_by_topic_then_partition() {
        let mut tps = vec![
            TopicPartition::new("b", 0),
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 1),
        ];
        tps.sort();
        assert_eq!(
            tps,
            [
                TopicPartition::new("a", 1),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 0)
            ]
        );
    }
}
