//! `cargo xtask demo`: produce three records and fetch them back.
//!
//! ```text
//! cargo run -p kafkit-tests --example roundtrip              # starts its own tansu
//! cargo run -p kafkit-tests --example roundtrip -- HOST:PORT # uses your broker
//! ```
//!
//! It talks to the broker with kafkit-protocol and a blocking socket
//! ([`RawClient`]), as the integration tests do; it will give way to the
//! `kafkit` CLI when that exists.

use std::net::ToSocketAddrs;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_tests::{RawClient, TestBroker, unique_topic};

fn main() {
    // With no address, start tansu on a free loopback port; it stops when
    // `_broker` is dropped at the end of main.
    let (_broker, addr, topic) = match std::env::args().nth(1) {
        Some(addr) => {
            let resolved = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
            let resolved =
                resolved.unwrap_or_else(|| panic!("cannot resolve broker address `{addr}`"));
            (None, resolved, unique_topic("kafkit-demo"))
        }
        None => {
            let broker = TestBroker::start();
            println!("started tansu at {}", broker.addr());
            let addr = broker.addr();
            (Some(broker), addr, "kafkit-demo".to_owned())
        }
    };

    let mut client = RawClient::connect(addr);
    let created = client.create_topics(&topic, 1);
    let code = created.topics[0].error_code;
    assert!(
        code == ErrorCode::NONE || code == ErrorCode::TOPIC_ALREADY_EXISTS,
        "cannot create topic {topic}: {code}"
    );
    println!("created topic {topic} on {addr}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let records: [(&str, &str); 3] = [
        ("user-1", "hello"),
        ("user-2", "from"),
        ("user-1", "kafkit"),
    ];
    let mut batch = RecordBatchBuilder::new(0).with_compression(Compression::Zstd, None);
    for (key, value) in records {
        batch
            .append(
                now,
                Some(key.as_bytes()),
                Some(value.as_bytes()),
                &[("source", Some(b"kafkit-demo"))],
            )
            .expect("append a record");
    }
    let answer = client.produce(&topic, 0, batch.finish().expect("encode the batch"));
    let code = answer.error_code;
    assert_eq!(code, ErrorCode::NONE, "produce failed: {code}");
    println!(
        "produced {} records (zstd) at offset {}",
        records.len(),
        answer.base_offset
    );

    let (fetched, high_watermark) =
        client.fetch_records(&topic, 0, answer.base_offset, records.len());
    println!(
        "fetched {} records (high watermark {high_watermark}):",
        fetched.len()
    );
    for record in &fetched {
        let headers: Vec<String> = record
            .headers
            .iter()
            .map(|h| format!("{}={}", String::from_utf8_lossy(&h.key), text(&h.value)))
            .collect();
        println!(
            "  offset {}  key={}  value={}  headers=[{}]",
            record.offset,
            text(&record.key),
            text(&record.value),
            headers.join(", ")
        );
    }
    for (record, (key, value)) in fetched.iter().zip(records) {
        assert_eq!(record.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(record.value.as_deref(), Some(value.as_bytes()));
    }
    println!("round trip ok");
}

/// A key, value or header value for printing.
fn text(bytes: &Option<bytes::Bytes>) -> String {
    bytes
        .as_deref()
        .map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
}
