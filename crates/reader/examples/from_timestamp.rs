//! A partition reader starting at the first message written in the last
//! hour (`set_offset_at`, ListOffsets by timestamp).
//!
//! `cargo run -p kafkit-reader --example from_timestamp -- localhost:9092 my-topic`

use std::time::{Duration, SystemTime};

use kafkit_reader::{Reader, StartOffset};

#[tokio::main]
async fn main() -> Result<(), kafkit_reader::Error> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());

    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let mut reader = Reader::builder([broker])
        .partition(&topic, 0)
        .start_offset(StartOffset::Timestamp(an_hour_ago))
        .build()
        .await?;
    let m = reader.read_message().await?;
    println!(
        "first message of the last hour: offset {} at {:?}",
        m.offset,
        m.time()
    );
    // The same on a running reader:
    reader.set_offset_at(an_hour_ago)?;
    reader.close().await
}
