//! Incremental fetch sessions (KIP-227) on the wire, against Apache Kafka:
//! a private node advertises a proxy that decodes every Fetch passing
//! through (`fetch_sessions_support`), so the tests assert what the
//! fetcher sent and what the broker answered.
//!
//! With sessions on, the first fetch is full and creates a session; an
//! unchanged assignment is then fetched with an incremental request that
//! lists nothing, and a partition that got records is listed alone, at its
//! new offset. A wrong epoch (INVALID_FETCH_SESSION_EPOCH), an unknown
//! session (FETCH_SESSION_ID_NOT_FOUND), both provoked by the proxy
//! tampering with one request and answered by Kafka itself, and a
//! connection reset with a fetch in flight each make the next fetch full.
//! Unassigning every partition, closing the fetcher and closing a reader
//! each close the session (its id, epoch -1). Every record is read exactly
//! once throughout. With sessions off, or on a broker without session
//! slots, every fetch is full.

mod fetch_sessions_support;

use std::collections::BTreeMap;
use std::time::Duration;

use fetch_sessions_support::{SeenFetch, Tamper, WireProxy, blocking, conn, produce, start};
use kafkit_conn::{Transport, TransportConfig};
use kafkit_protocol::ErrorCode;
use kafkit_reader::{
    FetchConfig, Fetcher, Message, Reader, ReaderConfig, StartOffset, TopicPartition,
};
use kafkit_tests::eventually;

/// How long one message may take to arrive.
const READ_WAIT: Duration = Duration::from_secs(15);

/// What was read, checked as it comes: each partition's offsets in order,
/// no gap, no repeat, with the value written at that offset.
#[derive(Default)]
struct Read(BTreeMap<i32, i64>);

impl Read {
    fn check(&mut self, m: &Message) {
        let next = self.0.entry(m.partition).or_insert(0);
        assert_eq!(
            m.offset, *next,
            "partition {}: a gap or a repeat",
            m.partition
        );
        let value = format!("p{}-{}", m.partition, m.offset);
        assert_eq!(m.value.as_deref(), Some(value.as_bytes()));
        *next += 1;
    }

    async fn fetcher(&mut self, fetcher: &mut Fetcher, n: usize) {
        for _ in 0..n {
            let m = tokio::time::timeout(READ_WAIT, fetcher.next()).await;
            self.check(&m.expect("a message in time").unwrap());
        }
    }

    async fn reader(&mut self, reader: &mut Reader, n: usize) {
        for _ in 0..n {
            let m = tokio::time::timeout(READ_WAIT, reader.fetch_message()).await;
            self.check(&m.expect("a message in time").unwrap());
        }
    }
}

/// Waits (bounded) until `find` finds something in `client`'s fetches.
async fn wait_for<T>(
    proxy: &WireProxy,
    client: &str,
    what: &str,
    find: impl Fn(&[SeenFetch]) -> Option<T>,
) -> T {
    eventually(what, || {
        let found = find(&proxy.fetches(client));
        async move { found.ok_or_else(|| "not on the wire yet".to_owned()) }
    })
    .await
}

fn sorted(mut listed: Vec<(i32, i64)>) -> Vec<(i32, i64)> {
    listed.sort_unstable();
    listed
}

/// The first fetch at or after `from`, answered, that `pred` picks.
fn answered_after(
    f: &[SeenFetch],
    from: usize,
    pred: impl Fn(&SeenFetch) -> bool,
) -> Option<SeenFetch> {
    f.get(from..)?
        .iter()
        .find(|x| x.answer.is_some() && pred(x))
        .cloned()
}

