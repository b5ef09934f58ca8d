//! The accumulator: per-partition open batches that callers encode records
//! straight into, the sealed batches waiting for the sender, records whose
//! topic's metadata is not known yet, and the buffer accounting that gives
//! backpressure.
//!
//! It lives behind one mutex shared by callers and the sender task. A
//! caller holds it for the few tens of nanoseconds an append takes (one
//! lock per `write_messages` chunk, not per record); the sender holds it
//! only to move sealed batches out and to release buffer space.

use std::collections::HashMap;
use std::sync::Arc;

use kafkit_protocol::records::RecordBatchBuilder;
use tokio::time::{Duration, Instant};

use crate::batch::{Batch, Completion, Group};
use crate::message::millis;
use crate::{Error, Message, WriterConfig};

/// What an append asks of the sender task.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wake {
    /// A batch was sealed, a new one opened (a linger deadline to watch)
    /// or a record waits for its topic's metadata.
    pub(crate) sender: bool,
}

/// A record waiting for its topic's metadata (owned: the cold path).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) topic: Arc<str>,
    pub(crate) message: Message,
    pub(crate) timestamp: i64,
    pub(crate) completion: Completion,
    pub(crate) size: usize,
    pub(crate) since: Instant,
}

/// How an appended record reports its outcome.
#[derive(Debug)]
pub(crate) enum Sink<'a> {
    /// Its own completion.
    Owned(Completion),
    /// Record `.1` of a `write_messages` call's group (see
    /// [`Batch::push_grouped`]).
    Grouped(&'a Arc<Group>, u32),
}

impl Sink<'_> {
    pub(crate) fn into_completion(self) -> Completion {
        match self {
            Sink::Owned(c) => c,
            Sink::Grouped(group, index) => Completion::Group(group.clone(), index),
        }
    }
}

#[derive(Debug)]
struct TopicAcc {
    name: Arc<str>,
    open: Vec<Option<Batch>>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    topics: Vec<TopicAcc>,
    index: HashMap<Arc<str>, usize>,
    /// The topic of the last append: most writers write one topic, and a
    /// string comparison is cheaper than hashing it.
    last: usize,
    /// Sealed batches, in seal order, for the sender to take.
    pub(crate) sealed: Vec<Batch>,
    pub(crate) pending: Vec<Pending>,
    /// Records and bytes written and not yet done (pending, open, sealed,
    /// queued or in flight).
    pub(crate) buffered_records: usize,
    pub(crate) buffered_bytes: usize,
    next_batch_id: u64,
    pub(crate) closed: bool,
    /// Writes are refused with this error: a transactional writer outside
    /// a live transaction (set with the transaction's state, under this
    /// lock, so a write lands either before a commit starts or not at all).
    pub(crate) refuse: Option<Error>,
}

