//! The [`Assignor`] trait: how the group leader splits partitions among
//! members. Assignors are pure (no IO), so they are unit-tested on plain
//! data; the leader runs the one every member supports (JoinGroup picks it).
//! Closures implement it through [`AssignorFn`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::TopicPartition;

/// How members hand over partitions during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining ("stop the
    /// world"); used by `range`, `roundrobin` and `sticky`.
    Eager,
    /// Members keep consuming what they own while the group rebalances; a
    /// partition that moves is first revoked by its owner, then assigned in
    /// a follow-up rebalance (KIP-429, `cooperative-sticky`).
    Cooperative,
}

/// One member as the leader sees it: its subscription from JoinGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static id (KIP-345), if configured.
    pub group_instance_id: Option<String>,
    /// The topics it wants.
    pub topics: Vec<String>,
    /// What it owns now: its subscription's owned partitions, or what its
    /// sticky user data names.
    pub owned: Vec<TopicPartition>,
    /// The generation in which it got `owned`; -1 when unknown.
    pub generation: i32,
    /// Its subscription's user data.
    pub user_data: Option<Bytes>,
}

impl Member {
    /// The order Java and librdkafka sort members in: by static id when
    /// both have one, else by member id.
    pub(crate) fn sort_key(&self) -> (&str, &str) {
        (
            self.group_instance_id.as_deref().unwrap_or(""),
            &self.member_id,
        )
    }
}

/// The partition count of every subscribed topic.
pub type TopicCounts = BTreeMap<String, i32>;

/// member id -> its partitions.
pub type Assignments = BTreeMap<String, Vec<TopicPartition>>;

/// A partition assignment strategy.
///
/// `name` is the protocol name in JoinGroup: use `range`, `roundrobin`,
/// `sticky` or `cooperative-sticky` only for the same algorithms as the
/// Java client and librdkafka, since members of every client may end up
/// led by this one.
pub trait Assignor: Send + Sync + 'static {
    /// The protocol name sent in JoinGroup.
    fn name(&self) -> &str;

    /// How partitions are handed over. Default [`RebalanceProtocol::Eager`].
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// User data for this member's subscription, given what it owns and
    /// since which generation. Default none.
    fn user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        let _ = (owned, generation);
        None
    }

    /// Splits the partitions of `topics` among `members`. Every member must
    /// appear in the result (with an empty list if it gets nothing), and a
    /// partition goes to at most one member, subscribed to its topic.
    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments;
}

impl<A: Assignor + ?Sized> Assignor for Arc<A> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn protocol(&self) -> RebalanceProtocol {
        (**self).protocol()
    }
    fn user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        (**self).user_data(owned, generation)
    }
    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        (**self).assign(members, topics)
    }
}

/// An [`Assignor`] made of a name and a closure (eager protocol).
///
/// ```
/// use kafkit_reader::group::{Assignments, AssignorFn};
///
/// // Everything to the member with the smallest id.
/// let first = AssignorFn::new("first", |members, topics| {
///     let mut out: Assignments = members.iter().map(|m| (m.member_id.clone(), vec![])).collect();
///     if let Some(first) = members.iter().map(|m| &m.member_id).min() {
///         let all = topics.iter().flat_map(|(t, n)| (0..*n).map(move |p| kafkit_reader::TopicPartition {
///             topic: t.as_str().into(),
///             partition: p,
///         }));
///         out.insert(first.clone(), all.collect());
///     }
///     out
/// });
/// # let _ = first;
/// ```
pub struct AssignorFn<F> {
    name: String,
    f: F,
}

impl<F> AssignorFn<F>
where
    F: Fn(&[Member], &TopicCounts) -> Assignments + Send + Sync + 'static,
{
    /// An assignor called `name` that runs `f`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        AssignorFn {
            name: name.into(),
            f,
        }
    }
}

impl<F> fmt::Debug for AssignorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssignorFn")
            .field("name", &self.name)
            .finish()
    }
}

impl<F> Assignor for AssignorFn<F>
where
    F: Fn(&[Member], &TopicCounts) -> Assignments + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        (self.f)(members, topics)
    }
}

/// Members sorted the way Java and librdkafka sort them.
pub(crate) fn sorted_members(members: &[Member]) -> Vec<&Member> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    sorted
}

