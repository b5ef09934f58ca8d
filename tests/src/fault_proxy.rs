//! [`FaultProxy`]: a TCP proxy between a client and a broker that injects
//! network faults on command: latency, stalls, connection resets (now or
//! every N ms), a response cut mid-frame, dropped responses and a
//! blackhole that accepts connections and never answers.
//!
//! It understands just enough of Kafka's framing (a 4-byte big-endian size
//! before each response) to act on whole responses: latency delays each
//! one, "drop" swallows whole ones, "cut" forwards part of one and closes.
//! Requests are copied as they come.
//!
//! ```no_run
//! use std::time::Duration;
//! use kafkit_tests::FaultProxy;
//!
//! // tansu advertises the proxy, so every client connection crosses it.
//! let (broker, proxy) = FaultProxy::with_private_broker();
//! broker.create_topic("t", 3);
//! proxy.reset_every(Some(Duration::from_millis(500)));
//! // ... run a client against proxy.addr() ...
//! proxy.reset_every(None);
//! assert!(proxy.stats().resets > 0);
//! ```
//!
//! Like [`StallingProxy`](crate::StallingProxy) it runs on blocking std
//! threads, so it works under any runtime, and it stops them when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::TestBroker;

/// How often idle threads look at their flags.
const POLL: Duration = Duration::from_millis(10);
/// `cut_next_response` forwards at most this many bytes of the response.
const NO_CUT: usize = usize::MAX;

/// What the proxy counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Connections closed by [`FaultProxy::reset_all`] (or its timer).
    pub resets: u64,
    /// Responses forwarded whole to a client.
    pub responses: u64,
    /// Responses swallowed by [`FaultProxy::drop_responses`].
    pub dropped: u64,
    /// Responses cut by [`FaultProxy::cut_next_response`].
    pub cut: u64,
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    stalled: AtomicBool,
    blackhole: AtomicBool,
    /// The broker is down: new connections are closed at once.
    down: AtomicBool,
    /// Latency added before each response, in microseconds.
    latency_us: AtomicU64,
    /// Responses still to swallow.
    drop_next: AtomicU64,
    /// Bytes of the next response to forward before closing, or `NO_CUT`.
    cut_at: AtomicUsize,
    /// Open connections: both sockets of each, to shut them down on reset.
    open: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    connections: AtomicU64,
    resets: AtomicU64,
    responses: AtomicU64,
    dropped: AtomicU64,
    cut: AtomicU64,
    /// The period of the reset timer, in milliseconds (0: off).
    reset_every_ms: AtomicU64,
}

