//! Position validation after a leader change (KIP-320).
//!
//! Records fetched from an old leader may not be in the new leader's log:
//! after an unclean election, or when records written with acks below all
//! were lost in the failover, the new leader's log diverges from some
//! offset on, and new records take the lost ones' offsets. A consumer that
//! went on fetching from its position would skip the new records at the
//! offsets below it without noticing. So when the metadata names a newer
//! leader epoch than the one a partition's position was fetched under,
//! the driver asks the new leader (OffsetForLeaderEpoch) where the epoch
//! of the last fetched batch ends in its log. An end before the fetch
//! offset means the logs diverge there.
//!
//! What then, as in the Java client: the position moves back to the
//! divergence point (or to the caller's position, if that is earlier, so
//! records fetched but not yet handed out are not skipped); under
//! `OffsetReset::Error` the partition stops with a typed error instead.
//!
//! Versions: v3 (Kafka 2.3) is the first a broker authorizes by the
//! topic's Describe permission; v2 (Kafka 2.1, and librdkafka's mock
//! cluster) wants the cluster's ClusterAction, so it is sent too, as
//! librdkafka does, and a `CLUSTER_AUTHORIZATION_FAILED` answer only means
//! this broker cannot validate for us. A broker that cannot validate (no
//! v2, or that refusal) is trusted with the position as it is, as Java
//! does.

use kafkit_conn::messages::OffsetForLeaderEpochRequest;
use kafkit_conn::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafkit_conn::{ApiKey, ErrorCode, Purpose, Transport};
use tracing::Instrument;

use super::answer::Outcome;
use super::config::FetchConfig;
use super::state::{FetchState, State};
use crate::{Error, StartOffset, TopicPartition};

/// The first OffsetForLeaderEpoch version with the current leader epoch
/// (KIP-320), which the new leader fences stale askers by.
const MIN_VERSION: i16 = 2;

/// The new leader's answer: where `leader_epoch` (the largest epoch at or
/// before the one asked about) ends in its log, as seen under
/// `current_leader_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEnd {
    pub(crate) leader_epoch: i32,
    pub(crate) end_offset: i64,
    pub(crate) current_leader_epoch: i32,
}

/// What an [`EpochEnd`] says of a fetch offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The new leader's log holds everything before the fetch offset.
    Valid,
    /// The logs agree only up to this offset.
    Diverged(i64),
    /// The new leader knows no epoch at or before the fetched one: where
    /// the position stands in its log is unknown.
    Unknown,
}

/// Judges `fetch_offset` by the new leader's `end`.
pub(crate) fn judge(fetch_offset: i64, end: &EpochEnd) -> Verdict {
    if end.end_offset < 0 || end.leader_epoch < 0 {
        Verdict::Unknown
    } else if end.end_offset < fetch_offset {
        Verdict::Diverged(end.end_offset)
    } else {
        Verdict::Valid
    }
}

