//! The broker's CPU time, read by the parent around each child's run: the
//! broker process is `KAFKIT_BENCH_BROKER_PID` when set, else the process
//! listening on the port of the first `--brokers` address (found through
//! /proc/net/tcp and tcp6 and the processes' socket descriptors). Its
//! user + system time, all threads, comes from /proc/PID/stat.

use std::time::Duration;

/// The broker process whose CPU time is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broker {
    pid: u32,
}

impl Broker {
    /// The broker serving `brokers` (`host:port,...`) on this machine, or
    /// `None` (with a warning) when it cannot be found or read.
    pub fn locate(brokers: &str) -> Option<Broker> {
        let from_env = std::env::var("KAFKIT_BENCH_BROKER_PID").ok();
        let found = match from_env.as_deref().map(str::trim) {
            Some(pid) if !pid.is_empty() => pid.parse().ok(),
            _ => listening_port(brokers).and_then(listener_pid),
        };
        let broker = found
            .map(|pid| Broker { pid })
            .filter(|b| b.cpu().is_some());
        match broker {
            Some(b) => eprintln!("broker CPU: reading /proc/{}/stat", b.pid),
            None => eprintln!(
                "warning: the broker process of {brokers} is not found on this machine \
                 (set KAFKIT_BENCH_BROKER_PID); its CPU is not reported"
            ),
        }
        broker
    }

    /// The broker's user + system CPU time so far, every thread.
    pub fn cpu(self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        cpu_of_stat(&stat, clock_ticks())
    }
}

/// utime + stime of a /proc/PID/stat line, `ticks` to the second. The
/// command name (field 2) is in parentheses and may hold spaces, so the
/// fields are counted from the last `)`: state is the first after it,
/// utime the 12th, stime the 13th.
fn cpu_of_stat(stat: &str, ticks: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let total = utime + stime;
    Some(
        Duration::from_secs(total / ticks)
            + Duration::from_nanos(total % ticks * 1_000_000_000 / ticks),
    )
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The port of the first address of `host:port,...`.
fn listening_port(brokers: &str) -> Option<u16> {
    let first = brokers.split(',').next()?.trim();
    first.rsplit_once(':')?.1.parse().ok()
}

/// The process with a socket listening on `port`, any address.
fn listener_pid(port: u16) -> Option<u32> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| link.as_os_str() == w.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The inodes of the sockets of a /proc/net/tcp table listening (state
/// 0A) on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9).map(|i| (*i).to_owned()))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_cpu_time() {
        let stat = "4242 (java (main)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 \
                    80 0 12345 1000000 5000 18446744073709551615";
        assert_eq!(cpu_of_stat(stat, 100), Some(Duration::from_millis(3250)));
        assert_eq!(cpu_of_stat("1 (x) S 1", 100), None);
    }

    #[test]
    fn the_listener_of_a_port_is_found() {
        assert_eq!(listening_port("localhost:9092,other:1"), Some(9092));
        assert_eq!(listening_port("nope"), None);
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                     retrnsmt   uid  timeout inode\n   \
                     0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 \
                     00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n   \
                     1: 0100007F:2384 0100007F:D431 01 00000000:00000000 00:00000000 \
                     00000000     0        0 31338 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 9092), ["31337"]);
        assert!(listening_inodes(table, 9093).is_empty());
        // This test process listening on a port is found by it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        let me = Broker {
            pid: std::process::id(),
        };
        assert!(me.cpu().is_some());
    }
}
