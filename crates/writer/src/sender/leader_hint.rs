//! Leader hints in produce answers (KIP-951): from Produce v10 (Kafka
//! 3.7), a partition answered `NOT_LEADER_OR_FOLLOWER` or
//! `FENCED_LEADER_EPOCH` carries `CurrentLeader` (id and epoch), and the
//! answer's `NodeEndpoints` describe leaders the client may not know. The
//! hint goes to the transport ([`kafkit_conn::Transport::follow_hint`]), which takes it
//! only if its epoch is newer than the cached one. When the partition's
//! leader is then another broker than the one that answered, the batch is
//! retried there at once: no backoff, and no metadata refresh asked for.
//! Without a usable hint the error takes its usual path (a refresh, then a
//! retry after the backoff).
//!
//! Order and idempotence are unaffected: the retry goes through the same
//! in-order retry queue as any other, with the same sequence numbers.

use kafkit_conn::LeaderHint;
use kafkit_protocol::messages::produce_response::{NodeEndpoint, PartitionProduceResponse};

/// The hint in `answer`, a partition's part of a produce response whose
/// `NodeEndpoints` are `endpoints`, if it is a leadership error naming a
/// leader and an epoch (see [`LeaderHint::from_answer`]).
pub(super) fn of(
    answer: &PartitionProduceResponse,
    endpoints: &[NodeEndpoint],
) -> Option<LeaderHint> {
    let current = &answer.current_leader;
    LeaderHint::from_answer(
        answer.error_code,
        current.leader_id,
        current.leader_epoch,
        endpoints,
    )
}

#[cfg(test)]
mod tests {
    use kafkit_conn::Broker;
    use kafkit_protocol::ErrorCode;
    use kafkit_protocol::messages::produce_response::LeaderIdAndEpoch;

    use super::*;

    fn answer(code: ErrorCode, leader: i32, epoch: i32) -> PartitionProduceResponse {
        PartitionProduceResponse {
            index: 3,
            error_code: code,
            base_offset: -1,
            current_leader: LeaderIdAndEpoch {
                leader_id: leader,
                leader_epoch: epoch,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn endpoints() -> Vec<NodeEndpoint> {
        vec![NodeEndpoint {
            node_id: 2,
            host: "h2".into(),
            port: 9093,
            rack: Some("r".into()),
            ..Default::default()
        }]
    }

    #[test]
    fn a_leadership_error_names_the_leader_and_its_endpoint() {
        let hint = of(
            &answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, 2, 7),
            &endpoints(),
        );
        let endpoint = Broker {
            id: 2,
            host: "h2".into(),
            port: 9093,
            rack: Some("r".into()),
        };
        assert_eq!(
            hint,
            Some(LeaderHint {
                leader: 2,
                epoch: 7,
                endpoint: Some(endpoint),
            })
        );
        let fenced = of(&answer(ErrorCode::FENCED_LEADER_EPOCH, 5, 1), &endpoints());
        assert_eq!(
            fenced.map(|h| (h.leader, h.epoch, h.endpoint)),
            Some((5, 1, None))
        );
    }

    #[test]
    fn no_hint_without_a_leadership_error_naming_a_leader_and_an_epoch() {
        let other = answer(ErrorCode::REQUEST_TIMED_OUT, 2, 7);
        assert_eq!(of(&other, &endpoints()), None);
        let unknown_leader = answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, -1);
        assert_eq!(of(&unknown_leader, &endpoints()), None);
        let no_epoch = answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, 2, -1);
        assert_eq!(of(&no_epoch, &endpoints()), None);
        let fine = answer(ErrorCode::NONE, 2, 7);
        assert_eq!(of(&fine, &endpoints()), None);
    }
}
