//! Rebalance notifications: a closure told of partitions assigned, revoked
//! and lost. It commits on revocation and, for one partition, seeks.
//!
//! `cargo run -p kafkit-reader --example rebalance_listener -- localhost:9092 my-topic my-group`

use kafkit_reader::group::{Rebalance, RebalanceKind};
use kafkit_reader::{Reader, StartOffset, TopicPartition};

#[tokio::main]
async fn main() -> Result<(), kafkit_reader::Error> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "my-topic".into());
    let group = args.next().unwrap_or_else(|| "my-group".into());

    let replay = TopicPartition::new(topic.as_str(), 0);
    let mut reader = Reader::builder([broker])
        .group_id(group)
        .topics([topic])
        .on_rebalance(move |r: &mut Rebalance<'_>| match r.kind() {
            RebalanceKind::Assigned => {
                println!(
                    "generation {}: assigned {:?}",
                    r.generation(),
                    r.partitions()
                );
                if r.partitions().contains(&replay) {
                    // Read partition 0 from the start, whatever was committed.
                    r.seek(replay.clone(), StartOffset::Earliest);
                }
            }
            RebalanceKind::Revoked => println!(
                "revoked {:?} (marked offsets get committed)",
                r.partitions()
            ),
            RebalanceKind::Lost => println!("lost {:?} (no commit possible)", r.partitions()),
        })
        .build()
        .await?;
    for _ in 0..100 {
        let m = reader.fetch_message().await?;
        reader.commit_messages(&[m]).await?;
    }
    reader.close().await
}
