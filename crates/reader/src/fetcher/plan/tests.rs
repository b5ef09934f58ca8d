//! The fetch plan against a fake metadata.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::TopicPartition;

/// Leaders by (topic, partition), and the brokers with an endpoint.
#[derive(Default)]
struct Fake {
    leaders: HashMap<(String, i32), i32>,
    brokers: HashSet<i32>,
}

impl Topology for Fake {
    fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.leaders.get(&(topic.to_owned(), partition)).copied()
    }

    fn has_broker(&self, broker: i32) -> bool {
        self.brokers.contains(&broker)
    }

    fn addr(&self, broker: i32) -> Option<String> {
        self.has_broker(broker).then(|| format!("b{broker}:9092"))
    }

    fn knows_topic(&self, topic: &str) -> bool {
        self.leaders.keys().any(|(t, _)| t == topic)
    }
}

/// Topic "t": partition p led by broker `leaders[p]`; brokers 1-3 listed.
fn fake(leaders: &[i32]) -> Fake {
    Fake {
        leaders: leaders
            .iter()
            .enumerate()
            .map(|(p, &b)| (("t".to_owned(), p as i32), b))
            .collect(),
        brokers: [1, 2, 3].into(),
    }
}

fn candidate(partition: i32, replica: Option<i32>) -> Planned {
    Planned {
        tp: TopicPartition::new("t", partition),
        generation: 1,
        offset: 0,
        replica,
    }
}

/// The plan for `candidates` with no broker busy or throttled, at
/// `round`.
fn plan_free(candidates: Vec<Planned>, topology: &Fake, round: usize) -> FetchPlan {
    plan(
        candidates,
        topology,
        &HashSet::new(),
        &HashMap::new(),
        Instant::now(),
        round,
    )
}

fn partitions(fetch: &BrokerFetch) -> Vec<i32> {
    fetch.parts.iter().map(|p| p.tp.partition).collect()
}

#[test]
fn each_partition_goes_to_its_leader_or_its_read_replica() {
    let topology = fake(&[1, 2, 1, 2]);
    let candidates = vec![
        candidate(0, None),
        candidate(1, None),
        candidate(2, Some(3)),
        candidate(3, None),
    ];
    let plan = plan_free(candidates, &topology, 0);
    let got: Vec<(i32, Vec<i32>)> = plan
        .fetches
        .iter()
        .map(|f| (f.broker, partitions(f)))
        .collect();
    assert_eq!(got, [(1, vec![0]), (2, vec![1, 3]), (3, vec![2])]);
    assert_eq!(plan.fetches[2].addr, "b3:9092");
    assert!(plan.unfetchable.is_empty() && plan.throttled_until.is_none());
}

#[test]
fn the_round_rotates_each_brokers_partitions() {
    let topology = fake(&[1, 1, 1]);
    let order = |round| {
        let candidates = (0..3).map(|p| candidate(p, None)).collect();
        let plan = plan_free(candidates, &topology, round);
        partitions(&plan.fetches[0])
    };
    assert_eq!(order(0), [0, 1, 2]);
    assert_eq!(order(1), [1, 2, 0]);
    assert_eq!(order(5), [2, 0, 1]);
}

#[test]
fn busy_brokers_wait_and_throttled_ones_give_a_wake_up() {
    let topology = fake(&[1, 2, 3]);
    let now = Instant::now();
    let later = now + Duration::from_millis(300);
    let soon = now + Duration::from_millis(100);
    let throttled = HashMap::from([(2, later), (3, soon), (1, now)]);
    let busy = HashSet::from([1]);
    let candidates = (0..3).map(|p| candidate(p, None)).collect();
    let plan = super::plan(candidates, &topology, &busy, &throttled, now, 0);
    // Broker 1 is busy (its throttle has passed); 2 and 3 are throttled.
    assert!(plan.fetches.is_empty());
    assert!(plan.unfetchable.is_empty());
    assert_eq!(plan.throttled_until, Some(soon));

    // Once broker 1 is free, only its throttle's end matters to it.
    let candidates = (0..3).map(|p| candidate(p, None)).collect();
    let plan = super::plan(candidates, &topology, &HashSet::new(), &throttled, now, 0);
    assert_eq!(plan.fetches.len(), 1);
    assert_eq!(plan.fetches[0].broker, 1);
}

#[test]
fn partitions_without_a_leader_an_endpoint_or_their_replica_back_off() {
    let topology = fake(&[1, 4, 2]);
    let mut orphan = candidate(0, None);
    orphan.tp = TopicPartition::new("unknown", 0);
    let candidates = vec![
        candidate(0, Some(7)), // replica 7 is not listed
        candidate(1, None),    // leader 4 has no endpoint
        candidate(2, None),
        candidate(9, None), // topic known, partition without a leader
        orphan,             // topic unknown
    ];
    let plan = plan_free(candidates, &topology, 0);
    assert_eq!(plan.fetches.len(), 1);
    assert_eq!(partitions(&plan.fetches[0]), [2]);
    let why: Vec<(String, i32, Unfetchable)> = plan
        .unfetchable
        .iter()
        .map(|(p, why)| (p.tp.topic.to_string(), p.tp.partition, *why))
        .collect();
    assert_eq!(
        why,
        [
            ("t".into(), 0, Unfetchable::ReplicaGone(7)),
            (
                "t".into(),
                9,
                Unfetchable::NoLeader {
                    unknown_topic: false
                }
            ),
            (
                "unknown".into(),
                0,
                Unfetchable::NoLeader {
                    unknown_topic: true
                }
            ),
            ("t".into(), 1, Unfetchable::NoEndpoint(4)),
        ]
    );
}
