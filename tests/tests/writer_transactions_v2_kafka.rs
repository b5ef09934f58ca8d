//! Transactions on Apache Kafka formatted with `transaction.version` 2
//! (KIP-890 part 2) and with level 1, the same scenario on each.
//!
//! Six transactions in a row, committed and aborted in turn, each writing
//! to both partitions of a topic (every record acknowledged before the
//! transaction ends, so aborted records are in the log) and some sending a
//! consumer group's offsets. Then:
//! - read_committed readers see exactly the committed records, in order;
//! - the group's committed offset is the one sent in the last committed
//!   transaction (aborted ones left no trace);
//! - the wire: with level 2 the writer sends no AddPartitionsToTxn and no
//!   AddOffsetsToTxn (Produce v12+ and TxnOffsetCommit v5+ add implicitly),
//!   with level 1 it sends both. Counted by the spans the writer opens for
//!   them, with a subscriber of this test's thread (a current-thread
//!   runtime runs every task of the writer there);
//! - the epoch: with level 2 the coordinator bumps it on every EndTxn
//!   (DescribeTransactions shows one more after each) and the writer's
//!   next transaction uses it (it would be fenced otherwise); with level 1
//!   it never moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_admin::{Admin, NewTopic, TopicPartition};
use kafkit_reader::{FetchConfig, IsolationLevel, Reader, StartOffset};
use kafkit_tests::{KafkaCluster, KafkaOptions, Listener, unique_topic};
use kafkit_writer::{ConsumerGroupMetadata, Message, TxnOffset, Writer};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One node at a time: two JVMs would share two cores.
static ONE_NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many transactions; even ones commit, odd ones abort.
const TRANSACTIONS: usize = 6;
/// Transactions that send offsets: two committed, one aborted.
const WITH_OFFSETS: [usize; 3] = [1, 2, 4];

