//! The Fetch request for one broker's partitions, and sending it on the
//! transport's pooled fetch connection.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use kafkit_conn::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_conn::messages::{FetchRequest, FetchResponse};
use kafkit_conn::{ApiKey, Purpose, Transport};
use kafkit_protocol::Uuid;

use super::answer::Planned;
use super::config::FetchConfig;

/// The Fetch for `parts` (in this order), grouped by topic.
pub(crate) fn build_request(
    config: &FetchConfig,
    parts: &[Planned],
    epochs: &[i32],
    ids: &HashMap<Arc<str>, Uuid>,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (p, &epoch) in parts.iter().zip(epochs) {
        let partition = FetchPartition {
            partition: p.tp.partition,
            current_leader_epoch: epoch,
            fetch_offset: p.offset,
            partition_max_bytes: FetchConfig::wire_i32(config.max_partition_bytes),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| *t.topic == *p.tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic {
                topic: p.tp.topic.to_string(),
                // Fetch v13+ names topics by id (KIP-516); each version
                // encodes the field it knows.
                topic_id: ids.get(&p.tp.topic).copied().unwrap_or(Uuid::ZERO),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        max_wait_ms: i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: FetchConfig::wire_i32(config.min_bytes),
        max_bytes: FetchConfig::wire_i32(config.max_bytes),
        isolation_level: config.isolation_level.as_i8(),
        topics,
        // Fetch v11+ (KIP-392); older versions do without it.
        rack_id: config.rack.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// Sends `request` on the pooled fetch connection to `addr`, with the
/// request timeout extended by the broker's `max_wait`. Topic ids need
/// Fetch v13+; without them (a broker that sends none) the version stays
/// at 12.
pub(crate) fn send(
    transport: &Transport,
    addr: &str,
    request: FetchRequest,
    all_ids: bool,
    max_wait: std::time::Duration,
) -> impl Future<Output = Result<FetchResponse, kafkit_conn::Error>> + Send + 'static {
    let transport = transport.clone();
    let addr = addr.to_owned();
    async move {
        let context = |e: kafkit_conn::Error| e.with_broker(&addr).with_api(ApiKey::Fetch);
        let conn = transport.conn(&addr, Purpose::Fetch).await?;
        let response = if all_ids {
            conn.request_with_extra_timeout(request, max_wait).await
        } else {
            if let Some(timeout) = conn.config().request_timeout.filter(|&t| t <= max_wait) {
                return Err(kafkit_conn::Error::new(kafkit_conn::ErrorKind::Config(format!(
                    "max_wait ({max_wait:?}) must be shorter than the request_timeout ({timeout:?})"
                ))));
            }
            let version = conn.version_for(ApiKey::Fetch)?.min(12);
            conn.request_at(version, request).await
        }
        .map_err(context)?;
        kafkit_conn::Error::check(response.error_code, None).map_err(context)?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IsolationLevel, TopicPartition};
    use bytes::BytesMut;
    use kafkit_protocol::{Message, Request};

    fn planned(topic: &str, partition: i32, offset: i64) -> Planned {
        Planned {
            tp: TopicPartition::new(topic, partition),
            generation: 1,
            offset,
            replica: None,
        }
    }

    #[test]
    fn requests_group_partitions_by_topic_and_encode_at_every_version() {
        let config = FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..Default::default()
        };
        let parts = [planned("a", 0, 42), planned("b", 1, 7), planned("a", 2, 9)];
        let mut ids = HashMap::new();
        ids.insert(Arc::<str>::from("a"), Uuid::from_bytes([1; 16]));
        ids.insert(Arc::<str>::from("b"), Uuid::from_bytes([2; 16]));
        let r = build_request(&config, &parts, &[3, -1, 3], &ids);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[0].fetch_offset, 42);
        assert_eq!(r.topics[0].partitions[0].current_leader_epoch, 3);
        assert_eq!(r.topics[0].partitions[1].partition, 2);
        assert_eq!(r.topics[1].topic_id, Uuid::from_bytes([2; 16]));
        assert_eq!(r.isolation_level, 1);
        assert_eq!(r.max_wait_ms, 500);
        assert_eq!(r.topics[0].partitions[0].partition_max_bytes, 1 << 20);
        let stable = FetchRequest::API_KEY.stable_versions();
        for version in stable.min..=stable.max {
            r.encode(&mut BytesMut::new(), version).unwrap();
        }
    }

    #[test]
    fn the_consumers_rack_goes_into_the_request() {
        let parts = [planned("a", 0, 0)];
        let none = build_request(&FetchConfig::default(), &parts, &[-1], &HashMap::new());
        assert_eq!(none.rack_id, "", "no rack: the leader serves");
        let config = FetchConfig {
            rack: Some("use1-az2".into()),
            ..Default::default()
        };
        let r = build_request(&config, &parts, &[-1], &HashMap::new());
        assert_eq!(r.rack_id, "use1-az2");
        // Fetch v11+ carries it; it round-trips at every such version.
        let stable = FetchRequest::API_KEY.stable_versions();
        for version in 11..=stable.max {
            let mut buf = BytesMut::new();
            r.encode(&mut buf, version).unwrap();
            let back = FetchRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(back.rack_id, "use1-az2", "v{version}");
        }
    }
}
