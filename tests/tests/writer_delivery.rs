//! How a `Writer` reports outcomes: a stream of successes and errors for
//! fire-and-forget writes, and backpressure (a clear error for the call
//! that does not wait, waiting for the one that does) while the broker is
//! unreachable.

use std::time::Duration;

use kafkit_tests::{TestBroker, unique_topic};
use kafkit_writer::{DeliveryReport, Error, ErrorCode, Message, Writer};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_producer_streams_successes_and_errors() {
    let broker = TestBroker::start();
    let topic = unique_topic("writer-stream");
    broker.create_topic(&topic, 2);
    let missing = unique_topic("writer-stream-missing");
    let (tx, mut reports) = mpsc::unbounded_channel::<DeliveryReport>();
    let writer = Writer::builder([broker.bootstrap()])
        .max_attempts(3)
        .on_delivery(move |report| {
            let _ = tx.send(report);
        })
        .build()
        .await
        .unwrap();

    let mut ids = Vec::new();
    for i in 0..100 {
        let m = Message::new(format!("{i}"))
            .with_topic(&topic)
            .with_partition(i % 2);
        ids.push(writer.produce(&m).await.unwrap());
    }
    let lost = writer
        .produce(&Message::new("nowhere").with_topic(&missing))
        .await
        .unwrap();

    let mut ok = Vec::new();
    let mut failed = Vec::new();
    while ok.len() + failed.len() < 101 {
        let report = tokio::time::timeout(Duration::from_secs(20), reports.recv())
            .await
            .expect("every record is reported")
            .expect("the writer is alive");
        match report.result {
            Ok(meta) => {
                assert_eq!(&*report.topic, topic);
                ok.push((report.id, meta));
            }
            Err(e) => failed.push((report.id, report.topic, e)),
        }
    }
    ok.sort_by_key(|(id, _)| *id);
    assert_eq!(ok.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    for (i, (_, meta)) in ok.iter().enumerate() {
        assert_eq!(meta.partition, (i % 2) as i32);
        assert_eq!(meta.offset, (i / 2) as i64);
    }
    let (id, failed_topic, error) = &failed[0];
    assert_eq!((*id, &**failed_topic), (lost, missing.as_str()));
    assert_eq!(
        error.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{error}"
    );
    // The flush reports the failure once.
    let e = writer.flush().await.unwrap_err();
    assert!(matches!(e, Error::RecordsFailed { failed: 1, .. }), "{e}");
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_is_an_error_while_the_broker_is_unreachable() {
    let mut broker = TestBroker::start_private();
    let topic = unique_topic("writer-backpressure");
    broker.create_topic(&topic, 1);
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .max_buffered_records(50)
        .max_attempts(1_000)
        .delivery_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    writer
        .send(Message::new("first"))
        .await
        .unwrap()
        .await
        .unwrap();

    broker.stop();
    let mut deliveries = Vec::new();
    for i in 0..50 {
        // Never blocks: the records wait in the buffer.
        deliveries.push(writer.try_send(Message::new(format!("{i}"))).unwrap());
    }
    let e = writer.try_send(Message::new("one too many")).unwrap_err();
    assert!(matches!(e, Error::BufferFull { records: 50, .. }), "{e}");
    assert!(e.is_retriable());
    // The waiting call waits.
    let waiting = tokio::time::timeout(Duration::from_millis(300), writer.send(Message::new("w")));
    assert!(
        waiting.await.is_err(),
        "send() returned while the buffer was full"
    );

    // The delivery timeout fails the stuck records and frees the buffer.
    for delivery in deliveries {
        let e = tokio::time::timeout(Duration::from_secs(10), delivery)
            .await
            .expect("the delivery timeout ends the wait")
            .unwrap_err();
        assert!(e.is_retriable(), "{e}");
    }
    assert_eq!(writer.buffered().0, 0);
    drop(writer.try_send(Message::new("after")).unwrap());
    let e = writer.close().await.unwrap_err();
    assert!(
        matches!(e, Error::RecordsFailed { failed, .. } if failed >= 50),
        "{e}"
    );
}

/// A loop of `send` calls that never wait for buffer space still yields
/// to the runtime now and then (tokio's cooperative budget), so tasks on
/// the same thread, such as the writer's own sender, keep running.
#[tokio::test(flavor = "current_thread")]
async fn a_send_loop_lets_other_tasks_on_its_thread_run() {
    let broker = TestBroker::start();
    let topic = unique_topic("wd-yield");
    broker.create_topic(&topic, 1);
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .build()
        .await
        .unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
    let mut sends_before_it_ran = None;
    let mut deliveries = Vec::new();
    for i in 0..5_000 {
        deliveries.push(writer.send(Message::new(format!("{i}"))).await.unwrap());
        if sends_before_it_ran.is_none() && ran.load(std::sync::atomic::Ordering::SeqCst) {
            sends_before_it_ran = Some(i);
        }
    }
    assert!(
        sends_before_it_ran.is_some_and(|n| n < 1_000),
        "the other task ran after {sends_before_it_ran:?} sends"
    );
    for d in deliveries {
        d.await.unwrap();
    }
    writer.close().await.unwrap();
}
