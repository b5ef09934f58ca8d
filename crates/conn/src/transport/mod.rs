//! [`Transport`]: the cluster-aware layer the reader, writer and admin
//! crates share. It bootstraps from several addresses, caches cluster
//! metadata (see [`metadata`] for when it refreshes), finds partition
//! leaders and group/transaction coordinators, and keeps a pool of
//! [`Conn`]s: one per broker *and purpose*, so a long fetch poll never
//! waits behind a produce, and neither delays a heartbeat.
//!
//! Files: `config.rs` (settings), `cluster.rs` (one metadata snapshot and
//! the epoch-aware merge), `metadata.rs` (refresh policy, single flight,
//! background task), `rebootstrap.rs` (which brokers a refresh asks, and
//! going back to the bootstrap list), `retry.rs` (backoff and the retry
//! loop).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::FindCoordinatorRequest;
use tokio::sync::oneshot;

use crate::{Broker, Conn, Error, PartitionConn};

mod cluster;
mod config;
mod leader_hint;
mod metadata;
mod observed;
mod rebootstrap;
mod retry;
mod stats;

#[cfg(test)]
mod fake_cluster;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_leader_hint;
#[cfg(test)]
mod tests_rebootstrap;

pub use cluster::Cluster;
pub use config::{MetadataRecovery, TransportConfig};
pub use leader_hint::{AnswerEndpoint, LeaderHint};
pub(crate) use retry::random_unit;
pub use retry::{Backoff, retry};
pub use stats::{BrokerStats, TransportStats};

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
///
/// A background task refreshes the metadata (see
/// [`TransportConfig::metadata_max_age`]); it stops when the last handle is
/// dropped. Dropping never blocks.
#[derive(Debug, Clone)]
pub struct Transport {
    inner: Arc<Inner>,
    /// Dropped with the last handle, which tells the refresher to stop.
    _alive: Arc<oneshot::Sender<()>>,
}

#[derive(Debug)]
struct Inner {
    config: TransportConfig,
    metadata: metadata::Cache,
    pool: Mutex<HashMap<(String, Purpose), Conn>>,
    coordinators: Mutex<HashMap<CoordinatorKey, Broker>>,
    /// Connections dialled, for client telemetry.
    connections_created: AtomicU64,
    /// Metadata requests sent.
    metadata_requests: AtomicU64,
    /// Refreshes answered by a bootstrap address after the first metadata.
    rebootstraps: AtomicU64,
}

impl Transport {
    /// Bootstraps: fetches the cluster's metadata from the first bootstrap
    /// address that answers, then starts the background refresher.
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn connect(config: TransportConfig) -> Result<Transport, Error> {
        config.validate()?;
        let inner = Arc::new(Inner {
            config,
            metadata: metadata::Cache::new(),
            pool: Mutex::new(HashMap::new()),
            coordinators: Mutex::new(HashMap::new()),
            connections_created: AtomicU64::new(0),
            metadata_requests: AtomicU64::new(0),
            rebootstraps: AtomicU64::new(0),
        });
        inner
            .refresh("bootstrap", metadata::Scope::InUse, &[], true)
            .await?;
        let (alive, closed) = oneshot::channel();
        tokio::spawn(metadata::run_refresher(inner.clone(), closed));
        Ok(Transport {
            inner,
            _alive: Arc::new(alive),
        })
    }

    /// The cluster's metadata, refreshed first if a refresh was asked for
    /// (see [`on_error`](Transport::on_error)) or it is older than
    /// `metadata_max_age`. It covers the topics in use: those looked up in
    /// the last `metadata_idle`; see [`cluster_for`](Transport::cluster_for)
    /// and [`refresh_all_topics`](Transport::refresh_all_topics).
    ///
    /// Cancel safety: safe.
    pub async fn cluster(&self) -> Result<Arc<Cluster>, Error> {
        self.inner.cluster_for(&[]).await
    }

    /// [`cluster`](Transport::cluster), with `topics` added to the topics
    /// in use; a topic new to the transport is fetched at once.
    ///
    /// Cancel safety: safe.
    pub async fn cluster_for(&self, topics: &[&str]) -> Result<Arc<Cluster>, Error> {
        self.inner.cluster_for(topics).await
    }

    /// Fetches the metadata of *every* topic now (for admin listings),
    /// without adding them to the topics in use.
    ///
    /// Cancel safety: safe.
    pub async fn refresh_all_topics(&self) -> Result<Arc<Cluster>, Error> {
        self.inner
            .refresh("all topics", metadata::Scope::All, &[], true)
            .await
    }

