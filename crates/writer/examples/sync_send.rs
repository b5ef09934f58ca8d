//! A synchronous send: write one record and wait for its partition and
//! offset.
//!
//! ```sh
//! cargo run -p kafkit-writer --example sync_send -- localhost:9092 greetings
//! ```

use kafkit_writer::{Message, Writer};

#[tokio::main]
async fn main() -> Result<(), kafkit_writer::Error> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "greetings".into());

    let writer = Writer::builder([bootstrap]).topic(&topic).build().await?;
    // `send` returns once the record is buffered; the Delivery resolves
    // once the broker has it.
    let delivery = writer
        .send(Message::new("hello, kafka").with_key("user-1"))
        .await?;
    let meta = delivery.await?;
    println!(
        "written to {topic}/{} at offset {}",
        meta.partition, meta.offset
    );
    writer.close().await
}
