//! [`Window`]: measurements between two pushes (round trips, queue
//! times, throttle times) as a count, a sum and a maximum, lock-free, so
//! that recording one costs three relaxed atomic operations.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Measurements since the last [`take`](Window::take).
#[derive(Debug, Default)]
pub struct Window {
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

/// What a [`Window`] held when it was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    /// Measurements recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// The largest.
    pub max: u64,
}

impl Window {
    /// Records one measurement.
    pub fn record(&self, value: u64) {
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }

    /// The measurements since the previous call, which starts a new
    /// window. Meant for one taker: with two, each sees part of them.
    pub fn take(&self) -> WindowTotals {
        WindowTotals {
            count: self.count.swap(0, Relaxed),
            sum: self.sum.swap(0, Relaxed),
            max: self.max.swap(0, Relaxed),
        }
    }
}

impl WindowTotals {
    /// Both windows as one.
    pub fn merge(self, other: WindowTotals) -> WindowTotals {
        WindowTotals {
            count: self.count + other.count,
            sum: self.sum.saturating_add(other.sum),
            max: self.max.max(other.max),
        }
    }

    /// The mean, `None` for an empty window.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_sums_and_maximises_until_taken() {
        let w = Window::default();
        assert_eq!(w.take().mean(), None);
        for v in [3, 9, 6] {
            w.record(v);
        }
        let taken = w.take();
        assert_eq!(
            taken,
            WindowTotals {
                count: 3,
                sum: 18,
                max: 9
            }
        );
        assert_eq!(taken.mean(), Some(6.0));
        assert_eq!(w.take(), WindowTotals::default(), "a new window");
        let other = WindowTotals {
            count: 1,
            sum: 20,
            max: 20,
        };
        assert_eq!(
            taken.merge(other),
            WindowTotals {
                count: 4,
                sum: 38,
                max: 20
            }
        );
    }
}
