//! The types every client layer speaks of, defined once here and
//! re-exported by the reader, the writer and the admin client:
//! [`IsolationLevel`] and [`ConsumerGroupMetadata`], and
//! [`TopicPartition`], which the consumer protocol's codec in
//! kafkit-protocol needs and so defines.

pub use kafkit_protocol::{IntoTopic, TopicPartition};

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
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadUncommitted);
        assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
        let g = ConsumerGroupMetadata::new("billing");
        assert_eq!((g.generation_id, g.member_id.as_str()), (-1, ""));
    }
}
