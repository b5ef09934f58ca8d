//! `kafkit`: a kcat-like command-line tool for Apache Kafka, built on the
//! kafkit crates: produce lines, consume records (by partition or as a
//! group), and manage topics, groups and offsets through kafkit-admin.
//!
//! Files: `main.rs` (arguments and dispatch), `connect.rs` (brokers, TLS,
//! SASL), `produce.rs`, `consume.rs` and `consume_group.rs`, `topics.rs`,
//! `groups.rs`, `cluster.rs` (offsets, cluster), `format.rs` (record
//! formats, tables), `progress.rs`, `time.rs`, `error.rs` (exit codes).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafkit_admin::Admin;
use tracing_subscriber::EnvFilter;

mod cluster;
mod connect;
mod consume;
mod consume_group;
mod error;
mod format;
mod groups;
mod produce;
mod progress;
mod stats;
mod time;
mod topics;

use crate::cluster::{ClusterCommand, OffsetsArgs};
use crate::connect::ConnectArgs;
use crate::consume::ConsumeArgs;
use crate::error::{Exit, Failure, Result};
use crate::groups::GroupsCommand;
use crate::produce::ProduceArgs;
use crate::topics::TopicsCommand;

/// A kcat-like command-line tool for Apache Kafka.
#[derive(Debug, Parser)]
#[command(
    name = "kafkit",
    version,
    about,
    propagate_version = true,
    after_help = const_help()
)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,

    /// No progress bars and no summaries on stderr (errors still print).
    #[arg(short, long, global = true, help_heading = "Output")]
    quiet: bool,

    /// Log what the client does on stderr (-v info, -vv debug, -vvv trace;
    /// RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

const fn const_help() -> &'static str {
    concat!(
        "Examples:\n",
        "  kafkit topics create greetings --partitions 3\n",
        "  printf 'user-1:hello\\nuser-2:bye\\n' | kafkit produce greetings -K :\n",
        "  kafkit consume greetings --offset beginning --exit --format json\n",
        "  kafkit consume greetings --group billing\n",
        "  kafkit groups lag billing\n",
        "  kafkit offsets greetings\n\n",
        "The brokers come from --brokers, else KAFKIT_BROKERS, else 127.0.0.1:9092.\n\n",
        "Exit codes:\n",
        "  0  success\n",
        "  1  other failure (IO error, a record that could not be written)\n",
        "  2  usage error (bad flag or value, invalid configuration)\n",
        "  3  connection or broker error (refused, timeout, a broker error code)\n",
        "  4  not found (unknown topic, partition or group)\n",
        "  5  conflict (topic already exists, group not empty)\n",
        "  6  TLS, SASL or authorization failure"
    )
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write records, one per line of stdin or a file.
    Produce(ProduceArgs),
    /// Print records: from offsets or times, or as a consumer group.
    Consume(ConsumeArgs),
    /// List, describe, create and delete topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// List, describe and delete consumer groups; show their lag.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Show the earliest and latest offset of each partition of a topic.
    Offsets(OffsetsArgs),
    /// Describe the cluster: id, controller, brokers.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// Logs go to stderr, never between records on stdout.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn dispatch(cli: &Cli) -> Result<()> {
    let admin = || async { Ok::<_, Failure>(Admin::new(cli.connect.connect().await?)) };
    match &cli.command {
        Command::Produce(args) => produce::run(&cli.connect, args, cli.quiet).await,
        Command::Consume(args) => consume::run(&cli.connect, args, cli.quiet).await,
        Command::Topics(command) => topics::run(&admin().await?, command).await,
        Command::Groups(command) => groups::run(&admin().await?, command).await,
        Command::Offsets(args) => cluster::offsets(&admin().await?, args).await,
        Command::Cluster(command) => cluster::cluster(&admin().await?, command).await,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Exit::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kafkit: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Failure as u8);
        }
    };
    let result = runtime.block_on(async {
        let result = dispatch(&cli).await;
        // The clients are dropped by now; their background tasks stop on
        // their own within a few polls. Letting them, before the runtime
        // cancels whatever is left, keeps a cancelled task from being
        // logged as a failure.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        result
    });
    // Background tasks (metadata refresh, fetchers) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("kafkit: {failure}");
            failure.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_CODES_HELP;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_exit_codes_of_error_rs() {
        assert!(const_help().contains(EXIT_CODES_HELP));
    }

    #[test]
    fn brokers_default_then_flag() {
        let cli =
            Cli::try_parse_from(["kafkit", "-b", "k1:9092,k2:9092", "topics", "list"]).unwrap();
        assert_eq!(cli.connect.bootstrap(), ["k1:9092", "k2:9092"]);
        // Global flags work after the subcommand too.
        let cli = Cli::try_parse_from(["kafkit", "offsets", "t", "-q", "-b", "x:1"]).unwrap();
        assert!(cli.quiet);
        assert_eq!(cli.connect.brokers, "x:1");
    }
}
