//! `cargo xtask bench produce|consume|all [--records N] [--runs N]`: kafkit
//! against librdkafka on one tansu broker.
//!
//! Builds the `bench/` crate (outside the workspace: it compiles librdkafka
//! with cmake) in release mode, installing `cmake` and libcurl's headers
//! first if needed, starts a tansu broker on a free port, and runs the
//! benchmark binary against it; the broker is stopped afterwards, pass or
//! fail. The binary runs each client in its own process and prints one
//! Markdown table per benchmark (records/s, MB/s, client CPU per record,
//! peak RSS, allocations per record, and kafkit / librdkafka).

use std::process::Command;

use anyhow::{Result, bail};

use crate::broker::Broker;
use crate::util::{cargo, run, workspace_root};
use crate::{deps, tansu};

const USAGE: &str = "usage: cargo xtask bench produce|consume|all [--records N] [--runs N]";

/// `cargo xtask bench ...`.
pub fn run_command(args: &[String]) -> Result<()> {
    let Some((mode, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    if !matches!(mode.as_str(), "produce" | "consume" | "all") {
        bail!("unknown benchmark `{mode}`\n{USAGE}");
    }
    check_options(rest)?;

    deps::ensure_bench_packages()?;
    let manifest = workspace_root().join("bench").join("Cargo.toml");
    run(cargo(["build", "--release", "--manifest-path"]).arg(&manifest))?;
    let binary = workspace_root().join("bench/target/release/kafkit-bench");

    let tansu = tansu::ensure()?;
    // Dropped (killed and reaped) when this function returns, pass or fail.
    let broker = Broker::start(&tansu, 0, true)?;
    println!("started tansu at {} for the benchmarks", broker.addr());
    run(Command::new(binary)
        .arg(mode)
        .args(["--brokers", &broker.addr().to_string()])
        .args(rest))
}

/// Only `--records N` and `--runs N`, each with a positive number.
fn check_options(args: &[String]) -> Result<()> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if !matches!(flag.as_str(), "--records" | "--runs") {
            bail!("unknown option `{flag}`\n{USAGE}");
        }
        match it.next().map(|v| v.parse::<u64>()) {
            Some(Ok(n)) if n > 0 => {}
            _ => bail!("{flag} takes a positive number\n{USAGE}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_are_checked_before_anything_is_built() {
        assert!(check_options(&strings(&["--records", "1000", "--runs", "3"])).is_ok());
        assert!(check_options(&strings(&["--records"])).is_err());
        assert!(check_options(&strings(&["--records", "0"])).is_err());
        assert!(check_options(&strings(&["--brokers", "x"])).is_err());
        assert!(run_command(&strings(&["nonsense"])).is_err());
        assert!(run_command(&[]).is_err());
    }
}
