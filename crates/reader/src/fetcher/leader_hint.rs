//! Leader hints in fetch answers (KIP-951): from Fetch v16 (Kafka 3.7), a
//! partition answered `NOT_LEADER_OR_FOLLOWER` or `FENCED_LEADER_EPOCH`
//! carries `CurrentLeader` (id and epoch), and the answer's
//! `NodeEndpoints` describe leaders the client may not know. The hint goes
//! to the transport ([`kafkit_conn::Transport::follow_hint`]), which takes it only if
//! its epoch is newer than the cached one; when the partition then has
//! another leader than the broker that answered, it is fetched from there
//! at once: no backoff, no metadata refresh asked for. The new leader
//! epoch still gets the position validated first (KIP-320), as after any
//! leader change. Without a usable hint, the error takes its usual path
//! (backoff and a metadata refresh).

use kafkit_conn::LeaderHint;
use kafkit_conn::messages::fetch_response::{NodeEndpoint, PartitionData};

use super::answer::{Outcome, Planned};
use super::state::State;

/// The hint in `data`, if it is a leadership error naming a leader and an
/// epoch (see [`LeaderHint::from_answer`]).
pub(crate) fn of(data: &PartitionData, endpoints: &[NodeEndpoint]) -> Option<LeaderHint> {
    let current = &data.current_leader;
    LeaderHint::from_answer(
        data.error_code,
        current.leader_id,
        current.leader_epoch,
        endpoints,
    )
}

/// What `outcome`, from [`apply`](super::answer::apply), becomes given the
/// answer's `hint`: if `moved` says the transport now sends the partition
/// to another leader, the quiet retry of a leadership error becomes an
/// immediate fetch there (counted in `leader_hints`), with no refresh.
pub(crate) fn settle(
    st: &mut State,
    planned: &Planned,
    outcome: Outcome,
    hint: Option<LeaderHint>,
    moved: impl FnOnce(&LeaderHint) -> bool,
) -> Outcome {
    let Some(hint) = hint else {
        return outcome;
    };
    if !matches!(
        outcome,
        Outcome::Failed {
            told_caller: false,
            ..
        }
    ) || !moved(&hint)
    {
        return outcome;
    }
    let Some(part) = st.current(&planned.tp, planned.generation) else {
        return outcome;
    };
    part.retry_at = None;
    st.counters.leader_hints += 1;
    tracing::debug!(tp = %planned.tp, leader = hint.leader, epoch = hint.epoch, "to the leader the broker named");
    Outcome::Quiet
}

#[cfg(test)]
mod tests {
    use kafkit_conn::ErrorCode;
    use kafkit_conn::messages::fetch_response::LeaderIdAndEpoch;

    use super::*;
    use crate::fetcher::answer::apply;
    use crate::fetcher::config::FetchConfig;
    use crate::fetcher::state::FetchState;
    use crate::{StartOffset, TopicPartition};

    fn setup() -> (State, Planned) {
        let mut st = State::default();
        let tp = TopicPartition::new("t", 0);
        st.assign(tp.clone(), StartOffset::Offset(5));
        let generation = st.parts[&tp].generation;
        let planned = Planned {
            tp,
            generation,
            offset: 5,
            replica: None,
        };
        (st, planned)
    }

    fn answer(code: ErrorCode, leader: i32, epoch: i32) -> PartitionData {
        PartitionData {
            error_code: code,
            current_leader: LeaderIdAndEpoch {
                leader_id: leader,
                leader_epoch: epoch,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn endpoint(id: i32) -> NodeEndpoint {
        NodeEndpoint {
            node_id: id,
            host: format!("b{id}"),
            port: 9092,
            rack: Some("r".into()),
            ..Default::default()
        }
    }

    #[test]
    fn only_leadership_errors_naming_a_leader_and_epoch_are_hints() {
        let endpoints = [endpoint(2), endpoint(3)];
        let hint = of(&answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, 3, 7), &endpoints).unwrap();
        assert_eq!((hint.leader, hint.epoch), (3, 7));
        let broker = hint.endpoint.unwrap();
        assert_eq!(
            (broker.id, broker.host.as_str(), broker.port),
            (3, "b3", 9092)
        );
        assert_eq!(broker.rack.as_deref(), Some("r"));
        let fenced = of(&answer(ErrorCode::FENCED_LEADER_EPOCH, 4, 1), &endpoints).unwrap();
        assert_eq!((fenced.leader, fenced.endpoint), (4, None));
        for (code, leader, epoch) in [
            (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, 7),
            (ErrorCode::NOT_LEADER_OR_FOLLOWER, 3, -1),
            (ErrorCode::UNKNOWN_LEADER_EPOCH, 3, 7),
            (ErrorCode::NONE, 3, 7),
        ] {
            assert_eq!(
                of(&answer(code, leader, epoch), &endpoints),
                None,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_taken_hint_fetches_at_once_without_a_refresh() {
        let (mut st, planned) = setup();
        let data = answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, 2, 3);
        let hint = of(&data, &[]);
        let out = apply(&mut st, &FetchConfig::default(), &planned, 1, data);
        let mut seen = None;
        let out = settle(&mut st, &planned, out, hint, |h| {
            seen = Some((h.leader, h.epoch));
            true
        });
        assert!(matches!(out, Outcome::Quiet), "{out:?}");
        assert_eq!(seen, Some((2, 3)));
        let part = &st.parts[&planned.tp];
        assert_eq!((part.fetch, part.retry_at), (FetchState::At(5), None));
        assert_eq!(st.counters.leader_hints, 1);
    }

    #[test]
    fn a_refused_or_missing_hint_keeps_the_backoff_and_the_refresh() {
        for with_hint in [true, false] {
            let (mut st, planned) = setup();
            let data = answer(ErrorCode::FENCED_LEADER_EPOCH, 2, 3);
            let hint = with_hint.then(|| of(&data, &[])).flatten();
            let out = apply(&mut st, &FetchConfig::default(), &planned, 1, data);
            let out = settle(&mut st, &planned, out, hint, |_| false);
            assert!(matches!(
                out,
                Outcome::Failed {
                    told_caller: false,
                    ..
                }
            ));
            assert!(st.parts[&planned.tp].retry_at.is_some());
            assert_eq!(st.counters.leader_hints, 0);
        }
    }

    #[test]
    fn a_hint_for_a_sought_partition_changes_nothing() {
        let (mut st, planned) = setup();
        let data = answer(ErrorCode::NOT_LEADER_OR_FOLLOWER, 2, 3);
        let hint = of(&data, &[]);
        let out = apply(&mut st, &FetchConfig::default(), &planned, 1, data);
        st.seek(&planned.tp, StartOffset::Offset(9));
        let out = settle(&mut st, &planned, out, hint, |_| true);
        assert!(matches!(out, Outcome::Failed { .. }));
        assert_eq!(st.counters.leader_hints, 0);
    }
}
