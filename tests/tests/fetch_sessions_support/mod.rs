//! For `reader_fetch_sessions.rs`: [`WireProxy`], a TCP proxy between a
//! client and one broker that decodes every Fetch request passing through
//! (with kafkit-protocol's broker-side decoder) and the answer to it, so a
//! test can assert what a fetcher put on the wire: session id, epoch, the
//! partitions listed and forgotten. On command it tampers with the next
//! incremental Fetch (a wrong epoch or an unknown session id), which makes
//! the real broker answer with a session error, or closes every open
//! connection. Everything else is forwarded byte for byte.
//!
//! Blocking std threads, as `kafkit_tests`' proxies, stopped on drop.
//! Also: a private Kafka node advertising the proxy, and the records the
//! tests write and check.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_conn::ConnConfig;
use kafkit_protocol::ErrorCode;
use kafkit_protocol::frame::{
    decode_frame, decode_request, decode_response_body, encode_request_body, peek_correlation_id,
};
use kafkit_protocol::messages::{ApiKey, RequestBody, ResponseBody};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_tests::{KafkaCluster, KafkaOptions, Listener, RawClient, unique_topic};

const POLL: Duration = Duration::from_millis(10);
const MAX_FRAME: usize = 256 << 20;

pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A private node advertising a [`WireProxy`], and a 3-partition topic.
pub fn start(name: &str, overrides: &[(&str, &str)]) -> (KafkaCluster, WireProxy, String) {
    let proxy = WireProxy::bind();
    let cluster = KafkaCluster::start(KafkaOptions {
        advertise: vec![(1, proxy.addr())],
        overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        heap_mib: 512,
        ..KafkaOptions::default()
    });
    proxy.set_upstream(cluster.addr(1, Listener::Plaintext));
    let topic = unique_topic(name);
    let mut client = RawClient::connect(cluster.addr(1, Listener::Plaintext));
    let created = client.create_topics(&topic, 3);
    assert_eq!(created.topics[0].error_code, ErrorCode::NONE, "{created:?}");
    cluster.wait_for_leaders(&[&topic], Duration::from_secs(60));
    (cluster, proxy, topic)
}

/// Writes `n` records `p{partition}-{offset}` to `partition`, straight to
/// the broker (not through the proxy), expecting `from` as the first offset.
pub fn produce(cluster: &KafkaCluster, topic: &str, partition: i32, from: i64, n: usize) {
    let mut batch = RecordBatchBuilder::new(0);
    for i in 0..n {
        let value = format!("p{partition}-{}", from + i as i64);
        batch.append(0, None, Some(value.as_bytes()), &[]).unwrap();
    }
    let mut client = RawClient::connect(cluster.addr(1, Listener::Plaintext));
    let answer = client.produce(topic, partition, batch.finish().unwrap());
    assert_eq!(answer.error_code, ErrorCode::NONE);
    assert_eq!(answer.base_offset, from);
}

pub fn conn(client: &str) -> ConnConfig {
    ConnConfig {
        client_id: Some(client.to_owned()),
        ..ConnConfig::default()
    }
}

/// One Fetch request as it crossed the proxy, and its answer once back.
#[derive(Debug, Clone)]
pub struct SeenFetch {
    /// The request header's client id.
    pub client: String,
    pub session_id: i32,
    pub epoch: i32,
    /// (partition, fetch offset) of each partition listed.
    pub listed: Vec<(i32, i64)>,
    /// Partitions in `ForgottenTopicsData`.
    pub forgotten: Vec<i32>,
    /// Whether the proxy changed it (see [`WireProxy::tamper_next`]).
    pub tampered: bool,
    pub answer: Option<SeenAnswer>,
}

/// The broker's answer to a [`SeenFetch`].
#[derive(Debug, Clone, Copy)]
pub struct SeenAnswer {
    pub session_id: i32,
    pub error_code: ErrorCode,
    /// Partitions in the answer.
    pub partitions: usize,
}

/// What to do to the next incremental Fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Skip ahead 1,000 epochs: INVALID_FETCH_SESSION_EPOCH.
    Epoch,
    /// Name a session the broker never made: FETCH_SESSION_ID_NOT_FOUND.
    SessionId,
}

#[derive(Debug, Default)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    fetches: Mutex<Vec<SeenFetch>>,
    tamper: Mutex<Option<Tamper>>,
    /// Answers are held back (not read from the broker) while set.
    hold: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

/// See the module docs.
#[derive(Debug)]
pub struct WireProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WireProxy {
    /// A proxy on a free loopback port, with no upstream until
    /// [`set_upstream`](Self::set_upstream) (a broker can advertise it
    /// before it starts).
    pub fn bind() -> WireProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_loop(&listener, &shared))
        };
        WireProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = Some(upstream);
    }

    /// Every Fetch of client id `client` seen so far, in the order sent.
    pub fn fetches(&self, client: &str) -> Vec<SeenFetch> {
        let all = lock(&self.shared.fetches);
        all.iter().filter(|f| f.client == client).cloned().collect()
    }

    /// Tampers with the next Fetch whose epoch is above 0.
    pub fn tamper_next(&self, tamper: Tamper) {
        *lock(&self.shared.tamper) = Some(tamper);
    }

    /// Holds every answer back (`true`) or lets them through again.
    pub fn hold_answers(&self, hold: bool) {
        self.shared.hold.store(hold, Ordering::SeqCst);
    }

    /// Closes every open connection, both ways, as a network reset would.
    pub fn reset_all(&self) -> usize {
        let open = std::mem::take(&mut *lock(&self.shared.open));
        for s in &open {
            let _ = s.shutdown(Shutdown::Both);
        }
        open.len() / 2
    }
}

