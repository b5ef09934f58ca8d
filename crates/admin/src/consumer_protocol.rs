//! The consumer protocol (`protocol_type` "consumer"): what a member of a
//! consumer group sends as its metadata (a [`Subscription`]) and what the
//! leader hands it back (an [`Assignment`]). Both are a big-endian `int16`
//! version, then the fields of that version (0-3). A version newer than 3
//! is read as version 3, ignoring the fields it adds, as Kafka's own
//! decoder does: the format only ever appends fields.

use bytes::{Buf, Bytes, BytesMut};
use kafkit_protocol::messages::consumer_protocol_assignment::{self, ConsumerProtocolAssignment};
use kafkit_protocol::messages::consumer_protocol_subscription::{
    self, ConsumerProtocolSubscription,
};
use kafkit_protocol::{DecodeError, Message};

use crate::TopicPartition;
use crate::error::{Error, Result};

/// The newest consumer protocol version this crate reads.
const MAX_VERSION: i16 = 3;

/// A group member's subscription, decoded from its member metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscription {
    /// The version it was written at.
    pub version: i16,
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
    /// The partitions the member owns (v1+, cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation of the owned partitions (v2+; -1 if unknown).
    pub generation_id: i32,
    /// The member's rack (v3+).
    pub rack_id: Option<String>,
}

/// A group member's assignment, decoded from its member assignment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assignment {
    /// The version it was written at.
    pub version: i16,
    /// The partitions assigned to the member.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

/// Splits the version prefix off and picks the version to read with.
fn version(buf: &mut Bytes, what: &'static str) -> Result<(i16, i16)> {
    if buf.remaining() < 2 {
        return Err(Error::from(DecodeError::Truncated {
            what,
            needed: 2,
            remaining: buf.remaining(),
        }));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(crate::error::invalid(format!(
            "{what} has a negative version {version}"
        )));
    }
    Ok((version, version.min(MAX_VERSION)))
}

impl Subscription {
    /// Decodes member metadata written by a consumer.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use kafkit_admin::Subscription;
    /// // Version 0: topics ["t"], no user data.
    /// let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
    /// assert_eq!(Subscription::decode(&bytes)?.topics, ["t"]);
    /// # Ok::<(), kafkit_admin::Error>(())
    /// ```
    pub fn decode(bytes: &Bytes) -> Result<Subscription> {
        let mut buf = bytes.clone();
        let (version, claimed) = version(&mut buf, "ConsumerProtocolSubscription")?;
        // A body shorter than its claimed version is read at the newest
        // older version it fits (kafka-go 0.4.51 labels a version 0 body 1).
        let mut read_at = claimed;
        let s = loop {
            match ConsumerProtocolSubscription::decode(&mut buf.clone(), read_at) {
                Ok(s) => break s,
                Err(_) if read_at > 0 => read_at -= 1,
                Err(_) => break ConsumerProtocolSubscription::decode(&mut buf, claimed)?,
            }
        };
        Ok(Subscription {
            version,
            topics: s.topics,
            user_data: s.user_data,
            owned_partitions: s
                .owned_partitions
                .into_iter()
                .flat_map(|t| {
                    t.partitions
                        .into_iter()
                        .map(move |p| TopicPartition::new(t.topic.clone(), p))
                })
                .collect(),
            generation_id: if read_at >= 2 { s.generation_id } else { -1 },
            rack_id: s.rack_id,
        })
    }

    /// Encodes at `self.version` (0-3), as a consumer would.
    pub fn encode(&self) -> Result<Bytes> {
        let owned = group(&self.owned_partitions)
            .into_iter()
            .map(
                |(topic, partitions)| consumer_protocol_subscription::TopicPartition {
                    topic,
                    partitions,
                },
            )
            .collect();
        let wire = ConsumerProtocolSubscription {
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned_partitions: if self.version >= 1 { owned } else { Vec::new() },
            generation_id: if self.version >= 2 {
                self.generation_id
            } else {
                -1
            },
            rack_id: if self.version >= 3 {
                self.rack_id.clone()
            } else {
                None
            },
        };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&self.version.to_be_bytes());
        wire.encode(&mut buf, self.version)?;
        Ok(buf.freeze())
    }
}

