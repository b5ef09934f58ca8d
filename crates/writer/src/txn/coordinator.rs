//! Calls to the transaction coordinator (AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn; InitProducerId is `identity/init.rs`) and to the group coordinator (TxnOffsetCommit),
//! each found with FindCoordinator through the transport's cache.
//!
//! Retries: `CONCURRENT_TRANSACTIONS` (the previous transaction's markers
//! are still being written), `COORDINATOR_LOAD_IN_PROGRESS`,
//! `NOT_COORDINATOR`/`COORDINATOR_NOT_AVAILABLE` (the transport forgets the
//! cached coordinator, so the next attempt looks it up again) and
//! connection failures are retried with the writer's backoff for up to
//! `request_timeout`; other errors are wrapped by their verdict (see
//! `requests.rs`). Every call is cancel safe in the sense that dropping it
//! sends nothing more; a request already sent may still take effect.

use std::future::Future;

use kafkit_conn::{Conn, CoordinatorKey, Purpose, Transport};
use kafkit_protocol::messages::{AddOffsetsToTxnRequest, EndTxnRequest};
use kafkit_protocol::{ApiKey, ErrorCode};
use tokio::time::Instant;
use tracing::Instrument;

use super::requests::{self, Key, Verdict};
use super::version::{FEATURE, TxnVersion};
use super::{ConsumerGroupMetadata, TxnOffset};
use crate::identity::ProducerId;
use crate::{Error, WriterConfig};

/// The `transaction.version` level `conn`'s broker finalized: 0 when its
/// features are known but name none, `None` when unknown (an old broker).
pub(crate) fn feature_level(conn: &Conn) -> Option<i16> {
    let versions = conn.broker_versions();
    (versions.finalized_features_epoch() >= 0)
        .then(|| versions.finalized_feature(FEATURE).unwrap_or(0))
}

/// The transport, settings and transactional id every call needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) config: &'a WriterConfig,
    pub(crate) id: &'a str,
}

