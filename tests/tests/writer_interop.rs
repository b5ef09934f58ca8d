//! Keyed records land where librdkafka 2.16 puts them: confluent-kafka
//! produces keys to tansu with `partitioner=murmur2_random` (the Java
//! client's choice) and `consistent` (CRC-32), reports the partition of each
//! delivery, and kafkit's `Writer` with `Murmur2` and `Crc32` must pick the
//! same partition for every key.

use kafkit_tests::{TestBroker, run_python, unique_topic};
use kafkit_writer::{Balancer, Crc32, Message, Murmur2, Writer};

const PARTITIONS: u32 = 7;

/// Produces each key of `sys.argv[4:]` (hex-encoded) to topic `sys.argv[2]`
/// with librdkafka's `sys.argv[3]` partitioner and prints one
/// `hexkey partition` line per delivery.
const PRODUCE: &str = r#"
import sys
from confluent_kafka import Producer
bootstrap, topic, partitioner = sys.argv[1], sys.argv[2], sys.argv[3]
keys = [bytes.fromhex(k) for k in sys.argv[4:]]
p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
              "partitioner": partitioner, "linger.ms": 5})
errors, placed = [], []
def done(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        placed.append((msg.key().hex(), msg.partition()))
for k in keys:
    p.produce(topic, value=b"v", key=k, on_delivery=done)
left = p.flush(30)
assert left == 0 and not errors, (left, errors)
for k, part in placed:
    print(k, part)
"#;

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..150).map(|i| format!("key-{i}").into_bytes()).collect();
    keys.push(b"a-little-bit-longer-string".to_vec());
    keys.push(b"x".to_vec());
    keys.push((0u8..=255).collect());
    keys.push(vec![0xff; 3]);
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// librdkafka's choice for each key, as `(hex key, partition)`.
fn librdkafka_partitions(broker: &TestBroker, partitioner: &str) -> Vec<(String, i32)> {
    let topic = unique_topic(&format!("writer-rdk-{partitioner}"));
    broker.create_topic(&topic, PARTITIONS);
    let hex_keys: Vec<String> = keys().iter().map(|k| hex(k)).collect();
    let mut args = vec![broker.bootstrap(), topic, partitioner.to_owned()];
    args.extend(hex_keys);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_python(PRODUCE, &args);
    let placed: Vec<(String, i32)> = out
        .lines()
        .map(|line| {
            let (k, p) = line.split_once(' ').expect("`key partition`");
            (k.to_owned(), p.parse().unwrap())
        })
        .collect();
    assert_eq!(placed.len(), keys().len(), "{out}");
    placed
}

/// The partitions kafkit's writer picks with `balancer`, written to tansu.
async fn kafkit_partitions(broker: &TestBroker, balancer: impl Balancer) -> Vec<(String, i32)> {
    let topic = unique_topic("writer-kafkit-keys");
    broker.create_topic(&topic, PARTITIONS);
    let writer = Writer::builder([broker.bootstrap()])
        .topic(&topic)
        .balancer(balancer)
        .build()
        .await
        .unwrap();
    let messages: Vec<Message> = keys()
        .into_iter()
        .map(|k| Message::new("v").with_key(k))
        .collect();
    let results = writer.write_messages(&messages).await.unwrap();
    writer.close().await.unwrap();
    keys()
        .iter()
        .zip(results)
        .map(|(k, r)| (hex(k), r.unwrap().partition))
        .collect()
}

fn assert_same(ours: &[(String, i32)], theirs: &[(String, i32)], name: &str) {
    let theirs: std::collections::HashMap<&str, i32> =
        theirs.iter().map(|(k, p)| (k.as_str(), *p)).collect();
    for (key, partition) in ours {
        assert_eq!(
            Some(partition),
            theirs.get(key.as_str()),
            "{name}: key {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_librdkafka_puts_them() {
    let broker = TestBroker::start();
    let rdk_murmur =
        tokio::task::block_in_place(|| librdkafka_partitions(&broker, "murmur2_random"));
    let rdk_crc = tokio::task::block_in_place(|| librdkafka_partitions(&broker, "consistent"));

    let ours = kafkit_partitions(&broker, Murmur2::default()).await;
    assert_same(&ours, &rdk_murmur, "murmur2");
    let ours = kafkit_partitions(&broker, Crc32::default()).await;
    assert_same(&ours, &rdk_crc, "crc32");
    // The default balancer is murmur2 for keyed records.
    let ours = kafkit_partitions(&broker, kafkit_writer::DefaultBalancer::default()).await;
    assert_same(&ours, &rdk_murmur, "default");
    // The two partitioners disagree somewhere, or the test proves little.
    assert_ne!(rdk_murmur, rdk_crc);
}
