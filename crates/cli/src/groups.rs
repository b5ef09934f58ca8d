//! `kafkit groups list|describe|lag|delete`, through kafkit-admin.

use std::collections::BTreeMap;

use clap::Subcommand;
use kafkit_admin::{Admin, ErrorCode, TopicPartition};

use crate::error::{Exit, Failure, Failures, Result};
use crate::format::Table;

/// List, describe, delete consumer groups and show their lag.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the groups of every broker: id, state and protocol type.
    #[command(
        after_help = "Examples:\n  kafkit groups list\n  kafkit groups list --state Stable --state Empty"
    )]
    List {
        /// Only groups in this state (Stable, Empty, PreparingRebalance...;
        /// repeatable; needs Kafka 2.6+).
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
    },
    /// Show a group's state, protocol and members with their partitions.
    #[command(after_help = "Example:\n  kafkit groups describe billing")]
    Describe {
        /// The groups.
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Show, per partition, the group's committed offset, the end offset
    /// and the lag between them, and the total.
    #[command(after_help = "Example:\n  kafkit groups lag billing")]
    Lag {
        /// The group.
        group: String,
    },
    /// Delete groups (each must have no active members).
    #[command(after_help = "Example:\n  kafkit groups delete old-app")]
    Delete {
        /// The groups.
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
}

/// Runs a `groups` subcommand.
pub async fn run(admin: &Admin, command: &GroupsCommand) -> Result<()> {
    match command {
        GroupsCommand::List { states } => list(admin, states).await,
        GroupsCommand::Describe { groups } => describe(admin, groups).await,
        GroupsCommand::Lag { group } => lag(admin, group).await,
        GroupsCommand::Delete { groups } => delete(admin, groups).await,
    }
}

async fn list(admin: &Admin, states: &[String]) -> Result<()> {
    let states: Vec<&str> = states.iter().map(String::as_str).collect();
    let listed = admin.list_groups(&states).await?;
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL TYPE", "COORDINATOR"]);
    for g in &listed.groups {
        table.row(vec![
            g.group_id.clone(),
            g.state.clone().unwrap_or_else(|| "?".to_owned()),
            g.protocol_type.clone(),
            g.coordinator.to_string(),
        ]);
    }
    table.print();
    let mut failures = Failures::default();
    for (broker, e) in &listed.errors {
        failures.report(
            Failure::from(e.clone()).context(format!("listing the groups of broker {broker}")),
        );
    }
    failures.finish(listed.errors.len(), "brokers")
}

fn partitions(tps: &[TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            format!("{t}:{}", crate::format::ids(&ps))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn describe(admin: &Admin, groups: &[String]) -> Result<()> {
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let described = admin.describe_groups(&names).await?;
    let mut failures = Failures::default();
    for name in &names {
        match described.get(*name) {
            Some(Ok(g)) if g.state == "Dead" => failures.report(Failure::new(
                Exit::NotFound,
                format!("group {name} does not exist"),
            )),
            Some(Ok(g)) => {
                println!(
                    "Group: {}  state: {}  protocol: {} {}  coordinator: {}  members: {}",
                    g.group_id,
                    g.state,
                    g.protocol_type,
                    g.protocol,
                    g.coordinator,
                    g.members.len()
                );
                let mut table = Table::new(&["  MEMBER", "CLIENT", "HOST", "PARTITIONS"]);
                for m in &g.members {
                    let assigned = match &m.assignment {
                        Some(Ok(a)) => partitions(&a.partitions),
                        Some(Err(e)) => format!("(undecodable: {e})"),
                        None => String::new(),
                    };
                    table.row(vec![
                        format!("  {}", m.member_id),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        assigned,
                    ]);
                }
                table.print();
            }
            Some(Err(e)) => {
                failures.report(Failure::from(e.clone()).context(format!("group {name}")))
            }
            None => failures.report(Failure::new(
                Exit::Broker,
                format!("group {name}: the coordinator did not describe it"),
            )),
        }
    }
    failures.finish(names.len(), "groups")
}

async fn lag(admin: &Admin, group: &str) -> Result<()> {
    let lags = admin.group_lag(group).await?;
    if lags.is_empty() {
        return Err(Failure::new(
            Exit::NotFound,
            format!("group {group} has no committed offsets (or does not exist)"),
        ));
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]);
    let mut total = 0;
    for (tp, lag) in &lags {
        let (topic, partition) = (tp.topic.to_string(), tp.partition.to_string());
        let lag = match lag {
            Ok(lag) => lag,
            Err(e) => {
                let why = format!("? ({e})");
                table.row(vec![topic, partition, why, String::new(), "?".to_owned()]);
                continue;
            }
        };
        total += lag.lag.unwrap_or(0);
        table.row(vec![
            topic,
            partition,
            lag.committed.to_string(),
            match &lag.end {
                Ok(end) => end.to_string(),
                Err(e) => format!("? ({e})"),
            },
            lag.lag.map_or("?".to_owned(), |l| l.to_string()),
        ]);
    }
    table.row(vec![
        "TOTAL".into(),
        String::new(),
        String::new(),
        String::new(),
        total.to_string(),
    ]);
    table.print();
    Ok(())
}

async fn delete(admin: &Admin, groups: &[String]) -> Result<()> {
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let deleted = admin.delete_groups(&names).await?;
    let mut failures = Failures::default();
    for name in &names {
        match deleted.get(*name) {
            Some(Ok(())) => println!("deleted group {name}"),
            Some(Err(e)) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => failures.report(
                Failure::new(Exit::NotFound, format!("group {name} does not exist")),
            ),
            Some(Err(e)) => {
                failures.report(Failure::from(e.clone()).context(format!("deleting group {name}")));
            }
            None => failures.report(Failure::new(
                Exit::Broker,
                format!("deleting group {name}: the coordinator did not answer"),
            )),
        }
    }
    failures.finish(names.len(), "groups")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(subcommand)]
        command: GroupsCommand,
    }

    #[test]
    fn partitions_print_grouped_by_topic() {
        let tps = [
            TopicPartition::new("b", 1),
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 0),
        ];
        assert_eq!(partitions(&tps), "a:0,2 b:1");
        assert_eq!(partitions(&[]), "");
    }

    #[test]
    fn subcommands_parse() {
        let t =
            Test::try_parse_from(["t", "list", "--state", "Stable", "--state", "Empty"]).unwrap();
        let GroupsCommand::List { states } = t.command else {
            panic!("not list")
        };
        assert_eq!(states, ["Stable", "Empty"]);
        assert!(
            Test::try_parse_from(["t", "lag"]).is_err(),
            "a group is required"
        );
        assert!(
            Test::try_parse_from(["t", "delete"]).is_err(),
            "a group is required"
        );
    }
}
