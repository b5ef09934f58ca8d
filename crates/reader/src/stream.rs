//! Streams over a [`Reader`]: [`MessageStream`], a `futures_core::Stream`
//! of messages, and [`PartitionStreams`], one stream per assigned
//! partition for ordered processing of partitions in parallel.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::{Committer, Error, ErrorKind, Message, Reader, TopicPartition};

type NextFuture = Pin<Box<dyn Future<Output = Result<Message, Error>> + Send>>;

/// A `Stream` of a reader's messages, from [`Reader::into_stream`] (each
/// item as [`Reader::fetch_message`]: commit with a [`Committer`]) or
/// [`Reader::into_read_stream`] (as [`Reader::read_message`]: committed as
/// handed out). Errors are items; the stream ends once the reader is
/// closed.
pub struct MessageStream {
    reader: Arc<tokio::sync::Mutex<Reader>>,
    next: Option<NextFuture>,
    commit_on_read: bool,
    done: bool,
}

impl std::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("commit_on_read", &self.commit_on_read)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// This reader as a `Stream` of [`fetch_message`](Reader::fetch_message)
    /// results (at-least-once: commit through
    /// [`MessageStream::committer`]).
    pub fn into_stream(self) -> MessageStream {
        MessageStream::new(self, false)
    }

    /// This reader as a `Stream` of [`read_message`](Reader::read_message)
    /// results (at-most-once in group mode).
    pub fn into_read_stream(self) -> MessageStream {
        MessageStream::new(self, true)
    }
}

impl MessageStream {
    fn new(reader: Reader, commit_on_read: bool) -> MessageStream {
        MessageStream {
            reader: Arc::new(tokio::sync::Mutex::new(reader)),
            next: None,
            commit_on_read,
            done: false,
        }
    }

    /// A commit handle (group mode).
    pub async fn committer(&self) -> Result<Committer, Error> {
        self.reader.lock().await.committer()
    }

    /// Stops the stream and closes the reader (see [`Reader::close`]).
    ///
    /// Cancel safety: as [`Reader::close`].
    pub async fn close(mut self) -> Result<(), Error> {
        // Reading is cancel safe: dropping the pending read loses nothing.
        self.next = None;
        self.reader.lock().await.close().await
    }
}

impl Stream for MessageStream {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let reader = this.reader.clone();
        let commit = this.commit_on_read;
        let next = this.next.get_or_insert_with(|| {
            Box::pin(async move {
                let mut reader = reader.lock_owned().await;
                if commit {
                    reader.read_message().await
                } else {
                    reader.fetch_message().await
                }
            })
        });
        let result = std::task::ready!(next.as_mut().poll(cx));
        this.next = None;
        if matches!(&result, Err(e) if *e.kind() == ErrorKind::Closed) {
            this.done = true;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(result))
    }
}

/// One stream per assigned partition, from
/// [`Reader::into_partition_streams`]: yields a [`PartitionStream`] for
/// each partition the group assigns; that stream ends when the partition
/// is revoked or lost. A background task owns the reader and routes
/// messages; commit processed messages through the streams (or a
/// [`Committer`]), and revocations commit what was marked.
#[derive(Debug)]
pub struct PartitionStreams {
    streams: mpsc::UnboundedReceiver<PartitionStream>,
    committer: Option<Committer>,
    stop: Option<oneshot::Sender<()>>,
    driver: JoinHandle<Result<(), Error>>,
}

/// The messages of one partition, in order; see [`PartitionStreams`].
#[derive(Debug)]
pub struct PartitionStream {
    partition: TopicPartition,
    messages: mpsc::Receiver<Message>,
    committer: Option<Committer>,
}

impl PartitionStream {
    /// The partition.
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// Marks `messages` processed (see [`Committer::commit_messages`]).
    ///
    /// Cancel safety: as [`Committer::commit_messages`].
    pub async fn commit_messages(&self, messages: &[Message]) -> Result<(), Error> {
        match &self.committer {
            Some(c) => c.commit_messages(messages).await,
            None => Err(Error::config("commits need a group_id")),
        }
    }
}

