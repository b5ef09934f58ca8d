//! The connection driver: one tokio task per connection that owns the
//! socket, writes whole request frames and routes response frames to their
//! waiters by correlation id.
//!
//! Handles ([`Conn`](crate::Conn)) encode a request, take an in-flight
//! permit and send a [`Command`] over an unbounded channel (bounded in
//! practice by the permits). Only this task touches the socket, so a caller
//! that is dropped mid-request can never leave half a frame on the wire.
//!
//! The task ends when every handle is dropped, on `close`, on the idle
//! timeout, or on the first IO, decode or desynchronisation error. It then
//! records the reason in [`Shared`], fails every waiter with it, and the
//! channel refuses further commands.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::latency::{LatencyHistogram, LatencyRecorder};
use crate::outbox::Outbox;
use crate::sasl::Authenticated;
use crate::telemetry::Window;
use crate::versions::BrokerVersions;
use crate::{ConnConfig, Error, ErrorKind};

/// The smallest free space the read buffer keeps before each read.
const READ_CHUNK: usize = 64 * 1024;
/// How many acks=0 correlation ids are remembered in case the broker
/// answers them anyway (see [`Driver::dispatch`]).
const SPURIOUS_ANSWER_WINDOW: usize = 1024;

/// The fraction of a SASL session's lifetime after which the connection
/// retires (see [`Shared::set_session`]).
const SESSION_RETIRE_FRACTION: f64 = 0.85;

/// State shared by the handles and the driver task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: String,
    pub(crate) config: ConnConfig,
    pub(crate) next_correlation_id: AtomicI32,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) versions: OnceLock<BrokerVersions>,
    pub(crate) counters: Counters,
    /// The SASL session, set once authentication succeeds.
    pub(crate) session: OnceLock<Authenticated>,
    closed: AtomicBool,
    fatal: Mutex<Option<Error>>,
}

impl Shared {
    pub(crate) fn new(addr: String, config: ConnConfig) -> Shared {
        Shared {
            addr,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            next_correlation_id: AtomicI32::new(0),
            versions: OnceLock::new(),
            counters: Counters::default(),
            session: OnceLock::new(),
            closed: AtomicBool::new(false),
            fatal: Mutex::new(None),
        }
    }

    /// Records a SASL session and returns when the connection must retire:
    /// at 85% of the session's lifetime (Java re-authenticates at 85-95%),
    /// if the broker limits it. See [`Command::RetireAt`].
    pub(crate) fn set_session(&self, session: Authenticated) -> Option<Instant> {
        let retire_at = session
            .session_lifetime
            .map(|lifetime| Instant::now() + lifetime.mul_f64(SESSION_RETIRE_FRACTION));
        let _ = self.session.set(session);
        retire_at
    }

    /// True once the connection can no longer carry requests.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the connection dead with `error`, unless it already died of
    /// something else (the first cause wins: later errors are symptoms).
    pub(crate) fn mark_closed(&self, error: Error) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        fatal.get_or_insert(error);
        self.closed.store(true, Ordering::Release);
    }

    /// Why the connection died, or a plain `Closed`.
    pub(crate) fn closed_error(&self) -> Error {
        let fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        fatal
            .clone()
            .unwrap_or_else(|| Error::closed("connection closed"))
            .with_broker(&self.addr)
    }

    /// A fresh, non-negative correlation id.
    pub(crate) fn correlation_id(&self) -> i32 {
        self.next_correlation_id.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }
}

/// Atomic counters behind [`Conn::stats`](crate::Conn::stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    /// Answered requests' round trips in microseconds, since client
    /// telemetry last took them (its `node.request.latency`).
    pub(crate) latency: Window,
    /// Answered requests' round trips since the connection opened.
    pub(crate) rtt: LatencyRecorder,
    /// Requests waiting for an in-flight slot.
    pub(crate) waiting: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, in_flight: usize) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            in_flight,
            waiting: get(&self.waiting),
            rtt: self.rtt.snapshot(),
            requests: get(&self.requests),
            responses: get(&self.responses),
            errors: get(&self.errors),
            timeouts: get(&self.timeouts),
            bytes_written: get(&self.bytes_written),
            bytes_read: get(&self.bytes_read),
        }
    }
}