/// Tampers with the next incremental fetch; returns the broker's error for
/// it and the fetch that followed, answered.
async fn provoke(proxy: &WireProxy, client: &str, tamper: Tamper) -> (ErrorCode, SeenFetch) {
    let from = proxy.fetches(client).len();
    proxy.tamper_next(tamper);
    wait_for(proxy, client, "a tampered fetch and the next", |f| {
        let at = from + f.get(from..)?.iter().position(|x| x.tampered)?;
        let code = f[at].answer?.error_code;
        Some((code, answered_after(f, at + 1, |_| true)?))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_send_only_changes_and_start_over_after_errors() {
    let (cluster, proxy, topic) = blocking(|| start("fetch-sessions", &[]));
    let client = "kafkit-sessions";
    let mut config = TransportConfig::new([proxy.addr().to_string()]);
    config.conn = conn(client);
    let transport = Transport::connect(config).await.unwrap();
    // A one-second long poll: a fetch is in flight most of the time.
    let fetch_config = FetchConfig {
        max_wait: Duration::from_secs(1),
        ..FetchConfig::default()
    };
    let mut fetcher = Fetcher::new(transport, fetch_config);
    let tps: Vec<TopicPartition> = (0..3)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let mut read = Read::default();
    blocking(|| produce(&cluster, &topic, 0, 0, 100));
    fetcher.assign(
        tps.iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(0)))
            .collect(),
    );
    read.fetcher(&mut fetcher, 100).await;

    // A full fetch creates the session, the next lists p0 at its new
    // offset, then an unchanged assignment lists nothing.
    let f = wait_for(&proxy, client, "an empty incremental fetch", |f| {
        let p0 = f.iter().position(|x| x.listed == [(0, 100)])?;
        answered_after(f, p0 + 1, |x| x.listed.is_empty()).map(|_| f.to_vec())
    })
    .await;
    assert_eq!((f[0].session_id, f[0].epoch), (0, 0), "{:?}", f[0]);
    assert_eq!(sorted(f[0].listed.clone()), [(0, 0), (1, 0), (2, 0)]);
    let session = f[0].answer.unwrap().session_id;
    assert!(session > 0, "Kafka grants a session: {:?}", f[0]);
    let empty = f
        .iter()
        .find(|x| x.epoch > 0 && x.listed.is_empty())
        .unwrap();
    assert_eq!(
        empty.answer.unwrap().partitions,
        0,
        "nothing changed, nothing said"
    );
    for (i, x) in f.iter().enumerate().skip(1) {
        assert_eq!((x.session_id, x.epoch), (session, i as i32), "{x:?}");
        assert!(x.forgotten.is_empty());
        assert!(x.answer.is_none_or(|a| a.error_code == ErrorCode::NONE));
    }
    assert!(fetcher.stats().incremental_fetches > 0);

    // Records for p1: p1 alone is listed, at its new offset.
    let from = proxy.fetches(client).len();
    blocking(|| produce(&cluster, &topic, 1, 0, 50));
    read.fetcher(&mut fetcher, 50).await;
    wait_for(&proxy, client, "p1 at 50", |f| {
        answered_after(f, from, |x| x.listed == [(1, 50)])
    })
    .await;
    for x in &proxy.fetches(client)[from..] {
        assert_eq!(x.session_id, session);
        assert!(x.listed.is_empty() || x.listed == [(1, 50)], "{x:?}");
    }

    // A wrong epoch: the broker refuses it, the next fetch is full and
    // replaces the session.
    let (code, next) = provoke(&proxy, client, Tamper::Epoch).await;
    assert_eq!(code, ErrorCode::INVALID_FETCH_SESSION_EPOCH);
    assert_eq!((next.session_id, next.epoch), (session, 0), "{next:?}");
    assert_eq!(sorted(next.listed), [(0, 100), (1, 50), (2, 0)]);
    let session = next.answer.unwrap().session_id;
    assert!(session > 0);
    blocking(|| produce(&cluster, &topic, 2, 0, 30));
    read.fetcher(&mut fetcher, 30).await;

    // An unknown session: the next fetch is full and creates one.
    let (code, next) = provoke(&proxy, client, Tamper::SessionId).await;
    assert_eq!(code, ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
    assert_eq!((next.session_id, next.epoch), (0, 0), "{next:?}");
    assert_eq!(sorted(next.listed), [(0, 100), (1, 50), (2, 30)]);
    let session = next.answer.unwrap().session_id;

    // A connection reset with a fetch in flight (its answer held back):
    // the broker may have seen its epoch, so the next fetch is full.
    proxy.hold_answers(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = proxy.fetches(client);
    assert!(held.last().unwrap().answer.is_none(), "a fetch in flight");
    let from = held.len();
    assert!(proxy.reset_all() > 0);
    proxy.hold_answers(false);
    let next = wait_for(&proxy, client, "a fetch after the reset", |f| {
        answered_after(f, from, |_| true)
    })
    .await;
    assert_eq!((next.session_id, next.epoch), (session, 0), "{next:?}");
    assert_eq!(next.listed.len(), 3);
    blocking(|| produce(&cluster, &topic, 0, 100, 20));
    read.fetcher(&mut fetcher, 20).await;
    let session = wait_for(&proxy, client, "an incremental fetch", |f| {
        answered_after(f, from, |x| x.epoch > 0).map(|x| x.session_id)
    })
    .await;

    // Every partition unassigned: the session is closed.
    let from = proxy.fetches(client).len();
    fetcher.unassign(&tps);
    let close = wait_for(&proxy, client, "the session closed", |f| {
        answered_after(f, from, |x| x.epoch == -1)
    })
    .await;
    assert_eq!(close.session_id, session);
    assert!(close.listed.is_empty() && close.forgotten.is_empty());
    assert_eq!(close.answer.unwrap().error_code, ErrorCode::NONE);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let f = proxy.fetches(client);
    assert_eq!(f.last().unwrap().epoch, -1, "nothing fetched after: {f:?}");

    // Assigned again: a new session, read on; closing the fetcher closes it.
    let from = proxy.fetches(client).len();
    let at = [120, 50, 30];
    fetcher.assign(
        tps.iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(at[tp.partition as usize])))
            .collect(),
    );
    blocking(|| produce(&cluster, &topic, 2, 30, 10));
    read.fetcher(&mut fetcher, 10).await;
    let created = wait_for(&proxy, client, "a new session", |f| {
        answered_after(f, from, |_| true)
    })
    .await;
    assert_eq!((created.session_id, created.epoch), (0, 0));
    assert_eq!(sorted(created.listed), [(0, 120), (1, 50), (2, 30)]);
    let session = created.answer.unwrap().session_id;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fetcher.next())
            .await
            .is_err(),
        "every record was read once"
    );
    assert_eq!(read.0, BTreeMap::from([(0, 120), (1, 50), (2, 40)]));
    let from = proxy.fetches(client).len();
    fetcher.close();
    assert!(fetcher.next().await.is_err(), "closed");
    let close = wait_for(&proxy, client, "the session closed", |f| {
        answered_after(f, from, |x| x.epoch == -1)
    })
    .await;
    assert_eq!(close.session_id, session);

    // A reader with sessions off: every fetch full, sessionless.
    let client = "kafkit-sessionless";
    let mut read = Read::default();
    let mut reader = reader_on(&proxy, &topic, 1, client, false).await;
    read.reader(&mut reader, 50).await;
    let f = wait_for(&proxy, client, "three fetches", |f| {
        (f.iter().filter(|x| x.answer.is_some()).count() >= 3).then(|| f.to_vec())
    })
    .await;
    for x in &f {
        assert_eq!((x.session_id, x.epoch), (0, -1), "{x:?}");
        assert_eq!(x.listed.len(), 1);
        assert!(x.answer.is_none_or(|a| a.session_id == 0));
    }
    assert_eq!(reader.stats().fetch.incremental_fetches, 0);
    reader.close().await.unwrap();

    // A reader with sessions on: closing it closes its session.
    let client = "kafkit-reader";
    let mut read = Read::default();
    let mut reader = reader_on(&proxy, &topic, 2, client, true).await;
    read.reader(&mut reader, 40).await;
    let session = wait_for(&proxy, client, "an incremental fetch", |f| {
        answered_after(f, 0, |x| x.epoch > 0).map(|x| x.session_id)
    })
    .await;
    reader.close().await.unwrap();
    let close = wait_for(&proxy, client, "the reader's session closed", |f| {
        answered_after(f, 0, |x| x.epoch == -1)
    })
    .await;
    assert_eq!(close.session_id, session);
}

