//! `kafkit topics list|describe|create|delete`, through kafkit-admin.

use clap::{Args, Subcommand};
use kafkit_admin::{Admin, ErrorCode, NewTopic, TopicDescription};

use crate::error::{Exit, Failure, Failures, Result};
use crate::format::{Table, ids};

/// List, describe, create and delete topics.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topic names, one per line (--long: a table with partitions and
    /// replication).
    #[command(
        after_help = "Examples:\n  kafkit topics list\n  kafkit topics list --long --internal"
    )]
    List {
        /// Show partitions, replication factor and non-default configs.
        #[arg(short, long)]
        long: bool,
        /// Include Kafka's internal topics (__consumer_offsets...).
        #[arg(long)]
        internal: bool,
    },
    /// Show each partition's leader, replicas and in-sync replicas.
    #[command(after_help = "Example:\n  kafkit topics describe orders payments")]
    Describe {
        /// The topics.
        #[arg(required = true, value_name = "TOPIC")]
        topics: Vec<String>,
    },
    /// Create a topic.
    #[command(after_help = "\
Examples:
  kafkit topics create orders --partitions 6
  kafkit topics create audit -p 1 -r 3 -c retention.ms=86400000 -c cleanup.policy=compact")]
    Create(CreateArgs),
    /// Delete topics.
    #[command(after_help = "Example:\n  kafkit topics delete old-orders --if-exists")]
    Delete {
        /// The topics.
        #[arg(required = true, value_name = "TOPIC")]
        topics: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

/// `topics create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The topic's name.
    pub topic: String,
    /// The number of partitions.
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub partitions: i32,
    /// The replication factor (default: the broker's default.replication.factor).
    #[arg(short, long, value_name = "N")]
    pub replication_factor: Option<i16>,
    /// A topic config (repeatable).
    #[arg(short, long = "config", value_name = "NAME=VALUE", value_parser = parse_config)]
    pub configs: Vec<(String, String)>,
    /// Succeed when the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Only check that the broker would create it.
    #[arg(long)]
    pub validate_only: bool,
}

fn parse_config(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// Describes one topic, failing with [`Exit::NotFound`] when it does not
/// exist (what `produce`, `consume` and `offsets` check first).
pub async fn describe_one(admin: &Admin, topic: &str) -> Result<TopicDescription> {
    let mut described = admin.describe_topics(&[topic]).await?;
    match described.remove(topic) {
        Some(Ok(d)) => Ok(d),
        Some(Err(e)) => Err(Failure::from(e).context(format!("topic {topic}"))),
        None => Err(Failure::new(
            Exit::NotFound,
            format!("topic {topic}: the broker did not describe it"),
        )),
    }
}

/// Runs a `topics` subcommand.
pub async fn run(admin: &Admin, command: &TopicsCommand) -> Result<()> {
    match command {
        TopicsCommand::List { long, internal } => list(admin, *long, *internal).await,
        TopicsCommand::Describe { topics } => describe(admin, topics).await,
        TopicsCommand::Create(args) => create(admin, args).await,
        TopicsCommand::Delete { topics, if_exists } => delete(admin, topics, *if_exists).await,
    }
}

async fn list(admin: &Admin, long: bool, internal: bool) -> Result<()> {
    let topics = admin.list_topics(internal).await?;
    if !long {
        for name in topics.keys() {
            println!("{name}");
        }
        return Ok(());
    }
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION", "CONFIGS"]);
    for (name, detail) in &topics {
        let configs: Vec<String> = detail
            .config_entries
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
            .collect();
        table.row(vec![
            name.clone(),
            detail.num_partitions.to_string(),
            detail.replication_factor.to_string(),
            configs.join(","),
        ]);
    }
    table.print();
    Ok(())
}

async fn describe(admin: &Admin, topics: &[String]) -> Result<()> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let described = admin.describe_topics(&names).await?;
    let mut failures = Failures::default();
    for name in &names {
        match described.get(*name) {
            Some(Ok(d)) => {
                println!(
                    "Topic: {}  id: {}  partitions: {}{}",
                    d.name,
                    d.id,
                    d.partitions.len(),
                    if d.internal { "  (internal)" } else { "" }
                );
                let mut table = Table::new(&["  PARTITION", "LEADER", "REPLICAS", "ISR", "ERROR"]);
                for p in &d.partitions {
                    table.row(vec![
                        format!("  {}", p.partition),
                        p.leader.map_or("none".to_owned(), |l| l.to_string()),
                        ids(&p.replicas),
                        ids(&p.isr),
                        p.error
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    ]);
                }
                table.print();
            }
            Some(Err(e)) => {
                failures.report(Failure::from(e.clone()).context(format!("topic {name}")));
            }
            None => failures.report(Failure::new(
                Exit::NotFound,
                format!("topic {name}: not described by the broker"),
            )),
        }
    }
    failures.finish(names.len(), "topics")
}