/// A snapshot of one connection's counters, from [`Conn::stats`](crate::Conn::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// Requests sent and waiting for their answer now.
    pub in_flight: usize,
    /// Requests waiting in the client for an in-flight slot now.
    pub waiting: u64,
    /// Round trips of answered requests since the connection opened.
    pub rtt: LatencyHistogram,
    /// Requests handed to the connection (including the ApiVersions
    /// handshake).
    pub requests: u64,
    /// Responses received (including ones whose waiter had gone).
    pub responses: u64,
    /// Requests that failed, for any reason (timeouts included).
    pub errors: u64,
    /// Requests that failed because their response took too long.
    pub timeouts: u64,
    /// Bytes written to the socket.
    pub bytes_written: u64,
    /// Bytes read from the socket.
    pub bytes_read: u64,
}

/// What a handle asks of the driver.
pub(crate) enum Command {
    /// Write `frame`; route the response with `correlation_id` to `reply`.
    /// Without `expects_response` (acks=0 produce), `reply` gets an empty
    /// frame once the bytes are written.
    Request {
        correlation_id: i32,
        /// The frame's chunks, in order (see `frame::encode_request_chunks`).
        frame: Vec<Bytes>,
        expects_response: bool,
        reply: oneshot::Sender<Result<Bytes, Error>>,
        permit: OwnedSemaphorePermit,
    },
    /// A handle could not decode a response: the stream is corrupt.
    Fail(Error),
    /// Stop taking requests, finish the in-flight ones, shut down.
    Close(oneshot::Sender<Result<(), Error>>),
    /// At this instant the SASL session is about to expire (KIP-368): stop
    /// taking requests, answer the in-flight ones and close, so the broker
    /// never sees a request on an expired session (it would close the
    /// connection under it) and the pool dials a freshly authenticated one.
    RetireAt(Instant),
}

struct Pending {
    reply: oneshot::Sender<Result<Bytes, Error>>,
    _permit: OwnedSemaphorePermit,
}

/// A request without a response, waiting for its last byte to be written.
struct Unanswered {
    end: u64,
    reply: oneshot::Sender<Result<Bytes, Error>>,
    _permit: OwnedSemaphorePermit,
}

/// The socket's read half: a TCP half, or any stream a caller supplied
/// (such as TLS). Boxed so that `Conn` stays one non-generic type.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The socket's write half.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    reader: Reader,
    writer: Writer,
    read_buf: BytesMut,
    /// What waits for the socket (see `outbox.rs`).
    outbox: Outbox,
    /// Bytes ever queued for writing / ever written.
    queued: u64,
    written: u64,
    pending: HashMap<i32, Pending>,
    unanswered: VecDeque<Unanswered>,
    /// Recent acks=0 correlation ids, oldest first.
    unanswered_ids: VecDeque<i32>,
    closing: Option<oneshot::Sender<Result<(), Error>>>,
    idle_since: Instant,
    /// See [`Command::RetireAt`].
    retire_at: Option<Instant>,
}

impl Driver {
    pub(crate) fn spawn(
        (reader, writer): (Reader, Writer),
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let driver = Driver {
            shared,
            commands,
            reader,
            writer,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            outbox: Outbox::default(),
            queued: 0,
            written: 0,
            pending: HashMap::new(),
            unanswered: VecDeque::new(),
            unanswered_ids: VecDeque::new(),
            closing: None,
            idle_since: Instant::now(),
            retire_at: None,
        };
        tokio::spawn(driver.run());
    }

