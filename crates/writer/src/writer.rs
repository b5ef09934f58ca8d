//! [`Writer`]: the handle callers write through, and [`Delivery`], the
//! future of one sent record.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use kafkit_conn::telemetry::{ClientKind, ClientTelemetry, TelemetryStats};
use kafkit_conn::{Transport, TransportConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accumulator::Sink;
use crate::batch::{Completion, Group};
use crate::builder::TransportSource;
use crate::hooked;
use crate::identity::{Init, ProducerId, init_producer_id};
use crate::message::millis;
use crate::sender::{Sender, Shared};
use crate::telemetry::WriterMetrics;
use crate::txn::State;
use crate::txn::version::TxnVersion;
use crate::{Error, Message, RecordMetadata, WriterBuilder, WriterConfig, WriterStats};

/// Records appended per lock in `write_messages`, so the sender task and
/// other callers get the lock between chunks.
const CHUNK: usize = 512;

/// A Kafka producer. See the [crate docs](crate) for behavior and the
/// fastest way to call it.
///
/// `Writer` is `Send + Sync`: share it by reference or in an `Arc`.
/// Dropping it never blocks: the background task sends what is buffered
/// and stops; [`close`](Writer::close) does the same and waits, reporting
/// failures.
#[derive(Debug)]
pub struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) transport: Transport,
    task: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// The writer's client telemetry, unless `metrics_push` is off; ended
    /// by `close` (with a terminating push) or by drop.
    telemetry: Mutex<Option<ClientTelemetry>>,
}

/// The outcome of one [`send`](Writer::send): resolves to the record's
/// partition and offset once the broker acknowledges it, or to its error.
/// Dropping it does not cancel the record.
#[derive(Debug)]
#[must_use = "a Delivery tells whether the record was written"]
pub struct Delivery {
    rx: oneshot::Receiver<Result<RecordMetadata, Error>>,
}

impl Future for Delivery {
    type Output = Result<RecordMetadata, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

impl Writer {
    /// A builder that bootstraps a new [`Transport`] from `bootstrap`.
    pub fn builder<S: Into<String>>(bootstrap: impl IntoIterator<Item = S>) -> WriterBuilder {
        WriterBuilder::new(TransportSource::New(Box::new(TransportConfig::new(
            bootstrap,
        ))))
    }

    /// A builder that shares an existing [`Transport`] (its metadata cache
    /// and connections) with other clients.
    pub fn with_transport(transport: Transport) -> WriterBuilder {
        WriterBuilder::new(TransportSource::Given(transport))
    }

    pub(crate) async fn start(transport: Transport, config: WriterConfig) -> Result<Writer, Error> {
        let init = if config.transactional_id.is_some() || config.is_idempotent() {
            init_producer_id(&transport, &config, None).await?
        } else {
            Init {
                producer: ProducerId::NONE,
                level: None,
            }
        };
        let shared = Arc::new(Shared::new(config));
        shared.adopt_producer(init.producer);
        if let Some(txn) = &shared.txn {
            let mut core = txn.lock();
            core.level = init.level;
            core.version = TxnVersion::from_level(init.level);
            txn.set_state(&mut core, &shared, State::Ready, None);
        }
        let task = tokio::spawn(Sender::new(shared.clone(), transport.clone()).run());
        let telemetry = shared.config.metrics_push.then(|| {
            let source = Arc::new(WriterMetrics(shared.clone()));
            ClientTelemetry::start(&transport, ClientKind::Producer, source)
        });
        Ok(Writer {
            shared,
            transport,
            task: Mutex::new(Some(task)),
            next_id: AtomicU64::new(0),
            telemetry: Mutex::new(telemetry),
        })
    }

    /// What the writer's client telemetry (KIP-714) did: `None` with
    /// `metrics_push` off.
    pub fn telemetry(&self) -> Option<TelemetryStats> {
        let telemetry = self.telemetry.lock().unwrap_or_else(|e| e.into_inner());
        telemetry.as_ref().map(ClientTelemetry::stats)
    }

    /// The writer's settings.
    pub fn config(&self) -> &WriterConfig {
        &self.shared.config
    }

