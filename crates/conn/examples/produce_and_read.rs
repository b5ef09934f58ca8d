//! kafka-go's "produce messages" and "consume messages" Conn examples:
//! write three messages to partition 0 of a topic, then read them back as
//! one batch.
//!
//! ```sh
//! cargo run -p kafkit-conn --example produce_and_read -- 127.0.0.1:9092 my-topic
//! ```
//!
//! The topic must exist (see the `create_topic` example).

use kafkit_conn::{Message, dial_leader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());

    let mut conn = dial_leader(&addr, &topic, 0).await?;
    let base = conn
        .write_messages(&[
            Message::new("one!"),
            Message::new("two!"),
            Message::new("three!"),
        ])
        .await?;
    // `None` only with acks=0, where the broker reports no offset.
    match base {
        Some(offset) => println!("produced 3 messages at offset {offset}"),
        None => println!("produced 3 messages (acks=0: no offset reported)"),
    }

    if let Some(base) = base {
        conn.seek(base);
    }
    let batch = conn.read_batch(10_000, 1_000_000).await?;
    for record in batch.take(3) {
        let record = record?;
        let value = record.value.unwrap_or_default();
        println!(
            "offset {}: {}",
            record.offset,
            String::from_utf8_lossy(&value)
        );
    }
    conn.close().await?;
    Ok(())
}