    /// The cached metadata as it is, without any IO.
    pub fn snapshot(&self) -> Arc<Cluster> {
        self.inner.metadata.snapshot()
    }

    /// The pooled connection to `addr` for `purpose`, dialled if there is
    /// none or the pooled one is closed.
    ///
    /// Cancel safety: safe. Two callers that race to dial the same broker
    /// may both dial; one connection is kept and the other dropped.
    pub async fn conn(&self, addr: &str, purpose: Purpose) -> Result<Conn, Error> {
        self.inner.conn(addr, purpose).await
    }

    /// The pooled connection to broker `id` for `purpose`.
    ///
    /// Cancel safety: safe.
    pub async fn broker(&self, id: i32, purpose: Purpose) -> Result<Conn, Error> {
        let cluster = self.cluster().await?;
        let broker = cluster.brokers.get(&id).ok_or_else(|| {
            broker_error(ErrorCode::BROKER_NOT_AVAILABLE)
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
        let topic_id = self.snapshot().topic_id(topic).unwrap_or_default();
        Ok(PartitionConn::bind(conn, topic, partition, topic_id))
    }

    /// Runs `request` on the leader of `topic`/`partition` under
    /// [`retry`](Transport::retry): when it fails with a retriable error,
    /// such as the `NOT_LEADER_OR_FOLLOWER` of a leader that moved (turn a
    /// response's partition error code into an error with
    /// [`Error::check`]), the metadata is refreshed and the next attempt
    /// goes to the leader the fresh metadata names.
    ///
    /// Cancel safety: as [`retry`](crate::retry); `request` may have run
    /// on a broker when the future is dropped.
    pub async fn on_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: i32,
        purpose: Purpose,
        request: F,
    ) -> Result<T, Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let request = &request;
        self.retry(|| async move {
            let conn = self.leader(topic, partition, purpose).await?;
            let addr = conn.addr().to_owned();
            request(conn).await.map_err(|e| {
                let e = e.with_broker(&addr);
                match e.topic() {
                    Some(_) => e,
                    None => e.with_topic(topic, Some(partition)),
                }
            })
        })
        .await
    }

    async fn leader_addr(&self, topic: &str, partition: i32) -> Result<String, Error> {
        let cluster = self.inner.cluster_for(&[topic]).await?;
        if let Some(leader) = cluster.leader(topic, partition) {
            return Ok(leader.addr());
        }
        // Not known or mid-election: look again, unless the snapshot is
        // brand new (it was just fetched for this topic).
        let cluster = if cluster.age() < self.inner.config.metadata_min_age {
            cluster
        } else {
            self.inner.metadata.request_refresh("no leader known");
            self.inner.cluster_for(&[topic]).await?
        };
        if let Some(leader) = cluster.leader(topic, partition) {
            return Ok(leader.addr());
        }
        let partition_exists =
            partition >= 0 && (partition as usize) < cluster.partition_count(topic);
        let code = if partition_exists {
            ErrorCode::LEADER_NOT_AVAILABLE
        } else {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        };
        Err(broker_error(code).with_topic(topic, Some(partition)))
    }

    /// The pooled connection to the coordinator of a group or
    /// transactional id (FindCoordinator, cached until
    /// [`on_error`](Transport::on_error) sees `NOT_COORDINATOR` or the
    /// broker leaves the cluster).
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

