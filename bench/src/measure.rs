//! What one client process costs: CPU time and peak memory of this process
//! (getrusage, so every thread of the client counts, librdkafka's included),
//! the allocations the counting allocator saw, and the bytes it sent: what
//! its TCP connections had acknowledged by the broker (`TCP_INFO`), and
//! what its write system calls wrote (`wchar`). The broker's CPU time is
//! added by the parent ([`crate::broker_cpu`]).

use std::time::{Duration, Instant};

use crate::sockets::TcpSent;
use crate::{Client, alloc};

/// A point in time of this process's resource use.
#[derive(Debug, Clone)]
pub struct Snapshot {
    wall: Instant,
    cpu: Duration,
    allocations: u64,
    written: Option<u64>,
    sent: Option<TcpSent>,
}

impl Snapshot {
    /// Now.
    pub fn take() -> Snapshot {
        Snapshot {
            wall: Instant::now(),
            cpu: cpu_time(),
            allocations: alloc::allocations(),
            written: io_wchar(),
            sent: TcpSent::take(),
        }
    }
}

/// One measured run of one client, as its child process reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub records: u64,
    /// Value bytes moved.
    pub payload_bytes: u64,
    pub wall: Duration,
    /// CPU time of the whole child process over `wall`.
    pub cpu: Duration,
    /// Peak resident set size of the process (VmHWM), bytes.
    pub peak_rss: u64,
    /// Allocations over `wall`, for the clients whose allocations the
    /// counting allocator sees.
    pub allocations: Option<u64>,
    /// Bytes the process's write system calls wrote over `wall` (`wchar`
    /// of /proc/self/io): write(2), writev(2) and the like on any file,
    /// socket, pipe or eventfd (a runtime's wake-ups count, 8 or 1 bytes
    /// each), but not send(2) or sendmsg(2) (Rust's std and librdkafka send
    /// with those): only a stand-in for [`sent`](Self::sent) where that is
    /// unknown (the Java peer).
    pub written: Option<u64>,
    /// Bytes of the process's TCP connections the broker acknowledged over
    /// `wall` (the sum of `tcpi_bytes_acked` over its TCP sockets): its
    /// requests and nothing else.
    pub sent: Option<u64>,
    /// Fetch responses over `wall` where the client counts them (kafkit,
    /// franz-go), and how many of them answered incremental fetches
    /// (KIP-227) where it tells (kafkit).
    pub fetches: Option<(u64, Option<u64>)>,
    /// The broker's CPU time (user + system) while the child ran, from
    /// its start to its exit; set by the parent, not in the child's line.
    pub broker_cpu: Option<Duration>,
}

impl Measurement {
    /// From `start` to now, for `records` records of `payload_bytes` in all.
    pub fn since(start: Snapshot, records: u64, payload_bytes: u64) -> Measurement {
        let end = Snapshot::take();
        Measurement {
            records,
            payload_bytes,
            wall: end.wall - start.wall,
            cpu: end.cpu.saturating_sub(start.cpu),
            peak_rss: peak_rss(),
            allocations: Some(end.allocations - start.allocations),
            written: end
                .written
                .zip(start.written)
                .map(|(e, s)| e.saturating_sub(s)),
            sent: start.sent.zip(end.sent).map(|(s, e)| s.until(&e)),
            fetches: None,
            broker_cpu: None,
        }
    }

    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.payload_bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }

    pub fn cpu_us_per_record(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.records as f64
    }

    pub fn allocations_per_record(&self) -> Option<f64> {
        self.allocations.map(|a| a as f64 / self.records as f64)
    }

    pub fn broker_cpu_us_per_record(&self) -> Option<f64> {
        self.broker_cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.records as f64)
    }

    /// Request bytes per record: the TCP bytes sent where the client
    /// could count them, else (`true`) the bytes its writes wrote.
    pub fn request_bytes_per_record(&self) -> Option<(f64, bool)> {
        let (bytes, from_writes) = match (self.sent, self.written) {
            (Some(sent), _) => (sent, false),
            (None, Some(written)) => (written, true),
            (None, None) => return None,
        };
        Some((bytes as f64 / self.records as f64, from_writes))
    }

    /// The result line every child prints, this binary's and the peers':
    /// `{"client":..,"records":..,"bytes":..,"seconds":..,"cpu_seconds":..,
    /// "peak_rss_bytes":..}`, and where known `"allocations"`, `"wchar"`,
    /// `"tcp_bytes_sent"`, `"fetches"` and `"incremental_fetches"`.
    pub fn to_json(self, client: Client) -> String {
        let mut line = serde_json::json!({
            "client": client.name(),
            "records": self.records,
            "bytes": self.payload_bytes,
            "seconds": self.wall.as_secs_f64(),
            "records_per_sec": self.records_per_sec(),
            "mb_per_sec": self.mb_per_sec(),
            "cpu_seconds": self.cpu.as_secs_f64(),
            "peak_rss_bytes": self.peak_rss,
        });
        if let (Some(a), true) = (self.allocations, client.counts_allocations()) {
            line["allocations"] = a.into();
        }
        if let Some(w) = self.written {
            line["wchar"] = w.into();
        }
        if let Some(s) = self.sent {
            line["tcp_bytes_sent"] = s.into();
        }
        if let Some((all, incremental)) = self.fetches {
            line["fetches"] = all.into();
            if let Some(incremental) = incremental {
                line["incremental_fetches"] = incremental.into();
            }
        }
        line.to_string()
    }

    /// Reads a result line (see [`to_json`](Self::to_json)); `None` for any
    /// other line. A result without CPU time or peak RSS is not one.
    pub fn from_json(line: &serde_json::Value) -> Option<Measurement> {
        let u = |k: &str| line.get(k)?.as_u64();
        let f = |k: &str| line.get(k)?.as_f64().filter(|v| v.is_finite() && *v >= 0.0);
        let m = Measurement {
            records: u("records")?,
            payload_bytes: u("bytes")?,
            wall: Duration::from_secs_f64(f("seconds")?),
            cpu: Duration::from_secs_f64(f("cpu_seconds")?),
            peak_rss: u("peak_rss_bytes")?,
            allocations: u("allocations"),
            written: u("wchar"),
            sent: u("tcp_bytes_sent"),
            fetches: u("fetches").map(|all| (all, u("incremental_fetches"))),
            broker_cpu: None,
        };
        (m.records > 0 && !m.wall.is_zero()).then_some(m)
    }
}

