//! Runs an Apache Kafka cluster until its stdin closes: how `cargo xtask
//! test-kafka` starts the one node the whole integration suite shares, and
//! how `cargo xtask broker --kafka` runs one by hand.
//!
//! ```text
//! kafka_cluster [--nodes N] [--env-file PATH] [--feature NAME=LEVEL]...
//! ```
//!
//! It formats and starts N nodes (default 1) with [`KafkaCluster`], writes
//! `NAME=VALUE` lines to PATH for the tests' environment (`KAFKIT_BROKERS`
//! and the secured listeners' `KAFKIT_BROKERS_*`, `KAFKIT_BROKERS_PKI`,
//! `KAFKIT_BROKERS_KIND=kafka`), prints `ready <bootstrap>` on stdout, then
//! waits for stdin to reach its end and stops the nodes. If this process
//! dies instead, the nodes die with it (see `supervised.rs`). A node that
//! does not come up fails it, printing the end of the node's log.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use kafkit_tests::{KafkaCluster, KafkaOptions, Listener};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = KafkaOptions::default();
    let mut env_file = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--nodes", Some(n)) => match n.parse() {
                Ok(n) if n >= 1 => options.nodes = n,
                _ => return usage(&format!("--nodes takes a count, not `{n}`")),
            },
            ("--env-file", Some(path)) => env_file = Some(path.clone()),
            ("--feature", Some(feature)) => match feature.split_once('=') {
                Some((name, level)) if level.parse::<u16>().is_ok() => options
                    .features
                    .push((name.to_owned(), level.parse().expect("checked"))),
                _ => return usage(&format!("--feature takes NAME=LEVEL, not `{feature}`")),
            },
            _ => return usage(&format!("unexpected `{arg}`")),
        }
    }
    if options.nodes > 1 {
        options.heap_mib = 512;
    }
    let started = Instant::now();
    let cluster = KafkaCluster::start(options);
    let bootstrap = cluster.bootstrap(Listener::Plaintext);
    eprintln!(
        "Apache Kafka is serving at {bootstrap} ({} node(s), up in {:.1}s)",
        cluster.node_ids().len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = env_file {
        let mut lines: Vec<String> = Listener::ALL
            .iter()
            .map(|l| format!("{}={}", l.env_var(), cluster.bootstrap(*l)))
            .collect();
        lines.push(format!(
            "KAFKIT_BROKERS_PKI={}",
            cluster.pki().dir().display()
        ));
        lines.push("KAFKIT_BROKERS_KIND=kafka".to_owned());
        if let Err(e) = std::fs::write(&path, lines.join("\n") + "\n") {
            eprintln!("cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("ready {bootstrap}");
    let _ = std::io::stdout().flush();
    // Hold the cluster until whoever started us closes our stdin.
    let mut sink = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut sink)
        .is_ok_and(|n| n > 0)
    {
        sink.clear();
    }
    drop(cluster);
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "{problem}\nusage: kafka_cluster [--nodes N] [--env-file PATH] [--feature NAME=LEVEL]..."
    );
    ExitCode::from(2)
}
