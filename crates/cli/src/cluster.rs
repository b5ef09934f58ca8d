//! Read-only views of the cluster: `kafkit offsets TOPIC` (earliest and
//! latest offset of each partition, or the offset at a time) and
//! `kafkit cluster describe` (cluster id, controller, brokers).

use std::collections::BTreeMap;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use kafkit_admin::{Admin, IsolationLevel, ListedOffset, OffsetSpec, TopicPartition};

use crate::error::{Failure, Result};
use crate::format::Table;
use crate::topics::describe_one;

/// `kafkit offsets`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kafkit offsets orders
  kafkit offsets orders --timestamp 2026-11-23T09:00:00Z

COUNT is LATEST - EARLIEST: the records the partition holds now.")]
pub struct OffsetsArgs {
    /// The topic.
    pub topic: String,
    /// Also show, per partition, the first offset at or after this time
    /// (RFC 3339, or milliseconds since the Unix epoch).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub timestamp: Option<SystemTime>,
    /// Count only committed transactional records (the last stable offset).
    #[arg(long)]
    pub read_committed: bool,
}

/// `kafkit cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller and every broker.
    #[command(after_help = "Example:\n  kafkit cluster describe -b kafka-1:9092")]
    Describe,
}

/// Parses RFC 3339 (`2026-11-23T09:00:00Z`, `...+01:00`, fractions of a
/// second) or milliseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    crate::time::parse(s)
}

/// Looks `spec` up for every partition of `partitions`.
pub async fn lookup(
    admin: &Admin,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
    let specs: BTreeMap<TopicPartition, OffsetSpec> =
        partitions.iter().map(|tp| (tp.clone(), spec)).collect();
    let mut out = BTreeMap::new();
    for (tp, listed) in admin.list_offsets(&specs, isolation).await? {
        let listed = listed.map_err(|e| {
            Failure::from(e).context(format!("offsets of {}/{}", tp.topic, tp.partition))
        })?;
        out.insert(tp, listed);
    }
    Ok(out)
}

/// The partitions of `topic`, sorted (fails with exit code 4 if unknown).
pub async fn topic_partitions(admin: &Admin, topic: &str) -> Result<Vec<TopicPartition>> {
    let described = describe_one(admin, topic).await?;
    let mut tps: Vec<TopicPartition> = described
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect();
    tps.sort();
    Ok(tps)
}

/// Runs `offsets`.
pub async fn offsets(admin: &Admin, args: &OffsetsArgs) -> Result<()> {
    let isolation = if args.read_committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
    let tps = topic_partitions(admin, &args.topic).await?;
    let earliest = lookup(admin, &tps, OffsetSpec::Earliest, isolation).await?;
    let latest = lookup(admin, &tps, OffsetSpec::Latest, isolation).await?;
    let at = match args.timestamp {
        Some(t) => Some(lookup(admin, &tps, OffsetSpec::Timestamp(t), isolation).await?),
        None => None,
    };
    let mut header = vec!["PARTITION", "EARLIEST", "LATEST", "COUNT"];
    if at.is_some() {
        header.push("AT TIMESTAMP");
    }
    let mut table = Table::new(&header);
    for tp in &tps {
        let (first, end) = (earliest[tp].offset, latest[tp].offset);
        let mut row = vec![
            tp.partition.to_string(),
            first.to_string(),
            end.to_string(),
            (end - first).max(0).to_string(),
        ];
        if let Some(at) = &at {
            // -1: no record at or after the time; reading would start at the end.
            let o = at[tp].offset;
            row.push(if o < 0 {
                format!("{end} (none after)")
            } else {
                o.to_string()
            });
        }
        table.row(row);
    }
    table.print();
    Ok(())
}

/// Runs `cluster describe`.
pub async fn cluster(admin: &Admin, command: &ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Describe => {
            let c = admin.describe_cluster().await?;
            println!(
                "Cluster id: {}",
                c.cluster_id.as_deref().unwrap_or("(none)")
            );
            println!(
                "Controller: {}",
                c.controller
                    .map_or("(unknown)".to_owned(), |id| id.to_string())
            );
            let mut table = Table::new(&["BROKER", "HOST", "PORT", "RACK", "FENCED"]);
            for b in &c.brokers {
                table.row(vec![
                    b.id.to_string(),
                    b.host.clone(),
                    b.port.to_string(),
                    b.rack.clone().unwrap_or_default(),
                    if b.fenced { "yes" } else { "" }.to_owned(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Debug, Parser)]
    struct Test {
        #[command(flatten)]
        args: OffsetsArgs,
    }

    #[test]
    fn offsets_flags_parse() {
        let t = Test::try_parse_from(["t", "orders", "--timestamp", "1700000000000"]).unwrap();
        assert_eq!(t.args.topic, "orders");
        assert_eq!(
            t.args.timestamp,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
        );
        assert!(!t.args.read_committed);
        assert!(Test::try_parse_from(["t", "orders", "--timestamp", "yesterday"]).is_err());
    }
}