/// Prints a child's settings line, `{"settings":{...}}`, as the peers do.
pub fn print_settings(settings: serde_json::Value) {
    println!("{}", serde_json::json!({ "settings": settings }));
}

/// User plus system CPU time of this process, all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we hand it.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// `wchar` of /proc/self/io: the bytes this process's write system calls
/// (write, send and the like, on any file or socket) have written.
fn io_wchar() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))?
        .trim()
        .parse()
        .ok()
}

/// VmHWM from /proc/self/status, in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_survives_its_line() {
        let m = Measurement {
            records: 1_000_000,
            payload_bytes: 100_000_000,
            wall: Duration::from_millis(1234),
            cpu: Duration::from_micros(2_000_001),
            peak_rss: 50 << 20,
            allocations: Some(42),
            written: Some(1234),
            sent: Some(1000),
            fetches: Some((12, Some(11))),
            broker_cpu: None,
        };
        let line: serde_json::Value = serde_json::from_str(&m.to_json(Client::Kafkit)).unwrap();
        assert_eq!(Measurement::from_json(&line), Some(m));
        // librdkafka's allocations are not counted: the line leaves them out.
        let line: serde_json::Value = serde_json::from_str(&m.to_json(Client::Librdkafka)).unwrap();
        assert_eq!(Measurement::from_json(&line).unwrap().allocations, None);
        assert_eq!(m.request_bytes_per_record(), Some((0.001, false)));
        let peer = serde_json::json!({"client":"franz-go","records":10,"bytes":1000,
            "seconds":0.5,"records_per_sec":20.0,"mb_per_sec":0.002,"cpu_seconds":0.25,
            "peak_rss_bytes":1048576});
        let m = Measurement::from_json(&peer).unwrap();
        assert_eq!(
            (m.records, m.cpu, m.peak_rss),
            (10, Duration::from_millis(250), 1 << 20)
        );
        // An older peer's line has no written bytes.
        assert_eq!((m.written, m.sent, m.fetches), (None, None, None));
        let java = serde_json::json!({"records":10,"bytes":1000,"seconds":0.5,
            "cpu_seconds":0.25,"peak_rss_bytes":1,"wchar":50});
        let m = Measurement::from_json(&java).unwrap();
        assert_eq!(m.request_bytes_per_record(), Some((5.0, true)));
        // franz-go counts its fetches, not which were incremental.
        let franz = serde_json::json!({"records":10,"bytes":1000,"seconds":0.5,
            "cpu_seconds":0.25,"peak_rss_bytes":1,"wchar":50,"tcp_bytes_sent":20,"fetches":3});
        let m = Measurement::from_json(&franz).unwrap();
        assert_eq!(m.fetches, Some((3, None)));
        assert_eq!(m.request_bytes_per_record(), Some((2.0, false)));
        assert_eq!(
            Measurement::from_json(&serde_json::json!({"settings": {}})),
            None
        );
        assert_eq!(
            Measurement::from_json(&serde_json::json!({"records": 1, "bytes": 1, "seconds": 1.0})),
            None
        );
    }

    #[test]
    fn cpu_time_and_peak_rss_are_measured() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > before);
        assert!(peak_rss() > 1 << 20);
    }

    #[test]
    fn written_bytes_are_counted() {
        use std::io::Write;
        let before = io_wchar().unwrap();
        // wchar counts write(2) and the like; a socket's send(2), which
        // Rust's std and librdkafka use, is not counted.
        let mut null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        null.write_all(&[7u8; 10_000]).unwrap();
        assert!(io_wchar().unwrap() - before >= 10_000);
    }
}
