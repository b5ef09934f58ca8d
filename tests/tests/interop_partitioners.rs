//! kafkit's key-hashing balancers pick, byte for byte, the partition other
//! clients pick. Each peer client (tests/peers: sarama, kafka-go, franz-go,
//! confluent-kafka-go, the Java client) produces thousands of keyed
//! records to a real Apache Kafka topic of 1, 7, 100 and 1000 partitions,
//! and the partition the broker acknowledged for each record must be what
//! kafkit's function computes for its key:
//!
//! | kafkit | peers |
//! | --- | --- |
//! | `Hash::partition_for` (FNV-1a, sarama) | sarama, kafka-go, franz-go `hash` |
//! | `ReferenceHash::partition_for` | sarama, kafka-go, franz-go `reference-hash` |
//! | `crc32_partition` | kafka-go `crc32`, `crc32-consistent`, sarama `crc32`, confluent `consistent` |
//! | `Murmur2::partition_for` | Java default, franz-go `sticky-key` and default, kafka-go and sarama `murmur2`, confluent `murmur2` |
//!
//! The keys are random bytes from a fixed seed, with the empty key, keys
//! of 1 to 8 bytes (murmur2's tail cases), sarama's FNV sign-boundary key
//! and keys of 1 KB to 100 KB. kafkit's own `Writer` must put the same
//! keys where these functions say, and keyless records, whose placement
//! is random, round-robin or sticky by design, are checked by distribution
//! only: every partition used, and roughly even where the partitioner
//! spreads record by record.

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_protocol::ErrorCode;
use kafkit_tests::PeerClient::{self, Confluent, FranzGo, Java, KafkaGo, Sarama};
use kafkit_tests::{Peer, PeerRecord, RawClient, TestBroker, unique_topic};
use kafkit_writer::{
    Balancer, Crc32, DefaultBalancer, Hash, Message, Murmur2, ReferenceHash, RoundRobin, Writer,
    WriterConfig, balancer::crc32_partition,
};

const PARTITION_COUNTS: [u32; 4] = [1, 7, 100, 1000];

/// A balancer to hand to a `WriterConfig`.
type Shared = Arc<dyn Balancer>;

/// A kafkit partition function: key and partition count to partition.
type PartitionFn = fn(&[u8], usize) -> i32;