impl Accumulator {
    /// Counts a record of `size` bytes into the buffer, or refuses it when
    /// the buffer is full. An empty buffer always takes one record (the
    /// configuration guarantees it fits).
    pub(crate) fn reserve(&mut self, config: &WriterConfig, size: usize) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        if let Some(refused) = &self.refuse {
            return Err(refused.clone());
        }
        let full = self.buffered_records >= config.max_buffered_records
            || self.buffered_bytes + size > config.buffer_bytes;
        if full && self.buffered_records > 0 {
            return Err(Error::BufferFull {
                records: self.buffered_records,
                bytes: self.buffered_bytes,
            });
        }
        self.buffered_records += 1;
        self.buffered_bytes += size;
        Ok(())
    }

    /// Gives back the buffer space of `records` records of `bytes` bytes.
    pub(crate) fn release(&mut self, records: usize, bytes: usize) {
        self.buffered_records = self.buffered_records.saturating_sub(records);
        self.buffered_bytes = self.buffered_bytes.saturating_sub(bytes);
    }

    /// Takes the pending records `select` picks, in order; their space
    /// stays counted, for they go into batches.
    pub(crate) fn take_pending(&mut self, select: impl FnMut(&Pending) -> bool) -> Vec<Pending> {
        let (taken, kept) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(select);
        self.pending = kept;
        taken
    }

    /// Takes the pending records `select` picks and gives back their
    /// space: they leave the buffer, to be failed.
    pub(crate) fn evict_pending(&mut self, select: impl FnMut(&Pending) -> bool) -> Vec<Pending> {
        let evicted = self.take_pending(select);
        let bytes = evicted.iter().map(|p| p.size).sum();
        self.release(evicted.len(), bytes);
        evicted
    }

    /// The partition count of a known topic.
    #[cfg(test)]
    pub(crate) fn partition_count(&self, topic: &str) -> Option<usize> {
        self.index.get(topic).map(|&i| self.topics[i].open.len())
    }

    fn topic_index(&mut self, topic: &str) -> Option<usize> {
        if self
            .topics
            .get(self.last)
            .is_some_and(|t| &*t.name == topic)
        {
            return Some(self.last);
        }
        let i = *self.index.get(topic)?;
        self.last = i;
        Some(i)
    }

    /// Learns (or re-learns) a topic's partition count. A topic that grew
    /// gets more slots; open batches are kept.
    pub(crate) fn set_partitions(&mut self, topic: &Arc<str>, count: usize) {
        let i = match self.index.get(topic) {
            Some(&i) => i,
            None => {
                self.topics.push(TopicAcc {
                    name: topic.clone(),
                    open: Vec::new(),
                });
                self.index.insert(topic.clone(), self.topics.len() - 1);
                self.topics.len() - 1
            }
        };
        let entry = &mut self.topics[i];
        if entry.open.len() < count {
            entry.open.resize_with(count, || None);
        }
    }

    /// Appends one record whose buffer space is already reserved.
    /// `timestamp` is used unless the message has its own. Records of an
    /// unknown topic wait in `pending`.
    pub(crate) fn append<'s>(
        &mut self,
        config: &WriterConfig,
        topic: &str,
        message: &Message,
        timestamp: i64,
        size: usize,
        sink: Sink<'s>,
    ) -> Result<Wake, (Error, Sink<'s>)> {
        let Some(i) = self.topic_index(topic) else {
            self.pending.push(Pending {
                topic: Arc::from(topic),
                message: message.clone(),
                timestamp,
                completion: sink.into_completion(),
                size,
                since: Instant::now(),
            });
            return Ok(Wake { sender: true });
        };
        let t = &mut self.topics[i];
        let count = t.open.len();
        let partition = match message.partition {
            Some(p) if p >= 0 && (p as usize) < count => p,
            Some(p) => {
                let e = Error::NoSuchPartition {
                    topic: t.name.clone(),
                    partition: p,
                    count,
                };
                return Err((e, sink));
            }
            None => config
                .balancer
                .balance(topic, message, count)
                .rem_euclid(count as i32),
        };
        let mut wake = Wake::default();
        let slot = &mut t.open[partition as usize];
        if let Some(open) = slot {
            let full = open.records() >= config.batch_size || open.size + size > config.batch_bytes;
            if full {
                self.sealed.push(slot.take().expect("checked"));
                wake.sender = true;
            }
        }
        let open = match slot {
            Some(open) => open,
            None => {
                self.next_batch_id += 1;
                let builder = RecordBatchBuilder::new(0)
                    .with_compression(config.compression, config.compression_level)
                    .with_transactional(config.transactional_id.is_some());
                wake.sender = true;
                slot.insert(Batch::new(
                    self.next_batch_id,
                    t.name.clone(),
                    partition,
                    builder,
                ))
            }
        };
        let timestamp = message.timestamp.map_or(timestamp, millis);
        let builder = open.builder.as_mut().expect("open batches have a builder");
        if let Err(e) = builder.append_with_headers(
            timestamp,
            message.key.as_deref(),
            message.value.as_deref(),
            message.header_pairs(),
        ) {
            if open.records() == 0 {
                *slot = None;
            }
            return Err((e.into(), sink));
        }
        match sink {
            Sink::Owned(c) => open.completions.push(c),
            Sink::Grouped(group, index) => open.push_grouped(group, index),
        }
        open.size += size;
        Ok(wake)
    }

    /// Seals the open batches that lingered past `linger` (all of them when
    /// `all`), and returns the earliest deadline of those still open.
    pub(crate) fn seal_due(
        &mut self,
        linger: Duration,
        all: bool,
        now: Instant,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for t in &mut self.topics {
            for slot in &mut t.open {
                let Some(open) = slot else { continue };
                let due = open.created + linger;
                if all || due <= now {
                    self.sealed.push(slot.take().expect("checked"));
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        next
    }

    /// True when nothing is buffered anywhere.
    pub(crate) fn is_empty(&self) -> bool {
        self.buffered_records == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::RoundRobin;

    fn config() -> WriterConfig {
        WriterConfig {
            balancer: Arc::new(RoundRobin::default()),
            batch_size: 3,
            max_buffered_records: 5,
            ..WriterConfig::default()
        }
    }

    fn add(acc: &mut Accumulator, c: &WriterConfig, m: &Message) -> Result<Wake, Error> {
        acc.reserve(c, 10)?;
        acc.append(c, "t", m, 1, 10, Sink::Owned(Completion::Report(0)))
            .map_err(|(e, _)| e)
    }

    #[test]
    fn unknown_topics_wait_then_records_fill_batches() {
        let c = config();
        let mut acc = Accumulator::default();
        assert!(add(&mut acc, &c, &Message::new("a")).unwrap().sender);
        assert_eq!(acc.pending.len(), 1);
        acc.set_partitions(&Arc::from("t"), 1);
        assert_eq!(acc.partition_count("t"), Some(1));
        // A new batch wakes the sender; more records into it do not.
        assert!(add(&mut acc, &c, &Message::new("b")).unwrap().sender);
        assert!(!add(&mut acc, &c, &Message::new("c")).unwrap().sender);
        assert!(!add(&mut acc, &c, &Message::new("d")).unwrap().sender);
        // The fourth record seals the batch of three.
        assert!(add(&mut acc, &c, &Message::new("e")).unwrap().sender);
        assert_eq!(acc.sealed.len(), 1);
        assert_eq!(acc.sealed[0].records(), 3);
        // Five records are buffered: the sixth is refused.
        let e = add(&mut acc, &c, &Message::new("f")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BufferFull {
                    records: 5,
                    bytes: 50
                }
            ),
            "{e}"
        );
        acc.release(3, 30);
        add(&mut acc, &c, &Message::new("f")).unwrap();
    }

    #[test]
    fn explicit_partitions_are_checked() {
        let c = config();
        let mut acc = Accumulator::default();
        acc.set_partitions(&Arc::from("t"), 2);
        add(&mut acc, &c, &Message::new("a").with_partition(1)).unwrap();
        let e = add(&mut acc, &c, &Message::new("a").with_partition(2)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NoSuchPartition {
                    partition: 2,
                    count: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn lingered_batches_seal() {
        let c = config();
        let mut acc = Accumulator::default();
        acc.set_partitions(&Arc::from("t"), 2);
        add(&mut acc, &c, &Message::new("a")).unwrap();
        add(&mut acc, &c, &Message::new("b")).unwrap();
        let now = Instant::now();
        let next = acc.seal_due(Duration::from_secs(60), false, now).unwrap();
        assert!(next > now);
        assert!(acc.sealed.is_empty());
        assert_eq!(acc.seal_due(Duration::from_secs(60), true, now), None);
        assert_eq!(acc.sealed.len(), 2);
        acc.closed = true;
        assert!(matches!(
            add(&mut acc, &c, &Message::new("c")),
            Err(Error::Closed)
        ));
    }
}
