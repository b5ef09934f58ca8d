//! Fake network peers for connection tests: [`StallingProxy`], a TCP proxy
//! that can stop forwarding on command, and [`ScriptedServer`], which
//! answers every connection with fixed bytes (a peer that is not Kafka).
//!
//! Both use blocking std threads so that they work under any async runtime
//! a test picks, and both stop their threads when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often idle threads look at their stop and stall flags.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Flags {
    stalled: AtomicBool,
    stop: AtomicBool,
}

/// A TCP proxy in front of `upstream`. While [`stalled`](Self::stall), it
/// forwards nothing in either direction: bytes wait in socket buffers, as
/// they would behind a broker that stopped answering.
#[derive(Debug)]
pub struct StallingProxy {
    addr: SocketAddr,
    flags: Arc<Flags>,
    acceptor: Option<JoinHandle<()>>,
}

/// A non-blocking listener on a free loopback port (the accept loops poll
/// it so they can notice a stop flag) and its address.
fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener address");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    (listener, addr)
}

impl StallingProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn start(upstream: SocketAddr) -> StallingProxy {
        let (listener, addr) = loopback_listener();
        let flags = Arc::new(Flags::default());
        let acceptor = {
            let flags = flags.clone();
            thread::spawn(move || accept_loop(&listener, upstream, &flags))
        };
        StallingProxy {
            addr,
            flags,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops (`true`) or resumes (`false`) forwarding.
    pub fn stall(&self, stalled: bool) {
        self.flags.stalled.store(stalled, Ordering::SeqCst);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, flags: &Arc<Flags>) {
    let mut pumps = Vec::new();
    while !flags.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue; // the client sees the connection close
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone(), to.try_clone());
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let flags = flags.clone();
                        pumps.push(thread::spawn(move || pump(from, to, &flags)));
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    for pump in pumps {
        let _ = pump.join();
    }
}

/// Copies `from` to `to` until either side closes or the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, flags: &Flags) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0; 64 * 1024];
    while !flags.stop.load(Ordering::SeqCst) {
        if flags.stalled.load(Ordering::SeqCst) {
            thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes read just before a stall began are held too, so
                // nothing at all crosses the proxy while it is stalled.
                while flags.stalled.load(Ordering::SeqCst) && !flags.stop.load(Ordering::SeqCst) {
                    thread::sleep(POLL);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// A server that answers every connection with `reply` once it has read
/// something (or at once, if `reply_first`), then closes it: an HTTP server
/// or a random-bytes peer standing where a broker should be.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    flags: Arc<Flags>,
    acceptor: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Starts the server on a free loopback port. With `reply` empty it
    /// reads and never answers (until dropped).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub fn start(reply: &'static [u8]) -> ScriptedServer {
        let (listener, addr) = loopback_listener();
        let flags = Arc::new(Flags::default());
        let acceptor = {
            let flags = flags.clone();
            thread::spawn(move || {
                let mut open = Vec::new();
                while !flags.stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                            let mut buf = [0; 4096];
                            let _ = stream.read(&mut buf);
                            if reply.is_empty() {
                                open.push(stream); // stays silent, stays open
                            } else {
                                let _ = stream.write_all(reply);
                                let _ = stream.shutdown(Shutdown::Both);
                            }
                        }
                        Err(_) => thread::sleep(POLL),
                    }
                }
            })
        };
        ScriptedServer {
            addr,
            flags,
            acceptor: Some(acceptor),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}
