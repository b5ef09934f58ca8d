//! Records cross between kafkit and other clients byte for byte, through a
//! real Apache Kafka broker, with every codec (none, gzip, snappy, lz4,
//! zstd): headers (a repeated name, a null value, an empty value, binary
//! values, a non-ASCII name), null and empty keys and values, binary bytes
//! and a 900 KB record (under the broker's default `message.max.bytes`).
//!
//! - kafkit's `Writer` writes the set once per codec to a one-partition
//!   topic; each peer client (the Java client, franz-go, sarama, kafka-go,
//!   confluent-kafka-go) consumes it from the start and must see every
//!   key, value, header and timestamp exactly, at offsets 0, 1, 2, ...
//! - Each peer client produces the set once per codec; kafkit's `Reader`
//!   reads it and must see exactly what was sent.
//!
//! Either way the batches on the broker are checked too: each codec's run
//! must have left batches compressed with that codec, so the test really
//! crosses every decompressor and compressor.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafkit_protocol::records::{Batch, RecordSet};
use kafkit_reader::{Reader, StartOffset};
use kafkit_tests::{Peer, PeerClient, PeerHeader, PeerRecord, RawClient, TestBroker, unique_topic};
use kafkit_writer::{Compression, Header, Message, Writer};

const CODECS: [(&str, Compression); 5] = [
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];

/// The big record's value: half random bytes (incompressible), half text.
const LARGE: usize = 900 * 1024;

fn header(key: &str, value: Option<&[u8]>) -> PeerHeader {
    PeerHeader {
        key: key.to_owned(),
        value: value.map(<[u8]>::to_vec),
    }
}

/// The records each run writes, in order.
fn record_set() -> Vec<PeerRecord> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut large: Vec<u8> = (0..LARGE / 2)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    large.extend(b"kafkit interop ".iter().cycle().take(LARGE - large.len()));
    let record = |key: Option<&[u8]>, value: Option<&[u8]>, headers: Vec<PeerHeader>| PeerRecord {
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers,
        partition: None,
    };
    vec![
        record(
            Some(b"k0"),
            Some(b"with headers"),
            vec![
                header("h1", Some(b"v1")),
                header("h-null", None),
                header("h-empty", Some(b"")),
                header("h1", Some(b"again")),
            ],
        ),
        record(None, Some(b"null key"), vec![]),
        record(Some(b""), Some(b"empty key"), vec![]),
        record(Some(b"k3"), None, vec![header("tombstone", Some(b"yes"))]),
        record(Some(b"k4"), Some(b""), vec![]),
        record(None, None, vec![]),
        record(
            Some(&all_bytes),
            Some(&all_bytes),
            vec![header("ключ-🔑", Some(&all_bytes))],
        ),
        record(
            Some(b"large"),
            Some(&large),
            vec![header("size", Some(b"900K"))],
        ),
    ]
}

/// The run's broker, or `None` (the test returns) on tansu: these tests
/// are about Apache Kafka and real clients.
fn kafka_broker() -> Option<TestBroker> {
    let broker = TestBroker::start();
    if broker.is_tansu() {
        eprintln!("!!!!!!!! SKIPPING an Apache Kafka interop test: the broker is tansu");
        return None;
    }
    Some(broker)
}

/// What a record looks like for comparison: key, value, headers.
type Seen = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<PeerHeader>);

fn expected(record: &PeerRecord) -> Seen {
    (
        record.key.clone(),
        record.value.clone(),
        record.headers.clone(),
    )
}

/// kafka-go's consumer reports empty (zero-length, non-null) keys, values
/// and header values as null: its reader does not keep the distinction
/// (tests/peers/go/README.md, "Known client limitations"). For that client
/// alone, empty and null compare equal.
fn empty_as_null(seen: Seen) -> Seen {
    let norm = |b: Option<Vec<u8>>| b.filter(|b| !b.is_empty());
    let headers = seen
        .2
        .into_iter()
        .map(|h| PeerHeader {
            key: h.key,
            value: norm(h.value),
        })
        .collect();
    (norm(seen.0), norm(seen.1), headers)
}

