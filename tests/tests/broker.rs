//! The test broker itself: it starts, accepts connections and goes away.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use kafkit_tests::TestBroker;

#[test]
fn broker_starts_and_accepts_connections() {
    let broker = TestBroker::start();
    let stream = TcpStream::connect_timeout(&broker.addr(), Duration::from_secs(5)).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), broker.addr());
    assert_eq!(broker.bootstrap(), broker.addr().to_string());
}

#[test]
fn broker_creates_topics() {
    let broker = TestBroker::start();
    broker.create_topic(&kafkit_tests::unique_topic("created"), 3);
}

#[test]
fn stopped_broker_refuses_connections_and_leaves_no_process() {
    if !kafkit_tests::can_start_tansu() {
        return; // an external cluster without tansu: nothing of ours to stop
    }
    let broker = TestBroker::start_private();
    let addr = broker.addr();
    let pid = broker.pid().expect("tansu's pid");
    let mut idle = TcpStream::connect(addr).unwrap();
    drop(broker);

    // The broker closed our connection and no longer listens.
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(idle.read(&mut [0; 1]), Ok(0) | Err(_)));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    // Killed and reaped: not even a zombie is left.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "tansu (pid {pid}) is still running"
    );
}

#[test]
fn private_brokers_are_separate_processes() {
    if !kafkit_tests::can_start_tansu() {
        return;
    }
    let first = TestBroker::start_private();
    let second = TestBroker::start_private();
    assert_ne!(first.addr(), second.addr());
    assert_ne!(first.pid(), second.pid());
}