    /// A connection (`Purpose::Admin`) to the first broker, by id, of the
    /// cached metadata that a connection reaches: for requests any broker
    /// answers (FindCoordinator, an idempotent producer's InitProducerId).
    pub async fn any_broker(&self) -> Result<Conn, Error> {
        let cluster = self.cluster().await?;
        let mut brokers: Vec<&Broker> = cluster.brokers.values().collect();
        brokers.sort_by_key(|b| b.id);
        let mut last = Error::config("the metadata lists no broker");
        for broker in brokers {
            match self.conn(&broker.addr(), Purpose::Admin).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The hook of its connections ([`ConnConfig::hooks`](crate::ConnConfig::hooks)), which writers
    /// and readers built on this transport call too.
    pub fn hooks(&self) -> &crate::Hooks {
        &self.inner.config.conn.hooks
    }

    /// The client id its requests carry ([`ConnConfig::client_id`](crate::ConnConfig::client_id)).
    pub fn client_id(&self) -> Option<&str> {
        self.inner.config.conn.client_id.as_deref()
    }

    /// Tells the transport about an error so the next lookup is fresh.
    /// Leadership and topic errors (`NOT_LEADER_OR_FOLLOWER`,
    /// `LEADER_NOT_AVAILABLE`, `UNKNOWN_TOPIC_OR_PARTITION`,
    /// `FENCED_LEADER_EPOCH`, ...) and dead connections ask for a metadata
    /// refresh, which the background task runs soon (no sooner than
    /// `metadata_min_age` after the last one) and lookups wait for;
    /// coordinator errors forget cached coordinators. Never blocks.
    pub fn on_error(&self, error: &Error) {
        let reason = if error.is_connection_error() {
            Some("dead connection")
        } else {
            match error.code() {
                Some(
                    code @ (ErrorCode::NOT_LEADER_OR_FOLLOWER
                    | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    | ErrorCode::LEADER_NOT_AVAILABLE
                    | ErrorCode::FENCED_LEADER_EPOCH
                    | ErrorCode::UNKNOWN_LEADER_EPOCH
                    | ErrorCode::BROKER_NOT_AVAILABLE
                    | ErrorCode::REPLICA_NOT_AVAILABLE
                    | ErrorCode::KAFKA_STORAGE_ERROR
                    | ErrorCode::NOT_CONTROLLER),
                ) => Some(code.name().unwrap_or("broker error")),
                _ => None,
            }
        };
        if let Some(reason) = reason {
            tracing::debug!(error = %error, reason, "metadata refresh requested");
            self.inner.metadata.request_refresh(reason);
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
        Fut: Future<Output = Result<T, Error>>,
    {
        crate::retry(&self.inner.config.backoff, attempt, |e| self.on_error(e)).await
    }

    /// [`retry`](Transport::retry) with the backoff's delays but no limit
    /// on attempts: retriable errors are retried until `patience` (counted
    /// from the first attempt) is used up. For work that has to get
    /// through a coordinator or leader move, which takes longer than the
    /// default five attempts: a consumer's final commit and LeaveGroup on
    /// close, say (a killed coordinator's successor takes over only after
    /// the broker's session expires, 9 s on Kafka).
    ///
    /// Cancel safety: as [`retry`](crate::retry).
    pub async fn retry_for<T, F, Fut>(&self, patience: Duration, attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let backoff = Backoff {
            max_attempts: u32::MAX,
            deadline: Some(patience),
            ..self.inner.config.backoff.clone()
        };
        crate::retry(&backoff, attempt, |e| self.on_error(e)).await
    }
}

impl Inner {
    async fn conn(&self, addr: &str, purpose: Purpose) -> Result<Conn, Error> {
        let key = (addr.to_owned(), purpose);
        if let Some(conn) = lock(&self.pool).get(&key).filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = Conn::dial_with(addr, self.config.conn.clone()).await?;
        self.connections_created.fetch_add(1, Ordering::Relaxed);
        let mut pool = lock(&self.pool);
        // Keep a live connection another caller dialled meanwhile.
        if let Some(raced) = pool.get(&key).filter(|c| !c.is_closed()) {
            return Ok(raced.clone());
        }
        pool.insert(key, conn.clone());
        Ok(conn)
    }

    /// Requests in flight (timed-out ones included) on the live pooled
    /// connections to `addr`.
    fn in_flight_to(&self, addr: &str) -> usize {
        lock(&self.pool)
            .iter()
            .filter(|((a, _), c)| a == addr && !c.is_closed())
            .map(|(_, c)| c.in_flight())
            .sum()
    }

    fn has_live_conn(&self, addr: &str) -> bool {
        lock(&self.pool)
            .iter()
            .any(|((a, _), c)| a == addr && !c.is_closed())
    }

    /// Closes the pooled connections to brokers that left the cluster
    /// (unless a broker still in it has the same address) and forgets
    /// coordinators on them. Requests in flight on those connections
    /// finish first; see [`Conn::close`].
    fn evict(&self, removed: &[Broker], cluster: &Cluster) {
        let addrs: Vec<String> = removed
            .iter()
            .map(Broker::addr)
            .filter(|addr| cluster.brokers().values().all(|b| &b.addr() != addr))
            .collect();
        if addrs.is_empty() {
            return;
        }
        let mut closing = Vec::new();
        lock(&self.pool).retain(|(addr, _), conn| {
            let keep = !addrs.contains(addr);
            if !keep {
                closing.push(conn.clone());
            }
            keep
        });
        lock(&self.coordinators).retain(|_, b| !addrs.contains(&b.addr()));
        for conn in closing {
            tracing::debug!(broker = %conn.addr(), "closing the connection to a broker that left");
            tokio::spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

fn broker_error(code: ErrorCode) -> Error {
    Error::from_code(code)
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
