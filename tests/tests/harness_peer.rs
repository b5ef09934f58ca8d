//! The librdkafka peer harness works: records confluent-kafka (librdkafka
//! 2.16) produces to tansu come back through kafkit-conn with their keys,
//! values, headers and offsets.

use std::time::Duration;

use kafkit_conn::dial_leader;
use kafkit_tests::{TestBroker, librdkafka_library, run_python, unique_topic};

/// Produces `sys.argv[3]` records `v<i>` with key `k<i>` and header `n=<i>`
/// to partition 0 of `sys.argv[2]`, acks=all, and prints each delivered
/// offset; fails on any delivery error.
const PRODUCE: &str = r#"
import sys
from confluent_kafka import Producer
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
errors, offsets = [], []
def done(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        offsets.append(msg.offset())
for i in range(count):
    p.produce(topic, value=b"v%d" % i, key=b"k%d" % i, partition=0,
              headers=[("n", str(i).encode())], on_delivery=done)
left = p.flush(30)
assert left == 0 and not errors, (left, errors)
print(" ".join(str(o) for o in sorted(offsets)))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_librdkafka_produces_read_back_with_kafkit_conn() {
    let broker = TestBroker::start();
    let topic = unique_topic("peer-produce");
    broker.create_topic(&topic, 1);

    let offsets = run_python(PRODUCE, &[&broker.bootstrap(), &topic, "20"]);
    let offsets: Vec<i64> = offsets
        .split_whitespace()
        .map(|o| o.parse().unwrap())
        .collect();
    assert_eq!(offsets, (0..20).collect::<Vec<i64>>());

    let mut conn = dial_leader(broker.addr(), &topic, 0).await.unwrap();
    conn.set_max_wait(Duration::from_millis(100));
    let mut records = Vec::new();
    while records.len() < 20 {
        let batch = conn.read_batch(1, 1 << 20).await.unwrap();
        records.extend(batch.map(|r| r.unwrap()));
    }
    assert_eq!(records.len(), 20);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset, i as i64);
        assert_eq!(record.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(record.value.as_deref(), Some(format!("v{i}").as_bytes()));
        let header = record.headers.get("n").expect("header n");
        assert_eq!(header.value.as_deref(), Some(i.to_string().as_bytes()));
    }
    conn.close().await.unwrap();
}

#[test]
fn the_peer_is_librdkafka_2_16_and_its_library_is_in_the_wheel() {
    let version = run_python(
        "import confluent_kafka; print(confluent_kafka.libversion()[0])",
        &[],
    );
    assert!(version.starts_with("2.16."), "librdkafka {version}");
    let library = librdkafka_library();
    assert!(library.is_file(), "{}", library.display());
    let name = library.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("librdkafka") && name.ends_with(".so.1"),
        "{name}"
    );
}
