//! kafkit-admin's transaction calls against Apache Kafka 4.3.1: the twins
//! of `admin_scripted_security.rs`'s transactions test (DescribeProducers,
//! DescribeTransactions, ListTransactions), with the real broker's answers
//! about live kafkit writers.
//!
//! - A transactional writer with a transaction open on two partitions:
//!   DescribeTransactions says Ongoing with those partitions, its timeout
//!   and start; ListTransactions finds it by state and by producer id;
//!   DescribeProducers shows its sequences and the transaction's first
//!   offset, where ListOffsets read_committed stops. After the commit all
//!   of them say so (CompleteCommit, no open transaction, the marker's
//!   coordinator epoch, the last stable offset past the marker).
//! - An idempotent writer: DescribeProducers names the producer id its
//!   batches carry and its last sequence; an unwritten partition has no
//!   producers and a partition the topic lacks fails alone.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafkit_admin::{Admin, ErrorCode, IsolationLevel, OffsetSpec, ProducerState, TopicPartition};
use kafkit_protocol::records::RecordSet;
use kafkit_tests::{RawClient, TestBroker, eventually, unique_topic};
use kafkit_writer::{Message, Writer};

/// The run's broker, or `None` (the test returns) on tansu: these twins
/// pin Apache Kafka's own answers, which tansu does not give.
async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([&broker.bootstrap()])
        .build()
        .await
        .expect("admin connects")
}

/// Now, in whole milliseconds (the broker's resolution).
fn now_ms() -> SystemTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// The producers of each of `partitions`, each partition's own answer.
async fn producers(
    admin: &Admin,
    partitions: &[TopicPartition],
) -> BTreeMap<TopicPartition, Vec<ProducerState>> {
    let described = admin
        .describe_producers(partitions)
        .await
        .expect("describe producers");
    let described = described
        .into_iter()
        .map(|(tp, r)| (tp, r.expect("described")));
    described.collect()
}

