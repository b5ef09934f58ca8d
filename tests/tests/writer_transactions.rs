//! The transactional writer against tansu over TCP: committed records land
//! followed by a commit marker (an offset the partition skips), an abort
//! fails the records not yet sent and the writer goes on, offsets sent to
//! a transaction are where the group resumes, a second writer with the
//! same transactional id fences the first, close aborts an open
//! transaction, a record that fails before reaching a batch fails the
//! commit, writes racing 20 commits either land in one committed
//! transaction or are refused, and misuse is a typed error. tansu's read_committed
//! filtering is broken (BROKERS.md), so nothing here asserts what a
//! read_committed reader sees; the fault cases tansu cannot produce are in
//! `writer_transactions_faults.rs` (librdkafka's mock cluster and a
//! scripted peer).

use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::{Message as Record, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, IsolationLevel, Reader, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};
use kafkit_writer::{ConsumerGroupMetadata, Error, Message, TxnOffset, Writer, WriterBuilder};

fn txn_writer(broker: &TestBroker, id: &str, topic: &str) -> WriterBuilder {
    Writer::builder([broker.bootstrap()])
        .topic(topic)
        .transactional_id(id)
        .transaction_timeout(Duration::from_secs(20))
}

/// Appends `value` to partition 0 without a transaction; its offset.
async fn append_plain(broker: &TestBroker, topic: &str, value: &str) -> i64 {
    let conn = kafkit_conn::dial_leader(broker.bootstrap(), topic, 0)
        .await
        .unwrap();
    conn.write_messages(&[Record::new(value.to_owned())])
        .await
        .unwrap()
        .expect("acks=all gives an offset")
}

/// Waits (bounded) until partition 0 of `topic` has no open transaction
/// and every marker is written: its last stable offset is its high watermark.
async fn wait_stable(broker: &TestBroker, topic: &str) {
    let (addr, topic) = (broker.addr(), topic.to_owned());
    kafkit_tests::eventually("the partition is stable", || {
        let topic = topic.clone();
        async move {
            let data = tokio::task::spawn_blocking(move || {
                kafkit_tests::RawClient::connect(addr).fetch(&topic, 0, 0)
            })
            .await
            .map_err(|e| e.to_string())?;
            if data.last_stable_offset >= data.high_watermark {
                Ok(())
            } else {
                Err(format!(
                    "LSO {} below HW {}",
                    data.last_stable_offset, data.high_watermark
                ))
            }
        }
    })
    .await;
}

/// Reads partition 0 from the start (read_uncommitted) until `last`:
/// each record's value and offset, and the position after it.
async fn read_log(broker: &TestBroker, topic: &str, last: &str) -> (Vec<(String, i64)>, i64) {
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let tp = TopicPartition::new(topic, 0);
    let mut fetcher = Fetcher::new(transport, FetchConfig::default());
    fetcher.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), fetcher.next())
            .await
            .expect("a record within 10 s")
            .expect("no fetch error");
        let value = String::from_utf8(m.value_bytes().to_vec()).unwrap();
        let done = value == last;
        out.push((value, m.offset));
        if done {
            return (out, fetcher.position(&tp).unwrap());
        }
    }
}

