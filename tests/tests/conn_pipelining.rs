//! Many requests in flight on one connection: all answered, each with its
//! own response, whatever order the callers wait in; dropped callers do not
//! disturb the others.

use std::sync::Arc;
use std::time::Duration;

use kafkit_conn::messages::MetadataRequest;
use kafkit_conn::messages::metadata_request::MetadataRequestTopic;
use kafkit_conn::{Conn, ConnConfig, ErrorCode};
use kafkit_tests::TestBroker;

/// A Metadata request whose answer names `topic`, so each response can be
/// matched to the request it answers.
fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.to_owned()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

async fn ask(conn: &Conn, i: usize) {
    let topic = format!("pipelined-{i}");
    let response = conn.request(metadata_for(&topic)).await.unwrap();
    assert_eq!(response.topics.len(), 1);
    let answer = &response.topics[0];
    assert_eq!(answer.name.as_deref(), Some(topic.as_str()), "request {i}");
    assert_eq!(answer.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_on_one_connection() {
    let broker = TestBroker::start();
    let conn = Conn::dial(broker.addr()).await.unwrap();
    let before = conn.stats();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { ask(&conn, i).await })
        })
        .collect();
    // Wait in reverse order: completion order must not matter.
    for task in tasks.into_iter().rev() {
        task.await.unwrap();
    }
    let after = conn.stats();
    assert_eq!(after.requests - before.requests, 1000);
    assert_eq!(after.responses - before.responses, 1000);
    assert_eq!(after.errors, 0);
    assert!(after.bytes_written > before.bytes_written);
    assert!(after.bytes_read > before.bytes_read);
    assert!(!conn.is_closed());
    conn.close().await.unwrap();
    assert!(conn.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_in_flight_limit_queues_requests_in_the_client() {
    let broker = TestBroker::start();
    let config = ConnConfig {
        max_in_flight: 2,
        ..Default::default()
    };
    let conn = Arc::new(Conn::dial_with(broker.addr(), config).await.unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { ask(&conn, i).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_leave_the_stream_in_step() {
    let broker = TestBroker::start();
    let conn = Conn::dial(broker.addr()).await.unwrap();
    // Start many requests and abandon them at arbitrary points: before
    // they are sent, while in flight, or just as their answer arrives.
    let abandoned: Vec<_> = (0..300)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let wait = Duration::from_micros((i % 7) as u64 * 150);
                let _ = tokio::time::timeout(wait, ask(&conn, i)).await;
            })
        })
        .collect();
    for task in abandoned {
        task.await.unwrap();
    }
    // Every later request still gets its own answer.
    for i in 1000..1050 {
        ask(&conn, i).await;
    }
    assert!(!conn.is_closed());
}