impl Stream for PartitionStream {
    type Item = Message;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().messages.poll_recv(cx)
    }
}

impl Stream for PartitionStreams {
    type Item = PartitionStream;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PartitionStream>> {
        self.get_mut().streams.poll_recv(cx)
    }
}

impl PartitionStreams {
    /// A commit handle (group mode).
    pub fn committer(&self) -> Option<Committer> {
        self.committer.clone()
    }

    /// Stops routing, closes the reader (commit of what is marked, then
    /// LeaveGroup) and returns its error, or the error that stopped the
    /// routing task.
    ///
    /// Cancel safety: not cancel safe (as [`Reader::close`]).
    pub async fn close(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.driver)
            .await
            .unwrap_or_else(|e| Err(Error::closed(format!("the routing task failed: {e}"))))
    }
}

impl Drop for PartitionStreams {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.driver.abort();
        }
    }
}

impl Reader {
    /// Splits this reader into one ordered stream per assigned partition,
    /// each buffering up to `buffer` messages (at least 1). A partition
    /// whose buffer is full holds up the routing of the others until its
    /// consumer catches up (rebalances are still applied meanwhile).
    pub fn into_partition_streams(self, buffer: usize) -> PartitionStreams {
        let committer = self.committer().ok();
        let (streams_tx, streams) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let router = Router {
            reader: self,
            senders: HashMap::new(),
            streams: streams_tx,
            buffer: buffer.max(1),
            committer: committer.clone(),
        };
        let span = tracing::debug_span!("kafka_partition_streams");
        PartitionStreams {
            streams,
            committer,
            stop: Some(stop),
            driver: tokio::spawn(router.run(stopped).instrument(span)),
        }
    }
}

struct Router {
    reader: Reader,
    senders: HashMap<TopicPartition, mpsc::Sender<Message>>,
    streams: mpsc::UnboundedSender<PartitionStream>,
    buffer: usize,
    committer: Option<Committer>,
}

impl Router {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) -> Result<(), Error> {
        let result = loop {
            let next = tokio::select! {
                _ = &mut stopped => break Ok(()),
                next = self.reader.next(false) => next,
            };
            self.sync();
            match next {
                Ok(None) => {}
                Ok(Some(m)) => {
                    if self.route(m, &mut stopped).await? {
                        break Ok(());
                    }
                }
                Err(e) if *e.kind() == ErrorKind::Closed => break Err(e),
                Err(e) => tracing::warn!(error = %e, "partition streams: read failed"),
            }
        };
        self.senders.clear();
        let closed = self.reader.close().await;
        result.and(closed)
    }

    /// Opens streams for new partitions and ends those of revoked ones.
    fn sync(&mut self) {
        let assignment = self.reader.assignment();
        self.senders.retain(|tp, _| assignment.contains(tp));
        for tp in assignment {
            if !self.senders.contains_key(&tp) {
                let (tx, rx) = mpsc::channel(self.buffer);
                let stream = PartitionStream {
                    partition: tp.clone(),
                    messages: rx,
                    committer: self.committer.clone(),
                };
                if self.streams.send(stream).is_ok() {
                    self.senders.insert(tp, tx);
                }
            }
        }
    }

    /// Hands `m` to its partition's stream, applying rebalances while the
    /// stream is full. True when asked to stop.
    async fn route(
        &mut self,
        m: Message,
        stopped: &mut oneshot::Receiver<()>,
    ) -> Result<bool, Error> {
        let tp = TopicPartition::new(m.topic.clone(), m.partition);
        loop {
            let Some(tx) = self.senders.get(&tp).cloned() else {
                return Ok(false); // revoked meanwhile, or nobody listens
            };
            tokio::select! {
                _ = &mut *stopped => return Ok(true),
                permit = tx.reserve() => {
                    match permit {
                        Ok(permit) => permit.send(m),
                        // The consumer dropped the stream: stop routing it.
                        Err(_) => { self.senders.remove(&tp); }
                    }
                    return Ok(false);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if self.reader.apply_rebalances().await? {
                        self.sync();
                    }
                }
            }
        }
    }
}
