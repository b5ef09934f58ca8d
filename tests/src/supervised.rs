//! [`Supervised`]: a broker process that dies with the test process.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Supervised::kill`] waits for the process to exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a program under a tiny `sh` supervisor whose stdin is a pipe from
/// the test process. When that pipe closes, because the [`Supervised`] was
/// dropped *or* because the test process died without unwinding (abort,
/// SIGKILL, a timeout in CI), the watcher subshell reads EOF and kills the
/// program. This gives the guarantee of `PR_SET_PDEATHSIG` without `unsafe`
/// `pre_exec` code.
///
/// `$0` is the program and `$@` its arguments. The background job gets
/// `/dev/null` as stdin and must not inherit fd 3 (the pipe), or it would keep
/// the pipe open itself; its stdout goes to stderr (the log), so the
/// supervisor's stdout carries only the pid line. The supervisor prints the
/// program's pid, then waits for it, so it exits exactly when the program does.
const SUPERVISOR: &str = r#"
exec 3<&0
"$0" "$@" 3<&- </dev/null >&2 &
pid=$!
echo "$pid"
( read -r _ <&3; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
"#;

/// A process started under the supervisor, its stdout and stderr in a log
/// file. Dropping it kills the process (`kill -9`) and reaps it.
#[derive(Debug)]
pub(crate) struct Supervised {
    supervisor: Child,
    /// Dropping this closes the pipe, which makes the supervisor kill the process.
    lifeline: Option<ChildStdin>,
    pid: u32,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program` with `args` (and `envs`), its output appended to `log`.
    pub(crate) fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log: &Path,
    ) -> Result<Supervised, String> {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run sh to start {}: {e}", program.display()))?;
        let lifeline = supervisor.stdin.take();
        let mut pid_line = String::new();
        let stdout = supervisor.stdout.take().expect("stdout is piped");
        let _ = BufReader::new(stdout).read_line(&mut pid_line);
        Ok(Supervised {
            supervisor,
            lifeline,
            pid: pid_line.trim().parse().unwrap_or(0),
            log: log.to_owned(),
        })
    }

    /// The program's pid (not the supervisor's).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// True once the program has exited (the supervisor exits with it).
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// Sends `signal` (such as `STOP`, `CONT`, `TERM`) to the program.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -{signal} {} failed",
            self.pid
        );
    }

    /// Waits up to `timeout` for the program to exit; true if it did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The last `lines` lines of the log, for a failure message.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Closes the lifeline, which makes the supervisor's watcher `kill -9`
    /// the program; the supervisor then reaps it and exits, and we reap the
    /// supervisor.
    pub(crate) fn kill(&mut self) {
        drop(self.lifeline.take());
        if !self.wait_exit(SHUTDOWN_TIMEOUT) {
            let _ = self.supervisor.kill();
        }
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of the file at `path` (empty if unreadable).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