/// A fault-injecting TCP proxy in front of one broker; see the module docs.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let proxy = FaultProxy::bind();
        proxy.set_upstream(upstream);
        proxy
    }

    /// Starts a proxy with no upstream yet (connections are closed at once
    /// until [`set_upstream`](Self::set_upstream)): its address can then
    /// be given to a broker to advertise before the broker starts.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn bind() -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let shared = Arc::new(Shared {
            upstream: Mutex::new(None),
            stop: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            down: AtomicBool::new(false),
            latency_us: AtomicU64::new(0),
            drop_next: AtomicU64::new(0),
            cut_at: AtomicUsize::new(NO_CUT),
            open: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            reset_every_ms: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_loop(&listener, &shared))
        };
        let timer = {
            let shared = shared.clone();
            thread::spawn(move || reset_timer(&shared))
        };
        FaultProxy {
            addr,
            shared,
            threads: vec![acceptor, timer],
        }
    }

    /// A private broker (see [`TestBroker::start_private`]) that advertises
    /// a new proxy in front of it for its client listener:
    /// every connection a client opens, bootstrap or not, crosses the proxy.
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`].
    pub fn with_private_broker() -> (TestBroker, FaultProxy) {
        let proxy = FaultProxy::bind();
        let broker = TestBroker::start_private_advertising(proxy.addr());
        proxy.set_upstream(broker.addr());
        (broker, proxy)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where new connections are forwarded.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = Some(upstream);
    }

    /// Delays every response by `latency` (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(us, Ordering::SeqCst);
    }

    /// Stops (`true`) or resumes (`false`) forwarding in both directions;
    /// bytes wait in socket buffers.
    pub fn stall(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While on, connections are accepted and requests read, but nothing
    /// is forwarded and nothing answered: a broker that vanished behind a
    /// firewall. Existing connections go silent too.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// While on, the broker is down: every open connection is reset when
    /// it goes down, and new ones are closed as soon as they are accepted
    /// (the client sees EOF, as from a broker that is restarting). Off
    /// again, connections are forwarded as before: the broker is back up
    /// with its data, as a restarted broker with persistent storage is.
    pub fn down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            reset_all(&self.shared);
        }
    }

    /// Closes every open connection now (both sides), as a broker restart
    /// or a network reset would. Returns how many were closed.
    pub fn reset_all(&self) -> usize {
        reset_all(&self.shared)
    }

    /// Resets every open connection every `period` (`None` stops).
    pub fn reset_every(&self, period: Option<Duration>) {
        let ms = period.map_or(0, |p| {
            u64::try_from(p.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.shared.reset_every_ms.store(ms, Ordering::SeqCst);
    }

    /// Swallows the next `count` responses (whole frames): their requests
    /// wait until the client's request timeout.
    pub fn drop_responses(&self, count: u64) {
        self.shared.drop_next.fetch_add(count, Ordering::SeqCst);
    }

    /// Forwards only the first `bytes` bytes of the next response (at most
    /// all but its last byte, so the frame is always incomplete), then
    /// closes that connection.
    pub fn cut_next_response(&self, bytes: usize) {
        self.shared.cut_at.store(bytes, Ordering::SeqCst);
    }

    /// Clears every fault: no latency, stall, blackhole, timer, drop or cut.
    pub fn heal(&self) {
        self.set_latency(Duration::ZERO);
        self.stall(false);
        self.blackhole(false);
        self.down(false);
        self.reset_every(None);
        self.shared.drop_next.store(0, Ordering::SeqCst);
        self.shared.cut_at.store(NO_CUT, Ordering::SeqCst);
    }

    /// Counters so far.
    pub fn stats(&self) -> FaultStats {
        let s = &self.shared;
        FaultStats {
            connections: s.connections.load(Ordering::SeqCst),
            resets: s.resets.load(Ordering::SeqCst),
            responses: s.responses.load(Ordering::SeqCst),
            dropped: s.dropped.load(Ordering::SeqCst),
            cut: s.cut.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        reset_all(&self.shared);
        // Every thread polls `stop` at least every POLL, so this is short.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn reset_all(shared: &Shared) -> usize {
    let open = std::mem::take(&mut *shared.open.lock().unwrap());
    for (_, client, server) in &open {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    shared.resets.fetch_add(open.len() as u64, Ordering::SeqCst);
    open.len()
}

fn forget(shared: &Shared, id: u64) {
    shared.open.lock().unwrap().retain(|(i, _, _)| *i != id);
}

fn reset_timer(shared: &Shared) {
    let mut last = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        thread::sleep(POLL);
        let ms = shared.reset_every_ms.load(Ordering::SeqCst);
        if ms == 0 {
            last = Instant::now();
        } else if last.elapsed() >= Duration::from_millis(ms) {
            reset_all(shared);
            last = Instant::now();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut pumps: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(POLL);
                continue;
            }
            Err(_) => {
                thread::sleep(POLL);
                continue;
            }
        };
        pumps.retain(|p| !p.is_finished());
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        if shared.blackhole.load(Ordering::SeqCst) {
            let shared = shared.clone();
            pumps.push(thread::spawn(move || swallow(client, &shared)));
            continue;
        }
        if shared.down.load(Ordering::SeqCst) {
            continue; // dropping `client` closes it: the broker is down
        }
        let upstream = *shared.upstream.lock().unwrap();
        let Some(server) = upstream.and_then(|u| TcpStream::connect(u).ok()) else {
            continue; // dropping `client` closes it: the client sees EOF
        };
        let _ = server.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        shared.open.lock().unwrap().push((id, c3, s3));
        let requests = {
            let shared = shared.clone();
            thread::spawn(move || pump_requests(client, server, &shared))
        };
        let responses = {
            let shared = shared.clone();
            thread::spawn(move || {
                pump_responses(s2, c2, &shared);
                forget(&shared, id);
            })
        };
        pumps.extend([requests, responses]);
    }
    for pump in pumps {
        let _ = pump.join();
    }
}

/// A blackholed connection: read and discard until the client gives up.
fn swallow(mut client: TcpStream, shared: &Shared) {
    let _ = client.set_read_timeout(Some(POLL));
    let mut buf = [0; 16 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

/// True while nothing may be forwarded; waits out a stall.
fn hold(shared: &Shared) -> bool {
    while shared.stalled.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
        thread::sleep(POLL);
    }
    shared.blackhole.load(Ordering::SeqCst)
}

/// Client to broker: copied as read (discarded while blackholed).
fn pump_requests(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0; 64 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !hold(shared) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Broker to client, one whole response frame at a time, applying faults.
fn pump_responses(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    'outer: while !shared.stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
        while let Some(len) = complete_frame(&pending) {
            let frame: Vec<u8> = pending.drain(..len).collect();
            if hold(shared) {
                continue; // blackholed: the answer never comes
            }
            let latency = shared.latency_us.load(Ordering::SeqCst);
            if latency > 0 {
                thread::sleep(Duration::from_micros(latency));
            }
            if take_one(&shared.drop_next) {
                shared.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let cut = shared.cut_at.swap(NO_CUT, Ordering::SeqCst);
            if cut != NO_CUT {
                let _ = to.write_all(&frame[..cut.min(frame.len() - 1)]);
                shared.cut.fetch_add(1, Ordering::SeqCst);
                break 'outer;
            }
            if to.write_all(&frame).is_err() {
                break 'outer;
            }
            shared.responses.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// The length (size prefix included) of the first frame of `bytes`, once
/// all of it has arrived.
fn complete_frame(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    // A negative size cannot come from a broker; forward it as it is.
    let len = usize::try_from(i32::from_be_bytes(prefix)).unwrap_or(0) + 4;
    (bytes.len() >= len).then_some(len)
}

/// Decrements `counter` if positive; true if it did.
fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn frames_are_split_only_when_complete() {
        let f = frame(b"hello");
        assert_eq!(complete_frame(&f[..3]), None);
        assert_eq!(complete_frame(&f[..8]), None);
        assert_eq!(complete_frame(&f), Some(9));
        let mut two = f.clone();
        two.extend(frame(b"x"));
        assert_eq!(complete_frame(&two), Some(9));
    }

    #[test]
    fn take_one_stops_at_zero() {
        let n = AtomicU64::new(2);
        assert!(take_one(&n));
        assert!(take_one(&n));
        assert!(!take_one(&n));
    }

    /// An echo server that answers each frame with the same frame.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut s = stream;
                    let mut buf = [0; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(proxy: &FaultProxy, body: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(proxy.addr())?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        s.write_all(&frame(body))?;
        let mut got = Vec::new();
        let mut buf = [0; 1024];
        while complete_frame(&got).is_none() {
            match s.read(&mut buf)? {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        Ok(got)
    }

    #[test]
    fn forwards_drops_and_cuts_whole_responses() {
        let proxy = FaultProxy::start(echo_server());
        assert_eq!(roundtrip(&proxy, b"abc").unwrap(), frame(b"abc"));
        proxy.drop_responses(1);
        let e = roundtrip(&proxy, b"lost").unwrap_err();
        assert!(matches!(
            e.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        proxy.cut_next_response(6);
        assert_eq!(roundtrip(&proxy, b"abcdef").unwrap(), frame(b"abcdef")[..6]);
        let stats = proxy.stats();
        assert_eq!((stats.responses, stats.dropped, stats.cut), (1, 1, 1));
        proxy.blackhole(true);
        assert!(roundtrip(&proxy, b"void").is_err());
        proxy.heal();
        assert_eq!(roundtrip(&proxy, b"ok").unwrap(), frame(b"ok"));
    }

    #[test]
    fn reset_all_closes_open_connections() {
        let proxy = FaultProxy::start(echo_server());
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while proxy.reset_all() == 0 {
            assert!(Instant::now() < deadline, "the connection never opened");
            thread::sleep(POLL);
        }
        let mut buf = [0; 8];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(proxy.stats().resets, 1);
    }
}
