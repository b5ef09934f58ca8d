//! The client hook (`kafkit_conn::Hook`) on the suite's broker: a hook
//! that records every event watches a writer produce keyed records and a
//! group reader consume and commit them, and each event carries the
//! values the run produced: one acknowledgement per record with its real
//! offset, the header the hook set on every record read back, batches
//! adding up to the records, a last fetch per partition with no lag,
//! commits of the partitions' ends, the assignment, and a connection's
//! connect, round trips and disconnect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::hooks::{
    CommitEvent, ConnectEvent, ConsumeRecord, DisconnectEvent, FetchEvent, ProduceAck,
    ProduceBatchEvent, ProduceRecord, RebalanceEvent, RecordToken, RequestEvent, SetHeaders,
};
use kafkit_conn::{ApiKey, Conn, ConnConfig, Hook, Hooks};
use kafkit_reader::Reader;
use kafkit_tests::{TestBroker, unique_topic};
use kafkit_writer::{Message, Writer};

const PARTITIONS: i32 = 3;

const RECORDS: usize = 300;

/// Everything the hook saw, as plain values.
/// One commit event: the group, each partition's offset, success.
#[derive(Debug)]
struct Commit(String, Vec<(i32, i64)>, bool);

#[derive(Default)]
struct Seen {
    connects: Vec<(String, bool)>,
    disconnects: Vec<String>,
    requests: Vec<(String, ApiKey, Duration, bool)>,
    buffered: usize,
    acks: Vec<(i32, i64, u64, Option<String>)>,
    batch_records: usize,
    fetches: Vec<(i32, i64, i64)>,
    consumed: Vec<(i32, i64, Option<String>, Option<Bytes>)>,
    commits: Vec<Commit>,
    assigned: Vec<(String, i32, BTreeSet<i32>)>,
}

#[derive(Default)]
struct Recorder(Mutex<Seen>);

impl Recorder {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap()
    }
}