fn messages(values: &[&str]) -> Vec<Message> {
    values.iter().map(|v| Message::new(v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_records_are_followed_by_a_commit_marker() {
    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-commit");
    broker.create_topic(&topic, 1);
    let writer = txn_writer(&broker, &unique_topic("wtxn-commit-id"), &topic)
        .build()
        .await
        .unwrap();

    writer.begin_transaction().unwrap();
    for r in writer
        .write_messages(&messages(&["a", "b", "c"]))
        .await
        .unwrap()
    {
        r.unwrap();
    }
    writer.commit_transaction().await.unwrap();
    writer.begin_transaction().unwrap();
    let results = writer.write_messages(&messages(&["d", "e"])).await.unwrap();
    let offsets: Vec<i64> = results.into_iter().map(|r| r.unwrap().offset).collect();
    writer.commit_transaction().await.unwrap();
    // The first transaction's marker took offset 3.
    assert_eq!(offsets, [4, 5]);
    // An empty transaction commits without a coordinator round trip.
    writer.begin_transaction().unwrap();
    writer.commit_transaction().await.unwrap();
    let stats = writer.stats();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_aborted),
        (3, 0)
    );
    assert_eq!(stats.records, 5);
    writer.close().await.unwrap();
    // EndTxn returns once the coordinator decided the commit; it writes the
    // markers to the partitions afterwards (WriteTxnMarkers), so a plain
    // append right after can land before the second marker (offset 6 seen
    // in CI). The next transaction's records wait for it, a plain producer
    // does not: wait until the partition is stable.
    wait_stable(&broker, &topic).await;
    // The second commit marker is offset 6: the next record goes at 7.
    assert_eq!(append_plain(&broker, &topic, "end").await, 7);

    let (log, position) = read_log(&broker, &topic, "end").await;
    let expected: Vec<(String, i64)> =
        [("a", 0), ("b", 1), ("c", 2), ("d", 4), ("e", 5), ("end", 7)]
            .iter()
            .map(|(v, o)| (v.to_string(), *o))
            .collect();
    assert_eq!(log, expected, "markers are offsets no record has");
    assert_eq!(position, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_fails_unsent_records_and_the_writer_goes_on() {
    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-abort");
    broker.create_topic(&topic, 1);
    // A long linger keeps the second record in its open batch.
    let writer = txn_writer(&broker, &unique_topic("wtxn-abort-id"), &topic)
        .linger(Duration::from_secs(30))
        .build()
        .await
        .unwrap();

    writer.begin_transaction().unwrap();
    let sent = writer.send(Message::new("sent")).await.unwrap();
    writer.flush().await.unwrap();
    assert_eq!(sent.await.unwrap().offset, 0);
    let unsent = writer.send(Message::new("unsent")).await.unwrap();
    writer.abort_transaction().await.unwrap();
    assert!(
        matches!(unsent.await, Err(Error::TransactionAborted)),
        "a record not sent when the transaction aborted fails"
    );

    writer.begin_transaction().unwrap();
    let after = writer.send(Message::new("after")).await.unwrap();
    writer.commit_transaction().await.unwrap();
    // The abort marker took offset 1.
    assert_eq!(after.await.unwrap().offset, 2);
    let stats = writer.stats();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_aborted),
        (1, 1)
    );
    assert_eq!(stats.epoch_bumps, 0, "no sent batch failed: no new epoch");
    // The caller saw each record's fate: close has nothing more to report.
    writer.close().await.unwrap();
    // The commit marker is offset 3 once written: Kafka writes it after
    // EndTxn has answered, so wait for the partition to be stable first.
    wait_stable(&broker, &topic).await;
    assert_eq!(append_plain(&broker, &topic, "end").await, 4);

    let (log, _) = read_log(&broker, &topic, "end").await;
    let values: Vec<&str> = log.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        values,
        ["sent", "after", "end"],
        "the unsent record never reached the log"
    );
}

