//! [`Transport`]: the cluster-aware layer the reader, writer and admin
//! crates share. It bootstraps from several addresses, caches cluster
//! metadata, finds partition leaders and group/transaction coordinators,
//! and keeps a pool of [`Conn`]s: one per broker *and purpose*, so a long
//! fetch poll never waits behind a produce, and neither delays a heartbeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::FindCoordinatorRequest;

use crate::cluster::Cluster;
use crate::{Backoff, Broker, Conn, ConnConfig, Error, PartitionConn};

/// Settings for a [`Transport`].
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `host:port` addresses to learn the cluster from; tried in order
    /// until one answers. Only needed at start and when every known broker
    /// is unreachable.
    pub bootstrap: Vec<String>,
    /// The settings of every connection.
    pub conn: ConnConfig,
    /// Refresh metadata when it is older than this. Default 5 minutes,
    /// Java's `metadata.max.age.ms`: leadership changes are normally
    /// learned sooner, from errors (see [`Transport::on_error`]); the age
    /// limit catches new partitions and brokers.
    pub metadata_max_age: Duration,
    /// How [`Transport::retry`] spaces its attempts.
    pub backoff: Backoff,
}

impl TransportConfig {
    /// Defaults, bootstrapping from `bootstrap`.
    pub fn new<S: Into<String>>(bootstrap: impl IntoIterator<Item = S>) -> TransportConfig {
        TransportConfig {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            conn: ConnConfig::default(),
            metadata_max_age: Duration::from_secs(5 * 60),
            backoff: Backoff::default(),
        }
    }
}

/// What a pooled connection is for. Each purpose gets its own connection
/// to a broker, so that traffic of one kind never queues behind another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Produce requests.
    Produce,
    /// Fetch requests (long polls).
    Fetch,
    /// Group coordination: join, sync, heartbeat, commit.
    Group,
    /// Metadata, offsets and admin requests.
    Admin,
}

/// What a coordinator is looked up for (FindCoordinator's key type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CoordinatorKey {
    /// A consumer group id.
    Group(String),
    /// A transactional id.
    Transaction(String),
}

/// The cluster-aware connection layer; a cheap `Clone` handle.
#[derive(Debug, Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TransportConfig,
    cluster: Mutex<Option<Arc<Cluster>>>,
    stale: AtomicBool,
    /// One metadata refresh at a time; the others wait and reuse it.
    refresh: tokio::sync::Mutex<()>,
    pool: Mutex<HashMap<(String, Purpose), Conn>>,
    coordinators: Mutex<HashMap<CoordinatorKey, Broker>>,
}

impl Transport {
    /// Bootstraps: fetches the cluster's metadata from the first bootstrap
    /// address that answers.
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn connect(config: TransportConfig) -> Result<Transport, Error> {
        if config.bootstrap.is_empty() {
            return Err(Error::config("the bootstrap list is empty"));
        }
        config.conn.validate()?;
        let transport = Transport {
            inner: Arc::new(Inner {
                config,
                cluster: Mutex::new(None),
                stale: AtomicBool::new(true),
                refresh: tokio::sync::Mutex::new(()),
                pool: Mutex::new(HashMap::new()),
                coordinators: Mutex::new(HashMap::new()),
            }),
        };
        transport.cluster().await?;
        Ok(transport)
    }

    /// The cluster's metadata, refreshed first if it is stale (see
    /// [`on_error`](Transport::on_error)) or older than `metadata_max_age`.
    ///
    /// Cancel safety: safe.
    pub async fn cluster(&self) -> Result<Arc<Cluster>, Error> {
        if let Some(fresh) = self.fresh_cluster() {
            return Ok(fresh);
        }
        let _one_at_a_time = self.inner.refresh.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(fresh) = self.fresh_cluster() {
            return Ok(fresh);
        }
        let cluster = Arc::new(self.fetch_metadata().await?);
        *lock(&self.inner.cluster) = Some(cluster.clone());
        self.inner.stale.store(false, Ordering::Release);
        Ok(cluster)
    }