/// A partition reader of `partition` from offset 0 through the proxy.
async fn reader_on(
    proxy: &WireProxy,
    topic: &str,
    partition: i32,
    client: &str,
    sessions: bool,
) -> Reader {
    let config = ReaderConfig {
        fetch: FetchConfig {
            max_wait: Duration::from_millis(200),
            ..FetchConfig::default()
        },
        conn: conn(client),
        ..ReaderConfig::default()
    };
    Reader::builder([proxy.addr().to_string()])
        .config(ReaderConfig {
            brokers: vec![proxy.addr().to_string()],
            ..config
        })
        .partition(topic, partition)
        .start_offset(StartOffset::Offset(0))
        .fetch_sessions(sessions)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_session_slots_gets_full_fetches() {
    let slots = [("max.incremental.fetch.session.cache.slots", "0")];
    let (cluster, proxy, topic) = blocking(|| start("fetch-no-slots", &slots));
    let client = "kafkit-no-slots";
    let mut config = TransportConfig::new([proxy.addr().to_string()]);
    config.conn = conn(client);
    let transport = Transport::connect(config).await.unwrap();
    let fetch_config = FetchConfig {
        max_wait: Duration::from_millis(200),
        ..FetchConfig::default()
    };
    let mut fetcher = Fetcher::new(transport, fetch_config);
    let mut read = Read::default();
    blocking(|| produce(&cluster, &topic, 0, 0, 60));
    let tps: Vec<TopicPartition> = (0..3)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    fetcher.assign(
        tps.iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(0)))
            .collect(),
    );
    read.fetcher(&mut fetcher, 60).await;
    blocking(|| produce(&cluster, &topic, 1, 0, 40));
    read.fetcher(&mut fetcher, 40).await;
    let f = wait_for(&proxy, client, "four fetches", |f| {
        (f.iter().filter(|x| x.answer.is_some()).count() >= 4).then(|| f.to_vec())
    })
    .await;
    assert_eq!((f[0].session_id, f[0].epoch), (0, 0), "asked for a session");
    assert_eq!(f[0].answer.unwrap().session_id, 0, "and refused one");
    for x in &f[1..] {
        assert_eq!((x.session_id, x.epoch), (0, -1), "{x:?}");
        assert_eq!(x.listed.len(), 3, "every partition, every time");
    }
    assert_eq!(fetcher.stats().incremental_fetches, 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fetcher.next())
            .await
            .is_err()
    );
    assert_eq!(read.0, BTreeMap::from([(0, 60), (1, 40)]));
}
