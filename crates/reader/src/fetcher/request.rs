//! The Fetch request for one broker's partitions, shaped by its fetch
//! session (KIP-227), and sending it on the transport's pooled fetch
//! connection; also the request that closes a session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafkit_conn::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafkit_conn::messages::{FetchRequest, FetchResponse};
use kafkit_conn::{ApiKey, Purpose, Transport};
use kafkit_protocol::Uuid;

use super::answer::Planned;
use super::config::FetchConfig;
use super::session::{FINAL_EPOCH, Params, Plan};
use crate::TopicPartition;

/// How much longer than `max_wait` a closing request may take (it waits
/// behind a fetch in flight on the same connection) before it is given up.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What a partition's `FetchPartition` says: fetched from `p.offset` under
/// the metadata's leader `epoch` (-1: unknown), its topic named by `ids`.
pub(crate) fn params(
    config: &FetchConfig,
    p: &Planned,
    epoch: i32,
    ids: &HashMap<Arc<str>, Uuid>,
) -> Params {
    Params {
        // Fetch v13+ names topics by id (KIP-516); each version encodes
        // the field it knows.
        topic_id: ids.get(&p.tp.topic).copied().unwrap_or(Uuid::ZERO),
        fetch_offset: p.offset,
        current_leader_epoch: epoch,
        // Only followers send their log start offset.
        log_start_offset: -1,
        max_bytes: FetchConfig::wire_i32(config.max_partition_bytes),
    }
}

