//! From what the client measured to what a push carries, sans-IO: the
//! samples that the subscription selects, grouped into OTLP metrics, with
//! counters sent as deltas since the previous push or as cumulative sums,
//! as the subscription asks.

use std::collections::HashMap;

use kafkit_protocol::telemetry::{
    Attribute, DataPoint, Metric, MetricKind, NumberValue, Temporality,
};

use super::state::Selector;
use super::window::WindowTotals;

/// What kind of value a [`Sample`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// A value as it is now (an average or maximum over the time since the
    /// previous collection, a count of assigned partitions).
    Gauge,
    /// A monotonic count since the client started.
    Counter,
}

/// One value a client reports at a push, e.g.
/// `org.apache.kafka.producer.record.send.total`, a counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full metric name, as KIP-714 spells it: `org.apache.kafka.`,
    /// the client type, the Java metric group without `-metrics`, and the
    /// Java metric name, dashes as dots.
    pub name: String,
    /// Gauge or counter.
    pub kind: SampleKind,
    /// The data point's attributes (`node_id` for per-broker metrics).
    pub attributes: Vec<Attribute>,
    /// The value (a counter's is an integer).
    pub value: NumberValue,
}

impl Sample {
    /// A gauge sample.
    pub fn gauge(name: impl Into<String>, value: NumberValue) -> Sample {
        Sample {
            name: name.into(),
            kind: SampleKind::Gauge,
            attributes: Vec::new(),
            value,
        }
    }

    /// A counter sample.
    pub fn counter(name: impl Into<String>, value: i64) -> Sample {
        Sample {
            name: name.into(),
            kind: SampleKind::Counter,
            attributes: Vec::new(),
            value: NumberValue::Int(value),
        }
    }

    /// The sample with one more attribute.
    pub fn with(mut self, attribute: Attribute) -> Sample {
        self.attributes.push(attribute);
        self
    }
}

/// Appends `{name}.avg` and `{name}.max` in milliseconds (Java's
/// convention for latencies and throttle times), from a window of values
/// in units of `per_ms` to the millisecond (1000 for microseconds);
/// nothing for an empty window, as metrics without a value are not sent.
pub fn push_window(out: &mut Vec<Sample>, name: &str, window: WindowTotals, per_ms: f64) {
    let Some(mean) = window.mean() else {
        return;
    };
    out.push(Sample::gauge(
        format!("{name}.avg"),
        NumberValue::Double(mean / per_ms),
    ));
    out.push(Sample::gauge(
        format!("{name}.max"),
        NumberValue::Double(window.max as f64 / per_ms),
    ));
}

/// A counter's value at the previous push.
#[derive(Debug, Clone, Copy)]
struct Last {
    value: NumberValue,
    at_ns: u64,
}

/// The counters' values at the previous push, for deltas.
#[derive(Debug)]
pub(crate) struct Sums {
    /// When counting started: the start of every cumulative sum, and of a
    /// counter's first delta.
    started_ns: u64,
    /// The temporality the values below were kept for.
    delta: bool,
    last: HashMap<(String, Vec<Attribute>), Last>,
}

impl Sums {
    pub(crate) fn new(started_ns: u64) -> Sums {
        Sums {
            started_ns,
            delta: true,
            last: HashMap::new(),
        }
    }

    /// The metrics of a push at `now_ns`: the samples `selector` wants,
    /// grouped by name in order of first appearance; counters as deltas
    /// since the previous push (`delta`) or as cumulative sums. A counter
    /// that went down (its source restarted) counts from zero again.
    pub(crate) fn metrics(
        &mut self,
        samples: Vec<Sample>,
        selector: &Selector,
        delta: bool,
        now_ns: u64,
    ) -> Vec<Metric> {
        if delta != self.delta {
            // The subscription changed its temporality: start afresh.
            self.last.clear();
            self.delta = delta;
        }
        let mut metrics: Vec<Metric> = Vec::new();
        for sample in samples.into_iter().filter(|s| selector.wants(&s.name)) {
            let (kind, start_unix_nano, value) = match sample.kind {
                SampleKind::Gauge => (MetricKind::Gauge, 0, sample.value),
                SampleKind::Counter => self.counter(&sample, delta, now_ns),
            };
            let point = DataPoint {
                attributes: sample.attributes,
                start_unix_nano,
                time_unix_nano: now_ns,
                value,
            };
            match metrics.iter_mut().find(|m| m.name == sample.name) {
                Some(metric) => metric.points.push(point),
                None => metrics.push(Metric {
                    name: sample.name,
                    kind,
                    points: vec![point],
                }),
            }
        }
        metrics
    }

