//! Idempotence with five requests in flight, against an in-process broker
//! that checks producer sequences as Kafka does (tansu has no fault
//! injection, and librdkafka's mock checks sequences only for transactional
//! producers): batches it fails are followed by OUT_OF_ORDER_SEQUENCE_NUMBER
//! for the later batches already in flight, connections die after a request
//! was written but before its answer (the retry must come back
//! DUPLICATE_SEQUENCE_NUMBER), and once it forgets the producer
//! (UNKNOWN_PRODUCER_ID, which bumps the epoch). Every record must land
//! once, in order.
//!
//! Kafka drops a producer's state only when the producer's last records
//! have left the log (retention) or after `producer.id.expiration.ms` of
//! silence, never while a batch it appended seconds ago is being retried.
//! So this broker forgets the producer only once every batch it appended
//! under a lost answer has been answered again: forgetting earlier would
//! make any client (the Java one as well) append that batch twice under
//! the bumped epoch.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkit_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_protocol::messages::{
    ApiVersionsResponse, InitProducerIdResponse, MetadataResponse, ProduceResponse, RequestBody,
    ResponseBody,
};
use kafkit_protocol::records::RecordBatch;
use kafkit_protocol::{ApiKey, ErrorCode, frame};
use kafkit_writer::{Message, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOPIC: &str = "sequences";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;

/// One partition's log and its producer state (Kafka keeps the last five
/// batches per producer to recognise duplicates).
#[derive(Debug, Default)]
struct Partition {
    log: Vec<u64>,
    epoch: i16,
    next_seq: Option<i32>,
    recent: VecDeque<(i32, i32, i64)>,
    /// Set when a connection died after this partition's appends: the
    /// sequences below it may be unknown to the writer until a later
    /// answer reaches it.
    unanswered_below: Option<i32>,
}

#[derive(Debug, Default)]
struct Broker {
    partitions: HashMap<i32, Partition>,
    next_pid: i64,
    epochs: HashMap<i64, i16>,
    produce_requests: usize,
    batches: usize,
    /// What the faults did, to check that each happened.
    failed: usize,
    out_of_order: usize,
    duplicates: usize,
    dropped: usize,
    next_drop_at: usize,
    forgotten: usize,
    bumps: usize,
    /// Every append: request, partition, epoch, base sequence, first value.
    appends: Vec<(usize, i32, i16, i32, u64)>,
}

impl Broker {
    /// Appends one batch unless the fault plan or the sequence check says
    /// otherwise; returns the error code and base offset to answer.
    fn append(&mut self, partition: i32, mut records: Bytes) -> (ErrorCode, i64) {
        self.batches += 1;
        let batch = RecordBatch::decode(&mut records).expect("a record batch");
        let (seq, count, epoch) = (
            batch.base_sequence(),
            batch.record_count() as i32,
            batch.producer_epoch(),
        );
        if self.batches % 11 == 5 {
            self.failed += 1;
            return (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1);
        }
        if self.produce_requests >= 60
            && partition == 1
            && self.forgotten == 0
            && self
                .partitions
                .entry(partition)
                .or_default()
                .unanswered_below
                .is_none()
        {
            // As if the producer state expired with the records it covered.
            self.forgotten += 1;
            self.partitions.entry(partition).or_default().next_seq = None;
        }
        let p = self.partitions.entry(partition).or_default();
        match p.next_seq {
            None if seq != 0 => return (ErrorCode::UNKNOWN_PRODUCER_ID, -1),
            _ if epoch < p.epoch => return (ErrorCode::INVALID_PRODUCER_EPOCH, -1),
            _ if epoch > p.epoch && seq != 0 => {
                return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
            }
            Some(_) if epoch == p.epoch => {
                if let Some(&(_, _, offset)) = p.recent.iter().find(|r| r.0 == seq && r.1 == count)
                {
                    if p.unanswered_below.is_some_and(|mark| seq + count >= mark) {
                        p.unanswered_below = None;
                    }
                    self.duplicates += 1;
                    return (ErrorCode::DUPLICATE_SEQUENCE_NUMBER, offset);
                }
                if Some(seq) != p.next_seq {
                    self.out_of_order += 1;
                    return (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
                }
            }
            _ => {}
        }
        if epoch > p.epoch {
            p.recent.clear();
        }
        p.epoch = epoch;
        let base = p.log.len() as i64;
        let first = batch.records().next().unwrap().unwrap().value.unwrap();
        let first: u64 = std::str::from_utf8(&first).unwrap().parse().unwrap();
        self.appends
            .push((self.produce_requests, partition, epoch, seq, first));
        let p = self.partitions.entry(partition).or_default();
        for record in batch.records() {
            let value = record.unwrap().value.unwrap();
            p.log
                .push(std::str::from_utf8(&value).unwrap().parse().unwrap());
        }
        p.next_seq = Some(seq + count);
        if p.unanswered_below.is_some_and(|mark| seq + count >= mark) {
            p.unanswered_below = None;
        }
        p.recent.push_back((seq, count, base));
        if p.recent.len() > 5 {
            p.recent.pop_front();
        }
        (ErrorCode::NONE, base)
    }
}

fn versions() -> ApiVersionsResponse {
    let keys = [
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::Metadata, 1, 8),
        (ApiKey::Produce, 3, 8),
        (ApiKey::InitProducerId, 0, 4),
    ];
    ApiVersionsResponse {
        api_keys: keys
            .iter()
            .map(|&(k, min, max)| ApiVersion {
                api_key: k.as_i16(),
                min_version: min,
                max_version: max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Serves one connection: requests in order, answers in order, as Kafka.
async fn serve(mut socket: TcpStream, broker: Arc<Mutex<Broker>>, port: u16) {
    let mut buf = BytesMut::new();
    loop {
        while let Some(frame) = frame::decode_frame(&mut buf, 64 << 20).unwrap() {
            let (header, body) = frame::decode_request(frame).unwrap();
            let mut version = header.request_api_version;
            let mut drop_after = false;
            let answer = match body {
                RequestBody::ApiVersions(_) => {
                    let mut r = versions();
                    if version > 3 {
                        r.error_code = ErrorCode::UNSUPPORTED_VERSION;
                        version = 0;
                    }
                    ResponseBody::ApiVersions(r)
                }
                RequestBody::Metadata(_) => ResponseBody::Metadata(MetadataResponse {
                    brokers: vec![MetadataResponseBroker {
                        node_id: 1,
                        host: "127.0.0.1".into(),
                        port: port.into(),
                        ..Default::default()
                    }],
                    controller_id: 1,
                    topics: vec![MetadataResponseTopic {
                        name: Some(TOPIC.into()),
                        partitions: (0..PARTITIONS)
                            .map(|i| MetadataResponsePartition {
                                partition_index: i,
                                leader_id: 1,
                                replica_nodes: vec![1],
                                isr_nodes: vec![1],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                RequestBody::InitProducerId(r) => {
                    let mut b = broker.lock().unwrap();
                    let (pid, epoch) = if r.producer_id >= 0
                        && b.epochs.get(&r.producer_id) == Some(&r.producer_epoch)
                    {
                        b.bumps += 1;
                        (r.producer_id, r.producer_epoch + 1)
                    } else {
                        b.next_pid += 1;
                        (b.next_pid, 0)
                    };
                    b.epochs.insert(pid, epoch);
                    ResponseBody::InitProducerId(InitProducerIdResponse {
                        producer_id: pid,
                        producer_epoch: epoch,
                        ..Default::default()
                    })
                }
                RequestBody::Produce(r) => {
                    let mut b = broker.lock().unwrap();
                    b.produce_requests += 1;
                    let mut appended = false;
                    let mut responses = Vec::new();
                    for t in r.topic_data {
                        let mut partition_responses = Vec::new();
                        for p in t.partition_data {
                            let (code, base) = b.append(p.index, p.records.unwrap());
                            appended |= code == ErrorCode::NONE;
                            partition_responses.push(PartitionProduceResponse {
                                index: p.index,
                                error_code: code,
                                base_offset: base,
                                ..Default::default()
                            });
                        }
                        responses.push(TopicProduceResponse {
                            name: t.name,
                            partition_responses,
                            ..Default::default()
                        });
                    }
                    // Three answers are lost, each to a request that appended
                    // something, so that its retry must meet the duplicate check.
                    drop_after = appended && b.dropped < 3 && b.produce_requests >= b.next_drop_at;
                    if drop_after {
                        b.dropped += 1;
                        b.next_drop_at = b.produce_requests + 17;
                        for p in b.partitions.values_mut() {
                            p.unanswered_below = p.next_seq;
                        }
                    }
                    ResponseBody::Produce(ProduceResponse {
                        responses,
                        ..Default::default()
                    })
                }
                other => panic!("unexpected request {:?}", other.api_key()),
            };
            if drop_after {
                // Written, but the answer never leaves: the connection dies.
                return;
            }
            let mut out = BytesMut::new();
            frame::encode_response_body(&mut out, header.correlation_id, version, &answer).unwrap();
            if socket.write_all(&out).await.is_err() {
                return;
            }
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_in_flight_survive_rejections_lost_answers_and_a_forgotten_producer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = Arc::new(Mutex::new(Broker {
        next_drop_at: 9,
        ..Broker::default()
    }));
    let shared = broker.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(socket, shared.clone(), port));
        }
    });

    let writer = Writer::builder([format!("127.0.0.1:{port}")])
        .topic(TOPIC)
        .batch_size(50)
        .max_attempts(50)
        .build()
        .await
        .unwrap();
    assert_eq!(writer.config().max_in_flight, 5);
    for i in 0..RECORDS {
        let m = Message::new(i.to_string()).with_partition((i % PARTITIONS as usize) as i32);
        writer.produce(&m).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(40), writer.flush())
        .await
        .expect("the writes finish")
        .expect("no record failed");
    let stats = writer.stats();
    writer.close().await.unwrap();

    let b = broker.lock().unwrap();
    eprintln!(
        "requests {} batches {} failed {} out-of-order {} duplicates {} dropped {} forgotten {} bumps {}; writer {stats:?}",
        b.produce_requests,
        b.batches,
        b.failed,
        b.out_of_order,
        b.duplicates,
        b.dropped,
        b.forgotten,
        b.bumps
    );
    assert!(
        b.failed > 0 && b.out_of_order > 0 && b.duplicates > 0 && b.dropped == 3,
        "every fault happened"
    );
    assert_eq!(
        (b.forgotten, b.bumps),
        (1, 1),
        "the forgotten producer bumped the epoch once"
    );
    assert_eq!(stats.epoch_bumps, 1);
    for partition in 0..PARTITIONS {
        let log = &b.partitions[&partition].log;
        let want: Vec<u64> = (0..RECORDS as u64)
            .filter(|i| i % PARTITIONS as u64 == partition as u64)
            .collect();
        if log.len() != want.len() {
            let mut seen = std::collections::HashMap::new();
            for v in log {
                *seen.entry(*v).or_insert(0) += 1;
            }
            let dups: Vec<_> = seen
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(v, _)| *v)
                .collect();
            let missing: Vec<_> = want.iter().filter(|v| !seen.contains_key(v)).collect();
            let firsts: Vec<_> = b
                .appends
                .iter()
                .filter(|a| a.1 == partition && dups.contains(&a.4))
                .collect();
            eprintln!("appends of duplicated batches: {firsts:?}");
            panic!(
                "partition {partition}: {} records, {} expected; duplicated {:?}, missing {:?}",
                log.len(),
                want.len(),
                &dups[..dups.len().min(10)],
                &missing[..missing.len().min(10)]
            );
        }
        if let Some(at) = log.iter().zip(&want).position(|(g, w)| g != w) {
            panic!(
                "partition {partition}: offset {at} holds record {} where {} belongs",
                log[at], want[at]
            );
        }
    }
}