impl Assignment {
    /// Decodes a member assignment written by a group leader.
    ///
    /// ```
    /// use kafkit_admin::{Assignment, TopicPartition};
    /// let assignment = Assignment { version: 1, partitions: vec![TopicPartition::new("t", 0)], user_data: None };
    /// assert_eq!(Assignment::decode(&assignment.encode()?)?, assignment);
    /// # Ok::<(), kafkit_admin::Error>(())
    /// ```
    pub fn decode(bytes: &Bytes) -> Result<Assignment> {
        let mut buf = bytes.clone();
        let (version, read_at) = version(&mut buf, "ConsumerProtocolAssignment")?;
        let a = ConsumerProtocolAssignment::decode(&mut buf, read_at)?;
        Ok(Assignment {
            version,
            partitions: a
                .assigned_partitions
                .into_iter()
                .flat_map(|t| {
                    t.partitions
                        .into_iter()
                        .map(move |p| TopicPartition::new(t.topic.clone(), p))
                })
                .collect(),
            user_data: a.user_data,
        })
    }

    /// Encodes at `self.version` (0-3), as a group leader would.
    pub fn encode(&self) -> Result<Bytes> {
        let wire = ConsumerProtocolAssignment {
            assigned_partitions: group(&self.partitions)
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
        buf.extend_from_slice(&self.version.to_be_bytes());
        wire.encode(&mut buf, self.version)?;
        Ok(buf.freeze())
    }
}

/// Partitions grouped by topic, topics in first-seen order.
fn group(partitions: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match out.iter_mut().find(|(t, _)| **t == *tp.topic) {
            Some((_, ps)) => ps.push(tp.partition),
            None => out.push((tp.topic.to_string(), vec![tp.partition])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(version: i16) -> Subscription {
        Subscription {
            version,
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(b"ud")),
            owned_partitions: if version >= 1 {
                vec![TopicPartition::new("a", 0), TopicPartition::new("a", 2)]
            } else {
                vec![]
            },
            generation_id: if version >= 2 { 7 } else { -1 },
            rack_id: (version >= 3).then(|| "rack-1".to_string()),
        }
    }

    #[test]
    fn subscriptions_round_trip_at_every_version() {
        for v in 0..=3 {
            let s = subscription(v);
            assert_eq!(
                Subscription::decode(&s.encode().unwrap()).unwrap(),
                s,
                "v{v}"
            );
        }
    }

    #[test]
    fn a_v0_subscription_decodes_from_hand_written_bytes() {
        // version 0, [topics: "t"], user_data: null
        let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = Subscription::decode(&bytes).unwrap();
        assert_eq!(
            (s.version, s.topics.as_slice(), s.user_data),
            (0, &["t".to_string()][..], None)
        );
    }

    #[test]
    fn assignments_round_trip_and_newer_versions_read_as_v3() {
        for v in 0..=3 {
            let a = Assignment {
                version: v,
                partitions: vec![
                    TopicPartition::new("x", 1),
                    TopicPartition::new("y", 0),
                    TopicPartition::new("x", 3),
                ],
                user_data: None,
            };
            let decoded = Assignment::decode(&a.encode().unwrap()).unwrap();
            assert_eq!(decoded.version, v);
            assert_eq!(decoded.partitions.len(), 3);
            assert!(decoded.partitions.contains(&TopicPartition::new("x", 3)));
        }
        // A v4 assignment with an appended field still reads.
        let mut bytes = Assignment {
            version: 3,
            partitions: vec![TopicPartition::new("x", 0)],
            user_data: None,
        }
        .encode()
        .unwrap()
        .to_vec();
        bytes[1] = 4;
        bytes.extend_from_slice(&[1, 2, 3]);
        let a = Assignment::decode(&Bytes::from(bytes)).unwrap();
        assert_eq!(
            (a.version, a.partitions),
            (4, vec![TopicPartition::new("x", 0)])
        );
    }

    #[test]
    fn short_or_negative_versions_are_errors() {
        assert!(Assignment::decode(&Bytes::from_static(&[0])).is_err());
        assert!(Subscription::decode(&Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(Subscription::decode(&Bytes::from_static(&[0, 0, 0, 0, 0, 5])).is_err());
    }
}
