//! What one client process costs: CPU time and peak memory of this process
//! (getrusage, so every thread of the client counts, librdkafka's included),
//! and the allocations the counting allocator saw.

use std::fmt;
use std::time::{Duration, Instant};

use crate::alloc;

/// A point in time of this process's resource use.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    wall: Instant,
    cpu: Duration,
    allocations: u64,
    allocated_bytes: u64,
}

impl Snapshot {
    /// Now.
    pub fn take() -> Snapshot {
        Snapshot {
            wall: Instant::now(),
            cpu: cpu_time(),
            allocations: alloc::allocations(),
            allocated_bytes: alloc::allocated_bytes(),
        }
    }
}

/// One measured run of one client, as the child process reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub records: u64,
    pub payload_bytes: u64,
    pub wall: Duration,
    pub cpu: Duration,
    /// Peak resident set size of the process (VmHWM), bytes.
    pub peak_rss: u64,
    pub allocations: u64,
    pub allocated_bytes: u64,
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
            allocations: end.allocations - start.allocations,
            allocated_bytes: end.allocated_bytes - start.allocated_bytes,
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

    pub fn allocations_per_record(&self) -> f64 {
        self.allocations as f64 / self.records as f64
    }

    /// Parses the line [`Display`](fmt::Display) prints.
    pub fn parse(line: &str) -> Option<Measurement> {
        let mut m = Measurement {
            records: 0,
            payload_bytes: 0,
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
            peak_rss: 0,
            allocations: 0,
            allocated_bytes: 0,
        };
        let rest = line.strip_prefix("RESULT ")?;
        for field in rest.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "records" => m.records = value,
                "payload_bytes" => m.payload_bytes = value,
                "wall_ns" => m.wall = Duration::from_nanos(value),
                "cpu_ns" => m.cpu = Duration::from_nanos(value),
                "peak_rss" => m.peak_rss = value,
                "allocations" => m.allocations = value,
                "allocated_bytes" => m.allocated_bytes = value,
                _ => return None,
            }
        }
        (m.records > 0 && !m.wall.is_zero()).then_some(m)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RESULT records={} payload_bytes={} wall_ns={} cpu_ns={} peak_rss={} \
             allocations={} allocated_bytes={}",
            self.records,
            self.payload_bytes,
            self.wall.as_nanos(),
            self.cpu.as_nanos(),
            self.peak_rss,
            self.allocations,
            self.allocated_bytes
        )
    }
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
            allocations: 42,
            allocated_bytes: 4200,
        };
        assert_eq!(Measurement::parse(&m.to_string()), Some(m));
        assert_eq!(Measurement::parse("RESULT records=x"), None);
        assert_eq!(Measurement::parse("hello"), None);
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