    async fn run(mut self) {
        let result = self.serve().await;
        let error = match &result {
            Ok(()) => Error::closed("connection closed"),
            Err(e) => e.clone(),
        };
        tracing::debug!(broker = %self.shared.addr, error = %error, "connection driver stopped");
        if let Some(hook) = self.shared.config.hooks.get() {
            hook.on_disconnect(&crate::hooks::DisconnectEvent {
                broker: &self.shared.addr,
                error: &error,
            });
        }
        self.shared.mark_closed(error);
        // Refuse new commands, then fail whatever is still queued or waiting.
        self.commands.close();
        let error = self.shared.closed_error();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Request { reply, .. } => drop(reply.send(Err(error.clone()))),
                Command::Close(ack) => drop(ack.send(Ok(()))),
                Command::Fail(_) | Command::RetireAt(_) => {}
            }
        }
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(error.clone()));
        }
        for u in self.unanswered.drain(..) {
            let _ = u.reply.send(Err(error.clone()));
        }
        if let Some(ack) = self.closing.take() {
            let _ = ack.send(result);
        }
    }

    /// The event loop. `Ok` is a clean shutdown; `Err` kills the connection.
    async fn serve(&mut self) -> Result<(), Error> {
        let close_deadline = |c: &ConnConfig| c.request_timeout.map(|t| Instant::now() + t);
        let mut closing_until: Option<Instant> = None;
        loop {
            let idle = self.pending.is_empty() && self.outbox.is_empty();
            if self.closing.is_some() && idle && self.unanswered.is_empty() {
                // Everything answered: a clean FIN tells the broker we are done.
                self.writer.shutdown().await.map_err(Error::io)?;
                return Ok(());
            }
            let idle_deadline = match self.shared.config.idle_timeout {
                Some(t) if idle && self.closing.is_none() => Some(self.idle_since + t),
                _ => None,
            };
            let retire_at = self.retire_at.filter(|_| self.closing.is_none());
            self.reserve_read_space();
            tokio::select! {
                command = self.commands.recv(), if self.closing.is_none() => match command {
                    // Every handle is gone: no one can wait for anything.
                    None => return Ok(()),
                    Some(Command::Request { correlation_id, frame, expects_response, reply, permit }) => {
                        for chunk in frame {
                            self.queued += chunk.len() as u64;
                            self.outbox.push(chunk);
                        }
                        if expects_response {
                            self.pending.insert(correlation_id, Pending { reply, _permit: permit });
                        } else {
                            self.unanswered.push_back(Unanswered { end: self.queued, reply, _permit: permit });
                            if self.unanswered_ids.len() == SPURIOUS_ANSWER_WINDOW {
                                self.unanswered_ids.pop_front();
                            }
                            self.unanswered_ids.push_back(correlation_id);
                        }
                    }
                    Some(Command::Fail(error)) => return Err(error),
                    Some(Command::RetireAt(at)) => self.retire_at = Some(at),
                    Some(Command::Close(ack)) => {
                        self.shared.mark_closed(Error::closed("closed by Conn::close"));
                        self.closing = Some(ack);
                        closing_until = close_deadline(&self.shared.config);
                        // Requests already queued are still delivered by the
                        // drain in `run`, which fails them as closed.
                    }
                },
                n = self.outbox.write_to(&mut self.writer), if !self.outbox.is_empty() => {
                    let n = n.map_err(Error::io)?;
                    if n == 0 {
                        return Err(Error::io(std::io::ErrorKind::WriteZero.into()));
                    }
                    self.written += n as u64;
                    self.shared.counters.bytes_written.fetch_add(n as u64, Ordering::Relaxed);
                    while self.unanswered.front().is_some_and(|u| u.end <= self.written) {
                        let u = self.unanswered.pop_front().expect("front exists");
                        let _ = u.reply.send(Ok(Bytes::new()));
                    }
                    self.idle_since = Instant::now();
                },
                n = self.reader.read_buf(&mut self.read_buf) => {
                    let n = n.map_err(Error::io)?;
                    if n == 0 {
                        return Err(Error::closed("the broker closed the connection"));
                    }
                    self.shared.counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    self.dispatch()?;
                    self.idle_since = Instant::now();
                },
                () = sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => {
                    return Err(Error::closed("idle timeout"));
                },
                () = sleep_until(retire_at.unwrap_or_else(Instant::now)), if retire_at.is_some() => {
                    tracing::debug!(broker = %self.shared.addr, "SASL session about to expire: retiring the connection");
                    self.shared.mark_closed(Error::closed(
                        "the SASL session is about to expire (KIP-368): dial a new connection",
                    ));
                    // Nobody waits for this close to finish.
                    self.closing = Some(oneshot::channel().0);
                    closing_until = close_deadline(&self.shared.config);
                },
                () = sleep_until(closing_until.unwrap_or_else(Instant::now)), if closing_until.is_some() => {
                    return Err(Error::new(ErrorKind::Timeout)
                        .with_message("in-flight requests were not answered before close"));
                },
            }
        }
    }

    /// Makes room for the next read: the rest of a partly read frame at
    /// once (its size was checked against `max_response_size` by
    /// `decode_frame`, so it is bounded), else a chunk.
    fn reserve_read_space(&mut self) {
        let max = self.shared.config.max_response_size;
        let buf = &mut self.read_buf;
        let frame_rest = match buf.get(..4) {
            Some(&[a, b, c, d]) => {
                let size = usize::try_from(i32::from_be_bytes([a, b, c, d])).unwrap_or(0);
                let size = size.min(max);
                (size + 4).saturating_sub(buf.len())
            }
            _ => 0,
        };
        let want = frame_rest.max(READ_CHUNK / 4);
        if buf.capacity() - buf.len() < want {
            buf.reserve(want.max(READ_CHUNK));
        }
    }

    /// Routes every complete frame in the read buffer to its waiter.
    ///
    /// A frame nobody waits for means the stream is out of step, with one
    /// exception: Kafka sends nothing for an acks=0 produce, but some
    /// brokers (tansu) answer it anyway. Such an answer carries the id of a
    /// request we sent, so it is recognised exactly and discarded.
    fn dispatch(&mut self) -> Result<(), Error> {
        let max = self.shared.config.max_response_size;
        while let Some(frame) = frame::decode_frame(&mut self.read_buf, max)? {
            let correlation_id = frame::peek_correlation_id(&frame)?;
            let Some(pending) = self.pending.remove(&correlation_id) else {
                if let Some(i) = self
                    .unanswered_ids
                    .iter()
                    .position(|&id| id == correlation_id)
                {
                    self.unanswered_ids.remove(i);
                    tracing::debug!(correlation_id, "discarding an answer to an acks=0 produce");
                    continue;
                }
                return Err(Error::new(ErrorKind::Desynchronized { correlation_id }));
            };
            self.shared
                .counters
                .responses
                .fetch_add(1, Ordering::Relaxed);
            // A waiter that timed out or was dropped is gone: the response
            // is read and discarded, and the stream stays in step.
            let _ = pending.reply.send(Ok(frame));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_stay_non_negative_across_wrap() {
        let shared = Shared::new("x:1".into(), ConnConfig::default());
        shared
            .next_correlation_id
            .store(i32::MAX, Ordering::Relaxed);
        assert_eq!(shared.correlation_id(), i32::MAX);
        assert_eq!(shared.correlation_id(), 0);
        assert_eq!(shared.correlation_id(), 1);
    }

    #[test]
    fn first_fatal_error_wins() {
        let shared = Shared::new("broker:9092".into(), ConnConfig::default());
        assert!(!shared.is_closed());
        shared.mark_closed(Error::new(ErrorKind::Desynchronized { correlation_id: 7 }));
        shared.mark_closed(Error::closed("later"));
        assert!(shared.is_closed());
        let e = shared.closed_error();
        assert_eq!(e.kind(), &ErrorKind::Desynchronized { correlation_id: 7 });
        assert_eq!(e.broker(), Some("broker:9092"));
    }

    #[test]
    fn stats_snapshot_reads_counters() {
        let c = Counters::default();
        c.requests.fetch_add(3, Ordering::Relaxed);
        c.bytes_read.fetch_add(10, Ordering::Relaxed);
        let s = c.snapshot(0);
        assert_eq!((s.requests, s.bytes_read, s.errors), (3, 10, 0));
    }
}