async fn create(admin: &Admin, args: &CreateArgs) -> Result<()> {
    if args.partitions < 1 {
        return Err(Failure::usage("--partitions must be at least 1"));
    }
    let mut topic = NewTopic::new(&args.topic, args.partitions);
    if let Some(r) = args.replication_factor {
        topic = topic.replication_factor(r);
    }
    for (k, v) in &args.configs {
        topic = topic.config(k, v);
    }
    let created = admin.create_topics(&[topic], args.validate_only).await?;
    match created.get(&args.topic) {
        Some(Ok(_)) => {
            let verb = if args.validate_only {
                "would create"
            } else {
                "created"
            };
            let plural = if args.partitions == 1 { "" } else { "s" };
            println!(
                "{verb} topic {} ({} partition{plural})",
                args.topic, args.partitions
            );
            Ok(())
        }
        Some(Err(e)) if args.if_not_exists && e.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
            println!("topic {} already exists", args.topic);
            Ok(())
        }
        Some(Err(e)) => {
            Err(Failure::from(e.clone()).context(format!("creating topic {}", args.topic)))
        }
        None => Err(Failure::new(
            Exit::Broker,
            format!(
                "creating topic {}: the broker did not answer for it",
                args.topic
            ),
        )),
    }
}

async fn delete(admin: &Admin, topics: &[String], if_exists: bool) -> Result<()> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let deleted = admin.delete_topics(&names).await?;
    let mut failures = Failures::default();
    for name in &names {
        match deleted.get(*name) {
            Some(Ok(())) => println!("deleted topic {name}"),
            Some(Err(e))
                if if_exists && e.code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) =>
            {
                println!("topic {name} does not exist");
            }
            Some(Err(e)) => {
                failures.report(Failure::from(e.clone()).context(format!("deleting topic {name}")));
            }
            None => failures.report(Failure::new(
                Exit::Broker,
                format!("deleting topic {name}: the broker did not answer for it"),
            )),
        }
    }
    failures.finish(names.len(), "topics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(subcommand)]
        command: TopicsCommand,
    }

    #[test]
    fn create_flags_parse() {
        let t = Test::try_parse_from([
            "t",
            "create",
            "orders",
            "-p",
            "6",
            "-r",
            "3",
            "-c",
            "retention.ms=1000",
            "--if-not-exists",
        ])
        .unwrap();
        let TopicsCommand::Create(args) = t.command else {
            panic!("not create")
        };
        assert_eq!((args.partitions, args.replication_factor), (6, Some(3)));
        assert_eq!(
            args.configs,
            [("retention.ms".to_owned(), "1000".to_owned())]
        );
        assert!(args.if_not_exists && !args.validate_only);
        assert!(Test::try_parse_from(["t", "create", "x", "-c", "novalue"]).is_err());
        assert!(
            Test::try_parse_from(["t", "describe"]).is_err(),
            "a topic is required"
        );
        assert!(
            Test::try_parse_from(["t", "delete"]).is_err(),
            "a topic is required"
        );
    }
}