/// Every member with an empty list.
pub(crate) fn empty_assignments(members: &[Member]) -> Assignments {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// All partitions of the topics some member subscribes to, sorted.
pub(crate) fn subscribed_partitions(
    members: &[Member],
    topics: &TopicCounts,
) -> Vec<TopicPartition> {
    let wanted: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for (topic, count) in topics {
        if wanted.contains(topic.as_str()) {
            let name: Arc<str> = topic.as_str().into();
            out.extend((0..*count).map(|p| super::tp(name.clone(), p)));
        }
    }
    out
}

/// Removes from `target` every partition another member still owns, so
/// that a partition changes hands in two rebalances: its owner revokes it
/// (the partition is in neither list this round, so the owner sees it
/// revoked and rejoins), then the next rebalance assigns it. The KIP-429
/// rule that no partition is ever owned by two members at once.
///
/// When two members claim a partition, the claim of the newer generation
/// is the owner's (as Java's assignors decide): the other is left over
/// from before the partition moved and revokes nothing.
pub fn cooperative_adjust(members: &[Member], target: &mut Assignments) {
    let mut owner: BTreeMap<&TopicPartition, (i32, &str)> = BTreeMap::new();
    for m in members {
        for tp in &m.owned {
            let claim = (m.generation, m.member_id.as_str());
            owner
                .entry(tp)
                .and_modify(|o| {
                    if claim.0 > o.0 {
                        *o = claim;
                    }
                })
                .or_insert(claim);
        }
    }
    for (member, partitions) in target.iter_mut() {
        partitions.retain(|tp| match owner.get(tp) {
            Some((_, current)) => *current == member,
            None => true,
        });
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers the assignor tests share.
    use super::*;

    pub(crate) fn member(id: &str, topics: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            topics: topics.iter().map(|t| (*t).into()).collect(),
            ..Member::default()
        }
    }

    pub(crate) fn counts(topics: &[(&str, i32)]) -> TopicCounts {
        topics.iter().map(|(t, n)| ((*t).into(), *n)).collect()
    }

    pub(crate) fn names(a: &[TopicPartition]) -> Vec<String> {
        a.iter()
            .map(|tp| format!("{}-{}", tp.topic, tp.partition))
            .collect()
    }

    /// Checks the rules every assignor must keep: each member present, no
    /// partition twice, only subscribed topics, only existing partitions.
    pub(crate) fn check_valid(members: &[Member], topics: &TopicCounts, a: &Assignments) {
        let mut seen = BTreeSet::new();
        for m in members {
            let got = a.get(&m.member_id).expect("every member is in the result");
            for tp in got {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
                assert!(
                    m.topics.iter().any(|t| **t == *tp.topic),
                    "{tp:?} not subscribed"
                );
                assert!(tp.partition < topics[&*tp.topic], "{tp:?} does not exist");
            }
        }
    }

    /// Max minus min partition count among members.
    pub(crate) fn spread(a: &Assignments) -> usize {
        let sizes: Vec<usize> = a.values().map(Vec::len).collect();
        sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn cooperative_adjust_holds_back_partitions_that_change_owner() {
        let mut a = member("a", &["t"]);
        a.owned = vec![super::super::tp("t", 0), super::super::tp("t", 1)];
        let b = member("b", &["t"]);
        let mut target: Assignments = BTreeMap::new();
        target.insert("a".into(), vec![super::super::tp("t", 0)]);
        target.insert(
            "b".into(),
            vec![super::super::tp("t", 1), super::super::tp("t", 2)],
        );
        cooperative_adjust(&[a, b], &mut target);
        assert_eq!(names(&target["a"]), ["t-0"]);
        // t-1 is still a's: b gets it only in the next rebalance.
        assert_eq!(names(&target["b"]), ["t-2"]);
    }

    #[test]
    fn cooperative_adjust_takes_the_newer_generations_claim() {
        // b owns t-0 since generation 7; z's claim, from generation 5, is
        // left over from before t-0 moved (whatever the member order).
        let mut b = member("b", &["t"]);
        (b.owned, b.generation) = (vec![super::super::tp("t", 0)], 7);
        let mut z = member("z", &["t"]);
        (z.owned, z.generation) = (vec![super::super::tp("t", 0)], 5);
        let mut target: Assignments = BTreeMap::new();
        target.insert("b".into(), vec![super::super::tp("t", 0)]);
        target.insert("z".into(), Vec::new());
        cooperative_adjust(&[b.clone(), z.clone()], &mut target);
        assert_eq!(names(&target["b"]), ["t-0"]);
        cooperative_adjust(&[z, b], &mut target);
        assert_eq!(names(&target["b"]), ["t-0"], "member order does not matter");
    }

    #[test]
    fn closures_are_assignors() {
        let f = AssignorFn::new(
            "all-to-first",
            |members: &[Member], topics: &TopicCounts| {
                let mut out = empty_assignments(members);
                let first = sorted_members(members)[0].member_id.clone();
                out.insert(first, subscribed_partitions(members, topics));
                out
            },
        );
        let members = [member("b", &["t"]), member("a", &["t"])];
        let topics = counts(&[("t", 3)]);
        let a = f.assign(&members, &topics);
        check_valid(&members, &topics, &a);
        assert_eq!(a["a"].len(), 3);
        assert_eq!(f.name(), "all-to-first");
        assert_eq!(f.protocol(), RebalanceProtocol::Eager);
    }
}
