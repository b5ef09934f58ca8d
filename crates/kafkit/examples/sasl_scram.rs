//! Produce and consume as a SASL/SCRAM-SHA-512 user (add TLS the same way as
//! in the `tls` example: SCRAM proves the password without sending it, but
//! only TLS keeps the records private).
//!
//! ```sh
//! KAFKIT_SASL_PASSWORD=secret cargo run -p kafkit --example sasl_scram -- 127.0.0.1:9092 orders alice
//! ```

use std::error::Error;
use std::sync::Arc;

use kafkit::conn::ConnConfig;
use kafkit::conn::sasl::Scram;
use kafkit::reader::{Reader, ReaderConfig, StartOffset};
use kafkit::writer::{Message, Writer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [broker, topic, user] = args.as_slice() else {
        return Err(
            "usage: sasl_scram BROKER TOPIC USER (password in KAFKIT_SASL_PASSWORD)".into(),
        );
    };
    // From the environment, never the command line, where `ps` would show it.
    let password = std::env::var("KAFKIT_SASL_PASSWORD")?;
    let conn = ConnConfig {
        sasl: Some(Arc::new(Scram::sha512(user.as_str(), password))),
        ..ConnConfig::default()
    };

    let writer = Writer::builder([broker.as_str()])
        .conn(conn.clone())
        .topic(topic.as_str())
        .build()
        .await?;
    let delivered = writer.send(Message::new("authenticated")).await?.await?;
    println!(
        "wrote partition {} offset {}",
        delivered.partition, delivered.offset
    );
    writer.close().await?;

    let mut reader = Reader::new(ReaderConfig {
        brokers: vec![broker.clone()],
        topic: Some(topic.clone()),
        partition: Some(delivered.partition),
        start_offset: StartOffset::Offset(delivered.offset),
        conn,
        ..ReaderConfig::default()
    })
    .await?;
    let message = reader.fetch_message().await?;
    println!("read back {:?} at offset {}", message.value, message.offset);
    reader.close().await?;
    Ok(())
}
