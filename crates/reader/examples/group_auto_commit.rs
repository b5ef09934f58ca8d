//! A group reader with `read_message`, which commits each message as it
//! hands it out (at-most-once, as kafka-go's `ReadMessage` with a GroupID).
//!
//! `cargo run -p kafkit-reader --example group_auto_commit -- localhost:9092 my-topic my-group`

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
        .build()
        .await?;
    for _ in 0..100 {
        let m = reader.read_message().await?;
        println!("{}/{}@{}: {:?}", m.topic, m.partition, m.offset, m.value);
    }
    // Commits anything pending and leaves the group at once.
    reader.close().await
}
