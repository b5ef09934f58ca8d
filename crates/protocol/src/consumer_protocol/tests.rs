//! The consumer protocol against bytes laid out field by field as the Java
//! client and librdkafka write them, and round trips at every version.

use bytes::Bytes;

use super::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A v3 subscription laid out as the Java client's
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

fn decode_subscription(bytes: Vec<u8>) -> Result<Subscription, DecodeError> {
    Subscription::decode(&Bytes::from(bytes))
}

#[test]
fn a_subscription_matches_the_peers_bytes() {
    let sub = Subscription {
        topics: vec!["foo".into()],
        owned_partitions: vec![tp("foo", 2), tp("foo", 0)],
        generation_id: 7,
        ..Subscription::default()
    };
    assert_eq!(sub.encode().unwrap().to_vec(), peer_subscription_v3());
    let back = decode_subscription(peer_subscription_v3()).unwrap();
    assert_eq!(back.owned_partitions, vec![tp("foo", 0), tp("foo", 2)]);
    assert_eq!((back.version, back.generation_id), (3, 7));
}

#[test]
fn subscriptions_round_trip_at_every_version() {
    for version in 0..=3 {
        let sub = Subscription {
            version,
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(b"ud")),
            owned_partitions: if version >= 1 {
                vec![tp("a", 0), tp("a", 2)]
            } else {
                vec![]
            },
            generation_id: if version >= 2 { 7 } else { -1 },
            rack_id: (version >= 3).then(|| "rack-1".to_string()),
        };
        assert_eq!(
            Subscription::decode(&sub.encode().unwrap()).unwrap(),
            sub,
            "v{version}"
        );
    }
}

#[test]
fn a_v0_subscription_from_an_old_client_decodes() {
    // Version 0: topics and user data only (Java 2.3 and earlier).
    let mut b = vec![0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b'];
    b.extend([0, 0, 0, 2, 0xAB, 0xCD]);
    let sub = decode_subscription(b).unwrap();
    assert_eq!(sub.topics, ["a", "b"]);
    assert_eq!(sub.user_data.as_deref(), Some(&[0xAB, 0xCD][..]));
    assert!(sub.owned_partitions.is_empty());
    assert_eq!((sub.version, sub.generation_id), (0, -1));
}

#[test]
fn a_v1_label_on_a_v0_body_decodes_as_v0() {
    // kafka-go 0.4.51: version 1, then only topics and user data.
    let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b'a'];
    b.extend([0, 0, 0, 1, 0x7F]);
    let sub = decode_subscription(b).unwrap();
    assert_eq!(sub.topics, ["a"]);
    assert_eq!(sub.user_data.as_deref(), Some(&[0x7F][..]));
    assert!(sub.owned_partitions.is_empty());
    assert_eq!((sub.version, sub.generation_id), (1, -1));
}

#[test]
fn newer_versions_read_as_v3_ignoring_appended_fields() {
    let mut b = peer_subscription_v3();
    b[1] = 9; // a future version...
    b.extend([1, 2, 3]); // ...that appended a field
    let sub = decode_subscription(b).unwrap();
    assert_eq!(sub.topics, ["foo"]);
    assert_eq!((sub.version, sub.generation_id), (9, 7));

    let mut b = Assignment {
        partitions: vec![tp("x", 0)],
        ..Assignment::default()
    }
    .encode()
    .unwrap()
    .to_vec();
    b[1] = 4;
    b.extend([1, 2, 3]);
    let a = Assignment::decode(&Bytes::from(b)).unwrap();
    assert_eq!((a.version, a.partitions), (4, vec![tp("x", 0)]));
}

#[test]
fn short_negative_and_truncated_input_are_errors() {
    assert!(decode_subscription(vec![255, 255, 0, 0]).is_err());
    assert!(decode_subscription(vec![0]).is_err());
    assert!(decode_subscription(vec![0, 0, 0, 0, 0, 5]).is_err());
    assert!(decode_subscription(peer_subscription_v3()[..10].to_vec()).is_err());
    assert!(Assignment::decode(&Bytes::from_static(&[0])).is_err());
    assert!(Assignment::decode(&Bytes::from_static(&[0, 1, 0, 0, 0, 1])).is_err());
    // A version this crate cannot write.
    let future = Subscription {
        version: 4,
        ..Subscription::default()
    };
    assert!(future.encode().is_err());
}

#[test]
fn an_assignment_matches_the_peers_bytes() {
    // Version 3, [("t", [1, 4])], user data null.
    let mut b = vec![0, 3, 0, 0, 0, 1, 0, 1, b't'];
    b.extend([0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4]);
    b.extend([255, 255, 255, 255]);
    let a = Assignment {
        partitions: vec![tp("t", 4), tp("t", 1)],
        ..Assignment::default()
    };
    assert_eq!(a.encode().unwrap().to_vec(), b);
    let back = Assignment::decode(&Bytes::from(b)).unwrap();
    assert_eq!(back.partitions, vec![tp("t", 1), tp("t", 4)]);
    // librdkafka writes version 0 with the same fields.
    let mut v0 = vec![0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 5];
    v0.extend([0, 0, 0, 0]); // empty (not null) user data
    let back = Assignment::decode(&Bytes::from(v0)).unwrap();
    assert_eq!((back.version, back.partitions), (0, vec![tp("t", 5)]));
    assert_eq!(
        Assignment::decode(&Bytes::new()).unwrap(),
        Assignment::default()
    );
}

#[test]
fn assignments_round_trip_at_every_version() {
    for version in 0..=3 {
        let a = Assignment {
            version,
            partitions: vec![tp("x", 1), tp("x", 3), tp("y", 0)],
            user_data: Some(Bytes::from_static(b"u")),
        };
        assert_eq!(
            Assignment::decode(&a.encode().unwrap()).unwrap(),
            a,
            "v{version}"
        );
    }
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
    let (owned, generation) = decode_sticky_user_data(Bytes::from_static(&[0, 0, 0, 5])).unwrap();
    assert!(owned.is_empty());
    assert_eq!(generation, 5);
    // v0: no generation.
    let v0 = Bytes::from_static(&[0, 0, 0, 1, 0, 1, b'x', 0, 0, 0, 1, 0, 0, 0, 9]);
    assert_eq!(decode_sticky_user_data(v0).unwrap(), (vec![tp("x", 9)], -1));
    assert!(decode_sticky_user_data(Bytes::from_static(&[0, 0, 0, 9, 1])).is_none());
}
