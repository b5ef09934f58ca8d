//! What the elected leader does between JoinGroup and SyncGroup: decode
//! every member's subscription, look up the partition counts of all the
//! topics any member wants, run the chosen assignor and encode each
//! member's share.

use std::sync::Arc;

use bytes::Bytes;
use kafkit_conn::Transport;
use kafkit_conn::messages::join_group_response::JoinGroupResponseMember;

use super::assignor::{Assignor, Member, RebalanceProtocol, TopicCounts, cooperative_adjust};
use super::protocol::{Assignment, Subscription, decode_sticky_user_data};
use crate::Error;

/// A member's view for the assignor, from its JoinGroup metadata. What it
/// owns comes from the subscription (v1+) or else from sticky user data.
pub(crate) fn member_from_join(m: &JoinGroupResponseMember) -> Member {
    let sub = match Subscription::decode(&m.metadata) {
        Ok(sub) => sub,
        Err(e) => {
            // A member we cannot read gets nothing rather than failing the
            // whole group.
            tracing::warn!(member = %m.member_id, error = %e, "undecodable subscription");
            Default::default()
        }
    };
    let mut owned = sub.owned_partitions;
    let mut generation = sub.generation_id;
    if let Some((data_owned, data_generation)) =
        sub.user_data.clone().and_then(decode_sticky_user_data)
    {
        if owned.is_empty() {
            owned = data_owned;
        }
        if generation < 0 {
            generation = data_generation;
        }
    }
    Member {
        member_id: m.member_id.clone(),
        group_instance_id: m.group_instance_id.clone(),
        topics: sub.topics,
        owned,
        generation,
        user_data: sub.user_data,
    }
}

/// Runs `assignor` over the JoinGroup members and returns each member's
/// encoded assignment (every member listed, empty ones included).
pub(crate) async fn assign(
    transport: &Transport,
    assignor: &Arc<dyn Assignor>,
    joined: &[JoinGroupResponseMember],
) -> Result<Vec<(String, Bytes)>, Error> {
    let members: Vec<Member> = joined.iter().map(member_from_join).collect();
    let mut topics: Vec<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let cluster = transport.cluster_for(&topics).await?;
    let counts: TopicCounts = topics
        .iter()
        .map(|t| ((*t).to_owned(), cluster.partition_count(t) as i32))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut out = assignor.assign(&members, &counts);
    if assignor.protocol() == RebalanceProtocol::Cooperative {
        // Whatever the assignor returned, never hand a partition to a new
        // member while its owner still has it (KIP-429).
        cooperative_adjust(&members, &mut out);
    }
    tracing::debug!(
        assignor = assignor.name(),
        members = members.len(),
        topics = counts.len(),
        "leader computed the assignment"
    );
    Ok(members
        .iter()
        .map(|m| {
            let partitions = out.get(&m.member_id).map(Vec::as_slice).unwrap_or(&[]);
            let assignment = Assignment {
                partitions: partitions.to_vec(),
                ..Assignment::default()
            };
            let bytes = assignment.encode().expect("an assignment encodes at v3");
            (m.member_id.clone(), bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::protocol::encode_sticky_user_data;
    use super::super::tp;
    use super::*;

    fn joined(id: &str, sub: &Subscription) -> JoinGroupResponseMember {
        JoinGroupResponseMember {
            member_id: id.into(),
            metadata: sub.encode().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn ownership_comes_from_the_subscription_or_the_user_data() {
        let coop = Subscription {
            topics: vec!["t".into()],
            owned_partitions: vec![tp("t", 1)],
            generation_id: 4,
            ..Default::default()
        };
        let m = member_from_join(&joined("a", &coop));
        assert_eq!((m.owned, m.generation), (vec![tp("t", 1)], 4));

        // An eager sticky member (Java StickyAssignor, librdkafka sticky)
        // names its previous assignment only in user data.
        let eager = Subscription {
            topics: vec!["t".into()],
            user_data: Some(encode_sticky_user_data(&[tp("t", 2)], 9)),
            ..Default::default()
        };
        let m = member_from_join(&joined("b", &eager));
        assert_eq!((m.owned, m.generation), (vec![tp("t", 2)], 9));
    }

    #[test]
    fn an_undecodable_member_subscribes_to_nothing() {
        let m = member_from_join(&JoinGroupResponseMember {
            member_id: "x".into(),
            metadata: Bytes::from_static(&[0, 1, 0]),
            ..Default::default()
        });
        assert!(m.topics.is_empty());
    }
}
