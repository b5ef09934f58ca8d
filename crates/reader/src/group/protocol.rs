//! The consumer protocol's bytes: what a member puts in JoinGroup's
//! metadata (`ConsumerProtocolSubscription`) and what the leader hands back
//! through SyncGroup (`ConsumerProtocolAssignment`), each prefixed by an
//! `int16` version, plus the sticky assignors' user data. The layout is the
//! Java client's and librdkafka's, so members of either can share a group.
//!
//! Versions: kafkit writes subscription v3 (owned partitions since v1,
//! KIP-429; generation since v2, KIP-792; rack since v3, KIP-881) and
//! assignment v3, as the Java client does. A peer's newer version is read as
//! the newest one known, ignoring fields appended after it, which is the
//! protocol's forward-compatibility rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafkit_protocol::codec::{read_array, read_i32, read_string, write_array, write_string};
use kafkit_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, consumer_protocol_assignment,
    consumer_protocol_subscription,
};
use kafkit_protocol::{DecodeError, Message};

use super::tp;
use crate::TopicPartition;

/// The subscription version kafkit writes.
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version kafkit writes.
pub const ASSIGNMENT_VERSION: i16 = 3;

/// One member's subscription, decoded from its JoinGroup metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The topics the member wants.
    pub topics: Vec<String>,
    /// Opaque data for the assignor (the sticky assignors' previous
    /// assignment and generation).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (v1+, cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which it got them; -1 when unknown (v2+).
    pub generation: i32,
    /// The member's rack (v3+).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation: -1,
            rack_id: None,
        }
    }
}

/// Encodes `sub` as version-prefixed `ConsumerProtocolSubscription` bytes.
pub fn encode_subscription(sub: &Subscription) -> Bytes {
    let wire = ConsumerProtocolSubscription {
        topics: sub.topics.clone(),
        user_data: sub.user_data.clone(),
        owned_partitions: group_by_topic(&sub.owned_partitions)
            .into_iter()
            .map(
                |(topic, partitions)| consumer_protocol_subscription::TopicPartition {
                    topic,
                    partitions,
                },
            )
            .collect(),
        generation_id: sub.generation,
        rack_id: sub.rack_id.clone(),
    };
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    wire.encode(&mut buf, SUBSCRIPTION_VERSION)
        .expect("a subscription always encodes at v3");
    buf.freeze()
}

/// Decodes version-prefixed subscription bytes from any client.
///
/// A body that ends before the fields of the version it claims is read at
/// the newest older version it fits: kafka-go 0.4.51 labels its
/// subscription version 1 but writes only version 0's fields (no owned
/// partitions), and a leader that refused it would assign it nothing.
pub fn decode_subscription(mut bytes: Bytes) -> Result<Subscription, DecodeError> {
    let claimed = read_version(&mut bytes, "ConsumerProtocolSubscription.version")?;
    let claimed = claimed.min(SUBSCRIPTION_VERSION);
    let mut version = claimed;
    let wire = loop {
        match ConsumerProtocolSubscription::decode(&mut bytes.clone(), version) {
            Ok(wire) => break wire,
            Err(_) if version > 0 => version -= 1,
            // Fits no version: the error is the claimed version's.
            Err(_) => break ConsumerProtocolSubscription::decode(&mut bytes, claimed)?,
        }
    };
    Ok(Subscription {
        topics: wire.topics,
        user_data: wire.user_data,
        owned_partitions: wire
            .owned_partitions
            .into_iter()
            .flat_map(|t| {
                let topic: Arc<str> = t.topic.into();
                t.partitions.into_iter().map(move |p| tp(topic.clone(), p))
            })
            .collect(),
        generation: if version >= 2 { wire.generation_id } else { -1 },
        rack_id: wire.rack_id,
    })
}

/// Encodes an assignment as version-prefixed `ConsumerProtocolAssignment`.
pub fn encode_assignment(partitions: &[TopicPartition], user_data: Option<Bytes>) -> Bytes {
    let wire = ConsumerProtocolAssignment {
        assigned_partitions: group_by_topic(partitions)
            .into_iter()
            .map(
                |(topic, partitions)| consumer_protocol_assignment::TopicPartition {
                    topic,
                    partitions,
                },
            )
            .collect(),
        user_data,
    };
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    wire.encode(&mut buf, ASSIGNMENT_VERSION)
        .expect("an assignment always encodes at v3");
    buf.freeze()
}

