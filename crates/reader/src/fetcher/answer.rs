//! What one partition's part of a fetch answer does to the shared state:
//! records become a chunk for the caller and move the fetch position; an
//! out-of-range offset follows the reset policy; other error codes back the
//! partition off and, unless retrying will fix them, reach the caller.
//!
//! Fetching from a follower (KIP-392): a leader that names a preferred read
//! replica sends no records, and the partition's next fetches go to that
//! replica for [`READ_REPLICA_LEASE`]. Any error from the replica sends
//! them back to the leader; an out-of-range offset from a replica is not
//! reset, since a follower that is behind answers so for offsets the
//! leader has (as in the Java client).
//! Pure over [`State`], so every case is unit-tested here; the driver only
//! relays the [`Outcome`] to the transport and the caller.

use std::time::Duration;

use kafkit_conn::messages::fetch_response::PartitionData;
use kafkit_conn::{ApiKey, ErrorCode};
use tokio::time::Instant;

use super::chunk::{Chunk, TxnFilter, scan};
use super::config::FetchConfig;
use super::state::{FetchState, ReadReplica, State};
use crate::{Error, IsolationLevel, TopicPartition};

/// One partition in a fetch request: where it was fetched from, under
/// which generation.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) tp: TopicPartition,
    pub(crate) generation: u64,
    pub(crate) offset: i64,
    /// The follower to fetch from instead of the leader, if any (KIP-392).
    pub(crate) replica: Option<i32>,
}

/// How long a preferred read replica is used before the leader is asked
/// again: Java's `metadata.max.age.ms` default, which it uses for this.
pub(crate) const READ_REPLICA_LEASE: Duration = Duration::from_secs(5 * 60);

/// What the driver must pass on after [`apply`].
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to tell anyone (a stale answer, no records, a reset).
    Quiet,
    /// A chunk or an error was queued for the caller: wake it.
    Queued,
    /// A partition error: tell the transport (leadership errors refresh
    /// the metadata); `told_caller` when it was queued for the caller too.
    Failed {
        error: kafkit_conn::Error,
        told_caller: bool,
    },
}

