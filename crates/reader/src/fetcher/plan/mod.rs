//! Which broker each fetchable partition goes to this round, decided
//! without I/O or locks from the candidates, the metadata and the brokers
//! busy or throttled: the driver (`driver/fetch.rs`) acts on the plan.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafkit_conn::Cluster;
use tokio::time::Instant;

use crate::fetcher::answer::Planned;

/// What the plan needs to know of the metadata.
pub(crate) trait Topology {
    /// The leader of a partition, if the metadata names one.
    fn leader(&self, topic: &str, partition: i32) -> Option<i32>;
    /// Whether the metadata lists a broker.
    fn has_broker(&self, broker: i32) -> bool;
    /// A broker's address, if the metadata lists it.
    fn addr(&self, broker: i32) -> Option<String>;
    /// Whether the metadata knows the topic at all.
    fn knows_topic(&self, topic: &str) -> bool;
}

impl Topology for Cluster {
    fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        Cluster::leader(self, topic, partition).map(|b| b.id)
    }

    fn has_broker(&self, broker: i32) -> bool {
        self.brokers().contains_key(&broker)
    }

    fn addr(&self, broker: i32) -> Option<String> {
        self.brokers().get(&broker).map(|b| b.addr())
    }

    fn knows_topic(&self, topic: &str) -> bool {
        self.contains_topic(topic)
    }
}

/// Why a partition cannot be fetched this round and backs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfetchable {
    /// Its read replica (KIP-392) is gone from the metadata: it goes back
    /// to the leader after the backoff.
    ReplicaGone(i32),
    /// The metadata names no leader (`unknown_topic`: nor the topic).
    NoLeader { unknown_topic: bool },
    /// Its leader has no endpoint in the metadata.
    NoEndpoint(i32),
}

/// One broker's share of the round.
#[derive(Debug)]
pub(crate) struct BrokerFetch {
    pub(crate) broker: i32,
    pub(crate) addr: String,
    /// Rotated by the round, so that no partition is always last: a broker
    /// cuts its answer at `max_bytes`, and only the first partition is sure
    /// to get a batch larger than `max_partition_bytes` (KIP-74).
    pub(crate) parts: Vec<Planned>,
}

/// The round's plan.
#[derive(Debug, Default)]
pub(crate) struct FetchPlan {
    /// One fetch per broker, in broker id order.
    pub(crate) fetches: Vec<BrokerFetch>,
    pub(crate) unfetchable: Vec<(Planned, Unfetchable)>,
    /// When the earliest throttled broker (KIP-219) may be fetched from.
    pub(crate) throttled_until: Option<Instant>,
}

/// Plans round `round`: each candidate goes to its read replica or its
/// leader, unless that broker has a fetch in flight (`busy`: it waits for
/// the next round) or is throttled until later than `now`.
pub(crate) fn plan(
    candidates: Vec<Planned>,
    topology: &impl Topology,
    busy: &HashSet<i32>,
    throttled: &HashMap<i32, Instant>,
    now: Instant,
    round: usize,
) -> FetchPlan {
    let mut out = FetchPlan::default();
    let mut by_broker: BTreeMap<i32, Vec<Planned>> = BTreeMap::new();
    for p in candidates {
        if let Some(replica) = p.replica.filter(|&id| !topology.has_broker(id)) {
            out.unfetchable.push((p, Unfetchable::ReplicaGone(replica)));
            continue;
        }
        let Some(leader) = topology.leader(&p.tp.topic, p.tp.partition) else {
            let unknown_topic = !topology.knows_topic(&p.tp.topic);
            out.unfetchable
                .push((p, Unfetchable::NoLeader { unknown_topic }));
            continue;
        };
        let broker = p.replica.unwrap_or(leader);
        if busy.contains(&broker) {
            continue;
        }
        match throttled.get(&broker).filter(|&&until| until > now) {
            Some(&until) => {
                out.throttled_until = Some(out.throttled_until.map_or(until, |t| t.min(until)));
            }
            None => by_broker.entry(broker).or_default().push(p),
        }
    }
    for (broker, mut parts) in by_broker {
        let Some(addr) = topology.addr(broker) else {
            out.unfetchable.extend(
                parts
                    .into_iter()
                    .map(|p| (p, Unfetchable::NoEndpoint(broker))),
            );
            continue;
        };
        let len = parts.len();
        parts.rotate_left(round % len);
        out.fetches.push(BrokerFetch {
            broker,
            addr,
            parts,
        });
    }
    out
}

#[cfg(test)]
mod tests;
