//! The encoder checked with a small protobuf reader: every field where
//! OTLP puts it, with the right wire type. (The integration test has the
//! Java OTLP parser that a Kafka broker bundles read the same bytes.)

use super::*;

/// A decoded protobuf field value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
}

/// The fields of one message, in order.
fn fields(mut buf: &[u8]) -> Vec<(u32, Value)> {
    fn read_varint(buf: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buf.split_first().expect("a varint byte");
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
        }
        panic!("varint too long")
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf);
        let field = u32::try_from(key >> 3).expect("field number");
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(read_varint(&mut buf)),
            FIXED64 => {
                let (bytes, rest) = buf.split_at(8);
                buf = rest;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap()))
            }
            LENGTH_DELIMITED => {
                let len = read_varint(&mut buf) as usize;
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Value::Bytes(bytes.to_vec())
            }
            other => panic!("wire type {other}"),
        };
        out.push((field, value));
    }
    out
}

/// The sub-messages of `field`.
fn all(message: &[(u32, Value)], field: u32) -> Vec<Vec<(u32, Value)>> {
    message
        .iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| match v {
            Value::Bytes(b) => fields(b),
            other => panic!("field {field} is {other:?}, not a message"),
        })
        .collect()
}

fn one(message: &[(u32, Value)], field: u32) -> Vec<(u32, Value)> {
    let mut found = all(message, field);
    assert_eq!(found.len(), 1, "field {field} of {message:?}");
    found.remove(0)
}

fn text(message: &[(u32, Value)], field: u32) -> String {
    let found: Vec<_> = message.iter().filter(|(f, _)| *f == field).collect();
    match found.as_slice() {
        [(_, Value::Bytes(b))] => String::from_utf8(b.clone()).unwrap(),
        other => panic!("field {field}: {other:?}"),
    }
}

fn scalar(message: &[(u32, Value)], field: u32) -> Value {
    let found: Vec<_> = message.iter().filter(|(f, _)| *f == field).collect();
    match found.as_slice() {
        [(_, v)] => v.clone(),
        other => panic!("field {field}: {other:?}"),
    }
}

fn sample() -> (Vec<Attribute>, Vec<Metric>) {
    let resource = vec![
        Attribute::string("group_id", "g"),
        Attribute::string("transactional_id", "t"),
    ];
    let metrics = vec![
        Metric {
            name: "org.apache.kafka.producer.node.request.latency.avg".into(),
            kind: MetricKind::Gauge,
            points: vec![
                DataPoint {
                    attributes: vec![Attribute::int("node_id", 1)],
                    start_unix_nano: 0,
                    time_unix_nano: 1_700_000_000_000_000_000,
                    value: NumberValue::Double(2.5),
                },
                DataPoint {
                    attributes: vec![Attribute::int("node_id", -2)],
                    start_unix_nano: 0,
                    time_unix_nano: 1_700_000_000_000_000_000,
                    value: NumberValue::Double(0.0),
                },
            ],
        },
        Metric {
            name: "org.apache.kafka.producer.connection.creation.total".into(),
            kind: MetricKind::Sum(Temporality::Delta),
            points: vec![DataPoint {
                attributes: vec![],
                start_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: 1_700_000_000_000_000_000,
                value: NumberValue::Int(-3),
            }],
        },
        Metric {
            name: "org.apache.kafka.producer.empty".into(),
            kind: MetricKind::Gauge,
            points: vec![],
        },
    ];
    (resource, metrics)
}

const SCOPE: Scope<'static> = Scope {
    name: "kafkit",
    version: "0.1.0",
};

