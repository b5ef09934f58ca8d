//! The `sticky` (eager, KIP-54) and `cooperative-sticky` (KIP-429)
//! assignors: balanced like `roundrobin`, but a partition stays with the
//! member that owns it unless balance needs it elsewhere.
//!
//! Ownership comes from each member's subscription (owned partitions and
//! generation, v1+/v2+) or, failing that, from the sticky user data that
//! the Java `StickyAssignor` and librdkafka write. When two members claim a
//! partition (one of them missed a rebalance), the higher generation wins.
//! Then unowned partitions go to the eligible member with the fewest, and
//! partitions move from the fullest member to an eligible emptier one
//! until no member has two more than another that could take one: with
//! equal subscriptions, counts differ by at most one.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::assignor::{
    Assignments, Assignor, Member, RebalanceProtocol, TopicCounts, cooperative_adjust,
    sorted_members, subscribed_partitions,
};
use super::protocol::encode_sticky_user_data;
use crate::TopicPartition;

/// The `sticky` assignor (eager: members revoke everything before a
/// rebalance and remember their previous assignment in user data).
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

/// The `cooperative-sticky` assignor, kafkit's default: the sticky
/// assignment, except that a partition moving to another member is left
/// out for one rebalance while its owner revokes it (KIP-429).
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }
    fn user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        sticky_user_data(owned, generation)
    }
    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        sticky_assign(members, topics)
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }
    fn user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        // librdkafka's cooperative-sticky reads the same user data as its
        // sticky assignor; the Java one reads the subscription's fields.
        sticky_user_data(owned, generation)
    }
    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        let mut out = sticky_assign(members, topics);
        cooperative_adjust(members, &mut out);
        out
    }
}

fn sticky_user_data(owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
    // No previous assignment: null, as both peers send.
    (generation >= 0 || !owned.is_empty()).then(|| encode_sticky_user_data(owned, generation))
}

