//! Lists every topic with its partitions, replication factor, replicas and
//! non-default configs, as sarama's `ClusterAdmin.ListTopics` does.
//!
//! ```text
//! cargo run -p kafkit-admin --example list_topics -- localhost:9092 [--internal]
//! ```

use kafkit_admin::Admin;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kafkit_admin::Error> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".to_owned());
    let internal = args.any(|a| a == "--internal");

    let admin = Admin::builder([&bootstrap]).build().await?;
    let topics = admin.list_topics(internal).await?;
    println!("{} topics", topics.len());
    for (name, detail) in &topics {
        println!(
            "{name}: {} partitions, replication factor {}{}",
            detail.num_partitions,
            detail.replication_factor,
            if detail.internal { " (internal)" } else { "" }
        );
        for (partition, replicas) in &detail.replica_assignment {
            println!("  partition {partition}: replicas {replicas:?}");
        }
        for (config, value) in &detail.config_entries {
            println!("  {config} = {}", value.as_deref().unwrap_or("(null)"));
        }
    }
    Ok(())
}
