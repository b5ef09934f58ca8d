//! [`TopicPartition`]: the one name for a partition of a topic, from the
//! consumer protocol's bytes up to the reader, the writer and the admin
//! client (kafkit-conn re-exports it).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_partition_shares_its_name_and_reads_as_documented() {
        let tp = TopicPartition::new("orders", 3);
        assert_eq!(tp.to_string(), "orders/3");
        let name = String::from("orders");
        assert_eq!(TopicPartition::new(&name, 3), tp);
        assert!(Arc::ptr_eq(
            &TopicPartition::new(&tp.topic, 0).topic,
            &tp.topic
        ));
        assert!(TopicPartition::new("a", 9) < TopicPartition::new("b", 0));
    }
}
