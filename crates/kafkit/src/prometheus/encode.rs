//! Encoding helpers: labelled metric families and the latency
//! histograms' log buckets as Prometheus buckets in seconds.

use std::fmt;

use kafkit_conn::latency::{LATENCY_BUCKETS, LatencyHistogram};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// One metric with a series per label set.
pub(super) struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    series: Vec<(Vec<(&'static str, String)>, i64)>,
}

impl Family {
    pub(super) fn new(name: &'static str, help: &'static str, kind: MetricType) -> Family {
        Family {
            name,
            help,
            kind,
            series: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, labels: Vec<(&'static str, String)>, value: i64) {
        self.series.push((labels, value));
    }

    /// Writes the family: its descriptor, then each series.
    pub(super) fn encode(self, e: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let mut metric = e.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, value) in &self.series {
            let mut series = metric.encode_family(labels)?;
            match self.kind {
                MetricType::Counter => {
                    let value = u64::try_from(*value).unwrap_or(0);
                    series.encode_counter::<NoLabelSet, u64, u64>(&value, None)?;
                }
                _ => series.encode_gauge(value)?,
            }
        }
        Ok(())
    }
}

/// `h` as Prometheus wants it: the sum in seconds, the count, and each
/// bucket's upper bound in seconds with its own (not cumulative) count;
/// the last bucket is `+Inf`.
pub(super) fn seconds_buckets(h: &LatencyHistogram) -> (f64, u64, Vec<(f64, u64)>) {
    let buckets = h
        .buckets
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let bound = if i == LATENCY_BUCKETS - 1 {
                f64::INFINITY
            } else {
                (1u64 << i) as f64 / 1e6
            };
            (bound, count)
        })
        .collect();
    (h.sum_us as f64 / 1e6, h.count(), buckets)
}
