//! Runs the `kafkit` binary in the CLI tests: builds it once per test
//! process (`cargo build -p kafkit-cli`, into the target dir this test
//! binary lives in) and runs it with a broker's bootstrap address.
//!
//! The nested build costs about a minute the first time: kafkit-cli
//! alone enables fewer features of some dependencies (ring, through
//! rustls) than kafkit-tests does, and cargo keeps one build of each
//! per target dir, so they are compiled again for the CLI.

// Each test file uses a part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafkit_tests::TestBroker;

/// The built `kafkit` binary.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // target/<profile>/deps/<this test> -> target/<profile>
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            // Built together with this crate, so cargo resolves the same
            // dependency features as for the tests (ring, tokio) and reuses
            // their compiled dependencies instead of building a second set.
            .args(["build", "--quiet", "-p", "kafkit-cli", "-p", "kafkit-tests"])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // `cargo test` gave this process the variables of the kafkit-tests
        // package; passed on, they would make cargo rebuild ring (its build
        // script watches CARGO_MANIFEST_DIR) and everything above it.
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("CARGO_PKG_")
                || matches!(
                    name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                )
            {
                build.env_remove(name);
            }
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let started = Instant::now();
        let status = build.status().expect("cargo runs");
        eprintln!("cargo build -p kafkit-cli: {:?}", started.elapsed());
        assert!(
            status.success(),
            "cargo build -p kafkit-cli failed: {status}"
        );
        let binary = profile_dir.join(format!("kafkit{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}

/// What one run of the tool printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams unless the tool exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "kafkit failed:\n{self:?}");
        self
    }

    /// stdout's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// How long one run may take before it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `kafkit -b <broker> args...` with `stdin` on its standard input.
pub fn kafkit(broker: &TestBroker, args: &[&str], stdin: &str) -> Run {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["--brokers", bootstrap.as_str()];
    all.extend_from_slice(args);
    run(&all, stdin)
}

/// Runs `kafkit args...`, killing it after [`RUN_TIMEOUT`] (a run that
/// hangs fails its test instead of the whole suite).
pub fn run(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("KAFKIT_BROKERS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kafkit starts");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let deadline = started + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kafkit") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kafkit {args:?} ran over {RUN_TIMEOUT:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("kafkit {args:?}: {:?}", started.elapsed());
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}
