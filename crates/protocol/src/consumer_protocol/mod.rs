//! The consumer protocol's bytes (`protocol_type` "consumer"): what a
//! member puts in JoinGroup's metadata (a [`Subscription`]) and what the
//! leader hands back through SyncGroup (an [`Assignment`]), each an `int16`
//! version and then that version's fields, plus the sticky assignors' user
//! data ([`encode_sticky_user_data`]). The layout is the Java client's and
//! librdkafka's, so members of either share a group with kafkit's; the
//! reader's group member and the admin client's group descriptions both
//! read it here.
//!
//! Versions: kafkit writes subscription v3 (owned partitions since v1,
//! KIP-429; generation since v2, KIP-792; rack since v3, KIP-881) and
//! assignment v3, as the Java client does. A peer's newer version is read
//! as the newest one known, ignoring the fields appended after it: the
//! protocol's forward-compatibility rule, and Kafka's own decoder's.

mod sticky;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::messages::consumer_protocol_assignment::{self, ConsumerProtocolAssignment};
use crate::messages::consumer_protocol_subscription::{self, ConsumerProtocolSubscription};
use crate::{DecodeError, EncodeError, Message, TopicPartition};

pub use sticky::{decode_sticky_user_data, encode_sticky_user_data};

/// The subscription version kafkit writes, and the newest it reads.
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version kafkit writes, and the newest it reads.
pub const ASSIGNMENT_VERSION: i16 = 3;

/// A group member's subscription: its JoinGroup metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The version it was written at, or is to be written at (0-3; a
    /// decoded one may be newer).
    pub version: i16,
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// Data for the assignor (the sticky assignors' previous assignment
    /// and generation).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (v1+, cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which it got them; -1 when unknown (v2+).
    pub generation_id: i32,
    /// The member's rack (v3+).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    /// An empty subscription at the version kafkit writes, generation -1.
    fn default() -> Self {
        Subscription {
            version: SUBSCRIPTION_VERSION,
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// A group member's assignment: what the leader sends it through SyncGroup.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The version it was written at, or is to be written at (0-3; a
    /// decoded one may be newer).
    pub version: i16,
    /// The partitions assigned to the member.
    pub partitions: Vec<TopicPartition>,
    /// Data for the assignor.
    pub user_data: Option<Bytes>,
}

impl Default for Assignment {
    /// An empty assignment at the version kafkit writes.
    fn default() -> Self {
        Assignment {
            version: ASSIGNMENT_VERSION,
            partitions: Vec::new(),
            user_data: None,
        }
    }
}

impl Subscription {
    /// Decodes member metadata written by any client.
    ///
    /// A body that ends before the fields of the version it claims is read
    /// at the newest older version it fits: kafka-go 0.4.51 labels its
    /// subscription version 1 but writes only version 0's fields, and a
    /// leader that refused it would assign it nothing.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use kafkit_protocol::consumer_protocol::Subscription;
    /// // Version 0: topics ["t"], no user data.
    /// let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
    /// assert_eq!(Subscription::decode(&bytes)?.topics, ["t"]);
    /// # Ok::<(), kafkit_protocol::DecodeError>(())
    /// ```
    pub fn decode(bytes: &Bytes) -> Result<Subscription, DecodeError> {
        let mut buf = bytes.clone();
        let version = read_version(
            &mut buf,
            "ConsumerProtocolSubscription.version",
            SUBSCRIPTION_VERSION,
        )?;
        let claimed = version.min(SUBSCRIPTION_VERSION);
        let mut read_at = claimed;
        let wire = loop {
            match ConsumerProtocolSubscription::decode(&mut buf.clone(), read_at) {
                Ok(wire) => break wire,
                Err(_) if read_at > 0 => read_at -= 1,
                // Fits no version: the error is the claimed version's.
                Err(_) => break ConsumerProtocolSubscription::decode(&mut buf, claimed)?,
            }
        };
        Ok(Subscription {
            version,
            topics: wire.topics,
            user_data: wire.user_data,
            owned_partitions: wire
                .owned_partitions
                .into_iter()
                .flat_map(|t| partitions_of(t.topic, t.partitions))
                .collect(),
            generation_id: if read_at >= 2 { wire.generation_id } else { -1 },
            rack_id: wire.rack_id,
        })
    }

    /// Encodes at `self.version` (0-3), leaving out the fields that version
    /// lacks; owned partitions are grouped by topic, each list sorted.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let v = self.version;
        let wire = ConsumerProtocolSubscription {
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned_partitions: if v >= 1 {
                group_by_topic(&self.owned_partitions)
                    .into_iter()
                    .map(
                        |(topic, partitions)| consumer_protocol_subscription::TopicPartition {
                            topic,
                            partitions,
                        },
                    )
                    .collect()
            } else {
                Vec::new()
            },
            generation_id: if v >= 2 { self.generation_id } else { -1 },
            rack_id: if v >= 3 { self.rack_id.clone() } else { None },
        };
        let mut buf = BytesMut::new();
        buf.put_i16(v);
        wire.encode(&mut buf, v)?;
        Ok(buf.freeze())
    }
}