/// Asks the leader of `tp` where `fetched_epoch` ends in its log. `None`
/// when the leader cannot tell (no OffsetForLeaderEpoch v2, or v2 refused
/// for want of ClusterAction).
///
/// Cancel safety: safe (a read-only request).
pub(crate) async fn end_of_epoch(
    transport: &Transport,
    tp: &TopicPartition,
    fetched_epoch: i32,
) -> Result<Option<EpochEnd>, Error> {
    let span = tracing::debug_span!("offset_for_leader_epoch", %tp, fetched_epoch);
    transport
        .on_leader(&tp.topic, tp.partition, Purpose::Admin, |conn| async move {
            if !matches!(conn.version_for(ApiKey::OffsetForLeaderEpoch), Ok(v) if v >= MIN_VERSION)
            {
                return Ok(None);
            }
            // The epoch of each attempt's own metadata: a retry after
            // FENCED/UNKNOWN_LEADER_EPOCH runs after a refresh.
            let current = transport
                .snapshot()
                .leader_epoch(&tp.topic, tp.partition)
                .unwrap_or(-1);
            let response = conn.request(request(tp, current, fetched_epoch)).await?;
            let answer = response
                .topics
                .iter()
                .filter(|t| *t.topic == *tp.topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition == tp.partition)
                .ok_or_else(|| {
                    kafkit_conn::Error::new(kafkit_conn::ErrorKind::Config(
                        "OffsetForLeaderEpoch answer lacks the partition".into(),
                    ))
                })?;
            if answer.error_code == ErrorCode::CLUSTER_AUTHORIZATION_FAILED {
                return Ok(None);
            }
            kafkit_conn::Error::check(answer.error_code, None)
                .map_err(|e| e.with_api(ApiKey::OffsetForLeaderEpoch))?;
            Ok(Some(EpochEnd {
                leader_epoch: answer.leader_epoch,
                end_offset: answer.end_offset,
                current_leader_epoch: current,
            }))
        })
        .instrument(span)
        .await
        .map_err(|e| Error::from(e).with_partition(tp.topic.clone(), tp.partition))
}

