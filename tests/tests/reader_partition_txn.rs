//! Transactions as a `Fetcher` sees them on tansu: the commit and abort
//! markers the broker writes are control records, never handed out; a
//! read_committed fetcher gets committed transactional records and plain
//! ones in order. tansu does not filter aborted records (BROKERS.md), so
//! the assertion that aborted records are dropped is skipped on tansu by
//! name; the filter itself is unit-tested against hand-built fetch answers
//! in kafkit-reader (`fetcher::chunk` tests).

use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafkit_conn::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafkit_conn::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest,
};
use kafkit_conn::{
    Conn, CoordinatorKey, Error as ConnError, Message as Produce, Purpose, Transport,
    TransportConfig,
};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_reader::{FetchConfig, Fetcher, IsolationLevel, Message, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};

/// A transactional producer for one partition, spoken in raw requests.
struct TxnProducer {
    transport: Transport,
    id: String,
    coordinator: Conn,
    leader: Conn,
    topic: String,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
}

impl TxnProducer {
    async fn init(transport: &Transport, topic: &str) -> TxnProducer {
        let id = unique_topic("reader-txn-id");
        // A first transactional id makes Kafka create its transaction log,
        // whose coordinator answers COORDINATOR_NOT_AVAILABLE (retriable)
        // until it has loaded: retried with the transport's backoff.
        let (coordinator, answer) = transport
            .retry(|| async {
                let coordinator = transport
                    .coordinator(&CoordinatorKey::Transaction(id.clone()), Purpose::Admin)
                    .await?;
                let answer = coordinator
                    .request(InitProducerIdRequest {
                        transactional_id: Some(id.clone()),
                        transaction_timeout_ms: 60_000,
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    })
                    .await?;
                ConnError::check(answer.error_code, None)?;
                Ok((coordinator, answer))
            })
            .await
            .unwrap();
        let leader = transport.leader(topic, 0, Purpose::Produce).await.unwrap();
        TxnProducer {
            transport: transport.clone(),
            id,
            coordinator,
            leader,
            topic: topic.to_owned(),
            producer_id: answer.producer_id,
            epoch: answer.producer_epoch,
            sequence: 0,
        }
    }

    /// One transaction writing `values`, then committed or aborted.
    async fn transaction(&mut self, values: &[&str], commit: bool) {
        let add = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: self.id.clone(),
            v3_and_below_producer_id: self.producer_id,
            v3_and_below_producer_epoch: self.epoch,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: self.topic.clone(),
                partitions: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        };
        // v4+ is the broker-to-broker form (KIP-890); clients send v3. Kafka
        // answers CONCURRENT_TRANSACTIONS (retriable) while the previous
        // transaction's markers are still being written: retried.
        let coordinator = &self.coordinator;
        self.transport
            .retry(|| async {
                let answer = coordinator.request_at(3, add.clone()).await?;
                ConnError::check(answer.error_code, None)?;
                for topic in &answer.results_by_topic_v3_and_below {
                    for p in &topic.results_by_partition {
                        ConnError::check(p.partition_error_code, None)?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap();

        let mut batch = RecordBatchBuilder::new(0)
            .with_producer(self.producer_id, self.epoch, self.sequence)
            .with_transactional(true);
        for v in values {
            batch
                .append(now_ms(), None, Some(v.as_bytes()), &[])
                .unwrap();
        }
        self.sequence += values.len() as i32;
        let produce = ProduceRequest {
            transactional_id: Some(self.id.clone()),
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: self.topic.clone(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch.finish().unwrap()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        // v12: the topic by name (v13 names it by id only).
        let answer = self.leader.request_at(12, produce).await.unwrap();
        for topic in &answer.responses {
            for p in &topic.partition_responses {
                ConnError::check(p.error_code, None).unwrap();
            }
        }

        let end = EndTxnRequest {
            transactional_id: self.id.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            committed: commit,
            ..Default::default()
        };
        // v4: the transaction protocol v1 this producer speaks (with v5 a
        // broker at transaction.version 2 bumps the epoch at every EndTxn).
        let answer = self.coordinator.request_at(4, end).await.unwrap();
        ConnError::check(answer.error_code, None).unwrap();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn plain(transport: &Transport, topic: &str, value: &str) {
    transport
        .partition_conn(topic, 0, Purpose::Produce)
        .await
        .unwrap()
        .write_messages(&[Produce::new(Bytes::copy_from_slice(value.as_bytes()))])
        .await
        .unwrap();
}

/// Reads until `last` comes out (or nothing more comes).
async fn read_until(fetcher: &mut Fetcher, last: &str) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), fetcher.next())
            .await
            .expect("a message within the wait")
            .expect("no error");
        let done = m.value_bytes() == last.as_bytes();
        out.push(m);
        if done {
            return out;
        }
    }
}

fn values(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.value_bytes().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_markers_are_never_handed_out_and_committed_records_are() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-txn");
    broker.create_topic(&topic, 1);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let mut producer = TxnProducer::init(&transport, &topic).await;
    plain(&transport, &topic, "plain-1").await;
    producer
        .transaction(&["committed-1", "committed-2"], true)
        .await;
    producer.transaction(&["aborted-1"], false).await;
    plain(&transport, &topic, "plain-2").await;
    producer.transaction(&["committed-3"], true).await;
    plain(&transport, &topic, "last").await;

    let tp = TopicPartition::new(topic.as_str(), 0);
    let mut uncommitted = Fetcher::new(transport.clone(), FetchConfig::default());
    uncommitted.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    let read = read_until(&mut uncommitted, "last").await;
    assert_eq!(
        values(&read),
        [
            "plain-1",
            "committed-1",
            "committed-2",
            "aborted-1",
            "plain-2",
            "committed-3",
            "last"
        ]
    );
    // Offsets skip the three markers the coordinator wrote. EndTxn answers
    // before the marker is written, so a plain record sent right after an
    // EndTxn may land before or after its marker (5 or 6, 8 or 9); the next
    // transaction's first record waits for the marker (AddPartitionsToTxn
    // answers CONCURRENT_TRANSACTIONS until then).
    let offsets: Vec<i64> = read.iter().map(|m| m.offset).collect();
    assert_eq!(offsets[..4], [0, 1, 2, 4], "{offsets:?}");
    assert!([5, 6].contains(&offsets[4]), "{offsets:?}");
    assert_eq!(offsets[5], 7, "{offsets:?}");
    assert!([8, 9].contains(&offsets[6]), "{offsets:?}");

    let config = FetchConfig {
        isolation_level: IsolationLevel::ReadCommitted,
        ..Default::default()
    };
    let mut committed = Fetcher::new(transport, config);
    committed.assign(vec![(tp.clone(), StartOffset::Earliest)]);
    let read = read_until(&mut committed, "last").await;
    let got = values(&read);
    assert!(got.contains(&"committed-3".to_owned()), "{got:?}");
    if !broker.has_tansu_bug("read_committed consumers still see aborted records") {
        assert_eq!(
            got,
            [
                "plain-1",
                "committed-1",
                "committed-2",
                "plain-2",
                "committed-3",
                "last"
            ]
        );
    }
    // Past "last", and past the final marker if "last" came before it and
    // the fetch that brought "last" already held the marker.
    let last = read.last().expect("read `last`").offset;
    let position = committed.position(&tp).expect("a position");
    assert!(
        position == last + 1 || (last == 8 && position == 10),
        "position {position} after `last` at {last}"
    );
}
