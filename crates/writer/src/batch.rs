//! [`Batch`]: one partition's records on their way to the broker, and the
//! [`Completion`]s that tell each record's writer how it went.
//!
//! A batch is *open* while records are appended (in the accumulator),
//! *sealed* when full or lingered long enough, *finished* (encoded,
//! compressed, stamped with the producer id, epoch and base sequence) when
//! the sender first sends it, and *done* when acknowledged or failed for
//! good. Retries resend the same finished bytes, so an idempotent retry
//! keeps its sequence and the broker can drop a duplicate.

use crate::identity::Stamp;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafkit_protocol::records::RecordBatchBuilder;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::config::DeliveryCallback;
use crate::hooked::Traced;
use crate::{DeliveryReport, Error, RecordMetadata};

/// How one record's outcome reaches its writer. The cheapest is a
/// [`Group`] slot (one allocation per `write_messages` call), then a
/// report id (none: the callback gets it), then a oneshot (one per record).
#[derive(Debug)]
pub(crate) enum Completion {
    /// [`Writer::send`](crate::Writer::send).
    Oneshot(oneshot::Sender<Result<RecordMetadata, Error>>),
    /// Record `.1` of a [`Writer::write_messages`](crate::Writer::write_messages) call.
    Group(Arc<Group>, u32),
    /// Record `.0` of the same group as the batch's previous `Group` entry:
    /// a run of one call's records costs one `Arc` clone, not one each
    /// (the clone and its drop happen on different threads, so each would
    /// move the counter's cache line between cores).
    Next(u32),
    /// [`Writer::produce`](crate::Writer::produce): reported to the callback.
    Report(u64),
    /// Any of the others, for a record an installed hook keeps a token
    /// for (never `Next`: a traced record is its own completion).
    Traced(Box<Traced>),
}

/// The results of one `write_messages` call, filled as batches complete.
#[derive(Debug)]
pub(crate) struct Group {
    state: Mutex<GroupState>,
    done: Notify,
}

#[derive(Debug)]
struct GroupState {
    results: Vec<Option<Result<RecordMetadata, Error>>>,
    remaining: usize,
}

