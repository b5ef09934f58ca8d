//! Keyed writes: each key goes to the partition the Java client (and
//! librdkafka's `murmur2_random`) would pick, so consumers of either see
//! one key's records in one partition, in order. Headers carry a trace id.
//!
//! ```sh
//! cargo run -p kafkit-writer --example keyed -- localhost:9092 orders
//! ```

use kafkit_writer::{Message, Murmur2, Writer};

#[tokio::main]
async fn main() -> Result<(), kafkit_writer::Error> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());

    let writer = Writer::builder([bootstrap]).topic(&topic).build().await?;
    let messages: Vec<Message> = (0..20)
        .map(|i| {
            Message::new(format!("order {i}"))
                .with_key(format!("customer-{}", i % 4))
                .with_header("trace-id", format!("{:032x}", 0xfeed_0000_u64 + i))
        })
        .collect();
    let partitions = writer
        .transport()
        .cluster_for(&[&topic])
        .await?
        .partition_count(&topic);
    for (m, result) in messages.iter().zip(writer.write_messages(&messages).await?) {
        let meta = result?;
        let key = m.key.as_deref().unwrap_or_default();
        assert_eq!(meta.partition, Murmur2::partition_for(key, partitions));
        println!(
            "{} -> partition {} offset {}",
            String::from_utf8_lossy(key),
            meta.partition,
            meta.offset
        );
    }
    writer.close().await
}
