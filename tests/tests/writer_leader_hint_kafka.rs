//! Leader discovery without a metadata round trip (KIP-951), producer
//! side, on a real three-node Apache Kafka cluster.
//!
//! An idempotent `Writer` writes to a one-partition topic led by node 1,
//! through a transport with no periodic metadata refresh during the test
//! (error-triggered refreshes keep their default spacing). The replicas
//! are reordered and a preferred election moves the leader to node 2. The
//! writer's next Produce goes to node 1, which answers
//! `NOT_LEADER_OR_FOLLOWER` naming node 2 at the new epoch; the writer
//! sends the batch there at once. The transport counts the Metadata
//! requests it sends: none from the election to the last acknowledgement
//! (without the hint, the error asks for a refresh). The partition then
//! holds every record once, in order, and the move counts in
//! `WriterStats::leader_hints`.

use std::time::Duration;

use kafkit_tests::leader_move::{CHANGE_WAIT, Setup, blocking, expected, move_leader, setup};
use kafkit_tests::{Listener, RawClient};
use kafkit_writer::{Message, Writer};

/// How long the records written after the move may take.
const AFTER_MOVE: Duration = Duration::from_secs(30);

/// Writes `prefix-<offset>` for `offsets` to partition 0 in one call, and
/// checks that each landed at its offset, all within `wait`.
async fn write(
    writer: &Writer,
    topic: &str,
    prefix: &str,
    offsets: std::ops::Range<i64>,
    wait: Duration,
) {
    let messages: Vec<Message> = offsets
        .clone()
        .map(|o| {
            Message::new(format!("{prefix}-{o}"))
                .with_topic(topic)
                .with_partition(0)
        })
        .collect();
    let results = tokio::time::timeout(wait, writer.write_messages(&messages))
        .await
        .unwrap_or_else(|_| panic!("{prefix}: not acknowledged within {wait:?}"))
        .unwrap_or_else(|e| panic!("{prefix}: {e}"));
    for (offset, result) in offsets.zip(results) {
        let landed = result.unwrap_or_else(|e| panic!("{prefix}-{offset}: {e}"));
        assert_eq!(landed.offset, offset, "where {prefix}-{offset} landed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_follows_the_leader_a_broker_names_without_a_metadata_refresh() {
    let Setup {
        cluster,
        admin,
        topic,
        first,
        transport,
    } = setup("writer-leader-hint").await;

    let writer = Writer::with_transport(transport.clone())
        .idempotent(true)
        .build()
        .await
        .unwrap();
    write(&writer, &topic, "a", 0..50, CHANGE_WAIT).await;
    assert_eq!(
        transport.snapshot().leader(&topic, 0).map(|b| b.id),
        Some(1)
    );

    // Node 2 first among the replicas, then a preferred election.
    let asked = transport.metadata_requests();
    let after = move_leader(&cluster, &admin, &topic, [2, 1, 3]).await;
    assert!(
        after.epoch > first.epoch,
        "a new leader epoch: {after:?} after {first:?}"
    );
    write(&writer, &topic, "b", 50..100, AFTER_MOVE).await;
    assert_eq!(
        transport.metadata_requests(),
        asked,
        "the new leader was found without a Metadata request"
    );

    let snapshot = transport.snapshot();
    assert_eq!(snapshot.leader(&topic, 0).map(|b| b.id), Some(2));
    assert_eq!(snapshot.leader_epoch(&topic, 0), Some(after.epoch));
    let stats = writer.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.leader_hints > 0,
        "the move came from a hint: {stats:?}"
    );
    writer.close().await.expect("close");

    // Read back from the new leader: every record once, in order.
    let records = blocking(|| {
        let mut client = RawClient::connect(cluster.addr(2, Listener::Plaintext));
        client.fetch_records(&topic, 0, 0, 100).0
    });
    let seen: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            let value = r.value.as_deref().unwrap_or_default();
            (r.offset, String::from_utf8_lossy(value).into_owned())
        })
        .collect();
    let mut want = expected("a", 0..50);
    want.extend(expected("b", 50..100));
    assert_eq!(seen, want, "every record once, in order");
}
