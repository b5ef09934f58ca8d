//! Invalid user input is a clear error before anything is sent: invalid
//! Writer and Reader configurations (an empty topic name among them) fail in
//! the builder without opening a connection, and an oversize message fails
//! at once without a produce request.

use std::time::Duration;

use kafkit_reader::{ErrorKind, Reader, ReaderBuilder};
use kafkit_tests::{FaultProxy, TestBroker, unique_topic};
use kafkit_writer::{Error, Message, RequiredAcks, Writer, WriterBuilder};

/// A proxy with no broker behind it: it only counts connection attempts.
fn counter() -> FaultProxy {
    FaultProxy::bind()
}

#[tokio::test]
async fn invalid_writer_configs_fail_before_connecting() {
    let proxy = counter();
    let builder = || Writer::builder([proxy.addr().to_string()]).topic("t");
    let invalid: Vec<(&str, WriterBuilder)> = vec![
        ("batch_size 0", builder().batch_size(0)),
        ("max_in_flight 0", builder().max_in_flight(0)),
        ("idempotent with 6 in flight", builder().max_in_flight(6)),
        (
            "idempotent without acks=all",
            builder().idempotent(true).required_acks(RequiredAcks::One),
        ),
        ("max_attempts 0", builder().max_attempts(0)),
        (
            "buffer smaller than one message",
            builder().buffer_bytes(10).max_message_bytes(100),
        ),
    ];
    for (what, builder) in invalid {
        let e = builder.build().await.expect_err(what);
        assert!(matches!(e, Error::Config(_)), "{what}: {e}");
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(proxy.stats().connections, 0, "a connection was opened");
}

#[tokio::test]
async fn an_empty_topic_name_fails_in_the_writer_builder() {
    let proxy = counter();
    let e = Writer::builder([proxy.addr().to_string()])
        .topic("")
        .build()
        .await
        .expect_err("an empty topic name is refused");
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert_eq!(proxy.stats().connections, 0, "a connection was opened");
}

#[tokio::test]
async fn invalid_reader_configs_fail_before_connecting() {
    let proxy = counter();
    let builder = || Reader::builder([proxy.addr().to_string()]);
    let invalid: Vec<(&str, ReaderBuilder)> = vec![
        ("no topic, no group", builder()),
        ("empty group id", builder().group_id("").topics(["t"])),
        ("group without topics", builder().group_id("g")),
        (
            "group with a partition",
            builder().group_id("g").partition("t", 0),
        ),
        (
            "heartbeat above the session timeout",
            builder()
                .group_id("g")
                .topics(["t"])
                .session_timeout(Duration::from_secs(1))
                .heartbeat_interval(Duration::from_secs(2)),
        ),
        ("negative partition", builder().partition("t", -1)),
    ];
    for (what, builder) in invalid {
        let e = builder.build().await.expect_err(what);
        assert!(matches!(e.kind(), ErrorKind::Config(_)), "{what}: {e}");
    }
    assert_eq!(proxy.stats().connections, 0, "a connection was opened");
}

#[tokio::test]
async fn an_empty_topic_name_fails_in_the_reader_builder() {
    let proxy = counter();
    for builder in [
        Reader::builder([proxy.addr().to_string()]).partition("", 0),
        Reader::builder([proxy.addr().to_string()])
            .group_id("g")
            .topics([""]),
    ] {
        let e = builder.build().await.expect_err("an empty topic name");
        assert!(matches!(e.kind(), ErrorKind::Config(_)), "{e}");
    }
    assert_eq!(proxy.stats().connections, 0, "a connection was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_fails_at_once_without_a_request() {
    let broker = TestBroker::start();
    let topic = unique_topic("bad-input-oversize");
    broker.create_topic(&topic, 1);
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .max_message_bytes(1024)
        .build()
        .await
        .unwrap();
    let requests = writer.stats().requests;
    let e = writer
        .send(Message::new(vec![7u8; 4096]))
        .await
        .expect_err("a 4 KiB record over a 1 KiB limit");
    assert!(matches!(e, Error::MessageTooLarge { max: 1024, .. }), "{e}");
    assert!(!e.is_retriable(), "{e}");
    let e = writer
        .try_produce(&Message::new(vec![7u8; 4096]))
        .unwrap_err();
    assert!(matches!(e, Error::MessageTooLarge { .. }), "{e}");
    writer.flush().await.unwrap();
    assert_eq!(writer.stats().requests, requests, "a request was sent");
    // The writer still works for records that fit.
    writer
        .send(Message::new("ok"))
        .await
        .unwrap()
        .await
        .unwrap();
    writer.close().await.unwrap();
}