/// A short description of a record for assertion messages (the large
/// value would drown everything else).
fn describe(seen: &Seen) -> String {
    let bytes = |b: &Option<Vec<u8>>| match b {
        None => "null".to_owned(),
        Some(b) if b.len() > 32 => format!("<{} bytes>", b.len()),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    };
    let headers: Vec<String> = seen
        .2
        .iter()
        .map(|h| format!("{}={}", h.key, bytes(&h.value)))
        .collect();
    format!(
        "key {} value {} headers [{}]",
        bytes(&seen.0),
        bytes(&seen.1),
        headers.join(", ")
    )
}

fn assert_same(name: &str, index: usize, got: &Seen, want: &Seen) {
    assert!(
        got == want,
        "{name}: record {index} differs\n  got:  {}\n  want: {}",
        describe(got),
        describe(want)
    );
}

/// The codec of every batch of partition 0 of `topic` from offset 0 up to
/// `end`, as `(base offset, next offset, codec)`.
fn batch_codecs(broker: &TestBroker, topic: &str, end: i64) -> Vec<(i64, i64, Compression)> {
    let mut client = RawClient::connect(broker.addr());
    let mut batches = Vec::new();
    let mut offset = 0;
    while offset < end {
        let data = client.fetch(topic, 0, offset);
        let records = data.records.unwrap_or_default();
        let set = RecordSet::new(records);
        for batch in set.batches() {
            let Batch::V2(batch) = batch.expect("a well-formed batch") else {
                panic!("{topic}: a batch that is not magic 2");
            };
            batches.push((
                batch.base_offset(),
                batch.next_offset(),
                batch.compression(),
            ));
            offset = offset.max(batch.next_offset());
        }
    }
    batches
}

/// Every codec's run, `per_run` records each from offset 0, left at least
/// one batch with that codec, and no batch of another codec.
fn assert_codecs(broker: &TestBroker, topic: &str, name: &str, per_run: i64) {
    let batches = batch_codecs(broker, topic, per_run * CODECS.len() as i64);
    for (run, (codec_name, codec)) in CODECS.iter().enumerate() {
        let range = run as i64 * per_run..(run as i64 + 1) * per_run;
        let codecs: Vec<Compression> = batches
            .iter()
            .filter(|(base, _, _)| range.contains(base))
            .map(|b| b.2)
            .collect();
        assert!(
            codecs.contains(codec),
            "{name}: no {codec_name} batch among offsets {range:?}: {codecs:?}"
        );
        // librdkafka sends a batch uncompressed when compression does not
        // make it smaller (the 900 KB record of random bytes may be one).
        assert!(
            codecs.iter().all(|c| c == codec || *c == Compression::None),
            "{name}: offsets {range:?} have batches of {codecs:?}, not {codec_name}"
        );
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// kafkit writes the set with every codec; `client` consumes it all.
async fn peer_reads_what_kafkit_writes(client: PeerClient) {
    let Some(broker) = kafka_broker() else { return };
    let Some(peer) = Peer::get(client) else {
        return;
    };
    let topic = unique_topic(&format!("interop-rec-to-{}", client.name()));
    tokio::task::block_in_place(|| broker.create_topic(&topic, 1));
    let set = record_set();
    // Fixed create times, one per record, checked on the other side.
    let base = SystemTime::now() - Duration::from_secs(3600);
    let mut want = Vec::new();
    for (run, (_, codec)) in CODECS.iter().enumerate() {
        let writer = Writer::builder([broker.bootstrap()])
            .topic(&topic)
            .compression(*codec)
            .build()
            .await
            .unwrap();
        let messages: Vec<Message> = set
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = base + Duration::from_millis((run * set.len() + i) as u64);
                want.push((expected(r), millis(at)));
                Message {
                    key: r.key.clone().map(Bytes::from),
                    value: r.value.clone().map(Bytes::from),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| Header {
                            key: h.key.clone(),
                            value: h.value.clone().map(Bytes::from),
                        })
                        .collect(),
                    timestamp: Some(at),
                    ..Message::default()
                }
            })
            .collect();
        for result in writer.write_messages(&messages).await.unwrap() {
            result.unwrap();
        }
        writer.close().await.unwrap();
    }
    let name = format!("kafkit -> {}", client.name());
    let per_run = set.len() as i64;
    let consumed = tokio::task::block_in_place(|| {
        assert_codecs(&broker, &topic, &name, per_run);
        peer.consume(&broker.bootstrap(), &topic, want.len(), &[])
    });
    for (index, (record, (want, timestamp))) in consumed.iter().zip(&want).enumerate() {
        assert_eq!(
            (record.partition, record.offset),
            (0, index as i64),
            "{name}: record {index}'s place"
        );
        let got = (
            record.key.clone(),
            record.value.clone(),
            record.headers.clone(),
        );
        if client == PeerClient::KafkaGo {
            assert_same(
                &name,
                index,
                &empty_as_null(got),
                &empty_as_null(want.clone()),
            );
        } else {
            assert_same(&name, index, &got, want);
        }
        assert_eq!(
            record.timestamp_ms, *timestamp,
            "{name}: record {index}'s timestamp"
        );
    }
    eprintln!("{name}: {} records match", consumed.len());
}

