//! Where requests go: the controller, any broker, a given broker, a group
//! or transaction coordinator, or each partition's leader; and the two
//! retry policies (reads retry what is retriable, writes only re-route on
//! `NOT_CONTROLLER`).

use std::collections::BTreeMap;
use std::future::Future;

use kafkit_conn::{Conn, CoordinatorKey, ErrorCode, Purpose};

use crate::error::{Result, broker_error};
use crate::{Admin, Error, TopicPartition};

impl Admin {
    /// A connection to any broker: the one the metadata names as
    /// controller (on a KRaft cluster a broker that forwards controller
    /// requests, so this only spreads nothing new), else the broker with
    /// the lowest id that accepts a connection.
    pub(crate) async fn any_conn(&self) -> Result<Conn> {
        let cluster = self.transport.cluster().await?;
        if let Some(controller) = cluster.controller()
            && let Ok(conn) = self
                .transport
                .conn(&controller.addr(), Purpose::Admin)
                .await
        {
            return Ok(conn);
        }
        let mut brokers: Vec<_> = cluster.brokers().values().collect();
        brokers.sort_by_key(|b| b.id);
        let mut last = broker_error(ErrorCode::BROKER_NOT_AVAILABLE, Some("no broker known"));
        for broker in brokers {
            match self.transport.conn(&broker.addr(), Purpose::Admin).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A connection to the controller the metadata names (any broker when
    /// it names none: KRaft brokers forward controller requests).
    pub(crate) async fn controller_conn(&self) -> Result<Conn> {
        let cluster = self.transport.cluster().await?;
        match cluster.controller() {
            Some(c) => self.transport.conn(&c.addr(), Purpose::Admin).await,
            None => self.any_conn().await,
        }
    }

    /// The ids of every broker in the metadata, sorted.
    pub(crate) async fn broker_ids(&self) -> Result<Vec<i32>> {
        let cluster = self.transport.cluster().await?;
        let mut ids: Vec<i32> = cluster.brokers().keys().copied().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Runs a read-only `call` on any broker under [`Transport::retry`](kafkit_conn::Transport::retry).
    pub(crate) async fn read_any<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let call = &call;
        self.transport
            .retry(|| async move {
                let conn = self.any_conn().await?;
                let addr = conn.addr().to_owned();
                call(conn).await.map_err(|e| e.with_broker(&addr))
            })
            .await
    }

    /// Runs a read-only `call` on broker `id`, retried.
    pub(crate) async fn read_broker<T, F, Fut>(&self, id: i32, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let call = &call;
        self.transport
            .retry(|| async move {
                let conn = self.transport.broker(id, Purpose::Admin).await?;
                let addr = conn.addr().to_owned();
                call(conn).await.map_err(|e| e.with_broker(&addr))
            })
            .await
    }

    /// Runs a read-only `call` on the coordinator of `key`, retried; a
    /// `NOT_COORDINATOR` error makes the transport look it up again.
    pub(crate) async fn read_coordinator<T, F, Fut>(
        &self,
        key: &CoordinatorKey,
        call: F,
    ) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let call = &call;
        self.transport
            .retry(|| async move {
                let conn = self.transport.coordinator(key, Purpose::Admin).await?;
                let addr = conn.addr().to_owned();
                call(conn).await.map_err(|e| e.with_broker(&addr))
            })
            .await
    }

    /// Runs a `call` that changes the cluster on `conn()`'s broker. It is
    /// sent again only when the broker [`refused`] it (`NOT_CONTROLLER`,
    /// `NOT_COORDINATOR`...: nothing happened) or it could not be sent at
    /// all (no connection):
    /// any other error, retriable or not, is returned as it is, since the
    /// call may have taken effect.
    pub(crate) async fn write<T, C, CFut, F, Fut>(&self, conn: C, call: F) -> Result<T>
    where
        C: Fn() -> CFut,
        CFut: Future<Output = Result<Conn>>,
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let (conn, call) = (&conn, &call);
        self.transport
            .retry(|| async move {
                let conn = conn().await?;
                let addr = conn.addr().to_owned();
                match call(conn).await {
                    Err(e) if e.code().is_some_and(refused) => Err(e.with_broker(&addr)),
                    other => Ok(other.map_err(|e| e.with_broker(&addr))),
                }
            })
            .await?
    }

    /// A change sent to the controller; see [`write`](Admin::write).
    pub(crate) async fn write_controller<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.write(|| self.controller_conn(), call).await
    }

    /// Groups partitions by their leader's id, from metadata fetched for
    /// their topics; partitions without a known leader get a retriable
    /// error of their own.
    pub(crate) async fn by_leader<'a, I>(
        &self,
        partitions: I,
    ) -> Result<(
        BTreeMap<i32, Vec<TopicPartition>>,
        Vec<(TopicPartition, Error)>,
    )>
    where
        I: IntoIterator<Item = &'a TopicPartition>,
    {
        let partitions: Vec<&TopicPartition> = partitions.into_iter().collect();
        let mut topics: Vec<&str> = partitions.iter().map(|tp| &*tp.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        let cluster = self.transport.cluster_for(&topics).await?;
        let mut leaders: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut missing = Vec::new();
        for tp in partitions {
            match cluster.leader(&tp.topic, tp.partition) {
                Some(leader) => leaders.entry(leader.id).or_default().push(tp.clone()),
                None => {
                    let code = if tp.partition >= 0
                        && (tp.partition as usize) < cluster.partition_count(&tp.topic)
                    {
                        ErrorCode::LEADER_NOT_AVAILABLE
                    } else {
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    };
                    let e = broker_error(code, None).with_topic(&tp.topic, Some(tp.partition));
                    missing.push((tp.clone(), e));
                }
            }
        }
        Ok((leaders, missing))
    }
}

/// Codes with which a broker refuses a request before acting on it: it is
/// not the controller or coordinator, or the coordinator is still loading.
/// A change refused so is safe to send again, to the broker the fresh
/// metadata names.
pub(crate) fn refused(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_CONTROLLER
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}

/// Groups `items` by topic, keeping their order within a topic.
pub(crate) fn by_topic<T: Clone>(items: &[(TopicPartition, T)]) -> BTreeMap<String, Vec<(i32, T)>> {
    let mut topics: BTreeMap<String, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, value) in items {
        topics
            .entry(tp.topic.to_string())
            .or_default()
            .push((tp.partition, value.clone()));
    }
    topics
}

/// The partition numbers of `partitions`, grouped by topic (topics in name
/// order, partitions in the order given): the shape of most requests that
/// name partitions without a value for each.
pub(crate) fn partitions_by_topic(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics
            .entry(tp.topic.to_string())
            .or_default()
            .push(tp.partition);
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_topic_groups_partitions_in_order() {
        let items = vec![
            (TopicPartition::new("b", 1), 10),
            (TopicPartition::new("a", 0), 20),
            (TopicPartition::new("b", 0), 30),
        ];
        let grouped = by_topic(&items);
        assert_eq!(grouped["a"], [(0, 20)]);
        assert_eq!(grouped["b"], [(1, 10), (0, 30)]);
    }

    #[test]
    fn partitions_by_topic_groups_numbers_in_order() {
        let partitions = [
            TopicPartition::new("b", 1),
            TopicPartition::new("a", 0),
            TopicPartition::new("b", 0),
        ];
        let grouped = partitions_by_topic(&partitions);
        assert_eq!(grouped["a"], [0]);
        assert_eq!(grouped["b"], [1, 0]);
        assert_eq!(grouped.len(), 2);
    }
}
