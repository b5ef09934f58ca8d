//! TLS and mutual TLS through `Conn`, against tansu behind `socat` (tansu has
//! no TLS of its own), with certificates made by `rcgen` for each test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kafkit_conn::{Conn, ConnConfig, ErrorKind, Message, TlsConfig, TlsErrorKind};
use kafkit_tests::{TestBroker, TestPki, TlsProxy, socat_or_skip, unique_topic};

/// tansu behind a socat TLS proxy, with the PKI that signed the proxy's
/// certificate. `None` when the TLS tests are skipped.
struct Setup {
    broker: TestBroker,
    pki: TestPki,
    proxy: TlsProxy,
}

fn setup(server_names: &[&str], require_client_cert: bool) -> Option<Setup> {
    let socat = socat_or_skip()?;
    let broker = TestBroker::start();
    let pki = TestPki::generate(server_names);
    let proxy = TlsProxy::start(&socat, &pki, broker.addr(), require_client_cert);
    Some(Setup { broker, pki, proxy })
}

fn with_tls(tls: TlsConfig) -> ConnConfig {
    ConnConfig {
        tls: Some(tls),
        ..Default::default()
    }
}

fn tls_kind(e: &kafkit_conn::Error) -> TlsErrorKind {
    match e.kind() {
        ErrorKind::Tls(kind) => *kind,
        other => panic!("expected a TLS error, got {other:?}: {e}"),
    }
}

async fn dial(addr: SocketAddr, tls: TlsConfig) -> Result<Conn, kafkit_conn::Error> {
    Conn::dial_with(addr, with_tls(tls)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_read_over_one_way_tls() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], false) else {
        return;
    };
    let topic = unique_topic("conn-tls");
    s.broker.create_topic(&topic, 1);
    let tls = TlsConfig::builder().ca_file(s.pki.ca()).build().unwrap();
    let conn = dial(s.proxy.addr(), tls).await.unwrap();
    // The proxy is the leader as far as this connection knows: bind the
    // partition to it rather than dialling the plaintext advertised address.
    let mut partition = conn.partition_conn(&topic, 0).await.unwrap();
    let messages = [
        Message::new("one").with_key("k"),
        Message::new("two"),
        Message::new("three"),
    ];
    let base = partition.write_messages(&messages).await.unwrap();
    assert_eq!(base, Some(0));
    partition.seek(0);
    let values: Vec<_> = partition
        .read_batch(1, 1 << 20)
        .await
        .unwrap()
        .map(|r| r.unwrap().value.unwrap())
        .collect();
    assert_eq!(values, [&b"one"[..], b"two", b"three"]);
    assert!(conn.stats().bytes_read > 0);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_connects() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], true) else {
        return;
    };
    let tls = TlsConfig::builder()
        .ca_file(s.pki.ca())
        .client_cert_files(s.pki.client_cert(), s.pki.client_key())
        .build()
        .unwrap();
    let conn = dial(s.proxy.addr(), tls).await.unwrap();
    let brokers = conn.brokers().await.unwrap();
    assert!(!brokers.is_empty());
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_client_certificate_is_a_tls_error() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], true) else {
        return;
    };
    let tls = TlsConfig::builder().ca_file(s.pki.ca()).build().unwrap();
    let e = dial(s.proxy.addr(), tls).await.unwrap_err();
    assert_eq!(tls_kind(&e), TlsErrorKind::Handshake, "{e}");
    assert!(e.to_string().contains("client certificate"), "{e}");
    assert!(
        !e.is_retriable(),
        "retrying cannot fix a missing certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_is_rejected() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], false) else {
        return;
    };
    let other = TestPki::generate(&["localhost", "127.0.0.1"]);
    let tls = TlsConfig::builder().ca_file(other.ca()).build().unwrap();
    let e = dial(s.proxy.addr(), tls).await.unwrap_err();
    assert_eq!(tls_kind(&e), TlsErrorKind::CertificateRejected, "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert_eq!(e.broker(), Some(s.proxy.addr().to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_override_verifies_a_certificate_for_another_name() {
    let Some(s) = setup(&["kafka.internal"], false) else {
        return;
    };
    let plain = TlsConfig::builder().ca_file(s.pki.ca()).build().unwrap();
    let e = dial(s.proxy.addr(), plain).await.unwrap_err();
    assert_eq!(tls_kind(&e), TlsErrorKind::CertificateRejected, "{e}");

    let renamed = TlsConfig::builder()
        .ca_file(s.pki.ca())
        .server_name("kafka.internal")
        .build()
        .unwrap();
    let conn = dial(s.proxy.addr(), renamed).await.unwrap();
    conn.brokers().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_name_of_the_address_is_verified_by_default() {
    let Some(s) = setup(&["localhost"], false) else {
        return;
    };
    let tls = TlsConfig::builder().ca_file(s.pki.ca()).build().unwrap();
    let by_name = format!("localhost:{}", s.proxy.addr().port());
    let conn = Conn::dial_with(&by_name, with_tls(tls)).await.unwrap();
    conn.brokers().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn danger_accept_invalid_certs_connects_without_the_ca() {
    let Some(s) = setup(&["kafka.internal"], false) else {
        return;
    };
    let tls = TlsConfig::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let conn = dial(s.proxy.addr(), tls).await.unwrap();
    conn.brokers().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plaintext_listener_fails_within_the_connect_timeout() {
    if socat_or_skip().is_none() {
        return;
    }
    // A Kafka listener reads the ClientHello as the size prefix of a huge
    // request and waits for the rest: the handshake never ends, so the
    // connect timeout is what ends it.
    let broker = TestBroker::start();
    let tls = TlsConfig::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let config = ConnConfig {
        connect_timeout: Duration::from_millis(500),
        ..with_tls(tls)
    };
    let started = Instant::now();
    let e = Conn::dial_with(broker.addr(), config).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Timeout | ErrorKind::Tls(TlsErrorKind::Handshake) | ErrorKind::Io(_)
        ),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
