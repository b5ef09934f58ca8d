//! kafka-go's "create topics" Conn example: find the controller, connect
//! to it, create a topic there.
//!
//! ```sh
//! cargo run -p kafkit-conn --example create_topic -- 127.0.0.1:9092 my-topic 3
//! ```

use kafkit_conn::{Conn, TopicConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());
    let partitions: i32 = args.next().map_or(Ok(1), |p| p.parse())?;

    let conn = Conn::dial(&addr).await?;
    let controller = conn.controller().await?;
    let controller = Conn::dial(controller.addr()).await?;

    // One result per topic: an existing topic is an error for that topic
    // only, not a failed call.
    for result in controller
        .create_topics(&[TopicConfig::new(&topic, partitions)])
        .await?
    {
        match result.result {
            Ok(()) => println!("created {}", result.topic),
            Err(e) => println!("could not create {}: {e}", result.topic),
        }
    }
    controller.close().await?;
    conn.close().await?;
    Ok(())
}
