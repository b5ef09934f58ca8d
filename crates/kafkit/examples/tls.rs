//! Produce and consume over TLS, verifying the broker against a CA file
//! (and, optionally, authenticating with a client certificate: mTLS).
//!
//! ```sh
//! cargo run -p kafkit --example tls -- broker.example.com:9093 orders ca.pem [client.pem client.key]
//! ```
//!
//! Certificate verification is always on unless a program calls
//! `danger_accept_invalid_certs(true)` itself; this example never does.

use std::error::Error;

use kafkit::conn::{ConnConfig, TlsConfig, Transport, TransportConfig};
use kafkit::reader::{Reader, ReaderConfig, StartOffset};
use kafkit::writer::{Message, Writer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [broker, topic, ca, client @ ..] = args.as_slice() else {
        return Err("usage: tls BROKER TOPIC CA.pem [CLIENT.pem CLIENT.key]".into());
    };
    let mut tls = TlsConfig::builder().ca_file(ca);
    if let [cert, key] = client {
        tls = tls.client_cert_files(cert, key);
    }
    let conn = ConnConfig {
        tls: Some(tls.build()?),
        ..ConnConfig::default()
    };

    // The writer shares one Transport (and its TLS connections) with anything
    // else built on it.
    let mut transport = TransportConfig::new([broker.as_str()]);
    transport.conn = conn.clone();
    let transport = Transport::connect(transport).await?;
    let writer = Writer::with_transport(transport)
        .topic(topic.as_str())
        .build()
        .await?;
    let delivered = writer.send(Message::new("over TLS")).await?.await?;
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