    fn fresh_cluster(&self) -> Option<Arc<Cluster>> {
        let cluster = lock(&self.inner.cluster).clone()?;
        let young = cluster.fetched.elapsed() < self.inner.config.metadata_max_age;
        (young && !self.inner.stale.load(Ordering::Acquire)).then_some(cluster)
    }

    /// Asks the known brokers, then the bootstrap addresses, until one
    /// answers a Metadata request for all topics.
    async fn fetch_metadata(&self) -> Result<Cluster, Error> {
        let mut candidates: Vec<String> = lock(&self.inner.cluster)
            .as_ref()
            .map(|c| c.brokers.values().map(Broker::addr).collect())
            .unwrap_or_default();
        candidates.extend(self.inner.config.bootstrap.iter().cloned());
        let mut last = Error::config("no broker to ask for metadata");
        for addr in candidates {
            let attempt = async {
                let conn = self.conn(&addr, Purpose::Admin).await?;
                conn.metadata(None).await
            };
            match attempt.await {
                Ok(response) => return Ok(Cluster::from_metadata(&response)),
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "metadata request failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// The pooled connection to `addr` for `purpose`, dialled if there is
    /// none or the pooled one is closed.
    ///
    /// Cancel safety: safe. Two callers that race to dial the same broker
    /// may both dial; one connection is kept and the other dropped.
    pub async fn conn(&self, addr: &str, purpose: Purpose) -> Result<Conn, Error> {
        let key = (addr.to_owned(), purpose);
        if let Some(conn) = lock(&self.inner.pool).get(&key).filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = Conn::dial_with(addr, self.inner.config.conn.clone()).await?;
        lock(&self.inner.pool).insert(key, conn.clone());
        Ok(conn)
    }

    /// The pooled connection to broker `id` for `purpose`.
    ///
    /// Cancel safety: safe.
    pub async fn broker(&self, id: i32, purpose: Purpose) -> Result<Conn, Error> {
        let cluster = self.cluster().await?;
        let broker = cluster.brokers.get(&id).ok_or_else(|| {
            Error::check(ErrorCode::BROKER_NOT_AVAILABLE.0, None)
                .unwrap_err()
                .with_message(format!("no broker with id {id} in the metadata"))
        })?;
        self.conn(&broker.addr(), purpose).await
    }

    /// The pooled connection to the leader of `topic`/`partition`. Unknown
    /// partitions refresh the metadata once before failing with a
    /// retriable `UNKNOWN_TOPIC_OR_PARTITION` or `LEADER_NOT_AVAILABLE`.
    ///
    /// Cancel safety: safe.
    pub async fn leader(
        &self,
        topic: &str,
        partition: i32,
        purpose: Purpose,
    ) -> Result<Conn, Error> {
        let addr = self.leader_addr(topic, partition).await?;
        self.conn(&addr, purpose).await
    }

    /// A [`PartitionConn`] on the leader of `topic`/`partition`.
    ///
    /// Cancel safety: safe.
    pub async fn partition_conn(
        &self,
        topic: &str,
        partition: i32,
        purpose: Purpose,
    ) -> Result<PartitionConn, Error> {
        let conn = self.leader(topic, partition, purpose).await?;
        let cluster = self.cluster().await?;
        let topic_id = cluster.topic_ids.get(topic).copied().unwrap_or_default();
        Ok(PartitionConn::bind(conn, topic, partition, topic_id))
    }

    async fn leader_addr(&self, topic: &str, partition: i32) -> Result<String, Error> {
        for refreshed in [false, true] {
            if refreshed {
                self.inner.stale.store(true, Ordering::Release);
            }
            let cluster = self.cluster().await?;
            if let Some(leader) = cluster.leader(topic, partition) {
                return Ok(leader.addr());
            }
        }
        let cluster = self.cluster().await?;
        let code = if cluster.topic_ids.contains_key(topic) && partition >= 0 {
            ErrorCode::LEADER_NOT_AVAILABLE
        } else {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        };
        Err(Error::check(code.0, None)
            .unwrap_err()
            .with_topic(topic, Some(partition)))
    }

    /// The pooled connection to the coordinator of a group or
    /// transactional id (FindCoordinator, cached until
    /// [`on_error`](Transport::on_error) sees `NOT_COORDINATOR`).
    ///
    /// Cancel safety: safe.
    pub async fn coordinator(&self, key: &CoordinatorKey, purpose: Purpose) -> Result<Conn, Error> {
        let cached = lock(&self.inner.coordinators).get(key).cloned();
        if let Some(broker) = cached {
            return self.conn(&broker.addr(), purpose).await;
        }
        let any = self.any_broker().await?;
        let broker = find_coordinator(&any, key).await?;
        lock(&self.inner.coordinators).insert(key.clone(), broker.clone());
        self.conn(&broker.addr(), purpose).await
    }

    async fn any_broker(&self) -> Result<Conn, Error> {
        let cluster = self.cluster().await?;
        let mut last = Error::config("the metadata lists no broker");
        for broker in cluster.brokers.values() {
            match self.conn(&broker.addr(), Purpose::Admin).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Tells the transport about an error so the next lookup is fresh:
    /// leadership and topic errors and dead connections mark the metadata
    /// stale; coordinator errors forget cached coordinators.
    pub fn on_error(&self, error: &Error) {
        let stale = error.is_connection_error()
            || matches!(
                error.code(),
                Some(
                    ErrorCode::NOT_LEADER_OR_FOLLOWER
                        | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                        | ErrorCode::LEADER_NOT_AVAILABLE
                        | ErrorCode::FENCED_LEADER_EPOCH
                        | ErrorCode::UNKNOWN_LEADER_EPOCH
                        | ErrorCode::BROKER_NOT_AVAILABLE
                )
            );
        if stale {
            self.inner.stale.store(true, Ordering::Release);
        }
        let coordinator = error.is_connection_error()
            || matches!(
                error.code(),
                Some(ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE)
            );
        if coordinator {
            lock(&self.inner.coordinators).clear();
        }
    }

    /// [`retry`](crate::retry) with this transport's backoff, calling
    /// [`on_error`](Transport::on_error) before each new attempt.
    ///
    /// Cancel safety: as [`retry`](crate::retry).
    pub async fn retry<T, F, Fut>(&self, attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        crate::retry(&self.inner.config.backoff, attempt, |e| self.on_error(e)).await
    }
}

/// FindCoordinator for one key, in the v4+ batched form or the older one.
async fn find_coordinator(conn: &Conn, key: &CoordinatorKey) -> Result<Broker, Error> {
    let (name, key_type) = match key {
        CoordinatorKey::Group(g) => (g.clone(), 0),
        CoordinatorKey::Transaction(t) => (t.clone(), 1),
    };
    let version = conn.version_for(kafkit_protocol::ApiKey::FindCoordinator)?;
    let mut request = FindCoordinatorRequest {
        key_type,
        ..Default::default()
    };
    // v4+ batches keys (KIP-699); earlier versions take one.
    if version >= 4 {
        request.coordinator_keys = vec![name];
    } else {
        request.key = name;
    }
    let response = conn.request_at(version, request).await?;
    let (code, message, id, host, port) = match response.coordinators.first() {
        Some(c) if version >= 4 => (
            c.error_code,
            c.error_message.clone(),
            c.node_id,
            c.host.clone(),
            c.port,
        ),
        _ => (
            response.error_code,
            response.error_message,
            response.node_id,
            response.host,
            response.port,
        ),
    };
    Error::check(code, message.as_deref()).map_err(|e| e.with_broker(conn.addr()))?;
    Ok(Broker {
        id,
        host,
        port,
        rack: None,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults() {
        let c = TransportConfig::new(["a:9092", "b:9092"]);
        assert_eq!(c.bootstrap, ["a:9092", "b:9092"]);
        assert_eq!(c.metadata_max_age, Duration::from_secs(300));
    }

    #[tokio::test]
    async fn an_empty_bootstrap_list_is_a_config_error() {
        let e = Transport::connect(TransportConfig::new(Vec::<String>::new()))
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), crate::ErrorKind::Config(_)), "{e}");
    }
}