impl Assignment {
    /// Decodes a member assignment written by any group leader. Empty bytes
    /// (what the broker sends a member the leader left out) are an empty
    /// assignment.
    ///
    /// ```
    /// use kafkit_protocol::TopicPartition;
    /// use kafkit_protocol::consumer_protocol::Assignment;
    /// let assignment = Assignment { version: 1, partitions: vec![TopicPartition::new("t", 0)], user_data: None };
    /// assert_eq!(Assignment::decode(&assignment.encode()?)?, assignment);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(bytes: &Bytes) -> Result<Assignment, DecodeError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut buf = bytes.clone();
        let version = read_version(
            &mut buf,
            "ConsumerProtocolAssignment.version",
            ASSIGNMENT_VERSION,
        )?;
        let wire = ConsumerProtocolAssignment::decode(&mut buf, version.min(ASSIGNMENT_VERSION))?;
        Ok(Assignment {
            version,
            partitions: wire
                .assigned_partitions
                .into_iter()
                .flat_map(|t| partitions_of(t.topic, t.partitions))
                .collect(),
            user_data: wire.user_data,
        })
    }

    /// Encodes at `self.version` (0-3); partitions are grouped by topic,
    /// each list sorted.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let wire = ConsumerProtocolAssignment {
            assigned_partitions: group_by_topic(&self.partitions)
                .into_iter()
                .map(
                    |(topic, partitions)| consumer_protocol_assignment::TopicPartition {
                        topic,
                        partitions,
                    },
                )
                .collect(),
            user_data: self.user_data.clone(),
        };
        let mut buf = BytesMut::new();
        buf.put_i16(self.version);
        wire.encode(&mut buf, self.version)?;
        Ok(buf.freeze())
    }
}

/// Reads the version prefix; a negative one is an error (`max`: the
/// highest version this codec reads; higher ones are read as it).
fn read_version(bytes: &mut Bytes, what: &'static str, max: i16) -> Result<i16, DecodeError> {
    let version = crate::codec::read_i16(bytes, what)?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion {
            message: what,
            version,
            min: 0,
            max,
        });
    }
    Ok(version)
}

/// One topic's partitions from the wire, sharing the topic's name.
fn partitions_of(topic: String, partitions: Vec<i32>) -> impl Iterator<Item = TopicPartition> {
    let topic: Arc<str> = topic.into();
    partitions
        .into_iter()
        .map(move |p| TopicPartition::new(&topic, p))
}

/// Partitions grouped by topic, each list sorted and without repeats: the
/// wire's shape.
fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        out.entry(tp.topic.to_string())
            .or_default()
            .push(tp.partition);
    }
    out.values_mut().for_each(|ps| {
        ps.sort_unstable();
        ps.dedup();
    });
    out
}