/// The latest offset of `tp` as a reader at `isolation` sees it.
async fn end(admin: &Admin, tp: &TopicPartition, isolation: IsolationLevel) -> i64 {
    let specs = BTreeMap::from([(tp.clone(), OffsetSpec::Latest)]);
    let mut answer = admin.list_offsets(&specs, isolation).await.expect("list");
    answer.remove(tp).expect("asked").expect("answered").offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_described_listed_and_its_producer_found_until_committed() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let (topic, id) = (unique_topic("akx-txn"), unique_topic("akx-txn-id"));
    broker.create_topic(&topic, 2);
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .transactional_id(&id)
        .transaction_timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("transactional writer");

    let began = now_ms();
    writer.begin_transaction().expect("begin");
    let messages = [0, 0, 0, 1, 1].map(|p| Message::new(format!("to {p}")).with_partition(p));
    let written = writer.write_messages(&messages).await.expect("write");
    let offsets: Vec<(i32, i64)> = written
        .into_iter()
        .map(|r| r.map(|m| (m.partition, m.offset)).expect("written"))
        .collect();
    assert_eq!(offsets, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]);

    let unknown = unique_topic("akx-txn-unknown");
    let described = admin
        .describe_transactions(&[&id, &unknown])
        .await
        .expect("describe");
    let txn = described[&id].as_ref().expect("described").clone();
    assert_eq!(
        (txn.state.as_str(), txn.timeout),
        ("Ongoing", Duration::from_secs(20))
    );
    let started = txn.start_time.expect("an open transaction started");
    assert!(
        began <= started && started <= SystemTime::now(),
        "{started:?}"
    );
    let mut partitions = txn.partitions.clone();
    partitions.sort();
    assert_eq!(partitions, [p0.clone(), p1.clone()]);
    let (pid, epoch) = (txn.producer_id, txn.producer_epoch);
    assert!(pid >= 0 && epoch >= 0, "{txn:?}");
    let e = described[&unknown].as_ref().expect_err("never used");
    assert_eq!(e.code(), Some(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND));

    let listing = |states: &'static [&'static str]| {
        let admin = admin.clone();
        async move {
            let listed = admin.list_transactions(states, &[pid]).await.expect("list");
            assert!(listed.errors.is_empty(), "{:?}", listed.errors);
            let found = listed.transactions.iter();
            let found = found.map(|t| (t.transactional_id.clone(), t.producer_id, t.state.clone()));
            found.collect::<Vec<_>>()
        }
    };
    let ongoing = vec![(id.clone(), pid, "Ongoing".to_string())];
    assert_eq!(listing(&[]).await, ongoing, "by producer id");
    assert_eq!(listing(&["Ongoing", "PrepareCommit"]).await, ongoing);
    assert!(listing(&["CompleteCommit"]).await.is_empty());
    let all_ongoing = admin
        .list_transactions(&["Ongoing"], &[])
        .await
        .expect("list");
    assert!(
        all_ongoing
            .transactions
            .iter()
            .any(|t| t.transactional_id == id && t.coordinator == 1)
    );

    // Each partition's producer state: its sequences and the open
    // transaction's first offset, which read_committed readers stop at.
    let open = producers(&admin, &[p0.clone(), p1.clone()]).await;
    for (tp, last_sequence) in [(&p0, 2), (&p1, 1)] {
        let [state] = open[tp].as_slice() else {
            panic!("{tp:?}: {:?}", open[tp])
        };
        let got = (state.producer_id, state.producer_epoch, state.last_sequence);
        assert_eq!(got, (pid, i32::from(epoch), last_sequence), "{tp:?}");
        assert_eq!(state.current_txn_start_offset, Some(0), "{tp:?}");
        assert_eq!(state.coordinator_epoch, None, "no marker yet");
        assert!(
            state.last_timestamp.is_some_and(|t| began <= t),
            "{state:?}"
        );
    }
    assert_eq!(end(&admin, &p0, IsolationLevel::ReadCommitted).await, 0);
    assert_eq!(end(&admin, &p0, IsolationLevel::ReadUncommitted).await, 3);

    // The commit: markers written, the transaction complete.
    writer.commit_transaction().await.expect("commit");
    let done = eventually("the transaction completes", || async {
        let described = admin.describe_transactions(&[&id]).await;
        let txn = described
            .map_err(|e| e.to_string())?
            .remove(&id)
            .expect("asked");
        match txn.map_err(|e| e.to_string())? {
            t if t.state == "CompleteCommit" => Ok(t),
            t => Err(format!("{t:?}")),
        }
    })
    .await;
    assert!(done.partitions.is_empty(), "{done:?}");
    assert_eq!((done.producer_id, done.start_time), (pid, Some(started)));
    assert!(listing(&["Ongoing"]).await.is_empty());
    let complete = vec![(id.clone(), pid, "CompleteCommit".to_string())];
    assert_eq!(listing(&["CompleteCommit"]).await, complete);
    let closed = producers(&admin, std::slice::from_ref(&p0)).await;
    let [state] = closed[&p0].as_slice() else {
        panic!("{:?}", closed[&p0])
    };
    // Under transactions v2 (KIP-890), a Kafka 4 cluster's default, the
    // coordinator bumps the epoch at EndTxn and writes the markers with the
    // new epoch, which starts the partition's sequences afresh; under v1
    // the markers keep the records' epoch and their last sequence stays.
    let v2 = done.producer_epoch > epoch;
    let want = if v2 { (epoch + 1, -1) } else { (epoch, 2) };
    assert_eq!(
        (state.producer_id, state.producer_epoch, state.last_sequence),
        (pid, i32::from(want.0), want.1),
        "v2: {v2}"
    );
    assert_eq!(state.current_txn_start_offset, None, "no transaction open");
    assert!(state.coordinator_epoch.is_some(), "the marker's: {state:?}");
    assert_eq!(
        end(&admin, &p0, IsolationLevel::ReadCommitted).await,
        4,
        "3 records, a marker"
    );
    writer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_producers_names_an_idempotent_writers_id_and_last_sequence() {
    let Some(broker) = TestBroker::start_kafka() else {
        return;
    };
    let admin = admin(&broker).await;
    let topic = unique_topic("akx-idempotent");
    broker.create_topic(&topic, 2);
    let [p0, p1, p9] = [0, 1, 9].map(|p| TopicPartition::new(&topic, p));
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .idempotent(true)
        .build()
        .await
        .expect("idempotent writer");
    let began = now_ms();
    for count in [5, 3] {
        let messages: Vec<Message> = (0..count)
            .map(|i| Message::new(format!("v{i}")).with_partition(0))
            .collect();
        for r in writer.write_messages(&messages).await.expect("write") {
            r.expect("written");
        }
    }

    // The producer id the writer's batches carry.
    let mut client = RawClient::connect(broker.addr());
    let data = client.fetch(&topic, 0, 0).records.expect("records");
    let batches: Vec<i64> = RecordSet::new(data)
        .batches()
        .map(|b| b.expect("decodes").producer_id())
        .collect();
    assert!(
        batches.len() >= 2 && batches.iter().all(|id| *id == batches[0]),
        "{batches:?}"
    );

    let described = admin
        .describe_producers(&[p0.clone(), p1.clone(), p9.clone()])
        .await
        .expect("describe");
    let e = described[&p9].as_ref().expect_err("no partition 9");
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
    assert_eq!(
        described[&p1].as_ref().expect("described"),
        &[],
        "nobody wrote to p1"
    );
    let [state] = described[&p0].as_ref().expect("described").as_slice() else {
        panic!("one producer: {:?}", described[&p0])
    };
    let got = (state.producer_id, state.producer_epoch, state.last_sequence);
    assert_eq!(got, (batches[0], 0, 7), "8 records: sequences 0 to 7");
    let txn = (state.current_txn_start_offset, state.coordinator_epoch);
    assert_eq!(txn, (None, None), "not transactional");
    assert!(
        state.last_timestamp.is_some_and(|t| began <= t),
        "{state:?}"
    );
    writer.close().await.expect("close");
}