/// Applies `data`, the answer for `planned` from `broker`, to `st`.
pub(crate) fn apply(
    st: &mut State,
    config: &FetchConfig,
    planned: &Planned,
    broker: i32,
    data: PartitionData,
) -> Outcome {
    let tp = &planned.tp;
    let Some(part) = st.current(tp, planned.generation) else {
        return Outcome::Quiet; // sought or unassigned meanwhile
    };
    if part.fetch != FetchState::At(planned.offset) {
        return Outcome::Quiet;
    }
    let from_replica = part.read_replica.is_some_and(|r| r.broker == broker);
    if from_replica && data.error_code != ErrorCode::NONE {
        tracing::debug!(%tp, broker, code = ?data.error_code, "back to the leader after a read replica's error");
        part.read_replica = None;
        if data.error_code == ErrorCode::OFFSET_OUT_OF_RANGE {
            // Most likely a follower behind the leader: ask the leader.
            st.counters.errors += 1;
            return Outcome::Quiet;
        }
    }
    match data.error_code {
        ErrorCode::NONE => {
            let preferred = data.preferred_read_replica;
            let redirected = preferred >= 0 && preferred != broker;
            if redirected {
                tracing::debug!(%tp, leader = broker, replica = preferred, "fetching from a read replica");
                part.read_replica = Some(ReadReplica {
                    broker: preferred,
                    until: Instant::now() + READ_REPLICA_LEASE,
                });
            }
            part.high_watermark = data.high_watermark;
            part.last_stable_offset = data.last_stable_offset;
            part.log_start_offset = data.log_start_offset;
            let records = data.records.unwrap_or_default();
            if records.is_empty() {
                if redirected && part.failures > 0 {
                    // Sent back to a replica that just failed (a leader
                    // names one until it leaves the ISR): don't spin
                    // between the two, back off as after any failure.
                    st.back_off(tp, planned.generation, |n| config.backoff(n));
                } else if !redirected {
                    part.failures = 0;
                }
                return Outcome::Quiet;
            }
            let scanned = scan(&records);
            let end = scanned
                .next_offset
                .map_or(planned.offset, |end| end.max(planned.offset));
            if end == planned.offset {
                // Only part of a batch: the partition was not first in the
                // answer and its batch exceeds what was left. The request
                // rotation puts it first soon (KIP-74); don't spin meanwhile.
                tracing::debug!(%tp, offset = planned.offset, "only a partial batch");
                st.back_off(tp, planned.generation, |n| config.backoff(n));
                return Outcome::Quiet;
            }
            part.fetch = FetchState::At(end);
            part.failures = 0;
            part.retry_at = None;
            if scanned.last_epoch.is_some() {
                part.epochs.fetched = scanned.last_epoch;
            }
            let read_committed = config.isolation_level == IsolationLevel::ReadCommitted;
            let filter = match data.aborted_transactions.as_deref() {
                Some(aborted) if read_committed && !aborted.is_empty() => {
                    Some(TxnFilter::new(aborted))
                }
                _ => None,
            };
            let len = records.len();
            st.counters.bytes += len as u64;
            st.buffered_bytes += len;
            st.ready.push_back(Chunk::new(
                tp.clone(),
                planned.generation,
                planned.offset,
                end,
                records,
                filter,
            ));
            Outcome::Queued
        }
        ErrorCode::OFFSET_OUT_OF_RANGE => {
            st.counters.errors += 1;
            match config.offset_reset.start() {
                Some(start) => {
                    tracing::info!(%tp, offset = planned.offset, ?start, "offset out of range: resetting");
                    st.reset(tp, start);
                    Outcome::Quiet
                }
                None => {
                    tracing::warn!(%tp, offset = planned.offset, "offset out of range");
                    if let Some(part) = st.parts.get_mut(tp) {
                        part.fetch = FetchState::Stopped;
                    }
                    st.errors.push_back(Error::offset_out_of_range(
                        tp.topic.clone(),
                        tp.partition,
                        planned.offset,
                    ));
                    Outcome::Queued
                }
            }
        }
        code => {
            let error = kafkit_conn::Error::from_code(code)
                .with_api(ApiKey::Fetch)
                .with_topic(&tp.topic, Some(tp.partition));
            tracing::debug!(%tp, error = %error, "fetch partition error");
            st.counters.errors += 1;
            st.back_off(tp, planned.generation, |n| config.backoff(n));
            // Leadership errors are retriable; FENCED_LEADER_EPOCH is not
            // marked so, but fresh metadata is exactly what fixes it.
            let told_caller = !(code.is_retriable() || code == ErrorCode::FENCED_LEADER_EPOCH);
            if told_caller {
                st.errors.push_back(Error::from(error.clone()));
            }
            Outcome::Failed { error, told_caller }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafkit_conn::messages::fetch_response::AbortedTransaction;
    use kafkit_protocol::records::{ControlRecord, RecordBatchBuilder, control_batch};

    use crate::{OffsetReset, StartOffset};

    /// The broker that answered: the partition's leader.
    const LEADER: i32 = 1;

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(base);
        for i in 0..n {
            b.append(0, None, Some(format!("v{i}").as_bytes()), &[])
                .unwrap();
        }
        b.finish().unwrap()
    }

    fn setup(offset: i64) -> (State, Planned) {
        let mut st = State::default();
        let tp = TopicPartition::new("t", 0);
        st.assign(tp.clone(), StartOffset::Offset(offset));
        let generation = st.parts[&tp].generation;
        (
            st,
            Planned {
                tp,
                generation,
                offset,
                replica: None,
            },
        )
    }

    fn data(code: ErrorCode, records: Option<Bytes>) -> PartitionData {
        PartitionData {
            error_code: code,
            high_watermark: 100,
            last_stable_offset: 90,
            log_start_offset: 0,
            records,
            ..Default::default()
        }
    }

    #[test]
    fn records_become_a_chunk_and_move_the_fetch_position() {
        let (mut st, planned) = setup(10);
        let config = FetchConfig::default();
        let out = apply(
            &mut st,
            &config,
            &planned,
            LEADER,
            data(ErrorCode::NONE, Some(batch(10, 5))),
        );
        assert!(matches!(out, Outcome::Queued));
        let part = &st.parts[&planned.tp];
        assert_eq!(part.fetch, FetchState::At(15));
        assert_eq!(part.high_watermark, 100);
        assert_eq!(part.position, Some(10), "the caller has not read them yet");
        assert_eq!(st.ready.len(), 1);
        assert!(st.buffered_bytes > 0);
        assert_eq!(st.counters.bytes as usize, st.buffered_bytes);
    }

    #[test]
    fn stale_and_empty_answers_change_nothing_for_the_caller() {
        let (mut st, planned) = setup(10);
        let config = FetchConfig::default();
        let empty = apply(
            &mut st,
            &config,
            &planned,
            LEADER,
            data(ErrorCode::NONE, None),
        );
        assert!(matches!(empty, Outcome::Quiet));
        assert_eq!(st.parts[&planned.tp].high_watermark, 100);
        st.seek(&planned.tp, StartOffset::Offset(50));
        let stale = apply(
            &mut st,
            &config,
            &planned,
            LEADER,
            data(ErrorCode::NONE, Some(batch(10, 5))),
        );
        assert!(matches!(stale, Outcome::Quiet));
        assert!(st.ready.is_empty());
        assert_eq!(st.parts[&planned.tp].fetch, FetchState::At(50));
    }

    #[test]
    fn a_partial_batch_backs_off_without_moving() {
        let (mut st, planned) = setup(0);
        let whole = batch(0, 5);
        let partial = whole.slice(..whole.len() - 4);
        let out = apply(
            &mut st,
            &FetchConfig::default(),
            &planned,
            LEADER,
            data(ErrorCode::NONE, Some(partial)),
        );
        assert!(matches!(out, Outcome::Quiet));
        let part = &st.parts[&planned.tp];
        assert_eq!(part.fetch, FetchState::At(0));
        assert!(part.retry_at.is_some());
        assert!(st.ready.is_empty());
    }

    #[test]
    fn out_of_range_follows_each_policy() {
        for (policy, expected) in [
            (
                OffsetReset::Earliest,
                FetchState::Resolve(StartOffset::Earliest),
            ),
            (
                OffsetReset::Latest,
                FetchState::Resolve(StartOffset::Latest),
            ),
            (OffsetReset::Error, FetchState::Stopped),
        ] {
            let (mut st, planned) = setup(1_000);
            let config = FetchConfig {
                offset_reset: policy,
                ..Default::default()
            };
            let out = apply(
                &mut st,
                &config,
                &planned,
                LEADER,
                data(ErrorCode::OFFSET_OUT_OF_RANGE, None),
            );
            assert_eq!(st.parts[&planned.tp].fetch, expected, "{policy:?}");
            match policy {
                OffsetReset::Error => {
                    assert!(matches!(out, Outcome::Queued));
                    let e = st.errors.pop_front().unwrap();
                    assert_eq!(e.offset(), Some(1_000));
                }
                _ => {
                    assert!(matches!(out, Outcome::Quiet));
                    assert!(st.errors.is_empty());
                    assert_eq!(st.counters.resets, 1);
                }
            }
        }
    }

    #[test]
    fn leadership_errors_retry_quietly_and_others_reach_the_caller() {
        for code in [
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::FENCED_LEADER_EPOCH,
            ErrorCode::UNKNOWN_LEADER_EPOCH,
        ] {
            let (mut st, planned) = setup(5);
            let out = apply(
                &mut st,
                &FetchConfig::default(),
                &planned,
                LEADER,
                data(code, None),
            );
            match out {
                Outcome::Failed { error, told_caller } => {
                    assert!(!told_caller, "{code:?}");
                    assert_eq!(error.code(), Some(code));
                }
                other => panic!("{code:?}: {other:?}"),
            }
            assert!(st.errors.is_empty());
            let part = &st.parts[&planned.tp];
            assert_eq!((part.fetch, part.failures), (FetchState::At(5), 1));
        }
        let (mut st, planned) = setup(5);
        let code = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
        let out = apply(
            &mut st,
            &FetchConfig::default(),
            &planned,
            LEADER,
            data(code, None),
        );
        assert!(matches!(
            out,
            Outcome::Failed {
                told_caller: true,
                ..
            }
        ));
        assert_eq!(st.errors.pop_front().unwrap().code(), Some(code));
    }

    #[test]
    fn read_committed_chunks_carry_the_aborted_list() {
        let mut records = BytesMut::new();
        let mut b = RecordBatchBuilder::new(0)
            .with_producer(3, 0, 0)
            .with_transactional(true);
        b.append(0, None, Some(b"aborted"), &[]).unwrap();
        records.extend_from_slice(&b.finish().unwrap());
        records.extend_from_slice(&control_batch(1, 3, 0, &ControlRecord::abort(0), 0).unwrap());
        records.extend_from_slice(&batch(2, 1));
        let mut answer = data(ErrorCode::NONE, Some(records.freeze()));
        answer.aborted_transactions = Some(vec![AbortedTransaction {
            producer_id: 3,
            first_offset: 0,
            ..Default::default()
        }]);
        for (isolation, expected) in [
            (IsolationLevel::ReadCommitted, vec![2]),
            (IsolationLevel::ReadUncommitted, vec![0, 2]),
        ] {
            let (mut st, planned) = setup(0);
            let config = FetchConfig {
                isolation_level: isolation,
                ..Default::default()
            };
            apply(&mut st, &config, &planned, LEADER, answer.clone());
            let mut chunk = st.pop_chunk().unwrap();
            let offsets: Vec<i64> = std::iter::from_fn(|| chunk.next_message())
                .map(|m| m.unwrap().offset)
                .collect();
            assert_eq!(offsets, expected, "{isolation:?}");
            assert_eq!(chunk.position, 3);
        }
    }

    #[test]
    fn a_leader_naming_a_read_replica_sends_later_fetches_there() {
        let (mut st, planned) = setup(10);
        let config = FetchConfig::default();
        let mut answer = data(ErrorCode::NONE, Some(Bytes::new()));
        answer.preferred_read_replica = 3;
        let out = apply(&mut st, &config, &planned, LEADER, answer);
        assert!(matches!(out, Outcome::Quiet));
        let part = &st.parts[&planned.tp];
        let replica = part.read_replica.expect("a read replica");
        assert_eq!(replica.broker, 3);
        assert!(replica.until > Instant::now() + READ_REPLICA_LEASE - Duration::from_secs(5));
        assert_eq!(
            (part.fetch, part.retry_at),
            (FetchState::At(10), None),
            "no backoff"
        );

        // The replica's own answers name none: it stays.
        let from_replica = data(ErrorCode::NONE, Some(batch(10, 2)));
        apply(&mut st, &config, &planned, 3, from_replica);
        assert_eq!(
            st.parts[&planned.tp].read_replica.map(|r| r.broker),
            Some(3)
        );
        assert_eq!(st.parts[&planned.tp].fetch, FetchState::At(12));
    }

    #[test]
    fn a_read_replicas_errors_send_fetches_back_to_the_leader() {
        let config = FetchConfig::default();
        let replica = |st: &mut State, planned: &Planned| {
            st.parts.get_mut(&planned.tp).unwrap().read_replica = Some(ReadReplica {
                broker: 3,
                until: Instant::now() + READ_REPLICA_LEASE,
            });
        };
        // Out of range on a follower that is behind: no reset, no backoff.
        let (mut st, planned) = setup(10);
        replica(&mut st, &planned);
        let out = apply(
            &mut st,
            &config,
            &planned,
            3,
            data(ErrorCode::OFFSET_OUT_OF_RANGE, None),
        );
        assert!(matches!(out, Outcome::Quiet));
        let part = &st.parts[&planned.tp];
        assert_eq!(
            (part.fetch, part.read_replica, part.retry_at),
            (FetchState::At(10), None, None)
        );
        assert_eq!(st.counters.resets, 0);
        // A follower that is no longer one: back off, then the leader.
        let (mut st, planned) = setup(10);
        replica(&mut st, &planned);
        let out = apply(
            &mut st,
            &config,
            &planned,
            3,
            data(ErrorCode::NOT_LEADER_OR_FOLLOWER, None),
        );
        assert!(matches!(
            out,
            Outcome::Failed {
                told_caller: false,
                ..
            }
        ));
        let part = &st.parts[&planned.tp];
        assert!(part.read_replica.is_none() && part.retry_at.is_some());
        // The leader names the failed replica again: fetch there, but
        // only after a backoff (no spinning between leader and replica).
        let mut redirect = data(ErrorCode::NONE, Some(Bytes::new()));
        redirect.preferred_read_replica = 3;
        apply(&mut st, &config, &planned, LEADER, redirect);
        let part = &st.parts[&planned.tp];
        assert_eq!(part.read_replica.map(|r| r.broker), Some(3));
        assert_eq!(part.failures, 2, "the backoff grows");
        // Out of range from the leader itself still follows the policy.
        let (mut st, planned) = setup(10);
        replica(&mut st, &planned);
        apply(
            &mut st,
            &config,
            &planned,
            LEADER,
            data(ErrorCode::OFFSET_OUT_OF_RANGE, None),
        );
        assert_eq!(st.counters.resets, 1);
    }
}
