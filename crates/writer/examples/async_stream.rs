//! An asynchronous producer: fire-and-forget writes whose successes and
//! errors arrive on a stream (a channel fed by the delivery callback).
//!
//! ```sh
//! cargo run -p kafkit-writer --example async_stream -- localhost:9092 events
//! ```

use kafkit_writer::{DeliveryReport, Message, Writer};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), kafkit_writer::Error> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "events".into());

    let (tx, mut reports) = mpsc::unbounded_channel::<DeliveryReport>();
    let writer = Writer::builder([bootstrap])
        .topic(&topic)
        .on_delivery(move |report| {
            // Runs on the writer's task: hand the report over and return.
            let _ = tx.send(report);
        })
        .build()
        .await?;

    let consumer = tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        while let Some(report) = reports.recv().await {
            match report.result {
                Ok(_) => ok += 1,
                Err(e) => {
                    failed += 1;
                    eprintln!("record {} failed: {e}", report.id);
                }
            }
        }
        (ok, failed)
    });

    for i in 0..10_000 {
        // Waits only when the buffer is full (backpressure).
        writer.produce(&Message::new(format!("event {i}"))).await?;
    }
    let closed = writer.close().await;
    drop(writer); // drops the callback, which ends the stream
    let (ok, failed) = consumer.await.expect("the consumer task");
    println!("{ok} written, {failed} failed");
    closed
}
