//! Exactly-once consume-transform-produce with `kafkit::stream`: writes
//! 1,000 orders, upper-cases each into an output topic in transactions
//! that also commit the input offsets, sends the poison ones to a
//! dead-letter topic, then reads the outputs back read_committed and
//! checks that each order came out exactly once. Terminates by itself.
//!
//! ```sh
//! cargo run -p kafkit --example exactly_once              # broker at 127.0.0.1:9092
//! KAFKIT_BROKERS=127.0.0.1:19092 cargo run -p kafkit --example exactly_once
//! ```
//!
//! `RUST_LOG=kafkit_stream=debug` logs each transaction. The topics get
//! fresh names on every run (a suffix from the clock), so
//! runs do not see each other's records.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafkit::admin::NewTopic;
use kafkit::reader::{FetchConfig, Fetcher, IsolationLevel, StartOffset, TopicPartition};
use kafkit::stream::{Output, RetryPolicy, dlq_headers};
use kafkit::writer::Message;
use kafkit::{Admin, Processor, ReaderConfig, Transport, TransportConfig, Writer};

const ORDERS: usize = 1000;
const PARTITIONS: i32 = 3;
const ATTEMPTS: usize = 2;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // RUST_LOG=kafkit_stream=debug shows each transaction.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let brokers = std::env::var("KAFKIT_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let (input, output, dlq) = (
        format!("orders-{run}"),
        format!("orders-upper-{run}"),
        format!("orders-dlq-{run}"),
    );

    // Topics, then the input records (a plain idempotent writer).
    let admin = Admin::builder([brokers.as_str()]).build().await?;
    let topics: Vec<NewTopic> = [&input, &output, &dlq]
        .iter()
        .map(|t| NewTopic::new(t.as_str(), PARTITIONS))
        .collect();
    for (name, result) in admin.create_topics(&topics, false).await? {
        result.map_err(|e| format!("create {name}: {e}"))?;
    }
    let writer = Writer::builder([brokers.as_str()])
        .topic(&input)
        .build()
        .await?;
    let orders: Vec<Message> = (0..ORDERS)
        .map(|i| Message::new(format!("order {i}")).with_key(format!("customer-{}", i % 17)))
        .collect();
    for result in writer.write_messages(&orders).await? {
        result?;
    }
    writer.close().await?;
    println!("wrote {ORDERS} orders to {input}");

    // The processor: every 100th order is poison and fails every attempt.
    let mut processor = Processor::builder([brokers.as_str()])
        .group_id(format!("orders-upper-{run}"))
        .input_topics([input.as_str()])
        .transactional_id(format!("orders-upper-{run}-0"))
        .retry(RetryPolicy {
            attempts: ATTEMPTS as u32,
            backoff: Duration::from_millis(10),
            dead_letter_topic: Some(dlq.clone()),
            ..RetryPolicy::default()
        })
        .commit_every(Duration::from_millis(100))
        // A short session: a crashed instance's partitions move sooner
        // (and tansu, the test broker, takes half of it to form a group).
        .reader(ReaderConfig {
            session_timeout: Duration::from_secs(6),
            heartbeat_interval: Duration::from_secs(1),
            ..ReaderConfig::default()
        })
        .build()
        .await?;
    // Done once every order was handled: a success, or a poison order's
    // last failed attempt (after which it goes to the dead-letter topic).
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let done = {
        let (ok, failed) = (ok.clone(), failed.clone());
        async move {
            while ok.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) / ATTEMPTS < ORDERS {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let out = output.clone();
    processor
        .run_until(done, |order| {
            let text = String::from_utf8_lossy(order.value_bytes()).into_owned();
            let number: usize = text.trim_start_matches("order ").parse().unwrap_or(0);
            let result = if number % 100 == 99 {
                failed.fetch_add(1, Ordering::SeqCst);
                Err(format!("order {number} is poison"))
            } else {
                ok.fetch_add(1, Ordering::SeqCst);
                Ok(Output::new(out.clone(), text.to_uppercase())
                    .with_key(order.key.clone().unwrap_or_default()))
            };
            async move { result }
        })
        .await?;
    let stats = processor.stats();
    processor.close().await?;
    println!(
        "processed: {} transactions, {} outputs, {} dead letters, {} retries",
        stats.commits, stats.outputs, stats.dead_letters, stats.retries
    );

    // Read the outputs back as a downstream consumer should: read_committed.
    let upper = read_committed(&brokers, &output, stats.outputs as usize).await?;
    let letters = read_committed(&brokers, &dlq, stats.dead_letters as usize).await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in &upper {
        *counts
            .entry(String::from_utf8_lossy(m.value_bytes()).into_owned())
            .or_default() += 1;
    }
    let twice = counts.values().filter(|&&n| n > 1).count();
    println!(
        "{output}: {} outputs, {} distinct, {twice} twice",
        upper.len(),
        counts.len()
    );
    if let Some(letter) = letters.first() {
        let error = letter
            .header(dlq_headers::ERROR)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        println!(
            "{dlq}: {} dead letters, the first: {:?} ({})",
            letters.len(),
            String::from_utf8_lossy(letter.value_bytes()),
            error.unwrap_or_default()
        );
    }
    let expected = ORDERS - ORDERS / 100;
    if upper.len() != expected || counts.len() != expected || letters.len() != ORDERS / 100 {
        return Err(format!(
            "expected {expected} outputs once each and {} dead letters",
            ORDERS / 100
        )
        .into());
    }
    println!("exactly once: ok");
    Ok(())
}

/// Reads `count` records of every partition of `topic`, read_committed.
async fn read_committed(
    brokers: &str,
    topic: &str,
    count: usize,
) -> Result<Vec<kafkit::reader::Message>, Box<dyn Error>> {
    let transport = Transport::connect(TransportConfig::new([brokers])).await?;
    let mut fetcher = Fetcher::new(
        transport,
        FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        },
    );
    fetcher.assign(
        (0..PARTITIONS)
            .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
            .collect(),
    );
    let mut out = Vec::new();
    while out.len() < count {
        out.push(tokio::time::timeout(Duration::from_secs(10), fetcher.next()).await??);
    }
    // Anything more within a second would be a duplicate.
    if let Ok(extra) = tokio::time::timeout(Duration::from_secs(1), fetcher.next()).await {
        out.push(extra?);
    }
    Ok(out)
}
