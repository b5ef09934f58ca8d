//! The `roundrobin` assignor: all subscribed partitions, sorted by topic
//! and partition, dealt in turn to the sorted members, skipping a member
//! not subscribed to the partition's topic. The Java client's and
//! librdkafka's `roundrobin`.

use super::assignor::{
    Assignments, Assignor, Member, TopicCounts, empty_assignments, sorted_members,
    subscribed_partitions,
};

/// The `roundrobin` assignor (eager).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        let mut out = empty_assignments(members);
        let sorted = sorted_members(members);
        if sorted.is_empty() {
            return out;
        }
        let mut next = 0;
        for tp in subscribed_partitions(members, topics) {
            // Someone subscribes to every partition listed, so this ends.
            for step in 0..sorted.len() {
                let m = sorted[(next + step) % sorted.len()];
                if m.topics.iter().any(|t| **t == *tp.topic) {
                    out.get_mut(&m.member_id).expect("listed").push(tp);
                    next = (next + step + 1) % sorted.len();
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::assignor::testing::*;
    use super::*;

    #[test]
    fn deals_partitions_in_turn() {
        let members = [member("c1", &["t0", "t1"]), member("c0", &["t0", "t1"])];
        let topics = counts(&[("t0", 3), ("t1", 3)]);
        let out = RoundRobinAssignor.assign(&members, &topics);
        check_valid(&members, &topics, &out);
        // The Java documentation's example.
        assert_eq!(names(&out["c0"]), ["t0-0", "t0-2", "t1-1"]);
        assert_eq!(names(&out["c1"]), ["t0-1", "t1-0", "t1-2"]);
    }

    #[test]
    fn skips_members_not_subscribed() {
        let members = [member("a", &["x"]), member("b", &["x", "y"])];
        let topics = counts(&[("x", 2), ("y", 2)]);
        let out = RoundRobinAssignor.assign(&members, &topics);
        check_valid(&members, &topics, &out);
        assert_eq!(names(&out["a"]), ["x-0"]);
        assert_eq!(names(&out["b"]), ["x-1", "y-0", "y-1"]);
    }

    #[test]
    fn balanced_for_equal_subscriptions() {
        let members: Vec<Member> = (0..7).map(|i| member(&format!("m{i}"), &["t"])).collect();
        let topics = counts(&[("t", 30)]);
        let out = RoundRobinAssignor.assign(&members, &topics);
        check_valid(&members, &topics, &out);
        assert!(spread(&out) <= 1);
    }
}
