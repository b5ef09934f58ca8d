//! Periodic commits: `commit_messages` only marks, and a background task
//! commits what is marked every second (kafka-go's `CommitInterval`).
//! `close()` flushes the rest.
//!
//! `cargo run -p kafkit-reader --example commit_interval -- localhost:9092 my-topic my-group`

use std::time::Duration;

use kafkit_reader::Reader;

#[tokio::main]
async fn main() -> Result<(), kafkit_reader::Error> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());
    let group = args.next().unwrap_or_else(|| "my-group".into());

    let mut reader = Reader::builder([broker])
        .group_id(group)
        .topics([topic])
        .commit_interval(Duration::from_secs(1))
        .build()
        .await?;
    for _ in 0..10_000 {
        let m = reader.fetch_message().await?;
        reader.commit_messages(&[m]).await?; // no request: marked only
    }
    println!("{:?}", reader.stats());
    reader.close().await
}
