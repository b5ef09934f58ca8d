//! At-least-once: `fetch_message`, process, then `commit_messages`. A crash
//! before the commit means the message is read again, never lost.
//!
//! `cargo run -p kafkit-reader --example explicit_commit -- localhost:9092 my-topic my-group`

use kafkit_reader::{Message, Reader};

fn process(m: &Message) {
    println!(
        "{}/{}@{}: {} bytes",
        m.topic,
        m.partition,
        m.offset,
        m.value_bytes().len()
    );
}

#[tokio::main]
async fn main() -> Result<(), kafkit_reader::Error> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());
    let group = args.next().unwrap_or_else(|| "my-group".into());

    let mut reader = Reader::builder([broker])
        .group_id(group)
        .topics([topic])
        .build()
        .await?;
    let mut batch = Vec::new();
    for _ in 0..1000 {
        let m = reader.fetch_message().await?;
        process(&m);
        batch.push(m);
        if batch.len() == 100 {
            // One commit for the batch: the highest offset per partition.
            reader.commit_messages(&batch).await?;
            batch.clear();
        }
    }
    reader.commit_messages(&batch).await?;
    reader.close().await
}
