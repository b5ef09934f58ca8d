//! System packages the integration tests need, installed on demand.
//!
//! CI runs `cargo xtask test` as root on a fresh Debian machine, so a
//! missing package is installed with apt; elsewhere we only say how.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::util::run;

/// Makes sure `socat` is on `PATH`: the TLS tests put it in front of tansu,
/// which has no TLS of its own. As root, installs Debian's `socat` package
/// (running `apt-get update` first, once per xtask run); otherwise prints
/// how to install it and lets the tests say so too.
pub fn ensure_socat() -> Result<()> {
    ensure_package("socat", "socat")
}

/// Makes sure Debian's `librdkafka-dev` headers are there: the mock
/// cluster harness (`kafkit_tests::MockCluster`) builds a small C program
/// against them. The harness installs them itself when it runs as root;
/// doing it here first keeps apt out of the test run.
pub fn ensure_librdkafka_dev() -> Result<()> {
    let header = "/usr/include/librdkafka/rdkafka_mock.h";
    ensure(&format!("`{header}`"), "librdkafka-dev", || {
        Path::new(header).is_file()
    })
}

/// What `cargo xtask bench` needs to build the rdkafka crate's bundled
/// librdkafka (feature `cmake-build`): `cmake` and libcurl's headers.
pub fn ensure_bench_packages() -> Result<()> {
    ensure_package("cmake", "cmake")?;
    ensure("libcurl's headers", "libcurl4-openssl-dev", || {
        Path::new("/usr/include/x86_64-linux-gnu/curl/curl.h").is_file()
            || Path::new("/usr/include/curl/curl.h").is_file()
    })
}

/// A Java runtime (`java`), for the Apache Kafka broker and the Java peer.
/// As root, installs Debian's `openjdk-17-jdk-headless` (a JDK: the Java
/// peer and the broker's telemetry plugin are compiled here too).
pub fn ensure_java() -> Result<()> {
    ensure_package("java", "openjdk-17-jdk-headless")
}

/// Maven (`mvn`), which fetches Kafka's jars and builds the Java peer.
pub fn ensure_maven() -> Result<()> {
    ensure_package("mvn", "maven")
}

/// A C++ compiler (`c++`, Debian's `g++`): cargo-fuzz's libfuzzer-sys
/// compiles libFuzzer, which is C++.
pub fn ensure_cxx() -> Result<()> {
    ensure_package("c++", "g++")
}

fn ensure_package(binary: &str, package: &str) -> Result<()> {
    ensure(&format!("`{binary}`"), package, || on_path(binary))
}

/// Installs `package` with apt unless `present()` says what it provides
/// (`what`, for messages) is there already.
fn ensure(what: &str, package: &str, present: impl Fn() -> bool) -> Result<()> {
    if present() {
        return Ok(());
    }
    if !is_root() || !on_path("apt-get") {
        println!(
            "warning: {what} is not installed and this is not a root Debian shell; \
             what needs it will fail. Install it with `sudo apt-get install {package}`."
        );
        return Ok(());
    }
    apt_get_update()?;
    println!("installing `{package}` (for {what})");
    run(apt_get().args(["install", "-y", "--no-install-recommends", package]))?;
    if !present() {
        bail!("`apt-get install {package}` succeeded but {what} is still missing");
    }
    Ok(())
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// `apt-get update`, at most once per process: a fresh machine has no
/// package lists, and one refresh serves every package installed after it.
fn apt_get_update() -> Result<()> {
    static UPDATE: Once = Once::new();
    let mut result = Ok(());
    UPDATE.call_once(|| result = run(apt_get().args(["update", "-q"])));
    result
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| Path::new(&dir).join(binary).is_file())
    })
}

/// True when running as root (uid 0), asked of `id` to stay free of
/// `unsafe` libc calls.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}