/// A record `send` accepted but the writer could not place (its topic's
/// metadata arrives after the send and lacks the partition it names)
/// fails the transaction: the commit is refused as abortable instead of
/// committing the other records without it, and the abort lets the
/// writer go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_failing_before_its_batch_fails_the_commit() {
    let broker = TestBroker::start();
    let (kept, missing) = (unique_topic("wtxn-kept"), unique_topic("wtxn-missing"));
    broker.create_topic(&kept, 1);
    broker.create_topic(&missing, 1);
    let writer = Writer::builder([broker.bootstrap()])
        .transactional_id(unique_topic("wtxn-missing-id"))
        .build()
        .await
        .unwrap();

    writer.begin_transaction().unwrap();
    let kept_delivery = writer
        .send(Message::new("kept").with_topic(&kept))
        .await
        .unwrap();
    // The first record for this topic: it waits for the topic's metadata.
    let lost = writer
        .send(
            Message::new("nowhere")
                .with_topic(&missing)
                .with_partition(5),
        )
        .await
        .unwrap();
    let commit = tokio::time::timeout(Duration::from_secs(20), writer.commit_transaction())
        .await
        .expect("the commit returns once every record has its outcome");
    let e = commit.expect_err("a commit without the failed record");
    assert!(e.is_abortable(), "abortable, not {e:?}");
    assert!(lost.await.is_err(), "the record itself failed");
    // The other record was either written before the transaction failed
    // or failed with it (unsent records of a failed transaction do); the
    // abort drops it from read_committed views either way.
    if let Err(e) = kept_delivery.await {
        assert!(e.is_abortable(), "failed with the transaction, not {e:?}");
    }
    writer.abort_transaction().await.unwrap();

    writer.begin_transaction().unwrap();
    let after = writer
        .send(Message::new("after").with_topic(&kept))
        .await
        .unwrap();
    writer.commit_transaction().await.unwrap();
    after.await.unwrap();
    let stats = writer.stats();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_aborted),
        (1, 1)
    );
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_at_the_offsets_sent_to_a_committed_transaction() {
    let broker = TestBroker::start();
    let input = unique_topic("wtxn-in");
    let output = unique_topic("wtxn-out");
    let group = unique_topic("wtxn-group");
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    let conn = kafkit_conn::dial_leader(broker.bootstrap(), &input, 0)
        .await
        .unwrap();
    let records: Vec<Record> = (0..10).map(|i| Record::new(format!("in-{i}"))).collect();
    conn.write_messages(&records).await.unwrap();

    let reader_for = || {
        Reader::builder([broker.bootstrap()])
            .group_id(&group)
            .topics([input.as_str()])
            .session_timeout(Duration::from_secs(2))
            .heartbeat_interval(Duration::from_millis(300))
    };
    let mut reader = reader_for().build().await.unwrap();
    let writer = txn_writer(&broker, &unique_topic("wtxn-eos-id"), &output)
        .build()
        .await
        .unwrap();

    // Consume six records, transform them, and commit both in one transaction.
    writer.begin_transaction().unwrap();
    let mut next = 0;
    for _ in 0..6 {
        let m = tokio::time::timeout(Duration::from_secs(20), reader.fetch_message())
            .await
            .expect("a record within 20 s")
            .unwrap();
        let value = format!("out-{}", String::from_utf8_lossy(m.value_bytes()));
        // The commit waits for every record: no need to hold the Delivery.
        drop(writer.send(Message::new(value)).await.unwrap());
        next = m.offset + 1;
    }
    let member = reader.group_metadata().expect("a group reader");
    let group_meta = ConsumerGroupMetadata {
        group_id: member.group_id,
        generation_id: member.generation_id,
        member_id: member.member_id,
        group_instance_id: member.group_instance_id,
    };
    let offsets = [TxnOffset {
        topic: input.clone(),
        partition: 0,
        offset: next,
        metadata: None,
    }];
    writer
        .send_offsets_to_transaction(&offsets, &group_meta)
        .await
        .unwrap();
    writer.commit_transaction().await.unwrap();
    writer.close().await.unwrap();
    reader.close().await.unwrap();

    // EndTxn answers once the commit is decided; the coordinator writes
    // the marker that makes the offsets stable afterwards. An exactly-once
    // consumer reads read_committed, so its OffsetFetch asks for stable
    // offsets (KIP-447) and waits for the marker; a read_uncommitted one
    // could still see none and start at 0.
    let mut resumed = reader_for()
        .fetch(FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        })
        .build()
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), resumed.fetch_message())
        .await
        .expect("a record within 20 s")
        .unwrap();
    assert_eq!(
        m.offset, 6,
        "the group resumes at the offset committed in the transaction"
    );
    resumed.close().await.unwrap();
    let (log, _) = read_log(&broker, &output, "out-in-5").await;
    assert_eq!(log.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_with_the_same_id_fences_the_first() {
    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-fence");
    broker.create_topic(&topic, 1);
    let id = unique_topic("wtxn-fence-id");
    let first = txn_writer(&broker, &id, &topic).build().await.unwrap();
    first.begin_transaction().unwrap();
    first
        .send(Message::new("zombie-1"))
        .await
        .unwrap()
        .await
        .unwrap();

    // A new instance takes over the id: the first's epoch is stale.
    let second = txn_writer(&broker, &id, &topic).build().await.unwrap();
    let late = first.send(Message::new("zombie-2")).await.unwrap();
    let commit = first.commit_transaction().await.unwrap_err();
    assert!(
        commit.is_fatal(),
        "the fenced writer's commit is fatal: {commit}"
    );
    assert!(late.await.is_err(), "the fenced writer's record is refused");
    let again = first.begin_transaction().unwrap_err();
    assert!(again.is_fatal(), "a fenced writer stays fenced: {again}");
    assert!(first.send(Message::new("x")).await.unwrap_err().is_fatal());
    // close reports the refused record, as a flush would.
    // Kafka refuses a Produce with a stale epoch as INVALID_PRODUCER_EPOCH
    // (KIP-588: only the transaction APIs answer PRODUCER_FENCED); tansu
    // answers PRODUCER_FENCED to the Produce as well.
    let closed = first.close().await.unwrap_err();
    let refused = if broker.is_tansu() {
        kafkit_writer::ErrorCode::PRODUCER_FENCED
    } else {
        kafkit_writer::ErrorCode::INVALID_PRODUCER_EPOCH
    };
    assert_eq!(closed.code(), Some(refused), "{closed}");

    second.begin_transaction().unwrap();
    let ok = second.send(Message::new("successor")).await.unwrap();
    second.commit_transaction().await.unwrap();
    ok.await.unwrap();
    second.close().await.unwrap();
    let (log, _) = read_log(&broker, &topic, "successor").await;
    let values: Vec<&str> = log.iter().map(|(v, _)| v.as_str()).collect();
    assert!(!values.contains(&"zombie-2"), "{values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_aborts_an_open_transaction() {
    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-close");
    broker.create_topic(&topic, 1);
    let id = unique_topic("wtxn-close-id");
    let writer = txn_writer(&broker, &id, &topic).build().await.unwrap();
    writer.begin_transaction().unwrap();
    writer
        .send(Message::new("open"))
        .await
        .unwrap()
        .await
        .unwrap();
    writer.close().await.unwrap();

    // The id is free at once: no open transaction to wait out.
    let next = txn_writer(&broker, &id, &topic).build().await.unwrap();
    next.begin_transaction().unwrap();
    let d = next.send(Message::new("next")).await.unwrap();
    next.commit_transaction().await.unwrap();
    // Offset 1 is the abort marker close wrote.
    assert_eq!(d.await.unwrap().offset, 2);
    next.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_is_a_typed_error() {
    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-misuse");
    broker.create_topic(&topic, 1);
    let writer = txn_writer(&broker, &unique_topic("wtxn-misuse-id"), &topic)
        .build()
        .await
        .unwrap();

    // Writes outside a transaction, in every form.
    let m = Message::new("outside");
    assert!(matches!(
        writer.send(m.clone()).await,
        Err(Error::NoTransaction)
    ));
    assert!(matches!(
        writer.try_send(m.clone()),
        Err(Error::NoTransaction)
    ));
    assert!(matches!(
        writer.produce(&m).await,
        Err(Error::NoTransaction)
    ));
    assert!(matches!(
        writer.write_messages(std::slice::from_ref(&m)).await,
        Err(Error::NoTransaction)
    ));
    // Ending a transaction that was never begun.
    assert!(matches!(
        writer.commit_transaction().await,
        Err(Error::NoTransaction)
    ));
    assert!(matches!(
        writer.abort_transaction().await,
        Err(Error::NoTransaction)
    ));
    let offsets = [TxnOffset {
        topic: topic.clone(),
        partition: 0,
        offset: 1,
        metadata: None,
    }];
    let group = ConsumerGroupMetadata::new(unique_topic("wtxn-misuse-group"));
    assert!(matches!(
        writer.send_offsets_to_transaction(&offsets, &group).await,
        Err(Error::NoTransaction)
    ));

    writer.begin_transaction().unwrap();
    assert!(matches!(
        writer.begin_transaction(),
        Err(Error::TransactionState {
            operation: "begin_transaction",
            ..
        })
    ));
    writer.abort_transaction().await.unwrap();
    writer.close().await.unwrap();

    // Transaction calls on a writer without a transactional id.
    let plain = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        plain.begin_transaction(),
        Err(Error::TransactionState {
            state: "not transactional",
            ..
        })
    ));
    plain
        .send(Message::new(Bytes::from_static(b"plain")))
        .await
        .unwrap()
        .await
        .unwrap();
    plain.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_commits_land_in_exactly_one_transaction_or_are_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let broker = TestBroker::start();
    let topic = unique_topic("wtxn-race");
    broker.create_topic(&topic, 1);
    let writer = Arc::new(
        txn_writer(&broker, &unique_topic("wtxn-race-id"), &topic)
            .linger(Duration::from_millis(2))
            .build()
            .await
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (writer, stop) = (writer.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut deliveries, mut refused) = (Vec::new(), 0);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                match writer.send(Message::new(format!("{task}-{i}"))).await {
                    Ok(d) => {
                        deliveries.push(d);
                        // A few hundred records per transaction, not millions.
                        tokio::time::sleep(Duration::from_micros(500)).await;
                    }
                    Err(Error::NoTransaction | Error::TransactionState { .. }) => {
                        refused += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("unexpected write error: {e}"),
                }
                i += 1;
            }
            (deliveries, refused)
        }));
    }
    for _ in 0..20 {
        writer.begin_transaction().unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        writer.commit_transaction().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let mut written = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (deliveries, r) = task.await.unwrap();
        refused += r;
        for d in deliveries {
            written.push(d.await.expect("every accepted record was committed").offset);
        }
    }
    assert!(refused > 0, "some writes raced a commit");
    assert!(!written.is_empty());
    // Nothing is left to send: every accepted record was in a commit.
    assert_eq!(writer.buffered(), (0, 0));
    assert_eq!(writer.stats().transactions_committed, 20);
    writer.close().await.unwrap();

    written.sort_unstable();
    written.dedup();
    let last = append_plain(&broker, &topic, "end").await;
    let (log, _) = read_log(&broker, &topic, "end").await;
    let offsets: Vec<i64> = log.iter().map(|(_, o)| *o).filter(|o| *o != last).collect();
    assert_eq!(
        offsets, written,
        "the log holds exactly the accepted records"
    );
    // Each non-empty transaction left one marker between its records.
    let markers = (last - offsets.len() as i64) as u64;
    assert!((1..=20).contains(&markers), "{markers} markers");
}