impl Hook for Recorder {
    fn on_connect(&self, e: &ConnectEvent<'_>) {
        let ok = e.error.is_none();
        self.seen().connects.push((e.broker.to_owned(), ok));
    }
    fn on_disconnect(&self, e: &DisconnectEvent<'_>) {
        self.seen().disconnects.push(e.broker.to_owned());
    }
    fn on_request(&self, e: &RequestEvent<'_>) {
        let ok = e.error.is_none() && e.response_bytes > 0 && e.in_flight >= 1;
        let request = (e.broker.to_owned(), e.api, e.duration, ok);
        self.seen().requests.push(request);
    }
    fn on_produce_record(
        &self,
        r: &ProduceRecord<'_>,
        set: &mut SetHeaders,
    ) -> Option<RecordToken> {
        let mut seen = self.seen();
        seen.buffered += 1;
        // The key doubles as the record's number: the header must come
        // back on that record.
        let key = r.key.map(|k| String::from_utf8_lossy(k).into_owned());
        set.set("hook-key", key.unwrap_or_default());
        Some(Box::new(seen.buffered as u64))
    }
    fn on_produce_acked(&self, a: &ProduceAck<'_>, token: RecordToken) {
        let n = *token.downcast::<u64>().expect("the token given");
        let error = a.error_type.map(str::to_owned);
        self.seen().acks.push((a.partition, a.offset, n, error));
    }
    fn on_produce_batch(&self, e: &ProduceBatchEvent<'_>) {
        if e.attempt == 1 {
            self.seen().batch_records += e.records;
        }
    }
    fn on_fetch(&self, e: &FetchEvent<'_>) {
        self.seen()
            .fetches
            .push((e.partition, e.next_offset, e.lag()));
    }
    fn on_consume_record(&self, r: &ConsumeRecord<'_>) {
        let group = r.group.map(str::to_owned);
        let header = r.headers.header("hook-key");
        self.seen()
            .consumed
            .push((r.partition, r.offset, group, header));
    }
    fn on_commit(&self, e: &CommitEvent<'_>) {
        let offsets = e.offsets.iter().map(|&(_, p, o)| (p, o)).collect();
        let commit = Commit(e.group.to_owned(), offsets, e.error.is_none());
        self.seen().commits.push(commit);
    }
    fn on_rebalance(&self, e: &RebalanceEvent<'_>) {
        if !e.assigned.is_empty() {
            let partitions = e.assigned.iter().map(|&(_, p)| p).collect();
            let member = e.member_id.to_owned();
            self.seen()
                .assigned
                .push((member, e.generation, partitions));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_sees_every_record_fetch_commit_and_rebalance_with_real_values() {
    let broker = TestBroker::start();
    let topic = unique_topic("hooks");
    let group = unique_topic("hooks-group");
    broker.create_topic(&topic, PARTITIONS as u32);
    let recorder = Arc::new(Recorder::default());
    let hooks = Hooks::from_arc(recorder.clone());

    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .hooks(hooks.clone())
        .build()
        .await
        .unwrap();
    let messages: Vec<Message> = (0..RECORDS)
        .map(|i| Message::new(format!("v{i}")).with_key(format!("k{i}")))
        .collect();
    for result in writer.write_messages(&messages).await.unwrap() {
        result.unwrap();
    }
    writer.close().await.unwrap();
    {
        let seen = recorder.seen();
        assert_eq!(seen.buffered, RECORDS);
        assert_eq!(seen.acks.len(), RECORDS, "one acknowledgement per record");
        assert_eq!(
            seen.batch_records, RECORDS,
            "first sends add up to the records"
        );
        let tokens: BTreeSet<u64> = seen.acks.iter().map(|a| a.2).collect();
        assert_eq!(tokens.len(), RECORDS, "each record's own token came back");
        let places: BTreeSet<(i32, i64)> = seen.acks.iter().map(|a| (a.0, a.1)).collect();
        assert_eq!(places.len(), RECORDS, "distinct partitions and offsets");
        assert!(
            seen.acks
                .iter()
                .all(|a| a.3.is_none() && a.1 >= 0 && a.0 < PARTITIONS)
        );
        let produces = seen.requests.iter().filter(|r| r.1 == ApiKey::Produce);
        assert!(produces.clone().count() >= 1);
        assert!(
            produces.clone().all(|r| r.3),
            "answered produce round trips"
        );
        assert!(produces.clone().all(|r| !r.2.is_zero()));
        assert!(seen.connects.iter().all(|c| c.1), "{:?}", seen.connects);
        assert!(!seen.connects.is_empty());
    }
    // Where each partition ends, from the acknowledgements.
    let ends: BTreeMap<i32, i64> = recorder
        .seen()
        .acks
        .iter()
        .fold(BTreeMap::new(), |mut m, a| {
            let end = m.entry(a.0).or_insert(0);
            *end = (*end).max(a.1 + 1);
            m
        });

    let mut reader = Reader::builder([broker.bootstrap()])
        .group_id(&group)
        .topics([&topic])
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(500))
        .hooks(hooks.clone())
        .build()
        .await
        .unwrap();
    let mut read = Vec::new();
    while read.len() < RECORDS {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.fetch_message())
            .await
            .expect("all records within 30 s")
            .unwrap();
        assert_eq!(
            m.headers.get("hook-key").and_then(|h| h.value),
            m.key.clone(),
            "the header the hook set is on its record"
        );
        read.push(m);
    }
    reader.commit_messages(&read).await.unwrap();
    reader.close().await.unwrap();

    let seen = recorder.seen();
    assert_eq!(
        seen.consumed.len(),
        RECORDS,
        "one event per message handed out"
    );
    for (i, (partition, offset, g, header)) in seen.consumed.iter().enumerate() {
        assert_eq!((*partition, *offset), (read[i].partition, read[i].offset));
        assert_eq!(g.as_deref(), Some(group.as_str()));
        assert_eq!(header, &read[i].key);
    }
    // The last fetch of each partition reached its end: no lag.
    let mut last: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for &(p, next, lag) in &seen.fetches {
        last.insert(p, (next, lag));
    }
    for (p, end) in &ends {
        assert_eq!(
            last.get(p),
            Some(&(*end, 0)),
            "partition {p}: {:?}",
            seen.fetches
        );
    }
    // The commit carried every partition's end; none failed.
    let committed: BTreeMap<i32, i64> = seen
        .commits
        .iter()
        .inspect(|c| assert!(c.2 && c.0 == group, "{:?}", seen.commits))
        .flat_map(|c| c.1.iter().copied())
        .collect();
    assert_eq!(committed, ends);
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let (member, generation, partitions) = seen.assigned.first().expect("an assignment");
    assert!(!member.is_empty() && *generation >= 1);
    assert_eq!(partitions, &all);
    let fetches = seen
        .requests
        .iter()
        .filter(|r| r.1 == ApiKey::Fetch)
        .count();
    assert!(fetches >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reports_its_connect_round_trips_and_close() {
    let broker = TestBroker::start();
    let recorder = Arc::new(Recorder::default());
    let config = ConnConfig {
        hooks: Hooks::from_arc(recorder.clone()),
        ..ConnConfig::default()
    };
    let addr = broker.addr().to_string();
    let conn = Conn::dial_with(&addr, config.clone()).await.unwrap();
    conn.close().await.unwrap();
    {
        let seen = recorder.seen();
        assert_eq!(seen.connects, [(addr.clone(), true)]);
        // Version negotiation is the first round trip.
        assert_eq!(seen.requests[0].0, addr);
        assert_eq!(seen.requests[0].1, ApiKey::ApiVersions);
        assert!(seen.requests[0].3);
        assert_eq!(seen.disconnects, [addr]);
    }

    // A refused dial is a connect event with its error.
    // A port bound and released: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    assert!(Conn::dial_with(&dead, config).await.is_err());
    assert_eq!(recorder.seen().connects.last(), Some(&(dead, false)));
}
