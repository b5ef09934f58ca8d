//! Sending: which batches may go now, stamping them, one ProduceRequest per
//! broker, and the spawned task that sends it.

use std::collections::HashMap;

use kafkit_conn::hooks::ProduceBatchEvent;
use kafkit_protocol::messages::ProduceResponse;
use kafkit_protocol::messages::produce_response::PartitionProduceResponse;
use kafkit_protocol::{ApiKey, ErrorCode, Uuid};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::link::{self, BatchRef, Item, Job};
use super::{Outcome, Sender, earliest};
use crate::Error;
use crate::identity::{self, Bump};

impl Sender {
    /// Sends every batch that may go now; returns when to look again for
    /// batches held back by a retry backoff or an epoch bump.
    pub(super) fn dispatch(&mut self, now: Instant) -> Option<Instant> {
        let bump = self.shared.identity().sender_bump();
        match bump {
            Bump::Running => return None,
            Bump::Wanted { not_before } => {
                // The bump waits for every answer: no batch of the old epoch
                // may still be in flight when sequences restart.
                if self.parts.values().any(|p| !p.in_flight.is_empty()) {
                    return None;
                }
                // Other partitions' retries of the current epoch go first:
                // one whose answer was lost may be written, and only its
                // own sequence lets the broker recognise the duplicate.
                let (sent, next) = self.dispatch_round(now, true);
                if sent > 0 || next.is_some() {
                    return next;
                }
                if not_before > now {
                    return Some(not_before);
                }
                self.start_bump();
                return None;
            }
            Bump::Idle => {}
        }
        let mut next = None;
        loop {
            let (sent, round_next) = self.dispatch_round(now, false);
            next = earliest(next, round_next);
            if sent == 0 {
                return next;
            }
        }
    }

    /// One request per broker at most, one batch per partition in it.
    /// `resolving`: only batches already stamped with the current epoch, of
    /// partitions that did not ask for the bump.
    fn dispatch_round(&mut self, now: Instant, resolving: bool) -> (usize, Option<Instant>) {
        let config = &self.shared.config;
        let max = config.max_in_flight;
        let snapshot = self.transport.snapshot();
        let mut next = None;
        let mut leaderless = false;
        let mut requests: HashMap<i32, Request> = HashMap::new();
        let mut failed = Vec::new();
        // Read once per round, for the hook only.
        let mut buffered_bytes: Option<usize> = None;
        let mut identity = self.shared.identity();
        for ((topic, partition), part) in &mut self.parts {
            // Retries go first, in order, once nothing of the partition is
            // in flight (a later batch could otherwise overtake them).
            if !part.retries.is_empty() {
                if !part.in_flight.is_empty() {
                    continue;
                }
                part.retries.sort_by_key(|b| b.id);
                for b in part.retries.drain(..).rev() {
                    part.queue.push_front(b);
                }
            }
            if resolving
                && (identity.waits_for_bump(topic, *partition)
                    || part.queue.front().is_none_or(|b| identity.needs_stamp(b)))
            {
                continue;
            }
            if let Some(at) = part.retry_at {
                if at > now {
                    next = earliest(next, Some(at));
                    continue;
                }
                part.retry_at = None;
            }
            if part.queue.is_empty() || part.in_flight.len() >= max {
                continue;
            }
            // A transaction's partition sends only once it joined it.
            if !Sender::txn_joined(self.txn_send.as_mut(), topic, *partition) {
                continue;
            }

            let Some(leader) = snapshot.leader(topic, *partition) else {
                leaderless = true;
                continue;
            };
            let busy = self.requests.get(&leader.id).copied().unwrap_or(0);
            let request = requests.entry(leader.id).or_insert_with(|| Request {
                addr: leader.addr(),
                items: Vec::new(),
                records: 0,
            });
            if busy >= max {
                continue;
            }
            let mut batch = part.queue.pop_front().expect("checked");
            if let Err(e) = identity.stamp(&mut batch) {
                failed.push((batch, e));
                continue;
            }
            if batch.attempts == 0 {
                let queued = now.saturating_duration_since(batch.created);
                let us = u64::try_from(queued.as_micros()).unwrap_or(u64::MAX);
                self.shared.stats.queue_time.record(us);
            }
            batch.attempts += 1;
            let bytes = batch.encoded.clone().expect("stamped");
            if let Some(hook) = self.transport.hooks().get() {
                let buffered =
                    *buffered_bytes.get_or_insert_with(|| self.shared.lock().buffered_bytes);
                hook.on_produce_batch(&ProduceBatchEvent {
                    broker: &request.addr,
                    topic,
                    partition: *partition,
                    records: batch.records(),
                    bytes: bytes.len(),
                    attempt: batch.attempts,
                    buffered_bytes: buffered,
                    client_id: self.transport.client_id(),
                });
            }
            request.records += batch.records();
            request.items.push(Item {
                batch: BatchRef {
                    topic: topic.clone(),
                    partition: *partition,
                    id: batch.id,
                },
                records: bytes,
            });
            part.in_flight.push_back(batch);
        }
        drop(identity);
        for (batch, e) in failed {
            self.fail_batch(batch, e);
        }
        if leaderless && !self.refreshing {
            let e = kafkit_conn::Error::from_code(ErrorCode::LEADER_NOT_AVAILABLE);
            self.transport.on_error(&e);
            self.refresh_known(now);
        }
        let mut sent = 0;
        for (
            broker,
            Request {
                addr,
                items,
                records,
            },
        ) in requests
        {
            if items.is_empty() {
                continue;
            }
            sent += items.len();
            *self.requests.entry(broker).or_default() += 1;
            self.spawn_produce(broker, addr, items, records);
        }
        (sent, next)
    }

