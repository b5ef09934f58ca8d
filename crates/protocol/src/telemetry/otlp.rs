//! A protobuf encoder for the part of OTLP's metrics schema
//! (`opentelemetry.proto.metrics.v1.MetricsData`) that client telemetry
//! uses: one resource, one scope, gauges and sums of integer or float
//! points with attributes.
//!
//! Field numbers, from the OpenTelemetry proto definitions:
//!
//! | message | fields |
//! | --- | --- |
//! | MetricsData | 1 resource_metrics |
//! | ResourceMetrics | 1 resource, 2 scope_metrics |
//! | Resource | 1 attributes |
//! | ScopeMetrics | 1 scope, 2 metrics |
//! | InstrumentationScope | 1 name, 2 version |
//! | Metric | 1 name, 5 gauge, 7 sum |
//! | Gauge | 1 data_points |
//! | Sum | 1 data_points, 2 aggregation_temporality, 3 is_monotonic |
//! | NumberDataPoint | 2 start_time_unix_nano (fixed64), 3 time_unix_nano (fixed64), 4 as_double (double), 6 as_int (sfixed64), 7 attributes |
//! | KeyValue | 1 key, 2 value |
//! | AnyValue | 1 string_value, 3 int_value (varint) |
//!
//! Nested messages are length-prefixed, so each is encoded into a scratch
//! buffer first and then copied behind its length: a push happens once per
//! interval (seconds to minutes), and its payload is a few kilobytes.

use bytes::{BufMut, BytesMut};

use super::{Attribute, AttributeValue, DataPoint, Metric, MetricKind, NumberValue, Temporality};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;

/// The instrumentation scope of the encoded metrics: the client library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The library's name (`kafkit`).
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
}

/// Appends `MetricsData` to `out`: one `ResourceMetrics` with `resource`'s
/// attributes and one `ScopeMetrics` of `scope` holding `metrics`, in order.
/// Metrics without points are left out (OTLP's "sparse" rule: only
/// metrics with a value are sent).
pub fn encode(resource: &[Attribute], scope: Scope<'_>, metrics: &[Metric], out: &mut BytesMut) {
    let mut resource_metrics = Vec::new();
    message(&mut resource_metrics, 1, |resource_msg| {
        for attribute in resource {
            message(resource_msg, 1, |kv| key_value(kv, attribute));
        }
    });
    message(&mut resource_metrics, 2, |scope_metrics| {
        message(scope_metrics, 1, |s| {
            string(s, 1, scope.name);
            string(s, 2, scope.version);
        });
        for metric in metrics.iter().filter(|m| !m.points.is_empty()) {
            message(scope_metrics, 2, |m| encode_metric(m, metric));
        }
    });
    let mut data = Vec::new();
    bytes_field(&mut data, 1, &resource_metrics);
    out.extend_from_slice(&data);
}

fn encode_metric(out: &mut Vec<u8>, metric: &Metric) {
    string(out, 1, &metric.name);
    match metric.kind {
        MetricKind::Gauge => message(out, 5, |gauge| {
            for point in &metric.points {
                message(gauge, 1, |p| data_point(p, point));
            }
        }),
        MetricKind::Sum(temporality) => message(out, 7, |sum| {
            for point in &metric.points {
                message(sum, 1, |p| data_point(p, point));
            }
            let temporality = match temporality {
                Temporality::Delta => 1,
                Temporality::Cumulative => 2,
            };
            varint_field(sum, 2, temporality);
            varint_field(sum, 3, 1);
        }),
    }
}

fn data_point(out: &mut Vec<u8>, point: &DataPoint) {
    if point.start_unix_nano != 0 {
        fixed64_field(out, 2, point.start_unix_nano);
    }
    fixed64_field(out, 3, point.time_unix_nano);
    match point.value {
        NumberValue::Double(v) => fixed64_field(out, 4, v.to_bits()),
        // sfixed64: the two's complement bits, little-endian.
        NumberValue::Int(v) => fixed64_field(out, 6, v as u64),
    }
    for attribute in &point.attributes {
        message(out, 7, |kv| key_value(kv, attribute));
    }
}

fn key_value(out: &mut Vec<u8>, attribute: &Attribute) {
    string(out, 1, &attribute.key);
    message(out, 2, |any| match &attribute.value {
        AttributeValue::String(s) => string(any, 1, s),
        // int64 as a varint: negatives take ten bytes, as protobuf says.
        AttributeValue::Int(v) => varint_field(any, 3, *v as u64),
    });
}

/// A nested message: encoded into a scratch buffer, then length-prefixed.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut scratch = Vec::new();
    body(&mut scratch);
    bytes_field(out, field, &scratch);
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes_field(out, field, value.as_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, LENGTH_DELIMITED);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, VARINT);
    varint(out, value);
}

fn fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, FIXED64);
    out.put_u64_le(value);
}

fn tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests;
