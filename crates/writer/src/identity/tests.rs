//! The producer identity's decisions, without a broker.

use std::sync::Arc;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::records::RecordBatchBuilder;
use tokio::time::{Duration, Instant};

use super::*;
use crate::batch::Group;

const P: ProducerId = ProducerId { id: 9, epoch: 0 };
const BUMPED: ProducerId = ProducerId { id: 9, epoch: 1 };

/// A batch of `records` records for `topic`/`partition`, with id `id`.
fn batch(id: u64, topic: &str, partition: i32, records: usize) -> Batch {
    let mut builder = RecordBatchBuilder::new(0);
    let group = Group::new(records);
    for i in 0..records {
        builder.append(i as i64, None, Some(b"v"), &[]).unwrap();
    }
    let mut batch = Batch::new(id, Arc::from(topic), partition, builder);
    for i in 0..records {
        batch.push_grouped(&group, i as u32);
    }
    batch
}

/// A verdict: may the batch go again, is its sequence in doubt.
fn verdict(retry: bool, in_doubt: bool) -> Verdict {
    Verdict { retry, in_doubt }
}

fn stamped(identity: &mut ProducerIdentity, b: &mut Batch) -> i32 {
    identity.stamp(b).unwrap();
    b.stamp.sequence
}

#[test]
fn each_partition_counts_its_own_sequences_and_a_retry_keeps_its_stamp() {
    let mut identity = ProducerIdentity::new(P, false);
    let (mut a, mut b, mut c) = (
        batch(1, "t", 0, 3),
        batch(2, "t", 0, 2),
        batch(3, "t", 1, 4),
    );
    assert_eq!(stamped(&mut identity, &mut a), 0);
    assert_eq!(stamped(&mut identity, &mut b), 3);
    assert_eq!(stamped(&mut identity, &mut c), 0, "another partition");
    // A retry is not stamped again: same bytes, same sequence.
    assert!(!identity.needs_stamp(&a));
    assert_eq!(stamped(&mut identity, &mut a), 0);
    let mut d = batch(4, "t", 0, 1);
    assert_eq!(stamped(&mut identity, &mut d), 5);
}

#[test]
fn a_new_epoch_restarts_the_sequences_and_restamps_unacked_batches() {
    let mut identity = ProducerIdentity::new(P, false);
    let mut a = batch(1, "t", 0, 3);
    stamped(&mut identity, &mut a);
    assert!(identity.adopt(BUMPED));
    assert!(identity.needs_stamp(&a));
    assert_eq!(stamped(&mut identity, &mut a), 0);
    assert_eq!(a.stamp.producer, BUMPED);
    // The same producer again changes nothing.
    assert!(!identity.adopt(BUMPED));
    let mut b = batch(2, "t", 0, 1);
    assert_eq!(stamped(&mut identity, &mut b), 3);
}

#[test]
fn an_acknowledged_batch_covers_the_earlier_ones_of_its_epoch_only() {
    let mut identity = ProducerIdentity::new(P, false);
    let mut early = batch(1, "t", 0, 2);
    let mut late = batch(2, "t", 0, 2);
    let mut other = batch(3, "t", 1, 1);
    for b in [&mut early, &mut late, &mut other] {
        identity.stamp(b).unwrap();
    }
    assert!(!identity.covers(&early));
    identity.acked(&late);
    assert!(identity.covers(&early), "sequences are taken in order");
    assert!(identity.covers(&late));
    assert!(!identity.covers(&other), "another partition");
    // An acknowledgement of a lower batch does not lower the mark.
    identity.acked(&early);
    assert!(identity.covers(&late));
    // After a bump, an old batch is still covered; a restamped one is not.
    identity.adopt(BUMPED);
    assert!(identity.covers(&early));
    identity.stamp(&mut early).unwrap();
    assert!(!identity.covers(&early));
    // An unstamped batch is never covered.
    assert!(!identity.covers(&batch(4, "t", 0, 1)));
}

#[test]
fn sequence_errors_bump_only_on_the_earliest_batch_and_never_in_a_transaction() {
    let out_of_order = Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
    let unknown = Some(ErrorCode::UNKNOWN_PRODUCER_ID);
    let idempotent = ProducerIdentity::new(P, false);
    for code in [out_of_order, unknown] {
        let earliest = idempotent.verdict(code, false, false);
        assert_eq!(earliest, verdict(true, true));
        // Behind an earlier failed batch: expected, a retry in order fixes it.
        let behind = idempotent.verdict(code, false, true);
        assert_eq!(behind, verdict(true, false));
    }
    let txn = ProducerIdentity::new(P, true);
    let earliest = txn.verdict(out_of_order, false, false);
    assert_eq!(
        earliest,
        verdict(false, false),
        "the transaction fails instead"
    );
    assert!(txn.verdict(out_of_order, false, true).retry);
    // Other errors: retried when retriable, never a bump.
    let timeout = Some(ErrorCode::REQUEST_TIMED_OUT);
    assert_eq!(
        idempotent.verdict(timeout, true, false),
        verdict(true, false)
    );
    assert!(
        !idempotent
            .verdict(Some(ErrorCode::INVALID_RECORD), false, false)
            .retry
    );
}

#[test]
fn a_bump_is_wanted_started_retried_and_ended_by_the_new_epoch() {
    let now = Instant::now();
    let topic: Arc<str> = Arc::from("t");
    let mut identity = ProducerIdentity::new(P, false);
    assert_eq!(identity.sender_bump(), Bump::Idle);
    identity.in_doubt(&topic, 0, now);
    assert_eq!(identity.sender_bump(), Bump::Wanted { not_before: now });
    assert!(identity.waits_for_bump(&topic, 0));
    assert!(!identity.waits_for_bump(&topic, 1));
    // A second partition's doubt does not push the bump back.
    identity.in_doubt(&topic, 1, now + Duration::from_secs(1));
    assert_eq!(identity.sender_bump(), Bump::Wanted { not_before: now });
    assert_eq!(identity.start_bump(), P);
    assert_eq!(identity.sender_bump(), Bump::Running);
    let later = now + Duration::from_secs(2);
    identity.bump_failed(later);
    assert_eq!(identity.sender_bump(), Bump::Wanted { not_before: later });
    identity.start_bump();
    identity.adopt(BUMPED);
    assert_eq!(identity.sender_bump(), Bump::Idle);
    assert!(!identity.bump_required());
    assert!(!identity.waits_for_bump(&topic, 0));
}

#[test]
fn in_a_transaction_the_sender_never_bumps() {
    let mut identity = ProducerIdentity::new(P, true);
    identity.in_doubt(&Arc::from("t"), 0, Instant::now());
    assert!(identity.bump_required(), "the abort bumps");
    assert_eq!(identity.sender_bump(), Bump::Idle);
    identity.adopt(BUMPED);
    assert!(!identity.bump_required());
}

#[test]
fn without_idempotence_nothing_is_in_doubt() {
    let mut identity = ProducerIdentity::new(ProducerId::NONE, false);
    identity.in_doubt(&Arc::from("t"), 0, Instant::now());
    assert!(!identity.bump_required());
    let mut b = batch(1, "t", 0, 2);
    identity.stamp(&mut b).unwrap();
    assert_eq!(b.stamp.sequence, -1);
    identity.acked(&b);
    assert!(!identity.covers(&b));
    // A sequence error from a broker is only retried.
    let v = identity.verdict(Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER), false, false);
    assert_eq!(v, verdict(true, false));
}
