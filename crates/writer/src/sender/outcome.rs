//! Answers: acknowledged batches, retries that keep order, epoch bumps, and
//! metadata lookups for topics with pending records.

use std::sync::Arc;

use kafkit_conn::RequiredAcks;
use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::ProduceResponse;
use tokio::time::{Duration, Instant};

use super::dispatch::{answer_for, partition_result};
use super::leader_hint;
use super::link::BatchRef;
use super::{Outcome, Part, Sender};
use crate::Error;
use crate::accumulator::{Pending, Sink};
use crate::batch::Batch;
use crate::identity::ProducerId;

impl Sender {
    pub(super) fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Produced {
                broker,
                addr,
                sent,
                result,
            } => self.on_produced(broker, &addr, sent, result),
            Outcome::Metadata {
                topics,
                refresh,
                result,
            } => self.on_metadata(topics, refresh, result),
            Outcome::Producer(result) => self.on_producer(result),
            Outcome::PartitionsAdded {
                generation,
                partitions,
                result,
            } => self.on_partitions_added(generation, partitions, result),
        }
    }

    fn on_produced(
        &mut self,
        broker: i32,
        addr: &str,
        sent: Vec<BatchRef>,
        result: Result<ProduceResponse, kafkit_conn::Error>,
    ) {
        if let Some(n) = self.requests.get_mut(&broker) {
            *n = n.saturating_sub(1);
        }
        if let Ok(response) = &result {
            let throttle_ms = u64::try_from(response.throttle_time_ms).unwrap_or(0);
            self.shared.stats.throttle.record(throttle_ms);
        }
        let acks_none = self.shared.config.required_acks == RequiredAcks::None;
        let snapshot = self.transport.snapshot();
        for BatchRef {
            topic,
            partition,
            id,
        } in sent
        {
            let Some(batch) = self.take_in_flight(&topic, partition, id) else {
                continue;
            };
            let mut hint = None;
            let result = match &result {
                Err(e) => Err(Error::Kafka(e.clone())),
                Ok(_) if acks_none => Ok(-1),
                Ok(response) => {
                    let topic_id = snapshot.topic_id(&topic);
                    let answer = answer_for(response, &topic, topic_id, partition);
                    hint = answer.and_then(|a| leader_hint::of(a, &response.node_endpoints));
                    partition_result(response, &topic, topic_id, partition, addr)
                }
            };
            match result {
                Ok(base_offset) => self.ack_batch(batch, base_offset),
                Err(e) => {
                    // A leader named by the broker (KIP-951) is tried at
                    // once; otherwise the error may ask for a refresh.
                    let moved = hint.is_some_and(|hint| {
                        self.transport.follow_hint(&topic, partition, &hint, broker)
                    });
                    if moved {
                        self.shared.stats.leader_hint();
                    } else if let Error::Kafka(k) = &e {
                        self.transport.on_error(k);
                    }
                    self.on_batch_error(batch, e, moved);
                }
            }
        }
    }

    fn take_in_flight(&mut self, topic: &Arc<str>, partition: i32, id: u64) -> Option<Batch> {
        let part = self.parts.get_mut(&(topic.clone(), partition))?;
        let at = part.in_flight.iter().position(|b| b.id == id)?;
        part.in_flight.remove(at)
    }

    /// A batch failed: retry it in order, bump the epoch first, or fail it.
    /// `moved`: its partition has a new leader already (a broker's hint),
    /// so a retry goes without the backoff.
    fn on_batch_error(&mut self, batch: Batch, error: Error, moved: bool) {
        let now = Instant::now();
        let config = &self.shared.config;
        let mut identity = self.shared.identity();
        if identity.covers(&batch) {
            drop(identity);
            // A later batch was acknowledged, so this one is written: its
            // answer was lost, or the broker no longer knows its sequence.
            self.complete_acked(batch, -1);
            return;
        }
        let part = self
            .parts
            .entry((batch.topic.clone(), batch.partition))
            .or_default();
        let earlier_unacked = part
            .in_flight
            .iter()
            .chain(&part.retries)
            .any(|b| b.id < batch.id);
        let verdict = identity.verdict(error.code(), error.is_retriable(), earlier_unacked);
        let expired = batch.created + config.delivery_timeout <= now;
        if verdict.retry && batch.attempts < config.max_attempts && !expired {
            if verdict.in_doubt {
                identity.in_doubt(&batch.topic, batch.partition, now);
            }
            let delay = if moved {
                Duration::ZERO
            } else {
                config.retry_delay(batch.attempts)
            };
            tracing::debug!(
                topic = %batch.topic,
                partition = batch.partition,
                attempt = batch.attempts,
                ?delay,
                error = %error,
                "retrying batch"
            );
            part.retry_at = Some(part.retry_at.map_or(now + delay, |t| t.max(now + delay)));
            part.retries.push(batch);
            self.shared.stats.retry();
            return;
        }
        drop(identity);
        let error = if verdict.retry && expired {
            Error::DeliveryTimeout(config.delivery_timeout)
        } else {
            error
        };
        self.fail_batch(batch, error);
    }

    fn on_producer(&mut self, result: Result<ProducerId, Error>) {
        match result {
            Ok(producer) => {
                self.shared.adopt_producer(producer);
                self.shared.stats.epoch_bump();
                for part in self.parts.values_mut() {
                    part.retry_at = None;
                    requeue_retries(part);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "producer epoch bump failed; trying again");
                let wait = self.shared.config.backoff_max;
                self.shared.identity().bump_failed(Instant::now() + wait);
                // Queued, they expire at the delivery timeout if this lasts.
                for part in self.parts.values_mut() {
                    requeue_retries(part);
                }
            }
        }
    }

    fn on_metadata(
        &mut self,
        topics: Vec<Arc<str>>,
        refresh: bool,
        result: Result<Vec<usize>, Error>,
    ) {
        if refresh {
            self.refreshing = false;
        }
        let now = Instant::now();
        let counts = match &result {
            Ok(counts) => counts.clone(),
            Err(_) => vec![0; topics.len()],
        };
        for (topic, count) in topics.into_iter().zip(counts) {
            if count > 0 {
                self.topic_known(&topic, count);
                continue;
            }
            if refresh || !self.lookups.contains_key(&topic) {
                continue;
            }
            let error = match &result {
                Err(e) => e.clone(),
                Ok(_) => Error::Kafka(
                    kafkit_conn::Error::from_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_topic(&topic, None),
                ),
            };
            let attempts = self.lookups.get(&topic).map_or(0, |s| s.0) + 1;
            if attempts < self.shared.config.max_attempts {
                let at = now + self.shared.config.retry_delay(attempts);
                tracing::debug!(topic = %topic, attempts, error = %error, "topic not ready");
                self.lookups.insert(topic, (attempts, Some(at)));
            } else {
                self.lookups.remove(&topic);
                self.fail_pending(&topic, error);
            }
        }
    }

    /// A topic's partition count is known: its pending records go into
    /// batches.
    fn topic_known(&mut self, topic: &Arc<str>, count: usize) {
        self.lookups.remove(topic);
        let config = &self.shared.config;
        let mut failed = Vec::new();
        {
            let mut acc = self.shared.lock();
            acc.set_partitions(topic, count);
            for p in acc.take_pending(|p| p.topic == *topic) {
                let Pending {
                    message,
                    timestamp,
                    size,
                    completion,
                    ..
                } = p;
                let sink = Sink::Owned(completion);
                if let Err((e, sink)) = acc.append(config, topic, &message, timestamp, size, sink) {
                    acc.release(1, size);
                    failed.push((sink.into_completion(), e));
                }
            }
        }
        self.shared
            .fail_unbatched(failed.into_iter().map(|(c, e)| (topic.clone(), c, e)));
    }

    fn fail_pending(&mut self, topic: &Arc<str>, error: Error) {
        let records = self.shared.fail_pending(|p| p.topic == *topic, &error);
        tracing::debug!(topic = %topic, records, error = %error, "topic lookup failed");
    }
}

/// Puts a partition's failed batches back at the front of its queue, in
/// order.
fn requeue_retries(part: &mut Part) {
    part.retries.sort_by_key(|b| b.id);
    for b in part.retries.drain(..).rev() {
        part.queue.push_front(b);
    }
}
