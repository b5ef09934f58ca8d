//! Helpers shared by the xtask commands: paths, running child commands, timing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of `xtask/`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command run from the workspace root, using the same cargo that
/// runs xtask (so `cargo +toolchain xtask` stays on that toolchain).
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(workspace_root());
    scrub_package_env(&mut cmd);
    cmd
}

/// Removes the variables cargo sets for the package being run
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...) from a nested cargo's
/// environment. xtask runs under `cargo run`, and the integration tests that
/// build the CLI run under `cargo test`, each with its own package's values;
/// build scripts that watch them (ring's `rerun-if-env-changed`) would
/// otherwise be rebuilt, with everything above them, whenever a cargo started
/// from one place follows a cargo started from another.
pub fn scrub_package_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if PACKAGE_ENV.contains(&name) || name.starts_with("CARGO_PKG_") {
            cmd.env_remove(name);
        }
    }
}

/// What cargo sets for a package's build, run and tests (besides `CARGO_PKG_*`).
const PACKAGE_ENV: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// Runs `cmd` with inherited stdio and fails if it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a `cargo test` command like [`run`], echoing its output, and on
/// failure names the tests that failed (from the `test NAME ... FAILED`
/// lines of libtest) in the error, so that the summary at the end of a long
/// run (the part of a CI log that is kept) says which tests to look at.
pub fn run_tests(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let shown = display(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child.stdout.take().context("the test command's stdout")?;
    let mut failed = Vec::new();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).split(b'\n') {
        let line = line.context("reading the test command's output")?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        out.flush()?;
        if let Some(name) = failed_test(&String::from_utf8_lossy(&line)) {
            failed.push(name);
        }
    }
    let status = child.wait().context("waiting for the test command")?;
    if status.success() {
        return Ok(());
    }
    if failed.is_empty() {
        bail!("`{shown}` failed ({status})");
    }
    bail!(
        "`{shown}` failed ({status}); {} test(s) failed: {}",
        failed.len(),
        failed.join(", ")
    )
}

/// The name in a libtest line `test NAME ... FAILED`.
fn failed_test(line: &str) -> Option<String> {
    let name = line.strip_prefix("test ")?.strip_suffix(" ... FAILED")?;
    Some(name.trim().to_owned())
}

/// The command line of `cmd`, for messages.
pub fn display(cmd: &Command) -> String {
    // Show the cargo that runs xtask as plain `cargo`, not its full path.
    let program = cmd.get_program();
    let is_cargo = std::env::var_os("CARGO").is_some_and(|c| c == program);
    let mut s = if is_cargo {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// True when `cmd` can be started and exits successfully (used to probe for
/// optional tools such as rustfmt).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Formats a duration as `1m02s` or `3.4s`.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// A sequence of named steps that keeps going after a failure, so one broken
/// step (say, a lint) does not hide the results of the others, then reports
/// every step with its time and fails if any step failed.
#[derive(Debug, Default)]
pub struct Steps {
    results: Vec<(String, Duration, Result<(), String>)>,
}

impl Steps {
    /// Runs one step, printing a header and its time.
    pub fn step(&mut self, name: &str, f: impl FnOnce() -> Result<()>) {
        println!("\n==> {name}");
        let start = Instant::now();
        let result = f().map_err(|e| format!("{e:#}"));
        let elapsed = start.elapsed();
        match &result {
            Ok(()) => println!("<== {name}: ok in {}", fmt_duration(elapsed)),
            Err(e) => println!("<== {name}: FAILED in {}: {e}", fmt_duration(elapsed)),
        }
        self.results.push((name.to_owned(), elapsed, result));
    }

    /// Records a step that was deliberately not run.
    pub fn skip(&mut self, name: &str, why: &str) {
        println!("\n==> {name}: skipped ({why})");
    }

    /// Prints the summary; fails if any step failed.
    pub fn finish(self) -> Result<()> {
        println!("\nSummary:");
        let mut failed = Vec::new();
        for (name, elapsed, result) in &self.results {
            let verdict = if result.is_ok() { "ok" } else { "FAILED" };
            println!("  {verdict:<6} {:>7}  {name}", fmt_duration(*elapsed));
            if result.is_err() {
                failed.push(name.as_str());
            }
        }
        for (name, _, result) in &self.results {
            if let Err(e) = result {
                println!("\n{name} FAILED: {e}");
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("{} step(s) failed: {}", failed.len(), failed.join(", "))
        }
    }
}
