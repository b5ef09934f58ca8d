//! The `range` assignor: per topic, consecutive ranges of partitions to
//! the members subscribed to it, sorted; the first `partitions % members`
//! get one extra. The Java client's and librdkafka's `range`.

use std::sync::Arc;

use super::assignor::{
    Assignments, Assignor, Member, TopicCounts, empty_assignments, sorted_members,
};
use super::tp;

/// The `range` assignor (eager).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(&self, members: &[Member], topics: &TopicCounts) -> Assignments {
        let mut out = empty_assignments(members);
        let sorted = sorted_members(members);
        for (topic, &count) in topics {
            let subscribed: Vec<&&Member> = sorted
                .iter()
                .filter(|m| m.topics.iter().any(|t| t == topic))
                .collect();
            if subscribed.is_empty() || count <= 0 {
                continue;
            }
            let n = subscribed.len() as i32;
            let (per, extra) = (count / n, count % n);
            let name: Arc<str> = topic.as_str().into();
            for (i, m) in subscribed.iter().enumerate() {
                let i = i as i32;
                let start = per * i + i.min(extra);
                let len = per + i32::from(i < extra);
                let list = out.get_mut(&m.member_id).expect("every member has a list");
                list.extend((start..start + len).map(|p| tp(name.clone(), p)));
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
    fn splits_each_topic_into_ranges() {
        let members = [member("m2", &["a", "b"]), member("m1", &["a", "b"])];
        let topics = counts(&[("a", 3), ("b", 3)]);
        let out = RangeAssignor.assign(&members, &topics);
        check_valid(&members, &topics, &out);
        // The Java documentation's example: m1 gets a0 a1 b0 b1.
        assert_eq!(names(&out["m1"]), ["a-0", "a-1", "b-0", "b-1"]);
        assert_eq!(names(&out["m2"]), ["a-2", "b-2"]);
    }

    #[test]
    fn only_subscribers_of_a_topic_share_it() {
        let members = [
            member("x", &["a"]),
            member("y", &["a", "b"]),
            member("z", &[]),
        ];
        let topics = counts(&[("a", 4), ("b", 2)]);
        let out = RangeAssignor.assign(&members, &topics);
        check_valid(&members, &topics, &out);
        assert_eq!(names(&out["x"]), ["a-0", "a-1"]);
        assert_eq!(names(&out["y"]), ["a-2", "a-3", "b-0", "b-1"]);
        assert!(out["z"].is_empty());
    }

    #[test]
    fn static_members_sort_by_instance_id() {
        let mut a = member("zzz", &["t"]);
        a.group_instance_id = Some("i1".into());
        let mut b = member("aaa", &["t"]);
        b.group_instance_id = Some("i2".into());
        let out = RangeAssignor.assign(&[a, b], &counts(&[("t", 2)]));
        assert_eq!(names(&out["zzz"]), ["t-0"]);
        assert_eq!(names(&out["aaa"]), ["t-1"]);
    }

    #[test]
    fn more_members_than_partitions() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let out = RangeAssignor.assign(&members, &counts(&[("t", 2)]));
        assert_eq!(out.values().map(Vec::len).sum::<usize>(), 2);
        assert!(out["c"].is_empty());
    }
}
