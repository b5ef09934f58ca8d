//! Transactions (KIP-664): DescribeProducers (each partition's leader),
//! DescribeTransactions (each transactional id's coordinator) and
//! ListTransactions (every broker).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use kafkit_conn::{ApiKey, CoordinatorKey};
use kafkit_protocol::messages::describe_producers_request::TopicRequest;
use kafkit_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
};

use crate::error::{Error, Result, check, invalid, partition_result};
use crate::groups::per_group;
use crate::route::{by_topic, refused};
use crate::{Admin, TopicPartition};

/// A producer writing to a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// The last sequence number written.
    pub last_sequence: i32,
    /// When it last wrote.
    pub last_timestamp: Option<SystemTime>,
    /// The epoch of the coordinator that wrote its last marker, if any.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// A transaction as [`Admin::describe_transactions`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The state: "Empty", "Ongoing", "PrepareCommit", "CompleteAbort"...
    pub state: String,
    /// The transaction timeout.
    pub timeout: Duration,
    /// When the current (or, in a Complete state, the last) transaction
    /// started; `None` when the broker names no start time.
    pub start_time: Option<SystemTime>,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The partitions in the transaction.
    pub partitions: Vec<TopicPartition>,
}

/// A transaction as [`Admin::list_transactions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id.
    pub producer_id: i64,
    /// The state.
    pub state: String,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// What [`Admin::list_transactions`] found, and each broker that failed.
#[derive(Debug, Clone, Default)]
pub struct TransactionListings {
    /// The transactions, sorted by transactional id.
    pub transactions: Vec<TransactionListing>,
    /// Brokers that failed, by id.
    pub errors: BTreeMap<i32, Error>,
}

fn time(ms: i64) -> Option<SystemTime> {
    (ms >= 0).then(|| UNIX_EPOCH + Duration::from_millis(ms as u64))
}

impl Admin {
    /// The producers writing to `partitions`, from each partition's leader.
    /// One result per partition.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::TopicPartition;
    /// for (tp, producers) in admin.describe_producers(&[TopicPartition::new("events", 0)]).await? {
    ///     println!("{}/{}: {:?}", tp.topic, tp.partition, producers?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_producers", skip(self))]
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Result<Vec<ProducerState>>>> {
        let items: BTreeMap<TopicPartition, ()> =
            partitions.iter().map(|tp| (tp.clone(), ())).collect();
        self.per_leader(
            &items,
            |conn, items: Vec<(TopicPartition, ())>| async move {
                let request = DescribeProducersRequest {
                    topics: by_topic(&items)
                        .into_iter()
                        .map(|(name, ps)| TopicRequest {
                            name,
                            partition_indexes: ps.into_iter().map(|(p, ())| p).collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let response = conn.request(request).await?;
                let mut out = Vec::new();
                for t in response.topics {
                    for p in t.partitions {
                        let result = partition_result(
                            p.error_code,
                            p.error_message.as_deref(),
                            &t.name,
                            p.partition_index,
                        )
                        .map(|()| {
                            p.active_producers
                                .into_iter()
                                .map(|s| ProducerState {
                                    producer_id: s.producer_id,
                                    producer_epoch: s.producer_epoch,
                                    last_sequence: s.last_sequence,
                                    last_timestamp: time(s.last_timestamp),
                                    coordinator_epoch: (s.coordinator_epoch >= 0)
                                        .then_some(s.coordinator_epoch),
                                    current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                        .then_some(s.current_txn_start_offset),
                                })
                                .collect()
                        });
                        out.push((
                            TopicPartition::new(t.name.clone(), p.partition_index),
                            result,
                        ));
                    }
                }
                Ok(out)
            },
        )
        .await
    }

    /// Describes the transactions of `transactional_ids`, each on its
    /// coordinator. One result per id.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (id, txn) in admin.describe_transactions(&["payments-tx"]).await? {
    ///     println!("{id}: {}", txn?.state);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_transactions", skip(self))]
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[&str],
    ) -> Result<BTreeMap<String, Result<TransactionDescription>>> {
        let mut out = BTreeMap::new();
        let answers = join_all(transactional_ids.iter().map(|&id| async move {
            let key = CoordinatorKey::Transaction(id.to_owned());
            let answer = self
                .read_coordinator(&key, |conn| async move {
                    let request = DescribeTransactionsRequest {
                        transactional_ids: vec![id.to_owned()],
                        ..Default::default()
                    };
                    let response = conn.request(request).await?;
                    let state = response
                        .transaction_states
                        .into_iter()
                        .find(|s| s.transactional_id == id)
                        .ok_or_else(|| {
                            invalid(format!(
                                "the coordinator did not describe transactional id {id}"
                            ))
                        })?;
                    if refused(state.error_code) {
                        check(state.error_code, None)?;
                    }
                    Ok(state)
                })
                .await;
            (id, answer)
        }))
        .await;
        for (id, answer) in answers {
            let result = match answer {
                Ok(s) => check(s.error_code, None).map(|()| TransactionDescription {
                    state: s.transaction_state,
                    timeout: Duration::from_millis(s.transaction_timeout_ms.max(0) as u64),
                    start_time: time(s.transaction_start_time_ms),
                    producer_id: s.producer_id,
                    producer_epoch: s.producer_epoch,
                    partitions: s
                        .topics
                        .into_iter()
                        .flat_map(|t| {
                            t.partitions
                                .into_iter()
                                .map(move |p| TopicPartition::new(t.topic.clone(), p))
                        })
                        .collect(),
                }),
                Err(e) => Err(per_group(e)?),
            };
            out.insert(id.to_owned(), result);
        }
        Ok(out)
    }

    /// Lists the transactions of every broker, optionally only those in
    /// one of `states` ("Ongoing"...) or of one of `producer_ids`. A broker
    /// that fails is reported in [`TransactionListings::errors`].
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for txn in admin.list_transactions(&["Ongoing"], &[]).await?.transactions {
    ///     println!("{} ({})", txn.transactional_id, txn.state);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.list_transactions", skip(self))]
    pub async fn list_transactions(
        &self,
        states: &[&str],
        producer_ids: &[i64],
    ) -> Result<TransactionListings> {
        let mut out = TransactionListings::default();
        let answers = join_all(
            self.broker_ids()
                .await?
                .into_iter()
                .map(|broker| async move {
                    let answer = self
                        .read_broker(broker, |conn| async move {
                            conn.version_for(ApiKey::ListTransactions)?;
                            let request = ListTransactionsRequest {
                                state_filters: states.iter().map(|s| s.to_string()).collect(),
                                producer_id_filters: producer_ids.to_vec(),
                                ..Default::default()
                            };
                            let response = conn.request(request).await?;
                            check(response.error_code, None)?;
                            Ok(response.transaction_states)
                        })
                        .await;
                    (broker, answer)
                }),
        )
        .await;
        for (broker, answer) in answers {
            match answer {
                Ok(states) => {
                    out.transactions
                        .extend(states.into_iter().map(|s| TransactionListing {
                            transactional_id: s.transactional_id,
                            producer_id: s.producer_id,
                            state: s.transaction_state,
                            coordinator: broker,
                        }))
                }
                Err(e) => {
                    out.errors.insert(broker, e);
                }
            }
        }
        out.transactions
            .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_times_mean_none() {
        assert_eq!(time(-1), None);
        assert_eq!(time(1_000), Some(UNIX_EPOCH + Duration::from_secs(1)));
    }
}