/// Decodes SyncGroup's assignment bytes. Empty bytes (what a broker sends a
/// member the leader left out) are an empty assignment.
pub fn decode_assignment(mut bytes: Bytes) -> Result<Vec<TopicPartition>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let version = read_version(&mut bytes, "ConsumerProtocolAssignment.version")?;
    let wire = ConsumerProtocolAssignment::decode(&mut bytes, version.min(ASSIGNMENT_VERSION))?;
    Ok(wire
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic: Arc<str> = t.topic.into();
            t.partitions.into_iter().map(move |p| tp(topic.clone(), p))
        })
        .collect())
}

fn read_version(bytes: &mut Bytes, what: &'static str) -> Result<i16, DecodeError> {
    let version = kafkit_protocol::codec::read_i16(bytes, what)?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion {
            message: what,
            version,
            min: 0,
            max: SUBSCRIPTION_VERSION,
        });
    }
    Ok(version)
}

/// The sticky assignors' user data, in the layout the Java `StickyAssignor`
/// and librdkafka's sticky and cooperative-sticky assignors share
/// ("StickyAssignorUserData" v1: `[topic [partition]] generation`).
pub fn encode_sticky_user_data(previous: &[TopicPartition], generation: i32) -> Bytes {
    let mut buf = BytesMut::new();
    let grouped: Vec<(String, Vec<i32>)> = group_by_topic(previous).into_iter().collect();
    write_array(
        &mut buf,
        &grouped,
        false,
        "StickyUserData",
        |buf, (t, ps)| {
            write_string(buf, t, false, "StickyUserData.topic")?;
            buf.put_i32(ps.len() as i32);
            ps.iter().for_each(|p| buf.put_i32(*p));
            Ok(())
        },
    )
    .expect("topic names fit an int16 length");
    buf.put_i32(generation);
    buf.freeze()
}

/// What a member claims to own, read from its user data: the sticky v1
/// layout above (v0 lacks the generation), or the Java
/// `CooperativeStickyAssignor`'s four-byte generation alone. `None` when the
/// bytes are neither.
pub fn decode_sticky_user_data(mut bytes: Bytes) -> Option<(Vec<TopicPartition>, i32)> {
    if bytes.len() == 4 {
        return Some((Vec::new(), bytes.get_i32()));
    }
    let topics = read_array(&mut bytes, false, "StickyUserData", |buf| {
        let topic: Arc<str> = read_string(buf, false, "StickyUserData.topic")?.into();
        let partitions = read_array(buf, false, "StickyUserData.partitions", |buf| {
            read_i32(buf, "StickyUserData.partition")
        })?;
        Ok(partitions
            .into_iter()
            .map(|p| tp(topic.clone(), p))
            .collect::<Vec<_>>())
    })
    .ok()?;
    let generation = if bytes.remaining() >= 4 {
        bytes.get_i32()
    } else {
        -1
    };
    Some((topics.into_iter().flatten().collect(), generation))
}

