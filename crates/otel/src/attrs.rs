//! Attribute names from the OpenTelemetry semantic conventions (messaging,
//! Kafka, server, error), kafkit's own `kafka.*` names, and the small
//! helpers that turn kafkit's events into attribute values.

use kafkit_conn::{Error, ErrorKind};
use opentelemetry::KeyValue;

pub(crate) const MESSAGING_SYSTEM: &str = "messaging.system";
pub(crate) const OPERATION_NAME: &str = "messaging.operation.name";
pub(crate) const OPERATION_TYPE: &str = "messaging.operation.type";
pub(crate) const DESTINATION_NAME: &str = "messaging.destination.name";
pub(crate) const PARTITION_ID: &str = "messaging.destination.partition.id";
pub(crate) const KAFKA_OFFSET: &str = "messaging.kafka.offset";
pub(crate) const KAFKA_MESSAGE_KEY: &str = "messaging.kafka.message.key";
pub(crate) const CLIENT_ID: &str = "messaging.client.id";
pub(crate) const BODY_SIZE: &str = "messaging.message.body.size";
pub(crate) const CONSUMER_GROUP: &str = "messaging.consumer.group.name";
pub(crate) const BATCH_MESSAGE_COUNT: &str = "messaging.batch.message_count";
pub(crate) const ERROR_TYPE: &str = "error.type";
pub(crate) const SERVER_ADDRESS: &str = "server.address";
pub(crate) const SERVER_PORT: &str = "server.port";
pub(crate) const REQUEST_API: &str = "kafka.request.api";
pub(crate) const CONNECTION_EVENT: &str = "kafka.connection.event";

/// The value of `messaging.system`.
pub(crate) const KAFKA: &str = "kafka";
/// `error.type` when nothing better is known, as the conventions say.
pub(crate) const OTHER_ERROR: &str = "_OTHER";

/// `messaging.system=kafka`, the attribute every span and metric carries.
pub(crate) fn system() -> KeyValue {
    KeyValue::new(MESSAGING_SYSTEM, KAFKA)
}

/// `messaging.destination.name`.
pub(crate) fn destination(topic: &str) -> KeyValue {
    KeyValue::new(DESTINATION_NAME, topic.to_owned())
}

/// `messaging.destination.partition.id` (a string in the conventions).
pub(crate) fn partition(partition: i32) -> KeyValue {
    KeyValue::new(PARTITION_ID, partition.to_string())
}

/// `messaging.consumer.group.name`.
pub(crate) fn group(group: &str) -> KeyValue {
    KeyValue::new(CONSUMER_GROUP, group.to_owned())
}

/// `messaging.kafka.message.key`, when the key is valid UTF-8.
pub(crate) fn message_key(key: Option<&[u8]>) -> Option<KeyValue> {
    let key = std::str::from_utf8(key?).ok()?;
    Some(KeyValue::new(KAFKA_MESSAGE_KEY, key.to_owned()))
}

/// A `usize` count as an `i64` attribute or gauge value, saturating.
pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Splits a broker's `host:port` into `server.address` and `server.port`;
/// `[v6]:port` loses its brackets, and an address without a valid port is
/// kept whole, without `server.port`.
pub(crate) fn split_broker(broker: &str) -> (&str, Option<i64>) {
    match broker.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
            Ok(port) => {
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                (host, Some(i64::from(port)))
            }
            Err(_) => (broker, None),
        },
        _ => (broker, None),
    }
}

/// Pushes `server.address` and, when known, `server.port` for `broker`.
pub(crate) fn push_server(attrs: &mut Vec<KeyValue>, broker: &str) {
    let (address, port) = split_broker(broker);
    attrs.push(KeyValue::new(SERVER_ADDRESS, address.to_owned()));
    if let Some(port) = port {
        attrs.push(KeyValue::new(SERVER_PORT, port));
    }
}

/// A low-cardinality `error.type` for a connection-layer error: the
/// broker's error code name (`NOT_LEADER_OR_FOLLOWER`), or the kind of
/// failure (`timeout`, `io`, `closed`, ...).
pub(crate) fn error_type(error: &Error) -> &'static str {
    match error.kind() {
        ErrorKind::Broker(code) => code.name().unwrap_or(OTHER_ERROR),
        ErrorKind::Io(_) => "io",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Closed => "closed",
        ErrorKind::UnsupportedVersion { .. } => "unsupported_version",
        ErrorKind::Protocol(_) => "protocol",
        ErrorKind::Desynchronized { .. } => "desynchronized",
        ErrorKind::Encode(_) => "encode",
        ErrorKind::Config(_) => "config",
        ErrorKind::Tls(_) => "tls",
        ErrorKind::Sasl(_) => "sasl",
        _ => OTHER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_split_into_address_and_port() {
        assert_eq!(split_broker("kafka-1:9092"), ("kafka-1", Some(9092)));
        assert_eq!(split_broker("[::1]:9093"), ("::1", Some(9093)));
        assert_eq!(split_broker("localhost"), ("localhost", None));
        assert_eq!(split_broker("host:notaport"), ("host:notaport", None));
        assert_eq!(split_broker(":9092"), (":9092", None));
    }

    #[test]
    fn keys_are_kept_only_when_utf8() {
        assert_eq!(
            message_key(Some(b"user-1")),
            Some(KeyValue::new(KAFKA_MESSAGE_KEY, "user-1"))
        );
        assert_eq!(message_key(Some(&[0xff, 0xfe])), None);
        assert_eq!(message_key(None), None);
    }

    #[test]
    fn connection_errors_have_short_types() {
        let broker = Error::check(kafkit_conn::ErrorCode::NOT_LEADER_OR_FOLLOWER, None);
        assert_eq!(
            broker.map_err(|e| error_type(&e)),
            Err("NOT_LEADER_OR_FOLLOWER")
        );
    }
}
