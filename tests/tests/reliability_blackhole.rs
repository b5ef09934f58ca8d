//! The broker gone for good: a `FaultProxy` in front of tansu turns into a
//! blackhole (connections are accepted, requests read, nothing answered)
//! after the Writer, Reader and Admin have connected. Each caller gets a
//! typed error within its configured timeout; nothing hangs.

use std::time::{Duration, Instant};

use kafkit_admin::{Admin, AdminConfig};
use kafkit_conn::{ConnConfig, Transport, TransportConfig};
use kafkit_reader::{Reader, ReaderConfig};
use kafkit_tests::{FaultProxy, Reliability, unique_topic};
use kafkit_writer::{Error as WriterError, Message, Writer};

/// Every client's request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The writer's delivery timeout: records fail after it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(4);
/// Calls the transport retries (metadata, offsets) take a few request
/// timeouts, with backoff, before they give up.
const RETRIED: Duration = Duration::from_secs(30);
/// How long past its own timeout a caller may take to report (scheduling,
/// one backoff).
const SLACK: Duration = Duration::from_secs(5);

fn conn_config() -> ConnConfig {
    ConnConfig {
        connect_timeout: REQUEST_TIMEOUT,
        request_timeout: Some(REQUEST_TIMEOUT),
        ..Default::default()
    }
}

/// Runs `call`, failing the test if it takes longer than `limit`, and
/// returns how long it took.
async fn within<T>(limit: Duration, what: &str, call: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| panic!("{what} still hangs after {limit:?}"));
    (out, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_gone_for_good_gives_every_caller_a_typed_error_in_time() {
    let (broker, proxy) = FaultProxy::with_private_broker();
    let topic = unique_topic("rel-blackhole");
    broker.create_topic(&topic, 1);
    let bootstrap = proxy.addr().to_string();

    // Everything works first.
    let writer = Writer::builder([bootstrap.clone()])
        .topic(&topic)
        .request_timeout(REQUEST_TIMEOUT)
        .delivery_timeout(DELIVERY_TIMEOUT)
        .build()
        .await
        .unwrap();
    writer.send(Message::new("0")).await.unwrap().await.unwrap();
    let mut reader = Reader::new(ReaderConfig {
        brokers: vec![bootstrap.clone()],
        topic: Some(topic.clone()),
        partition: Some(0),
        conn: conn_config(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(reader.fetch_message().await.unwrap().value_bytes(), b"0");
    let mut transport_config = TransportConfig::new([bootstrap.clone()]);
    transport_config.conn = conn_config();
    let admin = Admin::with_config(
        Transport::connect(transport_config).await.unwrap(),
        AdminConfig {
            operation_timeout: REQUEST_TIMEOUT,
        },
    );
    admin.list_topics(false).await.unwrap();

    // Gone: open connections go silent, new ones are swallowed.
    proxy.blackhole(true);
    let gone = Instant::now();
    let mut worst = Duration::ZERO;

    let (sent, took) = within(DELIVERY_TIMEOUT + SLACK, "Writer::send", async {
        writer.send(Message::new("1")).await?.await
    })
    .await;
    let e = sent.expect_err("a record to a vanished broker fails");
    assert!(
        matches!(e, WriterError::DeliveryTimeout(_)) || e.is_retriable(),
        "an unexpected writer error: {e}"
    );
    eprintln!("writer: {e} after {took:?}");
    worst = worst.max(took);
    let (flushed, _) = within(SLACK, "Writer::flush", writer.flush()).await;
    assert!(matches!(
        flushed,
        Err(WriterError::RecordsFailed { failed: 1, .. })
    ));

    let (listed, took) = within(RETRIED, "Admin::list_topics", async {
        admin.list_topics(false).await
    })
    .await;
    let e = listed.expect_err("listing topics of a vanished cluster fails");
    eprintln!("admin: {e} after {took:?}");
    worst = worst.max(took);

    // A reader retries a vanished broker (a consumer outlives outages);
    // what it owes its caller is a prompt, cancel-safe wait that a timeout
    // can end, and an error from the broker-facing calls.
    let (lag, took) = within(RETRIED, "Reader::read_lag", async {
        reader.read_lag().await
    })
    .await;
    let e = lag.expect_err("asking a vanished broker for the lag fails");
    assert!(e.is_retriable(), "a vanished broker is worth retrying: {e}");
    eprintln!("reader: {e} after {took:?}");
    worst = worst.max(took);
    let waited = tokio::time::timeout(REQUEST_TIMEOUT, reader.fetch_message()).await;
    assert!(waited.is_err(), "a message came from a blackhole");
    let (closed, _) = within(SLACK, "Reader::close", reader.close()).await;
    eprintln!("reader close: {closed:?}");

    let (closed, _) = within(DELIVERY_TIMEOUT + SLACK, "Writer::close", writer.close()).await;
    eprintln!("writer close: {closed:?}");
    eprintln!("blackhole for {:?}: {:?}", gone.elapsed(), proxy.stats());
    // One record sent into the blackhole, none came back: the "recovery"
    // here is how long the slowest caller took to hear of it.
    Reliability::count("blackhole", &[1], &[], worst);
}