/// Counts the spans opened on this thread, by name.
#[derive(Debug, Clone, Default)]
struct SpanCounts(Arc<Mutex<HashMap<&'static str, usize>>>);

impl SpanCounts {
    fn get(&self, name: &str) -> usize {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanCounts {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        *self
            .0
            .lock()
            .unwrap()
            .entry(attrs.metadata().name())
            .or_default() += 1;
    }
}

/// What one run saw.
struct Run {
    add_partitions: usize,
    add_offsets: usize,
    end_txns: usize,
    /// The coordinator's producer id and epoch after each EndTxn.
    epochs: Vec<(i64, i16)>,
}

#[tokio::test]
async fn transaction_version_2_adds_implicitly_and_bumps_the_epoch_on_every_end() {
    let run = scenario(2).await;
    assert_eq!(run.add_partitions, 0, "no AddPartitionsToTxn under v2");
    assert_eq!(run.add_offsets, 0, "no AddOffsetsToTxn under v2");
    assert_eq!(run.end_txns, TRANSACTIONS + 1);
    for pair in run.epochs.windows(2) {
        let ((id0, e0), (id1, e1)) = (pair[0], pair[1]);
        assert!(
            (id1 == id0 && e1 == e0 + 1) || (id1 != id0 && e1 == 0),
            "each EndTxn bumps the epoch: {:?}",
            run.epochs
        );
    }
}

#[tokio::test]
async fn transaction_version_1_keeps_the_explicit_adds_and_its_epoch() {
    let run = scenario(1).await;
    assert!(run.add_partitions > 0, "AddPartitionsToTxn under v1");
    assert_eq!(
        run.add_offsets,
        WITH_OFFSETS.len(),
        "AddOffsetsToTxn under v1"
    );
    assert_eq!(run.end_txns, TRANSACTIONS + 1);
    assert!(
        run.epochs.windows(2).all(|p| p[0] == p[1]),
        "the epoch never moves under v1: {:?}",
        run.epochs
    );
}

/// The whole scenario on a node formatted with `transaction.version` at
/// `level`.
async fn scenario(level: u16) -> Run {
    let _one = ONE_NODE.lock().await;
    let counts = SpanCounts::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(counts.clone()));
    let cluster = KafkaCluster::start(KafkaOptions {
        features: vec![("transaction.version".into(), level)],
        ..KafkaOptions::default()
    });
    let bootstrap = cluster.bootstrap(Listener::Plaintext);
    let admin = Admin::builder([&bootstrap])
        .build()
        .await
        .expect("admin connects");
    let (out, input) = (unique_topic("tv2-out"), unique_topic("tv2-in"));
    let (id, group) = (unique_topic("tv2-txn"), unique_topic("tv2-group"));
    let created = admin
        .create_topics(&[NewTopic::new(&out, 2), NewTopic::new(&input, 1)], false)
        .await
        .expect("create topics");
    for (name, result) in created {
        result.unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    cluster.wait_for_leaders(&[&out, &input], Duration::from_secs(60));

    let writer = Writer::builder([bootstrap.clone()])
        .topic(&out)
        .transactional_id(&id)
        .transaction_timeout(Duration::from_secs(30))
        .build()
        .await
        .expect("transactional writer");
    let mut epochs = Vec::new();
    let mut expected: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut committed_offset = None;
    for t in 0..=TRANSACTIONS {
        let last = t == TRANSACTIONS;
        let commit = last || t % 2 == 0;
        writer.begin_transaction().expect("begin");
        let mut messages = Vec::new();
        for partition in 0..2 {
            let values: Vec<String> = if last {
                vec![format!("end-{partition}")]
            } else {
                (0..3).map(|r| format!("t{t}-p{partition}-r{r}")).collect()
            };
            if commit {
                expected[partition as usize].extend(values.iter().cloned());
            }
            messages.extend(
                values
                    .into_iter()
                    .map(|v| Message::new(v).with_partition(partition)),
            );
        }
        for result in writer.write_messages(&messages).await.expect("write") {
            result.expect("each record is acknowledged");
        }
        if WITH_OFFSETS.contains(&t) {
            let offset = 10 * (t as i64 + 1);
            let offsets = [TxnOffset {
                topic: input.clone(),
                partition: 0,
                offset,
                metadata: None,
            }];
            writer
                .send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new(&group))
                .await
                .expect("send offsets");
            if commit {
                committed_offset = Some(offset);
            }
        }
        if commit {
            writer.commit_transaction().await.expect("commit");
        } else {
            writer.abort_transaction().await.expect("abort");
        }
        epochs.push(coordinator_epoch(&admin, &id).await);
    }
    let stats = writer.stats();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_aborted),
        (4, 3)
    );
    writer.close().await.expect("close");

    for (partition, expected) in expected.iter().enumerate() {
        let seen = read_committed(&bootstrap, &out, partition as i32).await;
        assert_eq!(&seen, expected, "partition {partition}, level {level}");
    }
    let offsets = admin.fetch_offsets(&group, None).await.expect("offsets");
    let tp = TopicPartition::new(&input, 0);
    let committed = offsets
        .get(&tp)
        .expect("the group committed the input partition")
        .as_ref()
        .expect("no error");
    assert_eq!(Some(committed.offset), committed_offset);
    assert_eq!(offsets.len(), 1, "{offsets:?}");

    Run {
        add_partitions: counts.get("kafka_txn_add_partitions"),
        add_offsets: counts.get("kafka_txn_add_offsets"),
        end_txns: counts.get("kafka_txn_end"),
        epochs,
    }
}

/// The transaction coordinator's producer id and epoch for `id`.
async fn coordinator_epoch(admin: &Admin, id: &str) -> (i64, i16) {
    let mut described = admin
        .describe_transactions(&[id])
        .await
        .expect("describe transactions");
    let d = described.remove(id).expect("asked").expect("described");
    (d.producer_id, d.producer_epoch)
}

/// The values a read_committed reader sees in `partition` up to and
/// including the `end-` record.
async fn read_committed(bootstrap: &str, topic: &str, partition: i32) -> Vec<String> {
    let fetch = FetchConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        ..FetchConfig::default()
    };
    let mut reader = Reader::builder([bootstrap.to_owned()])
        .partition(topic, partition)
        .start_offset(StartOffset::Earliest)
        .fetch(fetch)
        .build()
        .await
        .expect("reader");
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.fetch_message())
            .await
            .expect("a record within 30 s")
            .expect("no fetch error");
        let value = String::from_utf8(m.value_bytes().to_vec()).unwrap();
        let end = value.starts_with("end-");
        seen.push(value);
        if end {
            break;
        }
    }
    reader.close().await.ok();
    seen
}