#[test]
fn one_resource_one_scope_and_each_metric_with_its_points() {
    let (resource, metrics) = sample();
    let mut out = BytesMut::new();
    encode(&resource, SCOPE, &metrics, &mut out);
    let data = fields(&out);
    let resource_metrics = one(&data, 1);
    let attributes = all(&one(&resource_metrics, 1), 1);
    let pairs: Vec<(String, String)> = attributes
        .iter()
        .map(|kv| (text(kv, 1), text(&one(kv, 2), 1)))
        .collect();
    assert_eq!(
        pairs,
        [
            ("group_id".into(), "g".into()),
            ("transactional_id".into(), "t".into())
        ]
    );
    let scope_metrics = one(&resource_metrics, 2);
    let scope = one(&scope_metrics, 1);
    assert_eq!(
        (text(&scope, 1), text(&scope, 2)),
        ("kafkit".into(), "0.1.0".into())
    );
    let encoded = all(&scope_metrics, 2);
    assert_eq!(encoded.len(), 2, "the metric without points is left out");

    let gauge = &encoded[0];
    assert_eq!(text(gauge, 1), metrics[0].name);
    let points = all(&one(gauge, 5), 1);
    assert_eq!(points.len(), 2);
    assert_eq!(scalar(&points[0], 4), Value::Fixed64(2.5f64.to_bits()));
    assert_eq!(
        scalar(&points[0], 3),
        Value::Fixed64(1_700_000_000_000_000_000)
    );
    assert!(
        points[0].iter().all(|(f, _)| *f != 2),
        "a gauge has no start"
    );
    let node = one(&points[0], 7);
    assert_eq!(text(&node, 1), "node_id");
    assert_eq!(scalar(&one(&node, 2), 3), Value::Varint(1));
    let negative = one(&one(&points[1], 7), 2);
    assert_eq!(scalar(&negative, 3), Value::Varint(-2i64 as u64));

    let sum = &encoded[1];
    let sum_body = one(sum, 7);
    assert_eq!(scalar(&sum_body, 2), Value::Varint(1), "delta");
    assert_eq!(scalar(&sum_body, 3), Value::Varint(1), "monotonic");
    let point = one(&sum_body, 1);
    assert_eq!(scalar(&point, 2), Value::Fixed64(1_600_000_000_000_000_000));
    assert_eq!(scalar(&point, 6), Value::Fixed64(-3i64 as u64));
}

#[test]
fn cumulative_sums_say_so() {
    let metric = Metric {
        name: "c".into(),
        kind: MetricKind::Sum(Temporality::Cumulative),
        points: vec![DataPoint {
            attributes: vec![],
            start_unix_nano: 1,
            time_unix_nano: 2,
            value: NumberValue::Int(5),
        }],
    };
    let mut out = BytesMut::new();
    encode(&[], SCOPE, &[metric], &mut out);
    let scope_metrics = one(&one(&fields(&out), 1), 2);
    let sum = one(&one(&scope_metrics, 2), 7);
    assert_eq!(scalar(&sum, 2), Value::Varint(2));
}

#[test]
fn golden_bytes_of_a_small_payload() {
    let metric = Metric {
        name: "m".into(),
        kind: MetricKind::Gauge,
        points: vec![DataPoint {
            attributes: vec![],
            start_unix_nano: 0,
            time_unix_nano: 1,
            value: NumberValue::Int(7),
        }],
    };
    let mut out = BytesMut::new();
    let scope = Scope {
        name: "k",
        version: "1",
    };
    encode(&[Attribute::string("a", "b")], scope, &[metric], &mut out);
    // NumberDataPoint: time (field 3, fixed64) 1, as_int (field 6) 7.
    let point = [
        &[0x19][..],
        &1u64.to_le_bytes(),
        &[0x31],
        &7u64.to_le_bytes(),
    ]
    .concat();
    let gauge = [&[0x0a, point.len() as u8][..], &point].concat();
    let metric = [&[0x0a, 0x01, b'm', 0x2a, gauge.len() as u8][..], &gauge].concat();
    let scope = [0x0a, 0x01, b'k', 0x12, 0x01, b'1'];
    let scope_metrics = [
        &[0x0a, scope.len() as u8][..],
        &scope,
        &[0x12, metric.len() as u8],
        &metric,
    ]
    .concat();
    let key_value = [0x0a, 0x01, b'a', 0x12, 0x03, 0x0a, 0x01, b'b'];
    let resource = [&[0x0a, key_value.len() as u8][..], &key_value].concat();
    let resource_metrics = [
        &[0x0a, resource.len() as u8][..],
        &resource,
        &[0x12, scope_metrics.len() as u8],
        &scope_metrics,
    ]
    .concat();
    let want = [&[0x0a, resource_metrics.len() as u8][..], &resource_metrics].concat();
    assert_eq!(&out[..], &want[..]);
}

#[test]
fn long_fields_take_multi_byte_lengths() {
    let name = "x".repeat(300);
    let metric = Metric {
        name: name.clone(),
        kind: MetricKind::Gauge,
        points: vec![DataPoint {
            attributes: vec![],
            start_unix_nano: 0,
            time_unix_nano: 1,
            value: NumberValue::Double(1.0),
        }],
    };
    let mut out = BytesMut::new();
    encode(&[], SCOPE, &[metric], &mut out);
    let scope_metrics = one(&one(&fields(&out), 1), 2);
    assert_eq!(text(&one(&scope_metrics, 2), 1), name);
}