/// The Fetch for `next` (in this order) as `plan` shapes it: the
/// partitions it lists, grouped by topic, and those it forgets.
pub(crate) fn build_request(
    config: &FetchConfig,
    next: &[(TopicPartition, Params)],
    plan: &Plan,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((tp, params), _) in next.iter().zip(&plan.listed).filter(|(_, l)| **l) {
        let partition = FetchPartition {
            partition: tp.partition,
            current_leader_epoch: params.current_leader_epoch,
            fetch_offset: params.fetch_offset,
            log_start_offset: params.log_start_offset,
            partition_max_bytes: params.max_bytes,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| *t.topic == *tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic {
                topic: tp.topic.to_string(),
                topic_id: params.topic_id,
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for (tp, topic_id) in &plan.forgotten {
        match forgotten.iter_mut().find(|t| *t.topic == *tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => forgotten.push(ForgottenTopic {
                topic: tp.topic.to_string(),
                topic_id: *topic_id,
                partitions: vec![tp.partition],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        max_wait_ms: i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: FetchConfig::wire_i32(config.min_bytes),
        max_bytes: FetchConfig::wire_i32(config.max_bytes),
        isolation_level: config.isolation_level.as_i8(),
        session_id: plan.session_id,
        session_epoch: plan.epoch,
        topics,
        forgotten_topics_data: forgotten,
        // Fetch v11+ (KIP-392); older versions do without it.
        rack_id: config.rack.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// Closes fetch session `id` at `addr`: a Fetch with the session's id, the
/// final epoch and no partitions, which the broker answers at once. Best
/// effort: the outcome is only logged, and it is given up after `max_wait`
/// (a fetch in flight on the connection goes first) plus a grace period.
pub(crate) fn close_session(
    transport: &Transport,
    addr: &str,
    id: i32,
    max_wait: Duration,
) -> impl Future<Output = ()> + Send + 'static {
    let transport = transport.clone();
    let addr = addr.to_owned();
    let request = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        session_id: id,
        session_epoch: FINAL_EPOCH,
        ..Default::default()
    };
    async move {
        let closing = async {
            let conn = transport.conn(&addr, Purpose::Fetch).await?;
            let response = conn.request(request).await?;
            kafkit_conn::Error::check(response.error_code, None)
        };
        match tokio::time::timeout(max_wait + CLOSE_GRACE, closing).await {
            Ok(Ok(())) => tracing::debug!(%addr, session = id, "fetch session closed"),
            Ok(Err(e)) => {
                tracing::debug!(%addr, session = id, error = %e, "closing a fetch session failed");
            }
            Err(_) => tracing::debug!(%addr, session = id, "closing a fetch session timed out"),
        }
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
    use crate::IsolationLevel;
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

    fn next(
        config: &FetchConfig,
        parts: &[Planned],
        epochs: &[i32],
    ) -> Vec<(TopicPartition, Params)> {
        let mut ids = HashMap::new();
        ids.insert(Arc::<str>::from("a"), Uuid::from_bytes([1; 16]));
        ids.insert(Arc::<str>::from("b"), Uuid::from_bytes([2; 16]));
        parts
            .iter()
            .zip(epochs)
            .map(|(p, &e)| (p.tp.clone(), params(config, p, e, &ids)))
            .collect()
    }

    fn full(n: usize) -> Plan {
        Plan {
            session_id: 0,
            epoch: FINAL_EPOCH,
            listed: vec![true; n],
            forgotten: Vec::new(),
        }
    }

    #[test]
    fn requests_group_partitions_by_topic_and_encode_at_every_version() {
        let config = FetchConfig {
            isolation_level: IsolationLevel::ReadCommitted,
            ..Default::default()
        };
        let parts = [planned("a", 0, 42), planned("b", 1, 7), planned("a", 2, 9)];
        let next = next(&config, &parts, &[3, -1, 3]);
        let r = build_request(&config, &next, &full(3));
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[0].fetch_offset, 42);
        assert_eq!(r.topics[0].partitions[0].current_leader_epoch, 3);
        assert_eq!(r.topics[0].partitions[0].log_start_offset, -1);
        assert_eq!(r.topics[0].partitions[1].partition, 2);
        assert_eq!(r.topics[1].topic_id, Uuid::from_bytes([2; 16]));
        assert_eq!(r.isolation_level, 1);
        assert_eq!(r.max_wait_ms, 500);
        assert_eq!((r.session_id, r.session_epoch), (0, -1), "sessionless");
        assert_eq!(r.topics[0].partitions[0].partition_max_bytes, 1 << 20);
        let stable = FetchRequest::API_KEY.stable_versions();
        for version in stable.min..=stable.max {
            r.encode(&mut BytesMut::new(), version).unwrap();
        }
    }

    #[test]
    fn an_incremental_request_lists_changes_and_forgets_by_topic() {
        let config = FetchConfig::default();
        let parts = [planned("a", 0, 42), planned("b", 1, 7), planned("a", 2, 9)];
        let next = next(&config, &parts, &[-1, -1, -1]);
        let plan = Plan {
            session_id: 77,
            epoch: 5,
            listed: vec![false, true, false],
            forgotten: vec![
                (TopicPartition::new("c", 3), Uuid::from_bytes([3; 16])),
                (TopicPartition::new("c", 4), Uuid::from_bytes([3; 16])),
                (TopicPartition::new("a", 9), Uuid::from_bytes([1; 16])),
            ],
        };
        let r = build_request(&config, &next, &plan);
        assert_eq!((r.session_id, r.session_epoch), (77, 5));
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].topic, "b");
        assert_eq!(r.topics[0].partitions[0].fetch_offset, 7);
        let forgotten: Vec<(&str, Vec<i32>)> = r
            .forgotten_topics_data
            .iter()
            .map(|t| (t.topic.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(forgotten, [("c", vec![3, 4]), ("a", vec![9])]);
        assert_eq!(
            r.forgotten_topics_data[0].topic_id,
            Uuid::from_bytes([3; 16])
        );
        // Sessions exist from Fetch v7 on; names up to v12, ids from v13.
        let stable = FetchRequest::API_KEY.stable_versions();
        for version in 7..=stable.max {
            let mut buf = BytesMut::new();
            r.encode(&mut buf, version).unwrap();
            let back = FetchRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(back.session_epoch, 5, "v{version}");
            assert_eq!(back.forgotten_topics_data.len(), 2, "v{version}");
        }
        // A session-creating request still encodes where sessions do not
        // exist (the broker then answers without one).
        let create = Plan {
            session_id: 0,
            epoch: 0,
            listed: vec![true; 3],
            forgotten: Vec::new(),
        };
        let r = build_request(&config, &next, &create);
        for version in stable.min..=stable.max {
            r.encode(&mut BytesMut::new(), version).unwrap();
        }
    }

    #[test]
    fn the_consumers_rack_goes_into_the_request() {
        let parts = [planned("a", 0, 0)];
        let config = FetchConfig::default();
        let n = next(&config, &parts, &[-1]);
        let none = build_request(&config, &n, &full(1));
        assert_eq!(none.rack_id, "", "no rack: the leader serves");
        let config = FetchConfig {
            rack: Some("use1-az2".into()),
            ..Default::default()
        };
        let r = build_request(&config, &n, &full(1));
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