/// A peer client, its partitioner (`None`: the client's default), and the
/// kafkit function it must agree with.
type Pair = (PeerClient, Option<&'static str>, PartitionFn);

/// False where the library sends an empty key where it sends a null one,
/// at random: kafka-go's `CRC32Balancer` without `Consistent`
/// (`len(msg.Key) == 0` goes to its random balancer, after librdkafka's
/// `consistent_random`, which treats empty and null keys alike). Only the
/// range of that record's partition is checked then.
fn hashes_empty_key(client: PeerClient, partitioner: Option<&str>) -> bool {
    (client, partitioner) != (KafkaGo, Some("crc32"))
}

/// The run's broker, or `None` (the test returns) on tansu: these tests
/// are about what Apache Kafka acknowledges to real clients.
fn kafka_broker() -> Option<TestBroker> {
    let broker = TestBroker::start();
    if broker.is_tansu() {
        eprintln!("!!!!!!!! SKIPPING an Apache Kafka interop test: the broker is tansu");
        return None;
    }
    Some(broker)
}

/// One topic per partition count, shared by this file's tests (placement
/// depends on the count only, and a 1000-partition topic is slow to make).
fn topic(broker: &TestBroker, partitions: u32) -> String {
    static TOPICS: Mutex<Option<HashMap<u32, String>>> = Mutex::new(None);
    let mut topics = TOPICS.lock().unwrap_or_else(|e| e.into_inner());
    topics
        .get_or_insert_with(HashMap::new)
        .entry(partitions)
        .or_insert_with(|| {
            let name = unique_topic(&format!("interop-part-{partitions}"));
            create_topic(broker, &name, partitions);
            name
        })
        .clone()
}

/// Creates `name` and waits until every partition serves reads.
/// `TestBroker::create_topic` does the same with a new connection per
/// partition and poll, and gives up after 30 s, which a 1000-partition
/// topic on a busy machine can take (37 s seen); this keeps one
/// connection per leader and waits up to 3 minutes.
fn create_topic(broker: &TestBroker, name: &str, partitions: u32) {
    let mut client = RawClient::connect(broker.addr());
    let created = &client.create_topics(name, partitions as i32).topics[0];
    assert_eq!(
        created.error_code,
        ErrorCode::NONE,
        "cannot create {name}: {created:?}"
    );
    let started = Instant::now();
    let mut leaders: HashMap<String, RawClient> = HashMap::new();
    let mut waiting: Vec<i32> = (0..partitions as i32).collect();
    while !waiting.is_empty() {
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(180),
            "{name}: {waiting:?} not ready in {elapsed:?}"
        );
        let metadata = client.metadata(Some(&[name]));
        let topic = metadata
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(name));
        waiting.retain(|&index| {
            let leader = topic
                .and_then(|t| t.partitions.iter().find(|p| p.partition_index == index))
                .and_then(|p| metadata.brokers.iter().find(|b| b.node_id == p.leader_id));
            let Some(leader) = leader else { return true };
            let addr = format!("{}:{}", leader.host, leader.port);
            let conn = leaders.entry(addr.clone()).or_insert_with(|| {
                let resolved = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
                RawClient::connect(resolved.unwrap_or_else(|| panic!("cannot resolve {addr}")))
            });
            conn.list_offset(name, index, -1).error_code != ErrorCode::NONE
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{name}: {partitions} partitions ready in {:?}",
        started.elapsed()
    );
}

/// xorshift64*: deterministic keys from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// `count` keys (at least the fixed ones): empty, 1..=8 bytes, sarama's
/// FNV-1a sign-boundary key, 1 KB, 16 KB and 100 KB, then random keys of
/// 1 to 48 bytes.
fn keys(count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut keys = vec![Vec::new()];
    keys.extend((1..=8).map(|len| rng.bytes(len)));
    // fnv1a = 0x80000000: the one hash whose negation overflows.
    keys.push(b"1468509572224".to_vec());
    keys.push(rng.bytes(1000));
    keys.push(rng.bytes(16 * 1024));
    keys.push(rng.bytes(100 * 1024));
    while keys.len() < count {
        let len = 1 + rng.below(48);
        keys.push(rng.bytes(len));
    }
    keys
}

/// Fewer keys where there is little to learn (1 partition) or producing is
/// slow (1000 partitions, where each key still tests the modulo).
fn key_count(partitions: u32) -> usize {
    match partitions {
        1 => 200,
        1000 => 1500,
        _ => 3000,
    }
}

fn hex(key: &[u8]) -> String {
    let shown: String = key.iter().take(24).map(|b| format!("{b:02x}")).collect();
    if key.len() > 24 {
        format!("{shown}... ({} bytes)", key.len())
    } else {
        shown
    }
}

/// Produces every key through `pair`'s client to the topic of
/// `partitions` partitions and compares each acknowledged partition with
/// kafkit's function.
fn check_pair(
    broker: &TestBroker,
    peer: &Peer,
    &(client, partitioner, kafkit): &Pair,
    partitions: u32,
) {
    let topic = topic(broker, partitions);
    let keys = keys(key_count(partitions));
    let records: Vec<PeerRecord> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PeerRecord::keyed(k.clone(), i.to_string()))
        .collect();
    let flags: Vec<(&str, &str)> = partitioner
        .map(|p| ("--partitioner", p))
        .into_iter()
        .collect();
    let name = format!("{} {}", client.name(), partitioner.unwrap_or("(default)"));
    let acks = peer.produce(&broker.bootstrap(), &topic, &records, &flags);
    let n = partitions as usize;
    let mut wrong = Vec::new();
    let mut used = vec![false; n];
    for ack in &acks {
        let key = &keys[ack.i];
        assert!(
            (0..partitions as i32).contains(&ack.partition),
            "{name}: partition {} of {partitions}",
            ack.partition
        );
        used[ack.partition as usize] = true;
        if key.is_empty() && !hashes_empty_key(client, partitioner) {
            continue;
        }
        let want = kafkit(key, n);
        if ack.partition != want {
            wrong.push(format!(
                "key {} -> {} (kafkit: {want})",
                hex(key),
                ack.partition
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{name} on {partitions} partitions: {} of {} keys are not where kafkit puts them: {:?}",
        wrong.len(),
        acks.len(),
        &wrong[..wrong.len().min(10)]
    );
    // The keys really spread, or agreeing would prove little.
    let spread = used.iter().filter(|&&u| u).count();
    assert!(
        spread >= n.min(keys.len()) / 2,
        "{name}: {keys} keys used only {spread} of {partitions} partitions",
        keys = keys.len()
    );
    eprintln!(
        "{name}: {} keys on {partitions} partitions agree",
        acks.len()
    );
}

fn check_pairs(pairs: &[Pair]) {
    let Some(broker) = kafka_broker() else { return };
    for &partitions in &PARTITION_COUNTS {
        for pair in pairs {
            if let Some(peer) = Peer::get(pair.0) {
                check_pair(&broker, &peer, pair, partitions);
            }
        }
    }
}

const HASH: PartitionFn = Hash::partition_for;
const REFERENCE_HASH: PartitionFn = ReferenceHash::partition_for;
const CRC32: PartitionFn = crc32_partition;
const MURMUR2: PartitionFn = Murmur2::partition_for;

#[test]
fn fnv1a_hash_and_reference_hash_match_sarama_kafka_go_and_franz_go() {
    check_pairs(&[
        (Sarama, Some("hash"), HASH),
        (KafkaGo, Some("hash"), HASH),
        (FranzGo, Some("hash"), HASH),
        (Sarama, Some("reference-hash"), REFERENCE_HASH),
        (KafkaGo, Some("reference-hash"), REFERENCE_HASH),
        (FranzGo, Some("reference-hash"), REFERENCE_HASH),
    ]);
}

#[test]
fn crc32_matches_kafka_go_sarama_and_librdkafka_consistent() {
    check_pairs(&[
        (KafkaGo, Some("crc32"), CRC32),
        (KafkaGo, Some("crc32-consistent"), CRC32),
        (Sarama, Some("crc32"), CRC32),
        (Confluent, Some("consistent"), CRC32),
    ]);
}

#[test]
fn murmur2_matches_java_franz_go_kafka_go_sarama_and_librdkafka() {
    check_pairs(&[
        (Java, None, MURMUR2),
        (FranzGo, Some("sticky-key"), MURMUR2),
        // franz-go's default (UniformBytesPartitioner) hashes keys with murmur2 too.
        (FranzGo, None, MURMUR2),
        (KafkaGo, Some("murmur2"), MURMUR2),
        (Sarama, Some("murmur2"), MURMUR2),
        (Confluent, Some("murmur2"), MURMUR2),
    ]);
}

/// Writes `messages` with a kafkit `Writer` using `balancer`; the
/// partition of each.
async fn kafkit_partitions(
    broker: &TestBroker,
    topic: &str,
    balancer: Shared,
    messages: &[Message],
) -> Vec<i32> {
    let config = WriterConfig {
        balancer,
        ..WriterConfig::default()
    };
    let writer = Writer::builder([broker.bootstrap()])
        .config(config)
        .topic(topic)
        .build()
        .await
        .unwrap();
    let results = writer.write_messages(messages).await.unwrap();
    writer.close().await.unwrap();
    results.into_iter().map(|r| r.unwrap().partition).collect()
}

/// kafkit's `Writer` with each key-hashing balancer writes each key to the
/// partition the balancer's function names (the function is what the
/// peers were compared with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkit_writer_puts_keyed_records_where_its_functions_say() {
    let Some(broker) = kafka_broker() else { return };
    for partitions in [7, 100, 1000] {
        let topic = tokio::task::block_in_place(|| topic(&broker, partitions));
        let keys = keys(key_count(partitions));
        let messages: Vec<Message> = keys
            .iter()
            .map(|k| Message::new("v").with_key(k.clone()))
            .collect();
        let balancers: [(&str, Shared, PartitionFn); 5] = [
            ("Hash", Arc::new(Hash::default()), HASH),
            (
                "ReferenceHash",
                Arc::new(ReferenceHash::default()),
                REFERENCE_HASH,
            ),
            ("Crc32", Arc::new(Crc32::default()), CRC32),
            ("Murmur2", Arc::new(Murmur2::default()), MURMUR2),
            (
                "DefaultBalancer",
                Arc::new(DefaultBalancer::default()),
                MURMUR2,
            ),
        ];
        for (name, balancer, function) in balancers {
            let landed = kafkit_partitions(&broker, &topic, balancer, &messages).await;
            assert_eq!(landed.len(), keys.len());
            for (key, partition) in keys.iter().zip(landed) {
                assert_eq!(
                    partition,
                    function(key, partitions as usize),
                    "kafkit {name} on {partitions} partitions: key {}",
                    hex(key)
                );
            }
        }
    }
}

/// The longest run of consecutive records (in the order written) that
/// landed on one partition: (partition, index of its first record, length).
/// Random placement on 7 partitions makes runs of more than a few records
/// unlikely; a long run says the records were placed together (a sticky
/// partition, or records held before the metadata came and placed as one).
fn longest_run(partitions: &[i32]) -> (i32, usize, usize) {
    let mut best = (-1, 0, 0);
    let mut start = 0;
    for i in 1..=partitions.len() {
        if i == partitions.len() || partitions[i] != partitions[start] {
            if i - start > best.2 {
                best = (partitions[start], start, i - start);
            }
            start = i;
        }
    }
    best
}

/// Checks that keyless records used every one of `n` partitions and, if
/// `even`, gave each between 0.6 and 1.4 times the mean.
fn assert_spread(name: &str, partitions: &[i32], n: usize, even: bool) {
    let mut counts = vec![0usize; n];
    for &p in partitions {
        assert!((0..n as i32).contains(&p), "{name}: partition {p} of {n}");
        counts[p as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| c > 0),
        "{name}: some partition got no keyless record: {counts:?}"
    );
    if even {
        // Random placement of 2800 records on 7 partitions: mean 400,
        // standard deviation about 18, so +-40% is over 8 deviations.
        let mean = partitions.len() as f64 / n as f64;
        assert!(
            counts
                .iter()
                .all(|&c| (c as f64) > 0.6 * mean && (c as f64) < 1.4 * mean),
            "{name}: keyless records are not spread evenly: {counts:?}; the longest run of \
             consecutive records on one partition: {:?} (partition, first record, length)",
            longest_run(partitions)
        );
    }
    eprintln!("{name}: keyless counts {counts:?}");
}

/// Keyless records have no fixed partition; the partitioners that place
/// them record by record (random, round-robin) spread them roughly evenly,
/// the sticky ones (the Java client's default, kafkit's default) use
/// every partition once enough bytes went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_spread_over_every_partition() {
    let Some(broker) = kafka_broker() else { return };
    const N: usize = 7;
    let topic = tokio::task::block_in_place(|| topic(&broker, N as u32));
    let small: Vec<PeerRecord> = (0..2800)
        .map(|i| PeerRecord::value(format!("keyless-{i}")))
        .collect();
    // 16 KB (Java's batch.size) fills with 16 of these: 2 MB switches
    // the sticky partition about 125 times.
    let big: Vec<PeerRecord> = (0..2000)
        .map(|_| PeerRecord::value(vec![7u8; 1024]))
        .collect();
    // sarama's `hash` and kafka-go's `hash` send keyless records to a
    // random partition and round-robin respectively. librdkafka's `random`
    // is sticky for null keys for `sticky.partitioning.linger.ms` (it
    // "affects messages with the key NULL in all cases"), which put all
    // 2800 records on one partition here; the peer sets it to twice
    // `--linger-ms`, so `--linger-ms 0` turns it off and leaves the
    // per-record random choice.
    type Flags = &'static [(&'static str, &'static str)];
    let peers: [(PeerClient, &str, Flags); 7] = [
        (Sarama, "hash", &[]),
        (Sarama, "round-robin", &[]),
        (KafkaGo, "hash", &[]),
        (KafkaGo, "round-robin", &[]),
        (FranzGo, "round-robin", &[]),
        (Confluent, "random", &[("--linger-ms", "0")]),
        (Java, "roundrobin", &[]),
    ];
    tokio::task::block_in_place(|| {
        for (client, partitioner, extra) in peers {
            let Some(peer) = Peer::get(client) else {
                continue;
            };
            let mut flags = vec![("--partitioner", partitioner)];
            flags.extend_from_slice(extra);
            let acks = peer.produce(&broker.bootstrap(), &topic, &small, &flags);
            let landed: Vec<i32> = acks.iter().map(|a| a.partition).collect();
            assert_spread(
                &format!("{} {partitioner}", client.name()),
                &landed,
                N,
                true,
            );
        }
        if let Some(java) = Peer::get(Java) {
            let acks = java.produce(&broker.bootstrap(), &topic, &big, &[]);
            let landed: Vec<i32> = acks.iter().map(|a| a.partition).collect();
            assert_spread("java default (sticky)", &landed, N, false);
        }
    });

    // kafkit: Hash and ReferenceHash place keyless records at random,
    // RoundRobin in turn; the default is sticky, switching every 64 KiB,
    // so 6 MB switch it about 90 times.
    let small: Vec<Message> = (0..2800)
        .map(|i| Message::new(format!("keyless-{i}")))
        .collect();
    let big: Vec<Message> = (0..6000).map(|_| Message::new(vec![7u8; 1024])).collect();
    let runs: [(&str, Shared, &[Message], bool); 4] = [
        ("kafkit Hash", Arc::new(Hash::default()), &small, true),
        (
            "kafkit ReferenceHash",
            Arc::new(ReferenceHash::default()),
            &small,
            true,
        ),
        (
            "kafkit RoundRobin",
            Arc::new(RoundRobin::default()),
            &small,
            true,
        ),
        (
            "kafkit DefaultBalancer (sticky)",
            Arc::new(DefaultBalancer::default()),
            &big,
            false,
        ),
    ];
    for (name, balancer, messages, even) in runs {
        let landed = kafkit_partitions(&broker, &topic, balancer, messages).await;
        assert_spread(name, &landed, N, even);
    }
}
