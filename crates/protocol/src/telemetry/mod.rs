//! Client telemetry (KIP-714): the metrics a client pushes to a broker in
//! PushTelemetry, encoded as OpenTelemetry's OTLP `MetricsData` protobuf.
//!
//! Only encoding lives here, sans-IO: [`otlp::encode`] turns a resource,
//! an instrumentation scope and a list of [`Metric`]s into the bytes of a
//! PushTelemetry request's `Metrics` field (before compression, which
//! [`crate::compression::compress`] does with the codec the broker
//! accepted). What to push and when is decided in `kafkit-conn`.

pub mod otlp;

/// An attribute of the resource (the client) or of one data point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attribute {
    /// The attribute's name, such as `node_id` or `group_id`.
    pub key: String,
    /// Its value.
    pub value: AttributeValue,
}

impl Attribute {
    /// A string-valued attribute.
    pub fn string(key: impl Into<String>, value: impl Into<String>) -> Attribute {
        Attribute {
            key: key.into(),
            value: AttributeValue::String(value.into()),
        }
    }

    /// An integer-valued attribute.
    pub fn int(key: impl Into<String>, value: i64) -> Attribute {
        Attribute {
            key: key.into(),
            value: AttributeValue::Int(value),
        }
    }
}

/// An attribute's value: OTLP's `AnyValue`, in the two forms clients use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeValue {
    /// A string (`string_value`).
    String(String),
    /// A 64-bit integer (`int_value`).
    Int(i64),
}

/// A data point's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    /// An integer (`as_int`).
    Int(i64),
    /// A floating-point number (`as_double`).
    Double(f64),
}

/// How a sum's points relate to earlier pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Each point counts what happened since the previous push (OTLP
    /// `AGGREGATION_TEMPORALITY_DELTA`, 1).
    Delta,
    /// Each point counts everything since the start time (OTLP
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE`, 2).
    Cumulative,
}

/// What kind of instrument a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value sampled at the push (an average, a maximum, a count of
    /// assigned partitions).
    Gauge,
    /// A monotonic counter.
    Sum(Temporality),
}

/// One data point of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// What the point is of, such as `node_id` for a per-broker metric.
    pub attributes: Vec<Attribute>,
    /// Where a sum's count starts (nanoseconds since the Unix epoch); 0
    /// for a gauge.
    pub start_unix_nano: u64,
    /// When the value was taken (nanoseconds since the Unix epoch).
    pub time_unix_nano: u64,
    /// The value.
    pub value: NumberValue,
}

/// One metric and its points, e.g. `org.apache.kafka.producer.node.request.latency.avg`
/// with a point per broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The full name, such as `org.apache.kafka.producer.record.send.total`.
    pub name: String,
    /// Gauge or sum.
    pub kind: MetricKind,
    /// Its points: one, or one per attribute set.
    pub points: Vec<DataPoint>,
}
