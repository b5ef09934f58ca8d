//! kafka-go's "list topics" Conn example: every topic with its partition
//! count, read from one broker's metadata.
//!
//! ```sh
//! cargo run -p kafkit-conn --example conn_list_topics -- 127.0.0.1:9092
//! ```

use std::collections::BTreeMap;

use kafkit_conn::Conn;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:9092".into());
    let conn = Conn::dial(&addr).await?;

    let mut topics: BTreeMap<String, usize> = BTreeMap::new();
    for partition in conn.read_partitions(&[]).await? {
        *topics.entry(partition.topic).or_default() += 1;
    }
    for (topic, partitions) in &topics {
        println!("{topic} ({partitions} partitions)");
    }
    for broker in conn.brokers().await? {
        println!("broker {} at {}", broker.id, broker.addr());
    }
    conn.close().await?;
    Ok(())
}
