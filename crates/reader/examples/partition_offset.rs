//! A partition reader starting at offset 42 (kafka-go's `SetOffset(42)`).
//!
//! `cargo run -p kafkit-reader --example partition_offset -- localhost:9092 my-topic`

use kafkit_reader::{Reader, StartOffset};

#[tokio::main]
async fn main() -> Result<(), kafkit_reader::Error> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());

    let mut reader = Reader::builder([broker])
        .partition(&topic, 0)
        .start_offset(StartOffset::Offset(42))
        .build()
        .await?;
    for _ in 0..10 {
        let m = reader.read_message().await?;
        println!(
            "offset {}: {}",
            m.offset,
            String::from_utf8_lossy(m.value_bytes())
        );
    }
    // Jump back: the next message is offset 42 again.
    reader.set_offset(42)?;
    println!("after set_offset: {}", reader.read_message().await?.offset);
    println!("lag {}", reader.lag());
    reader.close().await
}
