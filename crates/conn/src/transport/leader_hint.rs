//! Leader hints (KIP-951): a broker that answers a Fetch or a Produce with
//! `NOT_LEADER_OR_FOLLOWER` or `FENCED_LEADER_EPOCH` names, from Kafka 3.7
//! on, the partition's current leader and leader epoch, and the endpoint of
//! that leader. [`Transport::note_leader`] moves the one partition in the
//! cached snapshot at once, without a Metadata round trip.
//!
//! The invariant is the one of every refresh (KIP-320): a leader epoch
//! never moves back. A hint is taken only when its epoch is newer than the
//! cached one; a later refresh replaces it only with a newer epoch still
//! (its merge keeps the newer of the two). A hint touches no refresh
//! bookkeeping: a refresh that was asked for still happens.

use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::{fetch_response, produce_response};

use super::Transport;
use super::cluster::{Cluster, PartitionLeader};
use crate::Broker;

/// A partition's current leader, as a broker named it in a Produce or
/// Fetch answer (KIP-951): one type for the writer and the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's node id.
    pub leader: i32,
    /// Its leader epoch.
    pub epoch: i32,
    /// The leader's entry in the answer's `NodeEndpoints`, if any.
    pub endpoint: Option<Broker>,
}

impl LeaderHint {
    /// The hint of a partition answered `code` with `CurrentLeader`
    /// (`leader`, `epoch`), if it is a leadership error
    /// (`NOT_LEADER_OR_FOLLOWER`, `FENCED_LEADER_EPOCH`) naming a leader
    /// and an epoch, with the leader's entry in the answer's
    /// `endpoints` (its `NodeEndpoints`) when there is one.
    pub fn from_answer<E: AnswerEndpoint>(
        code: ErrorCode,
        leader: i32,
        epoch: i32,
        endpoints: &[E],
    ) -> Option<LeaderHint> {
        let leadership =
            code == ErrorCode::NOT_LEADER_OR_FOLLOWER || code == ErrorCode::FENCED_LEADER_EPOCH;
        if !leadership || leader < 0 || epoch < 0 {
            return None;
        }
        let endpoint = endpoints.iter().find(|e| e.node_id() == leader);
        Some(LeaderHint {
            leader,
            epoch,
            endpoint: endpoint.map(AnswerEndpoint::broker),
        })
    }
}

/// An entry of the `NodeEndpoints` of a Produce or a Fetch answer (the
/// two messages define it apart, with the same fields).
pub trait AnswerEndpoint {
    /// The node's id.
    fn node_id(&self) -> i32;
    /// The node as a broker to connect to.
    fn broker(&self) -> Broker;
}

macro_rules! answer_endpoint {
    ($t:ty) => {
        impl AnswerEndpoint for $t {
            fn node_id(&self) -> i32 {
                self.node_id
            }

            fn broker(&self) -> Broker {
                Broker {
                    id: self.node_id,
                    host: self.host.clone(),
                    port: self.port,
                    rack: self.rack.clone(),
                }
            }
        }
    };
}

answer_endpoint!(produce_response::NodeEndpoint);
answer_endpoint!(fetch_response::NodeEndpoint);

/// What a hint found in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Newer than the cached epoch, and its leader is known: taken.
    Taken,
    /// The cached epoch is already this new or newer.
    Known,
    /// Unknown partition, or a leader without an endpoint: a refresh must
    /// tell.
    Unusable,
}

impl Cluster {
    /// The snapshot with `partition` of `topic` led by `leader` since
    /// `epoch`, if that epoch is newer than the cached one; `endpoint`
    /// adds the leader's broker when the snapshot does not know it.
    fn with_leader(
        &self,
        topic: &str,
        partition: i32,
        leader: i32,
        epoch: i32,
        endpoint: Option<Broker>,
    ) -> (Verdict, Option<Cluster>) {
        let Some(cached) = self.partition(topic, partition) else {
            return (Verdict::Unusable, None);
        };
        if cached.epoch > epoch || (cached.epoch == epoch && cached.leader == Some(leader)) {
            return (Verdict::Known, None);
        }
        if cached.epoch == epoch {
            // Same epoch, another leader: one of the two is wrong.
            return (Verdict::Unusable, None);
        }
        let endpoint = endpoint.filter(|b| {
            b.id == leader && !b.host.is_empty() && (1..=i32::from(u16::MAX)).contains(&b.port)
        });
        let mut next = self.clone();
        if let std::collections::hash_map::Entry::Vacant(slot) = next.brokers.entry(leader) {
            let Some(broker) = endpoint else {
                return (Verdict::Unusable, None);
            };
            slot.insert(broker);
        }
        let slot = next
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(&partition));
        let Some(slot) = slot else {
            return (Verdict::Unusable, None);
        };
        *slot = PartitionLeader {
            leader: Some(leader),
            epoch,
        };
        (Verdict::Taken, Some(next))
    }
}

impl Transport {
    /// Notes a leader hint (KIP-951): `leader_id` leads `partition` of
    /// `topic` since `leader_epoch`, as a broker said in a Fetch or
    /// Produce answer; `endpoint` is the leader's entry of the answer's
    /// `NodeEndpoints`, if it has one.
    ///
    /// The cached leader moves only if `leader_epoch` is newer than the
    /// cached epoch (never back), and only to a broker the snapshot knows
    /// or `endpoint` describes (a valid host and port with `leader_id`'s
    /// id). A refresh asked for is not cancelled; a later refresh wins
    /// only with a newer epoch.
    ///
    /// Returns true when the snapshot now names a leader at least as new
    /// as the hint: the caller can go to it without a refresh. False for
    /// a negative id or epoch, an unknown partition, a leader with no
    /// known endpoint, or a conflicting leader at the same epoch.
    pub fn note_leader(
        &self,
        topic: &str,
        partition: i32,
        leader_id: i32,
        leader_epoch: i32,
        endpoint: Option<Broker>,
    ) -> bool {
        if leader_id < 0 || leader_epoch < 0 {
            return false;
        }
        let mut verdict = Verdict::Unusable;
        self.inner.metadata.amend(|cluster| {
            let (v, next) =
                cluster.with_leader(topic, partition, leader_id, leader_epoch, endpoint);
            verdict = v;
            next
        });
        if verdict == Verdict::Taken {
            tracing::debug!(
                topic,
                partition,
                leader = leader_id,
                epoch = leader_epoch,
                "leader moved by a broker's hint (KIP-951)"
            );
        }
        verdict != Verdict::Unusable
    }

    /// [`note_leader`](Transport::note_leader) with `hint`, from an answer
    /// of broker `answered`; true when the partition's cached leader is
    /// then another broker than `answered`, so the caller can go there at
    /// once, with no backoff and no refresh.
    pub fn follow_hint(
        &self,
        topic: &str,
        partition: i32,
        hint: &LeaderHint,
        answered: i32,
    ) -> bool {
        self.note_leader(
            topic,
            partition,
            hint.leader,
            hint.epoch,
            hint.endpoint.clone(),
        ) && self
            .snapshot()
            .leader(topic, partition)
            .is_some_and(|leader| leader.id != answered)
    }
}
