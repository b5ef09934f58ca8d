//! librdkafka 2.16 as a peer client, through the `confluent-kafka` Python
//! wheel (which bundles it), for interop tests and the mock cluster.
//!
//! [`librdkafka_python`] makes a virtual environment at
//! `<workspace>/.tools/venv` with [`CONFLUENT_KAFKA`] installed by pip, the
//! first time any test asks for it. Several test processes (and the threads
//! of one) may race to do that: each builds its own venv in a private
//! directory and renames it into place, so the first rename wins, the
//! others throw theirs away, and no process ever sees a half-built venv.
//! A venv moved that way still works when run as `bin/python` (Python finds
//! `pyvenv.cfg` next to the executable), which is the only way we run it.
//!
//! ```no_run
//! let out = kafkit_tests::run_python(
//!     "import sys, confluent_kafka; print(confluent_kafka.libversion()[0], sys.argv[1])",
//!     &["hello"],
//! );
//! assert!(out.starts_with("2.16"));
//! ```

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The pip requirement the venv is built with: librdkafka 2.16 inside.
pub const CONFLUENT_KAFKA: &str = "confluent-kafka==2.16.1";
/// The file in the venv that names the requirement it was built with; a venv
/// without it (or naming another version) is rebuilt.
const MARKER: &str = "kafkit-peer-requirement";
/// How long one [`run_python`] script may run before the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// `<workspace>/.tools/venv`, where the venv lives.
pub fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv")
}

/// The venv's python, with `confluent_kafka` importable. Builds the venv
/// on first use (about 10 s: `python3 -m venv` and one wheel from pip).
/// `KAFKIT_PYTHON` names the base interpreter (default `python3`).
///
/// # Panics
///
/// If python3, its `venv` module or pip fail, with their output.
pub fn librdkafka_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = venv_dir();
            if !is_ready(&venv) {
                build_venv(&venv);
            }
            venv.join("bin/python")
        })
        .clone()
}

/// Runs `python -c script args...` with the venv's python; `sys.argv[1..]`
/// are `args`. Returns stdout.
///
/// # Panics
///
/// If the script fails or runs longer than two minutes, with its stderr.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let python = librdkafka_python();
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(script).args(args);
    let output = output_within(&mut cmd, SCRIPT_TIMEOUT);
    assert!(
        output.success,
        "python script failed ({}):\n--- script ---\n{script}\n--- args ---\n{args:?}\n\
         --- stdout ---\n{}\n--- stderr ---\n{}",
        output.status, output.stdout, output.stderr
    );
    output.stdout
}

/// The librdkafka 2.16 shared library the wheel bundles
/// (`site-packages/confluent_kafka.libs/librdkafka-<hash>.so.1`), for
/// programs linked against librdkafka such as the mock cluster.
///
/// # Panics
///
/// If the venv cannot be built or the wheel has no such library.
pub fn librdkafka_library() -> PathBuf {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            let python = librdkafka_python();
            let venv = python
                .parent()
                .and_then(Path::parent)
                .expect("python is <venv>/bin/python");
            find_library(venv).unwrap_or_else(|| {
                panic!(
                    "no confluent_kafka.libs/librdkafka-*.so.1 in {}",
                    venv.display()
                )
            })
        })
        .clone()
}

fn is_ready(venv: &Path) -> bool {
    venv.join("bin/python").exists()
        && fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m.trim() == CONFLUENT_KAFKA)
}

/// Builds the venv in a private directory next to `venv`, then renames it
/// into place. Losing the race to another process is fine: its venv is as
/// good as ours.
fn build_venv(venv: &Path) {
    let tools = venv.parent().expect("the venv has a parent");
    fs::create_dir_all(tools).unwrap_or_else(|e| panic!("cannot create {}: {e}", tools.display()));
    let partial = private_sibling(venv, "partial");
    let base = std::env::var_os("KAFKIT_PYTHON").unwrap_or_else(|| "python3".into());
    eprintln!(
        "kafkit-tests: installing {CONFLUENT_KAFKA} into a venv at {}",
        venv.display()
    );
    checked(Command::new(&base).arg("-m").arg("venv").arg(&partial));
    checked(
        Command::new(partial.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
            .args(["--disable-pip-version-check", CONFLUENT_KAFKA]),
    );
    fs::write(partial.join(MARKER), CONFLUENT_KAFKA).expect("write the venv marker");

    // A stale venv (another requirement) is moved aside first; renaming a
    // directory onto a non-empty one fails, which is what makes the race
    // safe: only one rename into place can succeed.
    if venv.exists() && !is_ready(venv) {
        let stale = private_sibling(venv, "stale");
        if fs::rename(venv, &stale).is_ok() {
            let _ = fs::remove_dir_all(&stale);
        }
    }
    if fs::rename(&partial, venv).is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    assert!(
        is_ready(venv),
        "the venv at {} is still not ready after installing {CONFLUENT_KAFKA}",
        venv.display()
    );
}

/// `<venv>.<what>-<pid>-<n>`: a directory name no other process uses.
fn private_sibling(venv: &Path, what: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{}.{what}-{}-{}",
        venv.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    venv.with_file_name(name)
}

fn find_library(venv: &Path) -> Option<PathBuf> {
    for lib in fs::read_dir(venv.join("lib")).ok()?.flatten() {
        let libs = lib.path().join("site-packages/confluent_kafka.libs");
        for entry in fs::read_dir(&libs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("librdkafka") && name.ends_with(".so.1") {
                return Some(entry.path());
            }
        }
    }
    None
}

/// Runs `cmd`, panicking with its output if it fails.
fn checked(cmd: &mut Command) {
    let output = output_within(cmd, Duration::from_secs(600));
    assert!(
        output.success,
        "`{cmd:?}` failed ({}):\n{}{}",
        output.status, output.stdout, output.stderr
    );
}

/// What a finished child printed.
struct Output {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it after `timeout`. Output is read on
/// threads so a chatty child cannot fill a pipe and stall.
fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{cmd:?}`: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let (success, status) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status.success(), status.to_string()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break (false, format!("killed after {timeout:?}"));
            }
            Err(e) => break (false, format!("wait failed: {e}")),
        }
    };
    Output {
        success,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_siblings_are_distinct_and_next_to_the_venv() {
        let venv = Path::new("/x/.tools/venv");
        let a = private_sibling(venv, "partial");
        let b = private_sibling(venv, "partial");
        assert_ne!(a, b);
        assert_eq!(a.parent(), venv.parent());
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("venv.partial-")
        );
    }

    #[test]
    fn a_venv_without_the_marker_is_not_ready() {
        let dir = std::env::temp_dir().join(format!("kafkit-peer-{}", std::process::id()));
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/python"), "").unwrap();
        assert!(!is_ready(&dir));
        fs::write(dir.join(MARKER), "confluent-kafka==1.0.0").unwrap();
        assert!(!is_ready(&dir));
        fs::write(dir.join(MARKER), CONFLUENT_KAFKA).unwrap();
        assert!(is_ready(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_within_kills_a_child_that_runs_too_long() {
        let out = output_within(Command::new("sleep").arg("5"), Duration::from_millis(100));
        assert!(!out.success);
        assert!(out.status.contains("killed"), "{}", out.status);
        let out = output_within(Command::new("echo").arg("hi"), Duration::from_secs(5));
        assert!(out.success);
        assert_eq!(out.stdout, "hi\n");
    }
}
