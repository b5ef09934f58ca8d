//! How a connection fails: a broker that dies and comes back, a broker
//! that stops answering, an idle connection, and a peer that is not Kafka.
//! Each failure is a typed error, never a hang or a huge allocation.

use std::time::{Duration, Instant};

use kafkit_conn::messages::ApiVersionsRequest;
use kafkit_conn::{Conn, ConnConfig, ErrorCode, ErrorKind};
use kafkit_tests::{ScriptedServer, StallingProxy, TestBroker};

fn short_timeouts() -> ConnConfig {
    ConnConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_after_the_broker_is_killed_and_restarted() {
    let mut broker = TestBroker::start_private();
    let conn = Conn::dial(broker.addr()).await.unwrap();
    conn.brokers().await.unwrap();

    broker.stop();
    // The driver sees the socket close; a request fails either way.
    let e = conn.brokers().await.unwrap_err();
    assert!(e.is_connection_error(), "{e:?}");
    assert!(e.is_retriable(), "{e:?}");
    assert!(conn.is_closed());
    let again = conn.brokers().await.unwrap_err();
    assert!(again.is_connection_error(), "{again:?}");
    assert_eq!(again.broker(), Some(broker.addr().to_string().as_str()));

    broker.restart();
    let fresh = Conn::dial(broker.addr()).await.unwrap();
    assert!(!fresh.brokers().await.unwrap().is_empty());
    assert!(conn.is_closed(), "the old connection stays dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_times_out_and_a_late_answer_is_discarded() {
    let broker = TestBroker::start();
    let proxy = StallingProxy::start(broker.addr());
    let conn = Conn::dial_with(proxy.addr(), short_timeouts())
        .await
        .unwrap();
    conn.brokers().await.unwrap();

    proxy.stall(true);
    let started = Instant::now();
    let e = conn.brokers().await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Timeout, "{e:?}");
    assert!(e.is_retriable());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(conn.stats().timeouts, 1);
    assert!(
        !conn.is_closed(),
        "a timeout alone does not kill the connection"
    );

    // The timed-out request's answer arrives late and is dropped; the next
    // request gets its own answer.
    proxy.stall(false);
    // Kafka refuses an ApiVersions v3+ without a client software name.
    let request = ApiVersionsRequest {
        client_software_name: "kafkit-tests".to_owned(),
        client_software_version: "1.0".to_owned(),
        ..Default::default()
    };
    let response = conn.request(request).await.unwrap();
    assert_eq!(response.error_code, ErrorCode::NONE);
    assert!(!conn.brokers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_closes_itself() {
    let broker = TestBroker::start();
    let config = ConnConfig {
        idle_timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let conn = Conn::dial_with(broker.addr(), config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !conn.is_closed() {
        assert!(Instant::now() < deadline, "idle timeout never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = conn.brokers().await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Closed, "{e:?}");
    assert!(e.to_string().contains("idle"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_is_a_clean_protocol_error() {
    // "HTTP" read as a size prefix is 1,213,486,160 bytes: far above
    // max_response_size, so it is refused before anything is allocated.
    let server = ScriptedServer::start(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let started = Instant::now();
    let e = Conn::dial_with(server.addr(), short_timeouts())
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("1213486160"), "{e}");
    assert!(!e.is_retriable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_a_clean_error() {
    // A plausible small frame that answers no request we sent.
    let server = ScriptedServer::start(b"\x00\x00\x00\x08\x5e\x11\xab\x7f\x01\x02\x03\x04");
    let e = Conn::dial_with(server.addr(), short_timeouts())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Desynchronized {
                correlation_id: 0x5e11_ab7f
            }
        ),
        "{e:?}"
    );
    // A negative size prefix.
    let server = ScriptedServer::start(b"\xff\xfe\xfd\xfc\x00");
    let e = Conn::dial_with(server.addr(), short_timeouts())
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_and_a_closed_port_is_an_io_error() {
    let server = ScriptedServer::start(b"");
    let e = Conn::dial_with(server.addr(), short_timeouts())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Timeout, "{e:?}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = Conn::dial(port).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Io(_)), "{e:?}");
    assert!(e.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_above_max_response_size_is_a_typed_error() {
    let broker = TestBroker::start();
    let topic = kafkit_tests::unique_topic("conn-cap");
    broker.create_topic(&topic, 1);
    let writer = kafkit_conn::dial_leader(broker.addr(), &topic, 0)
        .await
        .unwrap();
    let big = vec![b'x'; 256 * 1024];
    writer
        .write_messages(&[kafkit_conn::Message::new(big.clone())])
        .await
        .unwrap();
    // A generous cap reads it whole.
    let mut reader = kafkit_conn::dial_leader(broker.addr(), &topic, 0)
        .await
        .unwrap();
    let records: Vec<_> = reader.read_batch(1, 1 << 20).await.unwrap().collect();
    assert_eq!(
        records[0].as_ref().unwrap().value.as_deref(),
        Some(&big[..])
    );

    // A 64 KiB cap refuses the frame before reading it.
    let config = ConnConfig {
        max_response_size: 64 * 1024,
        ..Default::default()
    };
    let mut capped = kafkit_conn::dial_leader_with(broker.addr(), &topic, 0, config)
        .await
        .unwrap();
    capped.seek(0);
    let e = capped.read_batch(1, 1 << 20).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("limit of 65536"), "{e}");
    assert!(capped.is_closed());
}