    fn counter(
        &mut self,
        sample: &Sample,
        delta: bool,
        now_ns: u64,
    ) -> (MetricKind, u64, NumberValue) {
        let key = (sample.name.clone(), sample.attributes.clone());
        let now = Last {
            value: sample.value,
            at_ns: now_ns,
        };
        let last = self.last.insert(key, now);
        if !delta {
            let kind = MetricKind::Sum(Temporality::Cumulative);
            return (kind, self.started_ns, sample.value);
        }
        let kind = MetricKind::Sum(Temporality::Delta);
        let Some(last) = last else {
            return (kind, self.started_ns, sample.value);
        };
        let value = match (sample.value, last.value) {
            (NumberValue::Int(now), NumberValue::Int(then)) if now >= then => {
                NumberValue::Int(now - then)
            }
            (NumberValue::Double(now), NumberValue::Double(then)) if now >= then => {
                NumberValue::Double(now - then)
            }
            (value, _) => value,
        };
        (kind, last.at_ns, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(n: i64) -> Sample {
        Sample::counter("org.apache.kafka.producer.record.send.total", n)
    }

    fn latency(node: i64, ms: f64) -> Sample {
        Sample::gauge(
            "org.apache.kafka.producer.node.request.latency.avg",
            NumberValue::Double(ms),
        )
        .with(Attribute::int("node_id", node))
    }

    #[test]
    fn counters_become_deltas_since_the_previous_push() {
        let mut sums = Sums::new(100);
        let first = sums.metrics(vec![sends(5)], &Selector::All, true, 1_000);
        assert_eq!(first[0].kind, MetricKind::Sum(Temporality::Delta));
        let p = &first[0].points[0];
        assert_eq!(
            (p.start_unix_nano, p.time_unix_nano, p.value),
            (100, 1_000, NumberValue::Int(5))
        );
        let second = sums.metrics(vec![sends(12)], &Selector::All, true, 2_000);
        let p = &second[0].points[0];
        assert_eq!((p.start_unix_nano, p.value), (1_000, NumberValue::Int(7)));
        // A restarted source: counted from zero again.
        let third = sums.metrics(vec![sends(3)], &Selector::All, true, 3_000);
        assert_eq!(third[0].points[0].value, NumberValue::Int(3));
    }

    #[test]
    fn cumulative_sums_start_when_counting_started() {
        let mut sums = Sums::new(100);
        sums.metrics(vec![sends(5)], &Selector::All, true, 1_000);
        let m = sums.metrics(vec![sends(12)], &Selector::All, false, 2_000);
        assert_eq!(m[0].kind, MetricKind::Sum(Temporality::Cumulative));
        let p = &m[0].points[0];
        assert_eq!((p.start_unix_nano, p.value), (100, NumberValue::Int(12)));
        // Back to deltas: the kept values were dropped, so the whole count.
        let m = sums.metrics(vec![sends(15)], &Selector::All, true, 3_000);
        assert_eq!(m[0].points[0].value, NumberValue::Int(15));
    }

    #[test]
    fn points_of_one_name_share_a_metric_and_the_selector_filters() {
        let mut sums = Sums::new(0);
        let samples = vec![latency(1, 2.0), sends(1), latency(2, 4.0)];
        let m = sums.metrics(samples.clone(), &Selector::All, true, 10);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].kind, MetricKind::Gauge);
        assert_eq!(m[0].points.len(), 2);
        assert_eq!(m[0].points[1].attributes, [Attribute::int("node_id", 2)]);
        assert_eq!(m[0].points[0].start_unix_nano, 0);
        let only = Selector::Prefixes(vec!["org.apache.kafka.producer.record.".into()]);
        let m = sums.metrics(samples.clone(), &only, true, 20);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "org.apache.kafka.producer.record.send.total");
        assert!(
            sums.metrics(samples, &Selector::Nothing, true, 30)
                .is_empty()
        );
    }

    #[test]
    fn counters_with_other_attributes_are_kept_apart() {
        let mut sums = Sums::new(0);
        let a = |n| sends(n).with(Attribute::int("node_id", 1));
        let b = |n| sends(n).with(Attribute::int("node_id", 2));
        sums.metrics(vec![a(5), b(50)], &Selector::All, true, 10);
        let m = sums.metrics(vec![a(6), b(70)], &Selector::All, true, 20);
        let values: Vec<_> = m[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [NumberValue::Int(1), NumberValue::Int(20)]);
    }
}