impl Drop for WireProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Fetches in flight on one connection: correlation id -> (index in
/// `fetches`, version).
type InFlight = Arc<Mutex<Vec<(i32, usize, i16)>>>;

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut pumps = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((client, _)) = listener.accept() else {
            thread::sleep(POLL);
            continue;
        };
        let upstream = *lock(&shared.upstream);
        let Some(server) = upstream.and_then(|u| TcpStream::connect(u).ok()) else {
            continue; // dropped: the client sees the connection close
        };
        let _ = client.set_nonblocking(false);
        let in_flight: InFlight = Arc::default();
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(c1), Ok(s1), Ok(c2), Ok(s2)) = clones else {
            continue;
        };
        lock(&shared.open).extend([client, server]);
        let (sh, fl) = (shared.clone(), in_flight.clone());
        pumps.push(thread::spawn(move || pump(c1, s1, &sh, &fl, true)));
        let sh = shared.clone();
        pumps.push(thread::spawn(move || pump(s2, c2, &sh, &in_flight, false)));
    }
    for pump in pumps {
        let _ = pump.join();
    }
}

/// Forwards whole frames from `from` to `to`, looking at Fetch requests
/// (`requests`) or at the answers to them.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    shared: &Shared,
    in_flight: &InFlight,
    requests: bool,
) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = BytesMut::new();
    let mut chunk = vec![0; 64 * 1024];
    let held =
        || !requests && shared.hold.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst);
    while !shared.stop.load(Ordering::SeqCst) {
        if held() {
            thread::sleep(POLL);
            continue;
        }
        match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
        // Bytes read just before a hold began are held too.
        while held() {
            thread::sleep(POLL);
        }
        let mut failed = false;
        while let Ok(Some(frame)) = decode_frame(&mut buf, MAX_FRAME) {
            let out = if requests {
                on_request(frame, shared, in_flight)
            } else {
                on_response(&frame, shared, in_flight);
                framed(&frame)
            };
            if to.write_all(&out).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

fn framed(frame: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len() + 4);
    out.put_i32(i32::try_from(frame.len()).expect("frame size"));
    out.extend_from_slice(frame);
    out.freeze()
}

/// Records a Fetch request (tampering with it if asked) and returns the
/// bytes to forward.
fn on_request(frame: Bytes, shared: &Shared, in_flight: &InFlight) -> Bytes {
    let Ok((header, RequestBody::Fetch(mut fetch))) = decode_request(frame.clone()) else {
        return framed(&frame);
    };
    let version = header.request_api_version;
    let tamper = match *lock(&shared.tamper) {
        Some(t) if fetch.session_epoch > 0 => Some(t),
        _ => None,
    };
    let seen = SeenFetch {
        client: header.client_id.clone().unwrap_or_default(),
        session_id: fetch.session_id,
        epoch: fetch.session_epoch,
        listed: fetch
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
            .collect(),
        forgotten: fetch
            .forgotten_topics_data
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect(),
        tampered: tamper.is_some(),
        answer: None,
    };
    let index = {
        let mut fetches = lock(&shared.fetches);
        fetches.push(seen);
        fetches.len() - 1
    };
    lock(in_flight).push((header.correlation_id, index, version));
    let Some(tamper) = tamper else {
        return framed(&frame);
    };
    *lock(&shared.tamper) = None;
    match tamper {
        Tamper::Epoch => fetch.session_epoch = fetch.session_epoch.wrapping_add(1_000).max(1),
        Tamper::SessionId => fetch.session_id = fetch.session_id.wrapping_add(7_777).max(1),
    }
    let mut out = BytesMut::new();
    encode_request_body(
        &mut out,
        header.correlation_id,
        header.client_id.as_deref(),
        version,
        &RequestBody::Fetch(fetch),
    )
    .expect("re-encode a Fetch request");
    out.freeze()
}

/// Records the answer to a Fetch seen on this connection.
fn on_response(frame: &Bytes, shared: &Shared, in_flight: &InFlight) {
    let Ok(correlation_id) = peek_correlation_id(frame) else {
        return;
    };
    let found = {
        let mut flight = lock(in_flight);
        let at = flight.iter().position(|(c, _, _)| *c == correlation_id);
        at.map(|at| flight.remove(at))
    };
    let Some((_, index, version)) = found else {
        return;
    };
    if let Ok((_, ResponseBody::Fetch(r))) =
        decode_response_body(ApiKey::Fetch, version, frame.clone())
    {
        lock(&shared.fetches)[index].answer = Some(SeenAnswer {
            session_id: r.session_id,
            error_code: r.error_code,
            partitions: r.responses.iter().map(|t| t.partitions.len()).sum(),
        });
    }
}
