//! TLS and mutual TLS through `Conn`: against Apache Kafka's own TLS and
//! mutual-TLS listeners (certificates the harness made with `rcgen`), or
//! against tansu behind `socat` (tansu has no TLS). Certificates for other
//! names than the broker's come from `socat`, with a PKI made per test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kafkit_conn::{Conn, ConnConfig, ErrorKind, Message, TlsConfig, TlsErrorKind};
use kafkit_tests::{Listener, TestBroker, TestPki, TlsProxy, socat_or_skip, unique_topic};

/// A TLS endpoint in front of the run's broker, with the PKI that signed
/// its certificate. `None` when the TLS tests are skipped.
struct Setup {
    broker: TestBroker,
    addr: SocketAddr,
    /// The PKI of a socat proxy; `None` on the broker's own listener.
    own_pki: Option<TestPki>,
    _proxy: Option<TlsProxy>,
}

impl Setup {
    fn pki(&self) -> &TestPki {
        self.own_pki
            .as_ref()
            .or(self.broker.pki())
            .expect("a PKI for the TLS endpoint")
    }
}

/// The broker's TLS (or, with `require_client_cert`, mutual-TLS) listener
/// when it has one and its certificate names `server_names`; otherwise
/// socat with a fresh certificate for those names.
fn setup(server_names: &[&str], require_client_cert: bool) -> Option<Setup> {
    let broker = TestBroker::start();
    let listener = if require_client_cert {
        Listener::Mtls
    } else {
        Listener::Ssl
    };
    if server_names == ["localhost", "127.0.0.1"]
        && let Some(list) = broker.listener(listener)
    {
        let addr = list.split(',').next().unwrap().parse().unwrap();
        return Some(Setup {
            broker,
            addr,
            own_pki: None,
            _proxy: None,
        });
    }
    let socat = socat_or_skip()?;
    let pki = TestPki::generate(server_names);
    let proxy = TlsProxy::start(&socat, &pki, broker.addr(), require_client_cert);
    Some(Setup {
        addr: proxy.addr(),
        broker,
        own_pki: Some(pki),
        _proxy: Some(proxy),
    })
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
    let tls = TlsConfig::builder().ca_file(s.pki().ca()).build().unwrap();
    let conn = dial(s.addr, tls).await.unwrap();
    // Bind the partition to this connection: behind socat, the broker's
    // metadata names its plaintext address, which would bypass TLS.
    let mut partition = conn.partition_conn(&topic, 0).await.unwrap();
    // A batch over 16 KiB goes out by reference, in a vectored write
    // through TLS (see kafkit-conn's outbox).
    let large = vec![7u8; 64 << 10];
    let messages = [
        Message::new("one").with_key("k"),
        Message::new("two"),
        Message::new("three"),
        Message::new(large.clone()),
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
    assert_eq!(values, [&b"one"[..], b"two", b"three", &large[..]]);
    assert!(conn.stats().bytes_read > 0);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_connects() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], true) else {
        return;
    };
    let tls = TlsConfig::builder()
        .ca_file(s.pki().ca())
        .client_cert_files(s.pki().client_cert(), s.pki().client_key())
        .build()
        .unwrap();
    let conn = dial(s.addr, tls).await.unwrap();
    let brokers = conn.brokers().await.unwrap();
    assert!(!brokers.is_empty());
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_client_certificate_is_a_tls_error() {
    let Some(s) = setup(&["localhost", "127.0.0.1"], true) else {
        return;
    };
    let tls = TlsConfig::builder().ca_file(s.pki().ca()).build().unwrap();
    let e = dial(s.addr, tls).await.unwrap_err();
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
    let e = dial(s.addr, tls).await.unwrap_err();
    assert_eq!(tls_kind(&e), TlsErrorKind::CertificateRejected, "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert_eq!(e.broker(), Some(s.addr.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_override_verifies_a_certificate_for_another_name() {
    let Some(s) = setup(&["kafka.internal"], false) else {
        return;
    };
    let plain = TlsConfig::builder().ca_file(s.pki().ca()).build().unwrap();
    let e = dial(s.addr, plain).await.unwrap_err();
    assert_eq!(tls_kind(&e), TlsErrorKind::CertificateRejected, "{e}");

    let renamed = TlsConfig::builder()
        .ca_file(s.pki().ca())
        .server_name("kafka.internal")
        .build()
        .unwrap();
    let conn = dial(s.addr, renamed).await.unwrap();
    conn.brokers().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_name_of_the_address_is_verified_by_default() {
    let Some(s) = setup(&["localhost"], false) else {
        return;
    };
    let tls = TlsConfig::builder().ca_file(s.pki().ca()).build().unwrap();
    let by_name = format!("localhost:{}", s.addr.port());
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
    let conn = dial(s.addr, tls).await.unwrap();
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