/// `client` produces the set with every codec; kafkit's `Reader` reads it.
async fn kafkit_reads_what_peer_writes(client: PeerClient) {
    let Some(broker) = kafka_broker() else { return };
    let Some(peer) = Peer::get(client) else {
        return;
    };
    let topic = unique_topic(&format!("interop-rec-from-{}", client.name()));
    let set = record_set();
    let name = format!("{} -> kafkit", client.name());
    let started = millis(SystemTime::now());
    tokio::task::block_in_place(|| {
        broker.create_topic(&topic, 1);
        for (run, (codec, _)) in CODECS.iter().enumerate() {
            let acks = peer.produce(&broker.bootstrap(), &topic, &set, &[("--codec", codec)]);
            for ack in &acks {
                assert_eq!(
                    (ack.partition, ack.offset),
                    (0, (run * set.len() + ack.i) as i64),
                    "{name} {codec}: record {}'s ack",
                    ack.i
                );
            }
        }
        assert_codecs(&broker, &topic, &name, set.len() as i64);
    });

    let mut reader = Reader::builder([broker.bootstrap()])
        .partition(&topic, 0)
        .start_offset(StartOffset::Earliest)
        .build()
        .await
        .unwrap();
    let total = set.len() * CODECS.len();
    for index in 0..total {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.fetch_message())
            .await
            .unwrap_or_else(|_| panic!("{name}: record {index} within 30 s"))
            .unwrap();
        assert_eq!(m.offset, index as i64, "{name}: record {index}'s offset");
        let headers = m
            .headers
            .iter()
            .map(|h| PeerHeader {
                key: h.key_str().expect("a UTF-8 header name").to_owned(),
                value: h.value.as_deref().map(<[u8]>::to_vec),
            })
            .collect();
        let got = (
            m.key.as_deref().map(<[u8]>::to_vec),
            m.value.as_deref().map(<[u8]>::to_vec),
            headers,
        );
        assert_same(&name, index, &got, &expected(&set[index % set.len()]));
        // The peer stamped the create time when it sent the record.
        let now = millis(SystemTime::now());
        assert!(
            (started - 60_000..=now).contains(&m.timestamp),
            "{name}: record {index}'s timestamp {} is not between {started} and {now}",
            m.timestamp
        );
    }
    reader.close().await.unwrap();
    eprintln!("{name}: {total} records match");
}

macro_rules! both_directions {
    ($($client:ident: $to_peer:ident, $from_peer:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $to_peer() {
            peer_reads_what_kafkit_writes(PeerClient::$client).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $from_peer() {
            kafkit_reads_what_peer_writes(PeerClient::$client).await;
        }
    )*};
}

both_directions! {
    Java: java_reads_what_kafkit_writes, kafkit_reads_what_java_writes;
    FranzGo: franz_go_reads_what_kafkit_writes, kafkit_reads_what_franz_go_writes;
    Sarama: sarama_reads_what_kafkit_writes, kafkit_reads_what_sarama_writes;
    KafkaGo: kafka_go_reads_what_kafkit_writes, kafkit_reads_what_kafka_go_writes;
    Confluent: confluent_reads_what_kafkit_writes, kafkit_reads_what_confluent_writes;
}
