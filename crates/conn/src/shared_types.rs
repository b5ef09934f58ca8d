//! The types every client layer speaks of, defined once here and
//! re-exported by the reader, the writer and the admin client:
//! [`TopicPartition`], [`IsolationLevel`] and [`ConsumerGroupMetadata`].

use std::fmt;
use std::sync::Arc;

/// A partition of a topic. The topic is shared (`Arc<str>`), so cloning is
/// cheap and every consumed message of the partition points at the same
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`; `topic` is a `&str`, a `String` (or a
    /// reference to one) or an `Arc<str>`, which is shared, not copied.
    pub fn new(topic: impl IntoTopic, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into_topic(),
            partition,
        }
    }
}

/// What names a topic in [`TopicPartition::new`]: string slices and
/// strings are copied once into an `Arc<str>`, an `Arc<str>` is shared.
pub trait IntoTopic {
    /// The topic name as the shared string a [`TopicPartition`] holds.
    fn into_topic(self) -> Arc<str>;
}

impl IntoTopic for &str {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoTopic for String {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoTopic for &String {
    fn into_topic(self) -> Arc<str> {
        Arc::from(self.as_str())
    }
}

impl IntoTopic for Arc<str> {
    fn into_topic(self) -> Arc<str> {
        self
    }
}

impl IntoTopic for &Arc<str> {
    fn into_topic(self) -> Arc<str> {
        self.clone()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Which records a read sees (KIP-98): what a fetch returns, and where
/// ListOffsets puts the end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, including those of open and
    /// aborted transactions. Kafka's default.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional
    /// ones), up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value of Fetch's and ListOffsets' `isolation_level`.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Who a consumer group member is right now, and what a transactional
/// writer sends with the offsets it commits (TxnOffsetCommit, KIP-447):
/// the group coordinator rejects a commit from a member of an older
/// generation, which is what keeps a zombie processor from committing.
/// A reader's `group_metadata()` gives it; a writer's
/// `send_offsets_to_transaction` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The generation last joined; -1 before the first join or when
    /// unknown (the coordinator then checks nothing).
    pub generation_id: i32,
    /// The member id the coordinator gave; empty before the first join or
    /// when unknown.
    pub member_id: String,
    /// The static member id (KIP-345), if configured.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata naming only the group (generation -1, no member): the
    /// coordinator does not check membership. Use the reader's group
    /// metadata to get zombie fencing.
    pub fn new(group_id: impl Into<String>) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_types_read_as_documented() {
        let tp = TopicPartition::new("orders", 3);
        assert_eq!(tp.to_string(), "orders/3");
        let name = String::from("orders");
        assert_eq!(TopicPartition::new(&name, 3), tp);
        assert!(Arc::ptr_eq(
            &TopicPartition::new(&tp.topic, 0).topic,
            &tp.topic
        ));
        assert!(TopicPartition::new("a", 9) < TopicPartition::new("b", 0));
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadUncommitted);
        assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
        let g = ConsumerGroupMetadata::new("billing");
        assert_eq!((g.generation_id, g.member_id.as_str()), (-1, ""));
    }
}