/// The balanced, sticky target assignment.
pub(crate) fn sticky_assign(members: &[Member], topics: &TopicCounts) -> Assignments {
    let all: BTreeSet<TopicPartition> =
        subscribed_partitions(members, topics).into_iter().collect();
    let sorted = sorted_members(members);
    let eligible = |m: &Member, tp: &TopicPartition| m.topics.iter().any(|t| **t == *tp.topic);

    // 1. Keep valid claims; the newest generation wins a conflict.
    let mut by_generation = sorted.clone();
    by_generation.sort_by_key(|m| std::cmp::Reverse(m.generation));
    let mut owner: BTreeMap<TopicPartition, &str> = BTreeMap::new();
    let mut held: BTreeMap<&str, BTreeSet<TopicPartition>> = sorted
        .iter()
        .map(|m| (m.member_id.as_str(), BTreeSet::new()))
        .collect();
    for m in &by_generation {
        for tp in &m.owned {
            if all.contains(tp) && eligible(m, tp) && !owner.contains_key(tp) {
                owner.insert(tp.clone(), &m.member_id);
                held.get_mut(m.member_id.as_str())
                    .expect("listed")
                    .insert(tp.clone());
            }
        }
    }
    let previous = held.clone();

    // 2. Unowned partitions to the eligible member with the fewest.
    for tp in all.iter().filter(|tp| !owner.contains_key(*tp)) {
        let target = sorted
            .iter()
            .filter(|m| eligible(m, tp))
            .min_by_key(|m| held[m.member_id.as_str()].len());
        if let Some(m) = target {
            held.get_mut(m.member_id.as_str())
                .expect("listed")
                .insert(tp.clone());
        }
    }

    // 3. Move from the fullest to an emptier eligible member while one has
    // two more than another that could take one of its partitions. Each
    // move lowers the sum of squared sizes, so this ends.
    loop {
        let mut donors: Vec<&Member> = sorted.clone();
        donors.sort_by_key(|m| std::cmp::Reverse(held[m.member_id.as_str()].len()));
        let mut moved = false;
        'donors: for donor in donors {
            let size = held[donor.member_id.as_str()].len();
            // Partitions it did not own before move first (stickiness).
            let mut candidates: Vec<TopicPartition> =
                held[donor.member_id.as_str()].iter().cloned().collect();
            let was_owned = &previous[donor.member_id.as_str()];
            candidates.sort_by_key(|tp| was_owned.contains(tp));
            for tp in candidates {
                let receiver = sorted
                    .iter()
                    .filter(|m| m.member_id != donor.member_id && eligible(m, &tp))
                    .min_by_key(|m| held[m.member_id.as_str()].len());
                if let Some(r) = receiver {
                    if held[r.member_id.as_str()].len() + 1 < size {
                        held.get_mut(donor.member_id.as_str())
                            .expect("listed")
                            .remove(&tp);
                        held.get_mut(r.member_id.as_str())
                            .expect("listed")
                            .insert(tp);
                        moved = true;
                        break 'donors;
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    held.into_iter()
        .map(|(m, set)| (m.to_owned(), set.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::assignor::testing::*;
    use super::super::tp;
    use super::*;

    fn owning(mut m: Member, owned: &[TopicPartition], generation: i32) -> Member {
        m.owned = owned.to_vec();
        m.generation = generation;
        m
    }

    fn moved(before: &Assignments, after: &Assignments) -> usize {
        let owner = |a: &Assignments, tp: &TopicPartition| {
            a.iter()
                .find(|(_, l)| l.contains(tp))
                .map(|(m, _)| m.clone())
        };
        after
            .values()
            .flatten()
            .filter(|tp| owner(before, tp).is_some_and(|o| Some(o) != owner(after, tp)))
            .count()
    }

    #[test]
    fn balanced_for_many_shapes() {
        for n in 1..8 {
            for p in [1, 5, 6, 12, 31] {
                let members: Vec<Member> = (0..n)
                    .map(|i| member(&format!("m{i}"), &["t", "u"]))
                    .collect();
                let topics = counts(&[("t", p), ("u", 3)]);
                for a in [
                    StickyAssignor.assign(&members, &topics),
                    sticky_assign(&members, &topics),
                ] {
                    check_valid(&members, &topics, &a);
                    assert!(spread(&a) <= 1, "n={n} p={p}: {a:?}");
                    assert_eq!(a.values().map(Vec::len).sum::<usize>(), p as usize + 3);
                }
            }
        }
    }

    #[test]
    fn a_joining_member_takes_only_its_share() {
        let topics = counts(&[("t", 12)]);
        let three: Vec<Member> = ["a", "b", "c"].iter().map(|m| member(m, &["t"])).collect();
        let first = StickyAssignor.assign(&three, &topics);
        let mut four: Vec<Member> = three
            .iter()
            .map(|m| owning(m.clone(), &first[&m.member_id], 1))
            .collect();
        four.push(member("d", &["t"]));
        let second = StickyAssignor.assign(&four, &topics);
        check_valid(&four, &topics, &second);
        assert!(spread(&second) <= 1);
        // Exactly the 3 partitions d needs moved; nothing else changed hands.
        assert_eq!(moved(&first, &second), 3);
        assert_eq!(second["d"].len(), 3);
    }

    #[test]
    fn a_leaving_member_hands_over_only_its_own() {
        let topics = counts(&[("t", 9), ("u", 4)]);
        let three: Vec<Member> = ["a", "b", "c"]
            .iter()
            .map(|m| member(m, &["t", "u"]))
            .collect();
        let first = StickyAssignor.assign(&three, &topics);
        let two: Vec<Member> = three[..2]
            .iter()
            .map(|m| owning(m.clone(), &first[&m.member_id], 3))
            .collect();
        let second = StickyAssignor.assign(&two, &topics);
        check_valid(&two, &topics, &second);
        for m in ["a", "b"] {
            assert!(
                first[m].iter().all(|tp| second[m].contains(tp)),
                "{m} kept its own"
            );
        }
        assert!(spread(&second) <= 1);
    }

    #[test]
    fn newest_generation_wins_a_double_claim() {
        let topics = counts(&[("t", 2)]);
        let stale = owning(member("a", &["t"]), &[tp("t", 0), tp("t", 1)], 3);
        let fresh = owning(member("b", &["t"]), &[tp("t", 0)], 4);
        let out = sticky_assign(&[stale, fresh], &topics);
        assert_eq!(names(&out["b"]), ["t-0"]);
        assert_eq!(names(&out["a"]), ["t-1"]);
    }

    #[test]
    fn claims_on_gone_topics_or_partitions_are_dropped() {
        let topics = counts(&[("t", 2)]);
        let a = owning(member("a", &["t"]), &[tp("t", 5), tp("gone", 0)], 1);
        let out = sticky_assign(&[a], &topics);
        assert_eq!(names(&out["a"]), ["t-0", "t-1"]);
    }

    #[test]
    fn unequal_subscriptions_stay_valid_and_fair() {
        let members = [
            member("a", &["x"]),
            member("b", &["x", "y"]),
            member("c", &["y"]),
        ];
        let topics = counts(&[("x", 4), ("y", 4)]);
        let out = sticky_assign(&members, &topics);
        check_valid(&members, &topics, &out);
        assert!(out.values().all(|l| l.len() >= 2), "{out:?}");
    }

    #[test]
    fn cooperative_moves_a_partition_in_two_rebalances() {
        let topics = counts(&[("t", 6)]);
        let all: Vec<TopicPartition> = (0..6).map(|p| tp("t", p)).collect();
        let a = owning(member("a", &["t"]), &all, 1);
        let b = member("b", &["t"]);
        let coop = CooperativeStickyAssignor;

        // Rebalance 1: a keeps three, the three moving to b are held back.
        let first = coop.assign(&[a.clone(), b.clone()], &topics);
        check_valid(&[a.clone(), b.clone()], &topics, &first);
        assert_eq!(first["a"].len(), 3);
        assert!(first["b"].is_empty(), "b must wait until a revokes");
        let revoked: Vec<&TopicPartition> =
            all.iter().filter(|tp| !first["a"].contains(tp)).collect();
        assert_eq!(revoked.len(), 3);

        // Rebalance 2 (a rejoined after revoking): b gets exactly those.
        let a2 = owning(member("a", &["t"]), &first["a"], 2);
        let b2 = owning(member("b", &["t"]), &[], 2);
        let second = coop.assign(&[a2, b2], &topics);
        assert_eq!(second["a"], first["a"]);
        let mut got: Vec<&TopicPartition> = second["b"].iter().collect();
        got.sort();
        assert_eq!(got, revoked);
    }

    #[test]
    fn cooperative_gives_free_partitions_at_once() {
        let topics = counts(&[("t", 4)]);
        let coop = CooperativeStickyAssignor;
        let out = coop.assign(&[member("a", &["t"]), member("b", &["t"])], &topics);
        assert_eq!(out["a"].len() + out["b"].len(), 4);
        assert!(spread(&out) == 0);
    }

    #[test]
    fn user_data_is_null_until_something_is_owned() {
        assert!(StickyAssignor.user_data(&[], -1).is_none());
        let data = CooperativeStickyAssignor
            .user_data(&[tp("t", 1)], 4)
            .unwrap();
        let (owned, generation) = super::super::protocol::decode_sticky_user_data(data).unwrap();
        assert_eq!((owned, generation), (vec![tp("t", 1)], 4));
    }
}
