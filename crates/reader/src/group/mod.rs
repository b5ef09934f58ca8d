//! Consumer groups on the classic protocol: the assignors, the consumer
//! protocol's bytes, and the membership that joins, syncs, heartbeats and
//! leaves on the coordinator's own connection.

use std::sync::Arc;

use crate::TopicPartition;

mod assignor;
pub(crate) mod client;
mod leader;
mod listener;
pub(crate) mod membership;
/// The consumer protocol's bytes, for custom assignors (kafkit-protocol's).
pub use kafkit_protocol::consumer_protocol as protocol;
mod range;
mod roundrobin;
mod sticky;

pub use assignor::{
    Assignments, Assignor, AssignorFn, Member, RebalanceProtocol, TopicCounts, cooperative_adjust,
};
pub use listener::{Rebalance, RebalanceKind, RebalanceListener};
pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

/// A `TopicPartition` from a topic name and partition number.
pub(crate) fn tp(topic: impl Into<Arc<str>>, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}
