//! The sticky assignors' user data, in the layout the Java `StickyAssignor`
//! and librdkafka's sticky and cooperative-sticky assignors share
//! ("StickyAssignorUserData" v1: `[topic [partition]] generation`).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::group_by_topic;
use crate::TopicPartition;
use crate::codec::{read_array, read_i32, read_string, write_array, write_string};

/// Encodes what a member owned and the generation it got it in.
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
    .expect("a non-compact array of topic names always encodes");
    buf.put_i32(generation);
    buf.freeze()
}

/// What a member claims to own, read from its user data: the sticky v1
/// layout above (v0 lacks the generation, read as -1), or the Java
/// `CooperativeStickyAssignor`'s four-byte generation alone. `None` when
/// the bytes are neither.
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
            .map(|p| TopicPartition::new(&topic, p))
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