impl Group {
    pub(crate) fn new(records: usize) -> Arc<Group> {
        Arc::new(Group {
            state: Mutex::new(GroupState {
                results: (0..records).map(|_| None).collect(),
                remaining: records,
            }),
            done: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets record `index`'s result.
    pub(crate) fn set(&self, index: u32, result: Result<RecordMetadata, Error>) {
        let mut state = self.lock();
        Group::set_locked(&mut state, &self.done, index, result);
    }

    fn set_locked(
        state: &mut GroupState,
        done: &Notify,
        index: u32,
        result: Result<RecordMetadata, Error>,
    ) {
        let slot = &mut state.results[index as usize];
        if slot.is_none() {
            state.remaining -= 1;
        }
        *slot = Some(result);
        if state.remaining == 0 {
            // Stores a permit if the waiter is not waiting yet.
            done.notify_one();
        }
    }

    /// Waits until every record has its result, then takes them.
    ///
    /// Cancel safety: safe; the results stay until taken.
    pub(crate) async fn wait(&self) -> Vec<Result<RecordMetadata, Error>> {
        loop {
            {
                let mut state = self.lock();
                if state.remaining == 0 {
                    return state
                        .results
                        .drain(..)
                        .map(|r| r.unwrap_or(Err(Error::Closed)))
                        .collect();
                }
            }
            self.done.notified().await;
        }
    }
}

/// One partition's batch.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Unique per writer and increasing in seal order, so a partition's
    /// batches sort by it.
    pub(crate) id: u64,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The records while the batch is open or sealed; `None` once finished.
    pub(crate) builder: Option<RecordBatchBuilder>,
    /// The encoded batch, once finished.
    pub(crate) encoded: Option<Bytes>,
    /// The producer id and epoch the encoded batch carries (-1 when not
    /// idempotent) and its base sequence.
    pub(crate) stamp: Stamp,
    pub(crate) completions: Vec<Completion>,
    /// Estimated encoded size (the buffer accounting unit).
    pub(crate) size: usize,
    /// When its first record was written (linger, latency, delivery timeout).
    pub(crate) created: Instant,
    /// The group of the last `Group` completion, which `Next` entries mean.
    run_group: Option<Arc<Group>>,
    /// Sends so far.
    pub(crate) attempts: u32,
}

impl Batch {
    pub(crate) fn new(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        builder: RecordBatchBuilder,
    ) -> Batch {
        Batch {
            id,
            topic,
            partition,
            builder: Some(builder),
            encoded: None,
            stamp: Stamp::NONE,
            completions: Vec::new(),
            size: 0,
            created: Instant::now(),
            attempts: 0,
            run_group: None,
        }
    }

    /// Adds the completion of record `index` of `group`.
    pub(crate) fn push_grouped(&mut self, group: &Arc<Group>, index: u32) {
        if self
            .run_group
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(g, group))
        {
            self.completions.push(Completion::Next(index));
        } else {
            self.run_group = Some(group.clone());
            self.completions
                .push(Completion::Group(group.clone(), index));
        }
    }

    pub(crate) fn records(&self) -> usize {
        self.completions.len()
    }

    /// Hands every record its outcome: offsets `base_offset + i` on
    /// success (-1 when the broker gave none), or a clone of the error.
    pub(crate) fn complete(self, outcome: Result<i64, Error>, callback: Option<&DeliveryCallback>) {
        let partition = self.partition;
        let result = |i: usize| match &outcome {
            Ok(base) if *base >= 0 => Ok(RecordMetadata {
                partition,
                offset: base + i as i64,
            }),
            Ok(_) => Ok(RecordMetadata {
                partition,
                offset: -1,
            }),
            Err(e) => Err(e.clone()),
        };
        // A run of one `write_messages` call's records shares one lock.
        let mut current: Option<Arc<Group>> = None;
        let mut records = self.completions.into_iter().enumerate().peekable();
        while let Some((i, completion)) = records.next() {
            match completion {
                Completion::Group(group, index) => {
                    current = Some(group);
                    let group = current.as_ref().expect("just set");
                    let mut state = group.lock();
                    Group::set_locked(&mut state, &group.done, index, result(i));
                    while let Some((j, Completion::Next(next_index))) = records.peek() {
                        let (j, next_index) = (*j, *next_index);
                        records.next();
                        Group::set_locked(&mut state, &group.done, next_index, result(j));
                    }
                }
                Completion::Next(index) => {
                    if let Some(group) = &current {
                        group.set(index, result(i));
                    }
                }
                Completion::Oneshot(tx) => {
                    // The caller may have dropped its Delivery: nothing to do.
                    let _ = tx.send(result(i));
                }
                Completion::Report(id) => {
                    if let Some(cb) = callback {
                        cb(DeliveryReport {
                            id,
                            topic: self.topic.clone(),
                            result: result(i),
                        });
                    }
                }
                Completion::Traced(traced) => {
                    let result = result(i);
                    let inner = traced.report(&self.topic, partition, &result);
                    resolve(inner, result, &self.topic, callback);
                }
            }
        }
    }
}

/// Hands a traced record's completion its result (the cold path; the
/// untraced ones are resolved inline by [`Batch::complete`]).
fn resolve(
    completion: Completion,
    result: Result<RecordMetadata, Error>,
    topic: &Arc<str>,
    callback: Option<&DeliveryCallback>,
) {
    match completion {
        // The caller may have dropped its Delivery: nothing to do.
        Completion::Oneshot(tx) => drop(tx.send(result)),
        Completion::Group(group, index) => group.set(index, result),
        Completion::Report(id) => {
            if let Some(cb) = callback {
                cb(DeliveryReport {
                    id,
                    topic: topic.clone(),
                    result,
                });
            }
        }
        Completion::Traced(traced) => {
            let inner = traced.report(topic, -1, &result);
            resolve(inner, result, topic, callback);
        }
        // Only a run's later records are `Next`, resolved with the run.
        Completion::Next(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_with(completions: Vec<Completion>) -> Batch {
        let mut b = Batch::new(1, Arc::from("t"), 2, RecordBatchBuilder::new(0));
        b.completions = completions;
        b
    }

    #[tokio::test]
    async fn offsets_follow_the_base_offset() {
        let group = Group::new(4);
        let other = Group::new(1);
        let (tx, rx) = oneshot::channel();
        let mut b = batch_with(Vec::new());
        b.push_grouped(&group, 3);
        b.completions.push(Completion::Oneshot(tx));
        b.push_grouped(&group, 0);
        b.push_grouped(&other, 0);
        b.push_grouped(&group, 2);
        assert!(matches!(b.completions[2], Completion::Next(0)));
        assert!(matches!(b.completions[4], Completion::Group(_, 2)));
        b.complete(Ok(100), None);
        let meta = rx.await.unwrap().unwrap();
        assert_eq!((meta.partition, meta.offset), (2, 101));
        assert_eq!(other.wait().await[0].as_ref().unwrap().offset, 103);
        group.set(1, Err(Error::MissingTopic));
        let results = group.wait().await;
        assert_eq!(results[3].as_ref().unwrap().offset, 100);
        assert_eq!(results[0].as_ref().unwrap().offset, 102);
        assert_eq!(results[2].as_ref().unwrap().offset, 104);
        assert!(matches!(results[1], Err(Error::MissingTopic)));
    }

    #[tokio::test]
    async fn failures_reach_every_record_and_the_callback() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let cb: DeliveryCallback = Arc::new(move |r: DeliveryReport| sink.lock().unwrap().push(r));
        let b = batch_with(vec![Completion::Report(7), Completion::Report(8)]);
        b.complete(Err(Error::Closed), Some(&cb));
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].id, 8);
        assert!(matches!(reports[0].result, Err(Error::Closed)));
        assert_eq!(&*reports[0].topic, "t");
    }
}
