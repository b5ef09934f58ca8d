//! `cargo xtask fuzz [SECONDS]`: runs every cargo-fuzz target of
//! `crates/protocol/fuzz` for SECONDS seconds each (default 60) from the
//! committed seed corpus, through `crates/protocol/fuzz/run-all.sh`, and
//! fails if any target crashed (the input lands in
//! `crates/protocol/fuzz/artifacts/TARGET/`).
//!
//! cargo-fuzz is installed first (`cargo install cargo-fuzz --locked`) when
//! `cargo fuzz --version` fails, as on a fresh CI machine, which has only
//! the Rust toolchain: no nightly is needed, `run-all.sh` sets
//! `RUSTC_BOOTSTRAP=1` for the `-Z` flags cargo-fuzz passes. libFuzzer
//! itself is C++: without a `c++` on `PATH`, Debian's `g++` is installed
//! first (as root, as CI runs; elsewhere a warning says how).
//!
//! `cargo xtask test` runs this as a step with [`CI_SECONDS`] per target
//! (`KAFKIT_FUZZ_SECONDS` overrides it; 0 skips the step).
//! What libFuzzer finds goes to `crates/protocol/fuzz/target/grown-corpus/`
//! (ignored by git), so the committed corpus stays the seeds.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::deps;
use crate::util::{cargo, run, scrub_package_env, succeeds, workspace_root};

/// Seconds each target runs in `cargo xtask test` (CI). Measured on 2
/// shared cores: installing cargo-fuzz takes 55 s, a cold build of the five
/// targets 3m51s in a fresh clone (5m23s under load; 3 minutes after a change
/// in kafkit-protocol alone), and the runs about 64 s per target at 60 s, so
/// the step adds 10-12 minutes: a whole clean CI run took 20m43s at 45 s a
/// target, about 22 at 60 (the budget is about 30).
pub const CI_SECONDS: u64 = 60;

/// The seconds per target `cargo xtask test` fuzzes: `KAFKIT_FUZZ_SECONDS`
/// if set (0 skips fuzzing, for a quick local run), else [`CI_SECONDS`].
pub fn ci_seconds() -> Result<u64> {
    match std::env::var("KAFKIT_FUZZ_SECONDS") {
        Ok(s) => s
            .parse()
            .with_context(|| format!("KAFKIT_FUZZ_SECONDS={s}: not a number of seconds")),
        Err(_) => Ok(CI_SECONDS),
    }
}

/// The script that builds and runs every target.
fn script() -> PathBuf {
    workspace_root().join("crates/protocol/fuzz/run-all.sh")
}

/// Parses `[SECONDS]`.
fn parse_seconds(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(60),
        [s] => match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("`{s}` is not a number of seconds; usage: cargo xtask fuzz [SECONDS]"),
        },
        _ => bail!("usage: cargo xtask fuzz [SECONDS]"),
    }
}

/// `cargo xtask fuzz [SECONDS]`.
pub fn run_command(args: &[String]) -> Result<()> {
    fuzz(parse_seconds(args)?)
}

/// Installs cargo-fuzz if needed, then runs every target `seconds` seconds.
pub fn fuzz(seconds: u64) -> Result<()> {
    // libfuzzer-sys builds libFuzzer from its C++ sources.
    deps::ensure_cxx()?;
    ensure_cargo_fuzz()?;
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg(seconds.to_string());
    // The fuzz crate is a workspace of its own: none of xtask's package
    // variables apply to it.
    scrub_package_env(&mut cmd);
    run(&mut cmd).context("a fuzz target crashed or failed to build")
}

/// Makes sure `cargo fuzz` works, installing cargo-fuzz (with its locked
/// dependencies) when it does not.
fn ensure_cargo_fuzz() -> Result<()> {
    if succeeds(&mut cargo(["fuzz", "--version"])) {
        return Ok(());
    }
    println!("cargo-fuzz is not installed: installing it (about a minute on 2 cores)");
    run(&mut cargo(["install", "cargo-fuzz", "--locked"]))?;
    if !succeeds(&mut cargo(["fuzz", "--version"])) {
        bail!(
            "cargo-fuzz was installed but `cargo fuzz --version` still fails (is cargo's bin directory on PATH?)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn seconds_default_to_sixty() {
        assert_eq!(parse_seconds(&[]).unwrap(), 60);
        assert_eq!(parse_seconds(&args(&["5"])).unwrap(), 5);
        assert!(parse_seconds(&args(&["0"])).is_err());
        assert!(parse_seconds(&args(&["soon"])).is_err());
        assert!(parse_seconds(&args(&["1", "2"])).is_err());
    }

    #[test]
    fn the_script_is_there() {
        assert!(script().is_file(), "{}", script().display());
    }
}