/// Partitions grouped by topic, each list sorted: the wire's shape.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 subscription laid out field by field as the Java client's
    /// `ConsumerProtocol.serializeSubscription` and librdkafka's
    /// `rd_kafka_consumer_protocol_member_metadata_new` write it.
    fn peer_subscription_v3() -> Vec<u8> {
        let mut b = vec![0, 3]; // version
        b.extend([0, 0, 0, 1, 0, 3, b'f', b'o', b'o']); // topics: ["foo"]
        b.extend([255, 255, 255, 255]); // user_data: null
        b.extend([0, 0, 0, 1, 0, 3, b'f', b'o', b'o']); // owned: [foo
        b.extend([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]); //  [0, 2]]
        b.extend([0, 0, 0, 7]); // generation 7
        b.extend([255, 255]); // rack: null
        b
    }

    #[test]
    fn subscription_matches_peer_bytes() {
        let sub = Subscription {
            topics: vec!["foo".into()],
            user_data: None,
            owned_partitions: vec![tp("foo", 2), tp("foo", 0)],
            generation: 7,
            rack_id: None,
        };
        assert_eq!(encode_subscription(&sub).to_vec(), peer_subscription_v3());
        let back = decode_subscription(Bytes::from(peer_subscription_v3())).unwrap();
        assert_eq!(back.owned_partitions, vec![tp("foo", 0), tp("foo", 2)]);
        assert_eq!(back.generation, 7);
    }

    #[test]
    fn v0_subscription_from_an_old_client_decodes() {
        // Version 0: topics and user data only (what Java 2.3 and earlier
        // clients send).
        let mut b = vec![0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b'];
        b.extend([0, 0, 0, 2, 0xAB, 0xCD]);
        let sub = decode_subscription(Bytes::from(b)).unwrap();
        assert_eq!(sub.topics, ["a", "b"]);
        assert_eq!(sub.user_data.as_deref(), Some(&[0xAB, 0xCD][..]));
        assert!(sub.owned_partitions.is_empty());
        assert_eq!(sub.generation, -1);
    }

    #[test]
    fn a_v1_label_on_a_v0_body_decodes_as_v0() {
        // kafka-go 0.4.51: version 1, then only topics and user data.
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b'a'];
        b.extend([0, 0, 0, 1, 0x7F]);
        let sub = decode_subscription(Bytes::from(b)).unwrap();
        assert_eq!(sub.topics, ["a"]);
        assert_eq!(sub.user_data.as_deref(), Some(&[0x7F][..]));
        assert!(sub.owned_partitions.is_empty());
        assert_eq!(sub.generation, -1);
    }

    #[test]
    fn newer_versions_read_as_v3_ignoring_appended_fields() {
        let mut b = peer_subscription_v3();
        b[1] = 9; // a future version...
        b.extend([1, 2, 3]); // ...that appended a field
        let sub = decode_subscription(Bytes::from(b)).unwrap();
        assert_eq!(sub.topics, ["foo"]);
        assert_eq!(sub.generation, 7);
    }

    #[test]
    fn negative_version_and_truncation_are_errors() {
        assert!(decode_subscription(Bytes::from_static(&[255, 255, 0, 0])).is_err());
        let b = peer_subscription_v3();
        assert!(decode_subscription(Bytes::from(b[..10].to_vec())).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0, 1, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn assignment_matches_peer_bytes() {
        // Version 3, [("t", [1, 4])], user data null.
        let mut b = vec![0, 3, 0, 0, 0, 1, 0, 1, b't'];
        b.extend([0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4]);
        b.extend([255, 255, 255, 255]);
        assert_eq!(
            encode_assignment(&[tp("t", 4), tp("t", 1)], None).to_vec(),
            b
        );
        assert_eq!(
            decode_assignment(Bytes::from(b)).unwrap(),
            vec![tp("t", 1), tp("t", 4)]
        );
        // librdkafka writes version 0 with the same fields.
        let mut v0 = vec![0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 5];
        v0.extend([0, 0, 0, 0]); // empty (not null) user data
        assert_eq!(
            decode_assignment(Bytes::from(v0)).unwrap(),
            vec![tp("t", 5)]
        );
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn sticky_user_data_round_trips_in_the_shared_layout() {
        let data = encode_sticky_user_data(&[tp("x", 3), tp("x", 1)], 12);
        let mut expect = vec![0, 0, 0, 1, 0, 1, b'x', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
        expect.extend([0, 0, 0, 12]);
        assert_eq!(data.to_vec(), expect);
        let (owned, generation) = decode_sticky_user_data(data).unwrap();
        assert_eq!(owned, vec![tp("x", 1), tp("x", 3)]);
        assert_eq!(generation, 12);
        // Java's CooperativeStickyAssignor: the generation alone.
        let (owned, generation) =
            decode_sticky_user_data(Bytes::from_static(&[0, 0, 0, 5])).unwrap();
        assert!(owned.is_empty());
        assert_eq!(generation, 5);
        // v0: no generation.
        let v0 = Bytes::from_static(&[0, 0, 0, 1, 0, 1, b'x', 0, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(decode_sticky_user_data(v0).unwrap(), (vec![tp("x", 9)], -1));
        assert!(decode_sticky_user_data(Bytes::from_static(&[0, 0, 0, 9, 1])).is_none());
    }
}