/// The request for one partition, as a consumer (replica id -1).
fn request(tp: &TopicPartition, current: i32, fetched_epoch: i32) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: tp.topic.to_string(),
            partitions: vec![OffsetForLeaderPartition {
                partition: tp.partition,
                current_leader_epoch: current,
                leader_epoch: fetched_epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Applies the lookup's `result` for `tp`, validated at `offset` under
/// `generation`, to `st`. `current` is the metadata's leader epoch now,
/// recorded when the broker cannot validate.
pub(crate) fn apply(
    st: &mut State,
    config: &FetchConfig,
    (tp, generation, offset): (&TopicPartition, u64, i64),
    current: Option<i32>,
    result: Result<Option<EpochEnd>, Error>,
) -> Outcome {
    let Some(part) = st.current(tp, generation) else {
        return Outcome::Quiet; // sought or unassigned meanwhile
    };
    if part.fetch != FetchState::Validating(offset) {
        return Outcome::Quiet;
    }
    let end = match result {
        Ok(Some(end)) => end,
        Ok(None) => {
            tracing::debug!(%tp, "the leader cannot validate positions");
            part.fetch = FetchState::At(offset);
            part.epochs.leader = current;
            return Outcome::Quiet;
        }
        Err(e) => {
            // Validated again after the backoff, under the metadata then.
            part.fetch = FetchState::At(offset);
            st.counters.errors += 1;
            st.back_off(tp, generation, |n| config.backoff(n));
            tracing::debug!(%tp, error = %e, "position validation failed");
            let told_caller = !e.is_retriable() && e.code() != Some(ErrorCode::FENCED_LEADER_EPOCH);
            if told_caller {
                st.errors.push_back(e.clone());
            }
            return match e.conn() {
                Some(conn) => Outcome::Failed {
                    error: conn.clone(),
                    told_caller,
                },
                None if told_caller => Outcome::Queued,
                None => Outcome::Quiet,
            };
        }
    };
    match judge(offset, &end) {
        Verdict::Valid => {
            part.fetch = FetchState::At(offset);
            part.epochs.leader = Some(end.current_leader_epoch);
            part.failures = 0;
            Outcome::Quiet
        }
        Verdict::Diverged(diverged_at) => {
            let to = part.position.map_or(diverged_at, |p| p.min(diverged_at));
            let stop = config.offset_reset.start().is_none();
            if stop {
                part.fetch = FetchState::Stopped;
            }
            st.counters.truncations += 1;
            if !stop {
                tracing::warn!(%tp, offset, diverged_at, to, "log truncation detected: moving back");
                st.seek(tp, StartOffset::Offset(to));
                Outcome::Quiet
            } else {
                tracing::warn!(%tp, offset, diverged_at, "log truncation detected");
                st.errors.push_back(Error::log_truncation(
                    tp.topic.clone(),
                    tp.partition,
                    offset,
                    diverged_at,
                ));
                Outcome::Queued
            }
        }
        Verdict::Unknown => match config.offset_reset.start() {
            Some(start) => {
                tracing::warn!(%tp, offset, ?start, "the new leader knows no earlier epoch: resetting");
                st.reset(tp, start);
                Outcome::Quiet
            }
            None => {
                part.fetch = FetchState::Stopped;
                st.errors.push_back(Error::offset_out_of_range(
                    tp.topic.clone(),
                    tp.partition,
                    offset,
                ));
                Outcome::Queued
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, OffsetReset};

    /// The fetch offset every case validates.
    const FETCHED_TO: i64 = 100;

    fn end(leader_epoch: i32, end_offset: i64) -> EpochEnd {
        EpochEnd {
            leader_epoch,
            end_offset,
            current_leader_epoch: 7,
        }
    }

    /// A state with partition 0 validating at [`FETCHED_TO`], handed out up
    /// to `position`; returns the key the lookup was sent under.
    fn validating(position: i64) -> (State, TopicPartition, u64) {
        let mut st = State::default();
        let tp = TopicPartition::new("t", 0);
        st.assign(tp.clone(), StartOffset::Offset(position));
        let part = st.parts.get_mut(&tp).unwrap();
        part.fetch = FetchState::Validating(FETCHED_TO);
        part.epochs.leader = Some(6);
        part.epochs.fetched = Some(6);
        let generation = part.generation;
        (st, tp, generation)
    }

    /// Validates a partition handed out up to `position` under `reset`,
    /// the metadata at leader epoch 7, and applies `result`.
    fn run(
        reset: OffsetReset,
        position: i64,
        result: Result<Option<EpochEnd>, Error>,
    ) -> (State, TopicPartition, Outcome) {
        let (mut st, tp, generation) = validating(position);
        let config = FetchConfig {
            offset_reset: reset,
            ..FetchConfig::default()
        };
        let out = apply(
            &mut st,
            &config,
            (&tp, generation, FETCHED_TO),
            Some(7),
            result,
        );
        (st, tp, out)
    }

    fn refused(code: ErrorCode) -> Result<Option<EpochEnd>, Error> {
        Err(Error::from(
            kafkit_conn::Error::check(code, None).unwrap_err(),
        ))
    }

    #[test]
    fn the_verdict_compares_the_epoch_end_with_the_fetch_offset() {
        assert_eq!(judge(100, &end(6, 100)), Verdict::Valid);
        assert_eq!(judge(100, &end(6, 250)), Verdict::Valid);
        assert_eq!(judge(100, &end(5, 95)), Verdict::Diverged(95));
        assert_eq!(judge(100, &end(-1, -1)), Verdict::Unknown);
        assert_eq!(judge(100, &end(3, -1)), Verdict::Unknown);
    }

    #[test]
    fn the_request_asks_as_a_consumer_under_the_current_epoch() {
        let r = request(&TopicPartition::new("orders", 3), 7, 6);
        assert_eq!(r.replica_id, -1);
        assert_eq!(r.topics[0].topic, "orders");
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition, p.current_leader_epoch, p.leader_epoch),
            (3, 7, 6)
        );
    }

    #[test]
    fn a_valid_position_fetches_on_under_the_new_epoch() {
        let (_, _, generation) = validating(80);
        let (st, tp, out) = run(OffsetReset::Earliest, 80, Ok(Some(end(6, 120))));
        assert!(matches!(out, Outcome::Quiet));
        let part = &st.parts[&tp];
        assert_eq!(part.fetch, FetchState::At(FETCHED_TO));
        assert_eq!(part.epochs.leader, Some(7));
        assert_eq!(part.generation, generation, "nothing buffered is dropped");
        assert_eq!(st.counters.truncations, 0);
    }

    #[test]
    fn a_diverged_log_moves_back_to_the_divergence_point_or_the_caller() {
        // Handed out up to 80, fetched up to 100, the logs part at 95:
        // fetch again from 80, so 80..95 (good, but only buffered) come.
        let (_, _, generation) = validating(80);
        let (st, tp, _) = run(OffsetReset::Latest, 80, Ok(Some(end(5, 95))));
        let part = &st.parts[&tp];
        assert_eq!((part.fetch, part.position), (FetchState::At(80), Some(80)));
        assert_ne!(part.generation, generation, "buffered chunks are dropped");
        assert_eq!(st.counters.truncations, 1);
        // Handed out up to 99, past the divergence at 95: back to 95.
        let (st, tp, _) = run(OffsetReset::Latest, 99, Ok(Some(end(5, 95))));
        assert_eq!(st.parts[&tp].fetch, FetchState::At(95));
        assert_eq!(st.counters.resets, 0, "not a reset by the policy");
    }

    #[test]
    fn under_the_error_policy_a_diverged_log_stops_with_a_typed_error() {
        let (mut st, tp, out) = run(OffsetReset::Error, 80, Ok(Some(end(5, 95))));
        assert!(matches!(out, Outcome::Queued));
        assert_eq!(st.parts[&tp].fetch, FetchState::Stopped);
        let e = st.errors.pop_front().unwrap();
        assert_eq!(e.kind(), &ErrorKind::LogTruncation { diverged_at: 95 });
        assert_eq!(e.offset(), Some(FETCHED_TO));
    }

    #[test]
    fn an_unknown_epoch_follows_the_reset_policy() {
        let (st, tp, _) = run(OffsetReset::Earliest, 80, Ok(Some(end(-1, -1))));
        let resolve_earliest = FetchState::Resolve(StartOffset::Earliest);
        assert_eq!(st.parts[&tp].fetch, resolve_earliest);
        assert_eq!(st.counters.resets, 1);
        let (mut st, tp, _) = run(OffsetReset::Error, 80, Ok(Some(end(-1, -1))));
        assert_eq!(st.parts[&tp].fetch, FetchState::Stopped);
        let e = st.errors.pop_front().unwrap();
        assert_eq!(e.kind(), &ErrorKind::OffsetOutOfRange);
    }

    #[test]
    fn a_broker_that_cannot_validate_is_trusted_and_failures_retry() {
        let (st, tp, _) = run(OffsetReset::Earliest, 80, Ok(None));
        assert_eq!(st.parts[&tp].fetch, FetchState::At(FETCHED_TO));
        assert_eq!(st.parts[&tp].epochs.leader, Some(7));

        let (st, tp, out) = run(
            OffsetReset::Earliest,
            80,
            refused(ErrorCode::FENCED_LEADER_EPOCH),
        );
        assert!(matches!(
            out,
            Outcome::Failed {
                told_caller: false,
                ..
            }
        ));
        let part = &st.parts[&tp];
        assert_eq!(part.fetch, FetchState::At(FETCHED_TO));
        assert_eq!(
            part.epochs.leader,
            Some(6),
            "validated again after the backoff"
        );
        assert!(part.retry_at.is_some());
        assert!(st.errors.is_empty());

        let denied = refused(ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        let (st, _, out) = run(OffsetReset::Earliest, 80, denied);
        assert!(matches!(
            out,
            Outcome::Failed {
                told_caller: true,
                ..
            }
        ));
        assert_eq!(st.errors.len(), 1);
    }

    #[test]
    fn a_stale_answer_is_dropped() {
        let (mut st, tp, generation) = validating(80);
        st.seek(&tp, StartOffset::Offset(10));
        let config = FetchConfig::default();
        let stale = (&tp, generation, FETCHED_TO);
        apply(&mut st, &config, stale, Some(7), Ok(Some(end(5, 95))));
        assert_eq!(st.parts[&tp].fetch, FetchState::At(10));
        assert_eq!(st.counters.truncations, 0);
    }
}
