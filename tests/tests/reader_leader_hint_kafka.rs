//! Leader discovery without a metadata round trip (KIP-951), consumer
//! side, on a real three-node Apache Kafka cluster.
//!
//! A fetcher over one partition (what a partition `Reader` runs) reads
//! from the partition's leader, node 1, through a transport with no
//! periodic metadata refresh during the test (error-triggered refreshes
//! keep their default spacing). The replicas are reordered and a
//! preferred election moves the leader to node 2. Node 1 then answers the
//! next fetch with an error naming node 2 as the current leader at the
//! new epoch; the fetcher moves the partition there at once. The
//! transport counts the Metadata requests it sends: none from the
//! election to the last record read (without the hint, the error asks
//! for a refresh). Every record is read once, in order, and the move
//! counts in `FetchStats::leader_hints`.

use std::time::Duration;

use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};
use kafkit_tests::leader_move::{
    CHANGE_WAIT, Setup, blocking, expected, move_leader, produce_raw, setup,
};

/// How long the records written after the move may take.
const AFTER_MOVE: Duration = Duration::from_secs(30);

/// Reads `count` messages, each within `wait`: (offset, value).
async fn read(fetcher: &mut Fetcher, count: usize, wait: Duration) -> Vec<(i64, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < count {
        let m = tokio::time::timeout_at(deadline, fetcher.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} within {wait:?}: {out:?}", out.len()))
            .unwrap_or_else(|e| panic!("an error after {out:?}: {e}"));
        out.push((
            m.offset,
            String::from_utf8_lossy(m.value_bytes()).into_owned(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_follows_the_leader_a_broker_names_without_a_metadata_refresh() {
    let Setup {
        cluster,
        admin,
        topic,
        first,
        transport,
    } = setup("leader-hint").await;
    blocking(|| produce_raw(&cluster, 1, &topic, "a", 0..50));

    let fetch = FetchConfig {
        max_wait: Duration::from_millis(100),
        ..FetchConfig::default()
    };
    let mut fetcher = Fetcher::new(transport.clone(), fetch);
    let tp = TopicPartition::new(topic.as_str(), 0);
    fetcher.assign(vec![(tp.clone(), StartOffset::Offset(0))]);
    let mut seen = read(&mut fetcher, 50, CHANGE_WAIT).await;
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
    blocking(|| produce_raw(&cluster, 2, &topic, "b", 50..100));

    seen.extend(read(&mut fetcher, 50, AFTER_MOVE).await);
    assert_eq!(
        transport.metadata_requests(),
        asked,
        "the new leader was found without a Metadata request"
    );
    let mut want = expected("a", 0..50);
    want.extend(expected("b", 50..100));
    assert_eq!(seen, want, "every record once, in order");
    let snapshot = transport.snapshot();
    assert_eq!(snapshot.leader(&topic, 0).map(|b| b.id), Some(2));
    assert_eq!(snapshot.leader_epoch(&topic, 0), Some(after.epoch));
    let stats = fetcher.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.leader_hints > 0,
        "the move came from a hint: {stats:?}"
    );
    // Nothing more arrives: no record twice.
    let extra = tokio::time::timeout(Duration::from_secs(1), fetcher.next()).await;
    assert!(extra.is_err(), "{extra:?}");
    fetcher.close();
}