    /// The transport the writer sends through.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Counters, the latency histogram, what is buffered, the producer id
    /// and transaction state, and the connections per broker.
    pub fn stats(&self) -> WriterStats {
        let mut stats = self.shared.stats.snapshot();
        (stats.buffered_records, stats.buffered_bytes) = self.buffered();
        stats.transaction_state = self.shared.txn.as_ref().map(|t| t.lock().state.name());
        stats.transport = self.transport.stats();
        stats
    }

    /// Records and bytes written and not yet done.
    pub fn buffered(&self) -> (usize, usize) {
        let acc = self.shared.lock();
        (acc.buffered_records, acc.buffered_bytes)
    }

    /// The topic a message goes to and its estimated size, or why it
    /// cannot be written.
    fn check<'a>(&'a self, message: &'a Message) -> Result<(&'a str, usize), Error> {
        let topic = self.topic_for(message)?;
        let size = message.estimated_size();
        let max = self.shared.config.max_message_bytes;
        if size > max {
            return Err(Error::MessageTooLarge { size, max });
        }
        Ok((topic, size))
    }

    /// The topic a message goes to: the writer's or the message's.
    fn topic_for<'a>(&'a self, message: &'a Message) -> Result<&'a str, Error> {
        Ok(match (&self.shared.config.topic, &message.topic) {
            (Some(writer), Some(topic)) => {
                return Err(Error::AmbiguousTopic {
                    writer: writer.clone(),
                    message: topic.clone(),
                });
            }
            (Some(writer), None) => &**writer,
            // The full name rules are the broker's to enforce per record;
            // an empty name is certainly a mistake, and cheap to catch.
            (None, Some(topic)) if topic.is_empty() => {
                return Err(Error::Config(
                    "a message's topic must not be empty".to_owned(),
                ));
            }
            (None, Some(topic)) => topic.as_str(),
            (None, None) => return Err(Error::MissingTopic),
        })
    }

