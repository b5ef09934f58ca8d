//! Progress for long produces and consumes: an indicatif spinner or bar on
//! stderr, shown only when stderr is a terminal and `--quiet` is off, so
//! scripts and pipes see nothing but the data and the final summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run must last before its bar appears: short runs stay clean.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// Records and bytes moved so far, and the bar that shows them (if any).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// What is counted, in the bar's message ("produced", "consumed").
    verb: &'static str,
    /// Records so far.
    pub records: u64,
    /// Bytes (keys, values, headers) so far.
    pub bytes: u64,
}

impl Progress {
    /// A counter that draws a bar when `show` and stderr is a terminal.
    /// `total` (records), when known, turns the spinner into a bar.
    pub fn new(verb: &'static str, show: bool, total: Option<u64>) -> Progress {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = match total {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::hidden())
                    .with_style(
                        ProgressStyle::with_template(
                            "{spinner} [{bar:30}] {pos}/{len} records {msg} ({per_sec}, eta {eta})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
                    .with_style(
                        ProgressStyle::with_template("{spinner} {pos} records {msg} ({per_sec})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
            };
            bar.set_message(verb);
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            verb,
            records: 0,
            bytes: 0,
        }
    }

    /// Counts one record of `bytes` bytes.
    pub fn add(&mut self, bytes: usize) {
        self.set(self.records + 1, self.bytes + bytes as u64);
    }

    /// Sets the counts (for counters kept elsewhere, such as delivery
    /// callbacks).
    pub fn set(&mut self, records: u64, bytes: u64) {
        self.records = records;
        self.bytes = bytes;
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.started.elapsed() >= SHOW_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_position(records);
            bar.set_message(format!("{} {}", self.verb, HumanBytes(bytes)));
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the bar (before the summary or an error is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The one-line summary: `3 records, 42 B in 12 ms`, with the rate
    /// once the run lasted a second (shorter runs are mostly start-up).
    pub fn summary(&self) -> String {
        let elapsed = self.elapsed();
        let secs = elapsed.as_secs_f64();
        let mut s = format!(
            "{} {} record{}, {} in ",
            self.verb,
            self.records,
            if self.records == 1 { "" } else { "s" },
            HumanBytes(self.bytes),
        );
        if secs < 1.0 {
            s.push_str(&format!("{} ms", elapsed.as_millis()));
        } else {
            s.push_str(&format!(
                "{secs:.2} s ({:.0} records/s, {}/s)",
                self.records as f64 / secs,
                HumanBytes((self.bytes as f64 / secs) as u64)
            ));
        }
        s
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summarises_without_a_terminal() {
        let mut p = Progress::new("produced", false, None);
        assert!(p.bar.is_none());
        p.add(10);
        p.add(32);
        assert_eq!((p.records, p.bytes), (2, 42));
        let s = p.summary();
        assert!(s.starts_with("produced 2 records, 42 B in "), "{s}");
        assert!(s.ends_with(" ms"), "no rate for a short run: {s}");
        p.started -= Duration::from_secs(2);
        assert!(p.summary().contains(" s ("), "{}", p.summary());
        p.set(1, 5);
        assert!(p.summary().starts_with("produced 1 record, 5 B"));
    }
}