impl Ctx<'_> {
    async fn txn_coordinator(&self) -> Result<Conn, kafkit_conn::Error> {
        let key = CoordinatorKey::Transaction(self.id.to_owned());
        self.transport.coordinator(&key, Purpose::Admin).await
    }

    /// The version `api` is sent at in a transaction of protocol
    /// `txn` (`pick` is the `TxnVersion` method for the API).
    fn txn_version(
        conn: &Conn,
        api: ApiKey,
        pick: impl FnOnce(i16) -> Result<i16, ErrorCode>,
    ) -> Result<i16, kafkit_conn::Error> {
        pick(conn.version_for(api)?).map_err(|code| {
            kafkit_conn::Error::from_code(code)
                .with_message(
                    "transaction.version 2 is enabled but the broker lacks its request versions",
                )
                .with_api(api)
                .with_broker(conn.addr())
        })
    }

    /// Runs `attempt` until it succeeds, fails with an error that is not
    /// retried, or the retry budget (`request_timeout`) is spent.
    pub(crate) async fn retrying<T, F, Fut>(&self, api: ApiKey, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kafkit_conn::Error>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            self.transport.on_error(&error);
            attempts += 1;
            let delay = self.config.retry_delay(attempts);
            let in_budget = started.elapsed() + delay < self.config.request_timeout;
            if requests::verdict(api, &error) == Verdict::Retry && in_budget {
                tracing::debug!(error = %error, attempts, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            tracing::debug!(error = %error, attempts, "transactional request failed");
            return Err(requests::wrap(api, error));
        }
    }

    /// One AddPartitionsToTxn for `partitions` (no retry: the sender
    /// retries on its own schedule). Each partition's answer.
    pub(crate) async fn add_partitions(
        &self,
        producer: ProducerId,
        partitions: &[Key],
    ) -> Result<Vec<(Key, ErrorCode)>, kafkit_conn::Error> {
        let conn = self.txn_coordinator().await?;
        let version = conn
            .version_for(ApiKey::AddPartitionsToTxn)?
            .min(requests::ADD_PARTITIONS_MAX);
        let request = requests::add_partitions(self.id, producer, partitions);
        let response = conn.request_at(version, request).await.map_err(|e| {
            e.with_api(ApiKey::AddPartitionsToTxn)
                .with_broker(conn.addr())
        })?;
        Ok(requests::add_partitions_results(partitions, &response))
    }

    /// EndTxn: commits or aborts the transaction on the coordinator, which
    /// writes the markers. A retry after a lost answer is answered as the
    /// first was (the coordinator remembers the completed transaction).
    /// Under `txn` v2 (EndTxn v5+) the answer names the producer id and
    /// epoch the coordinator bumped to; with it, the coordinator's
    /// `transaction.version` level.
    pub(crate) async fn end_txn(
        &self,
        producer: ProducerId,
        commit: bool,
        txn: TxnVersion,
    ) -> Result<(Option<ProducerId>, Option<i16>), Error> {
        let span = tracing::info_span!(
            "kafka_txn_end",
            id = self.id,
            commit,
            transaction_version = txn.name()
        );
        let attempt = || async {
            let conn = self.txn_coordinator().await?;
            let version = Self::txn_version(&conn, ApiKey::EndTxn, |v| txn.end_txn(v))?;
            let request = EndTxnRequest {
                transactional_id: self.id.to_owned(),
                producer_id: producer.id,
                producer_epoch: producer.epoch,
                committed: commit,
                ..Default::default()
            };
            let response = conn.request_at(version, request).await?;
            kafkit_conn::Error::check(response.error_code, None)
                .map_err(|e| e.with_api(ApiKey::EndTxn).with_broker(conn.addr()))?;
            let answered = (version >= 5).then_some(ProducerId {
                id: response.producer_id,
                epoch: response.producer_epoch,
            });
            let level = feature_level(&conn);
            Ok((answered, level))
        };
        self.retrying(ApiKey::EndTxn, attempt)
            .instrument(span)
            .await
    }

    /// AddOffsetsToTxn then TxnOffsetCommit: the group's offsets become
    /// part of the transaction. Under `txn` v2 TxnOffsetCommit alone (v5+
    /// adds the group to the transaction itself).
    pub(crate) async fn send_offsets(
        &self,
        producer: ProducerId,
        group: &ConsumerGroupMetadata,
        offsets: &[TxnOffset],
        txn: TxnVersion,
        added: impl FnOnce(),
    ) -> Result<(), Error> {
        if txn.implicit_add() {
            // The commit below may reach the coordinator even if its
            // answer is lost: the transaction must end with EndTxn.
            added();
            return self.txn_offset_commit(producer, group, offsets, txn).await;
        }
        let add = || async {
            let conn = self.txn_coordinator().await?;
            let version = conn.version_for(ApiKey::AddOffsetsToTxn)?;
            let request = AddOffsetsToTxnRequest {
                transactional_id: self.id.to_owned(),
                producer_id: producer.id,
                producer_epoch: producer.epoch,
                group_id: group.group_id.clone(),
                ..Default::default()
            };
            let response = conn.request_at(version, request).await?;
            kafkit_conn::Error::check(response.error_code, None)
                .map_err(|e| e.with_api(ApiKey::AddOffsetsToTxn).with_broker(conn.addr()))
        };
        self.retrying(ApiKey::AddOffsetsToTxn, add)
            .instrument(tracing::debug_span!("kafka_txn_add_offsets", group = %group.group_id))
            .await?;
        // The coordinator now knows the transaction: it must end with EndTxn.
        added();
        self.txn_offset_commit(producer, group, offsets, txn).await
    }

    /// TxnOffsetCommit on the group's coordinator, with retries.
    async fn txn_offset_commit(
        &self,
        producer: ProducerId,
        group: &ConsumerGroupMetadata,
        offsets: &[TxnOffset],
        txn: TxnVersion,
    ) -> Result<(), Error> {
        let key = CoordinatorKey::Group(group.group_id.clone());
        let commit = || async {
            let conn = self.transport.coordinator(&key, Purpose::Group).await?;
            let version =
                Self::txn_version(&conn, ApiKey::TxnOffsetCommit, |v| txn.txn_offset_commit(v))?;
            let request = requests::txn_offset_commit(version, self.id, producer, group, offsets);
            let response = conn.request_at(version, request).await?;
            match requests::txn_offset_commit_error(&response) {
                None => Ok(()),
                Some((topic, partition, code)) => Err(kafkit_conn::Error::from_code(code)
                    .with_topic(&topic, Some(partition))
                    .with_api(ApiKey::TxnOffsetCommit)
                    .with_broker(conn.addr())),
            }
        };
        self.retrying(ApiKey::TxnOffsetCommit, commit)
            .instrument(tracing::debug_span!("kafka_txn_offset_commit", group = %group.group_id, offsets = offsets.len()))
            .await
    }
}