    /// The message to buffer and its completion, after the hook (if any)
    /// saw it; see [`hooked::before_buffering`].
    fn before_buffering<'m>(
        &self,
        message: &'m Message,
        completion: Completion,
    ) -> (Cow<'m, Message>, Completion) {
        let hooks = self.transport.hooks();
        if !hooks.is_installed() {
            return (Cow::Borrowed(message), completion);
        }
        // The size is checked after the hook, headers and all.
        let Ok(topic) = self.topic_for(message) else {
            // Refused by `try_enqueue` with its error; no hook event.
            return (Cow::Borrowed(message), completion);
        };
        let client_id = self.transport.client_id();
        hooked::before_buffering(hooks, client_id, topic, message, completion)
    }

    /// A record that could not be buffered: tells its hook, returns `error`.
    fn refused(&self, message: &Message, completion: Completion, error: Error) -> Error {
        let topic = self.shared.config.topic.as_deref();
        let topic = topic.or(message.topic.as_deref()).unwrap_or_default();
        hooked::refused(completion, topic, &error);
        error
    }

    /// Appends one record unless the buffer is full; gives the completion
    /// back on failure.
    fn try_enqueue(
        &self,
        message: &Message,
        timestamp: i64,
        completion: Completion,
    ) -> Result<(), (Error, Completion)> {
        let (topic, size) = match self.check(message) {
            Ok(checked) => checked,
            Err(e) => return Err((e, completion)),
        };
        let config = &self.shared.config;
        let wake = {
            let mut acc = self.shared.lock();
            if let Err(e) = acc.reserve(config, size) {
                return Err((e, completion));
            }
            match acc.append(
                config,
                topic,
                message,
                timestamp,
                size,
                Sink::Owned(completion),
            ) {
                Ok(wake) => wake,
                Err((e, sink)) => {
                    acc.release(1, size);
                    return Err((e, sink.into_completion()));
                }
            }
        };
        if wake.sender {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// [`try_enqueue`](Self::try_enqueue), waiting for buffer space; with
    /// a hook installed, after the hook saw the record.
    #[inline]
    async fn enqueue(&self, message: &Message, completion: Completion) -> Result<(), Error> {
        if self.transport.hooks().is_installed() {
            // Boxed: the plain path's future stays as small as it was.
            return Box::pin(self.enqueue_hooked(message, completion)).await;
        }
        self.enqueue_waiting(message, completion)
            .await
            .map_err(|(e, _)| e)
    }

    /// [`enqueue`](Self::enqueue) once the hook saw the record.
    async fn enqueue_hooked(&self, message: &Message, completion: Completion) -> Result<(), Error> {
        let (message, completion) = self.before_buffering(message, completion);
        match self.enqueue_waiting(&message, completion).await {
            Ok(()) => Ok(()),
            Err((e, back)) => Err(self.refused(&message, back, e)),
        }
    }

    /// [`try_enqueue`](Self::try_enqueue), waiting for buffer space;
    /// gives the completion back on failure.
    async fn enqueue_waiting(
        &self,
        message: &Message,
        completion: Completion,
    ) -> Result<(), (Error, Completion)> {
        // A caller looping over `send` with buffer space free would never
        // yield otherwise, starving the tasks sharing its worker (the
        // sender, a committing transaction). Before anything is enqueued,
        // so a cancellation here drops nothing.
        tokio::task::consume_budget().await;
        let timestamp = millis(SystemTime::now());
        // The common case first: registering as a waiter costs a lock.
        let mut completion = match self.try_enqueue(message, timestamp, completion) {
            Ok(()) => return Ok(()),
            Err((Error::BufferFull { .. }, back)) => back,
            Err(failed) => return Err(failed),
        };
        loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Space freed between the failed try and `enable` is seen here.
            match self.try_enqueue(message, timestamp, completion) {
                Ok(()) => return Ok(()),
                Err((Error::BufferFull { .. }, back)) => {
                    completion = back;
                    notified.await;
                }
                Err(failed) => return Err(failed),
            }
        }
    }

    /// Writes one record and returns its [`Delivery`] at once, waiting only
    /// while the buffer is full. `writer.send(m).await?.await?` is a
    /// synchronous send.
    ///
    /// Costs a oneshot channel per record; [`write_messages`](Self::write_messages)
    /// and [`produce`](Self::produce) do not.
    ///
    /// Cancel safety: safe. Dropped while waiting for space, the record is
    /// not written; once it returns, the record is written whatever happens
    /// to the `Delivery`.
    pub async fn send(&self, message: Message) -> Result<Delivery, Error> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(&message, Completion::Oneshot(tx)).await?;
        Ok(Delivery { rx })
    }

    /// [`send`](Self::send) without waiting: fails with
    /// [`Error::BufferFull`] when the buffer is full.
    pub fn try_send(&self, message: Message) -> Result<Delivery, Error> {
        let (tx, rx) = oneshot::channel();
        let timestamp = millis(SystemTime::now());
        let (message, completion) = self.before_buffering(&message, Completion::Oneshot(tx));
        self.try_enqueue(&message, timestamp, completion)
            .map_err(|(e, back)| self.refused(&message, back, e))?;
        Ok(Delivery { rx })
    }

    /// Fire and forget: writes one record and returns its id at once
    /// (waiting only while the buffer is full). Its outcome goes to the
    /// [`on_delivery`](crate::WriterBuilder::on_delivery) callback as a
    /// [`DeliveryReport`](crate::DeliveryReport) with that id, and failures
    /// to the next [`flush`](Self::flush). No per-record allocation.
    ///
    /// Cancel safety: safe; dropped while waiting for space, the record is
    /// not written.
    pub async fn produce(&self, message: &Message) -> Result<u64, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.enqueue(message, Completion::Report(id)).await?;
        Ok(id)
    }

    /// [`produce`](Self::produce) without waiting: fails with
    /// [`Error::BufferFull`] when the buffer is full.
    pub fn try_produce(&self, message: &Message) -> Result<u64, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let timestamp = millis(SystemTime::now());
        let (message, completion) = self.before_buffering(message, Completion::Report(id));
        self.try_enqueue(&message, timestamp, completion)
            .map_err(|(e, back)| self.refused(&message, back, e))?;
        Ok(id)
    }

    /// Writes `messages` and returns once every one is acknowledged or
    /// failed, with one result per message, in order: partial failure is
    /// data. A message that cannot be written at all (no topic, two
    /// topics, too large) fails alone. Waits while the buffer is full. The
    /// fastest way to write: one lock per 512 records, one allocation per
    /// call.
    ///
    /// Errors: [`Error::Closed`] if the writer is closed; on a
    /// transactional writer, [`Error::NoTransaction`] (or the transaction's
    /// error) outside a live transaction.
    ///
    /// Cancel safety: not cancel safe. Dropped while waiting for buffer
    /// space, a prefix of `messages` is written; dropped later, every
    /// message is written and the results are lost.
    pub async fn write_messages(
        &self,
        messages: &[Message],
    ) -> Result<Vec<Result<RecordMetadata, Error>>, Error> {
        {
            let acc = self.shared.lock();
            if acc.closed {
                return Err(Error::Closed);
            }
            if let Some(refused) = &acc.refuse {
                return Err(refused.clone());
            }
        }
        let group = Group::new(messages.len());
        if self.transport.hooks().is_installed() {
            // Each record is shown to the hook and may be copied: the
            // per-record path, outside the accumulator's lock.
            for (i, m) in messages.iter().enumerate() {
                let completion = Completion::Group(group.clone(), i as u32);
                if let Err(e) = self.enqueue(m, completion).await {
                    group.set(i as u32, Err(e));
                }
            }
            return Ok(group.wait().await);
        }
        let timestamp = millis(SystemTime::now());
        let config = &self.shared.config;
        let mut i = 0;
        while i < messages.len() {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (mut wake, mut full) = (false, false);
            {
                let mut acc = self.shared.lock();
                let end = (i + CHUNK).min(messages.len());
                while i < end {
                    let m = &messages[i];
                    let index = i as u32;
                    let (topic, size) = match self.check(m) {
                        Ok(checked) => checked,
                        Err(e) => {
                            group.set(index, Err(e));
                            i += 1;
                            continue;
                        }
                    };
                    match acc.reserve(config, size) {
                        Ok(()) => {}
                        Err(Error::BufferFull { .. }) => {
                            full = true;
                            break;
                        }
                        Err(e) => {
                            group.set(index, Err(e));
                            i += 1;
                            continue;
                        }
                    }
                    let sink = Sink::Grouped(&group, index);
                    match acc.append(config, topic, m, timestamp, size, sink) {
                        Ok(w) => wake |= w.sender,
                        Err((e, _)) => {
                            acc.release(1, size);
                            group.set(index, Err(e));
                        }
                    }
                    i += 1;
                }
            }
            if wake {
                self.shared.wake.notify_one();
            }
            if full {
                notified.await;
            }
        }
        Ok(group.wait().await)
    }

    /// Sends every buffered record now (without waiting out `linger`) and
    /// waits until all are done, including records written meanwhile.
    /// Reports the records that failed since the previous flush or close
    /// (each one's own error went to its writer).
    ///
    /// Cancel safety: safe; records keep going.
    pub async fn flush(&self) -> Result<(), Error> {
        let _flushing = Flushing::start(&self.shared);
        loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().is_empty() {
                break;
            }
            notified.await;
        }
        self.shared.take_failures()
    }

    /// Stops taking records ([`Error::Closed`]), flushes, waits for the
    /// background task, and reports failed records as
    /// [`flush`](Self::flush) does. Later calls return `Ok` at once.
    ///
    /// A transactional writer first aborts an open (or failed) transaction
    /// and finishes a commit that was cancelled midway; that call's error,
    /// if any, is the one returned.
    ///
    /// Cancel safety: safe; the writer stays closed and the background task
    /// still sends what was written.
    pub async fn close(&self) -> Result<(), Error> {
        let ended = self.end_open_transaction().await;
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let flushed = self.flush().await;
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let telemetry = self
            .telemetry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut telemetry) = telemetry {
            telemetry.close().await;
            // Kept for its stats.
            *self.telemetry.lock().unwrap_or_else(|e| e.into_inner()) = Some(telemetry);
        }
        ended.and(flushed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The task sends what is buffered, then stops on its own. An open
        // transaction stays open until the broker aborts it
        // (`transaction_timeout`) or a new writer with the same
        // transactional id fences this one: ending it needs a round trip.
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// Counts a flush in progress (open batches seal at once meanwhile).
pub(crate) struct Flushing<'a>(&'a Shared);

impl<'a> Flushing<'a> {
    pub(crate) fn start(shared: &'a Shared) -> Flushing<'a> {
        shared.flushing.fetch_add(1, Ordering::AcqRel);
        shared.wake.notify_one();
        Flushing(shared)
    }
}

impl Drop for Flushing<'_> {
    fn drop(&mut self) {
        self.0.flushing.fetch_sub(1, Ordering::AcqRel);
    }
}
