//! What one client process costs: CPU time and peak memory of this process
//! (getrusage, so every thread of the client counts, librdkafka's included),
//! and the allocations the counting allocator saw.

use std::time::{Duration, Instant};

use crate::{Client, alloc};

/// A point in time of this process's resource use.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    wall: Instant,
    cpu: Duration,
    allocations: u64,
}

impl Snapshot {
    /// Now.
    pub fn take() -> Snapshot {
        Snapshot {
            wall: Instant::now(),
            cpu: cpu_time(),
            allocations: alloc::allocations(),
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

    /// The result line every child prints, this binary's and the peers':
    /// `{"client":..,"records":..,"bytes":..,"seconds":..,"cpu_seconds":..,
    /// "peak_rss_bytes":..}` (and `"allocations"` when counted).
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
        };
        let line: serde_json::Value = serde_json::from_str(&m.to_json(Client::Kafkit)).unwrap();
        assert_eq!(Measurement::from_json(&line), Some(m));
        // librdkafka's allocations are not counted: the line leaves them out.
        let line: serde_json::Value = serde_json::from_str(&m.to_json(Client::Librdkafka)).unwrap();
        assert_eq!(Measurement::from_json(&line).unwrap().allocations, None);
        let peer = serde_json::json!({"client":"franz-go","records":10,"bytes":1000,
            "seconds":0.5,"records_per_sec":20.0,"mb_per_sec":0.002,"cpu_seconds":0.25,
            "peak_rss_bytes":1048576});
        let m = Measurement::from_json(&peer).unwrap();
        assert_eq!(
            (m.records, m.cpu, m.peak_rss),
            (10, Duration::from_millis(250), 1 << 20)
        );
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
}