    /// Queues a request on the broker's submitter, which keeps the order.
    fn spawn_produce(&mut self, broker: i32, addr: String, items: Vec<Item>, records: usize) {
        let txn_version = self.txn_producing();
        let config = &self.shared.config;
        let job = Job {
            broker,
            addr,
            acks: config.required_acks.as_i16(),
            timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
            items,
            records,
            transactional_id: config.transactional_id.clone(),
            txn_version,
        };
        self.shared.stats.request();
        let link = self
            .links
            .entry(broker)
            .or_insert_with(|| link::spawn(self.transport.clone(), self.tx.clone()));
        if let Err(mpsc::error::SendError(job)) = link.send(job) {
            // The submitter is gone (it never is while the sender runs):
            // start another and hand it the request.
            let fresh = link::spawn(self.transport.clone(), self.tx.clone());
            let _ = fresh.send(job);
            self.links.insert(broker, fresh);
        }
    }

    fn start_bump(&mut self) {
        let current = self.shared.identity().start_bump();
        let (shared, transport, tx) =
            (self.shared.clone(), self.transport.clone(), self.tx.clone());
        tracing::info!(
            producer_id = current.id,
            epoch = current.epoch,
            "bumping the producer epoch"
        );
        tokio::spawn(async move {
            let result = identity::init_producer_id(&transport, &shared.config, Some(current));
            let result = result.await.map(|init| init.producer);
            let _ = tx.send(Outcome::Producer(result));
        });
    }
}

/// One partition's part of a produce response, found by topic name, or by
/// `topic_id` when the answer names topics by id.
pub(super) fn answer_for<'a>(
    response: &'a ProduceResponse,
    topic: &str,
    topic_id: Option<Uuid>,
    partition: i32,
) -> Option<&'a PartitionProduceResponse> {
    response
        .responses
        .iter()
        .filter(|t| {
            *t.name == *topic || (t.name.is_empty() && topic_id.is_some_and(|id| id == t.topic_id))
        })
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
}

/// The answer for one partition of a produce response: its base offset,
/// or the error (with context) it failed with.
pub(super) fn partition_result(
    response: &ProduceResponse,
    topic: &str,
    topic_id: Option<Uuid>,
    partition: i32,
    broker: &str,
) -> Result<i64, Error> {
    let answer = answer_for(response, topic, topic_id, partition);
    let Some(answer) = answer else {
        let e = kafkit_conn::Error::from_code(ErrorCode::UNKNOWN_SERVER_ERROR)
            .with_message("the produce response does not answer for this partition");
        return Err(Error::Kafka(
            e.with_topic(topic, Some(partition)).with_broker(broker),
        ));
    };
    match answer.error_code {
        // A retry of a batch the broker already has (its first answer was
        // lost): written once, which is what idempotence promises.
        ErrorCode::NONE | ErrorCode::DUPLICATE_SEQUENCE_NUMBER => Ok(answer.base_offset),
        code => {
            let message = answer.error_message.as_deref();
            let e = kafkit_conn::Error::from_code_with_message(code, message)
                .with_topic(topic, Some(partition))
                .with_broker(broker)
                .with_api(ApiKey::Produce);
            Err(Error::Kafka(e))
        }
    }
}

/// One broker's Produce request being put together: where it goes, its
/// batches (one per partition) and their record count.
struct Request {
    addr: String,
    items: Vec<Item>,
    records: usize,
}

#[cfg(test)]
mod tests {
    use kafkit_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    use super::*;

    fn response(topic: &str, partition: i32, code: ErrorCode, base: i64) -> ProduceResponse {
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: topic.into(),
                partition_responses: vec![PartitionProduceResponse {
                    index: partition,
                    error_code: code,
                    base_offset: base,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn answers_are_found_by_topic_and_partition() {
        let r = response("t", 1, ErrorCode::NONE, 42);
        assert_eq!(partition_result(&r, "t", None, 1, "b:1").unwrap(), 42);
        let missing = partition_result(&r, "t", None, 0, "b:1").unwrap_err();
        assert!(missing.to_string().contains("does not answer"), "{missing}");
        let r = response("t", 1, ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1);
        assert_eq!(partition_result(&r, "t", None, 1, "b:1").unwrap(), -1);
        let r = response("t", 1, ErrorCode::NOT_LEADER_OR_FOLLOWER, -1);
        let e = partition_result(&r, "t", None, 1, "b:1").unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(e.is_retriable());
    }

    #[test]
    fn answers_by_topic_id_match_too() {
        let id = Uuid::from_bytes([7; 16]);
        let mut r = response("", 0, ErrorCode::NONE, 5);
        r.responses[0].topic_id = id;
        assert_eq!(partition_result(&r, "t", Some(id), 0, "b:1").unwrap(), 5);
        assert!(partition_result(&r, "t", None, 0, "b:1").is_err());
    }
}
