//! InitProducerId: the one way a writer gets a producer id and epoch, for
//! idempotent and transactional writers alike.
//!
//! - A transactional writer asks its transaction coordinator, with its
//!   transactional id: a new epoch that fences older writers and aborts
//!   their open transaction. Retried by the transaction rules
//!   (`Ctx::retrying`, within `request_timeout`).
//! - An idempotent writer asks any broker it reaches, retried by the
//!   transport's backoff.
//!
//! With `current` it is the KIP-360 epoch bump of that producer
//! (InitProducerId v3+, Kafka 2.5+). Without v3 an idempotent writer takes
//! a new id instead, which serves it as well; a transactional one cannot
//! recover, and the error is fatal.

use kafkit_conn::{CoordinatorKey, Purpose, Transport};
use kafkit_protocol::messages::InitProducerIdRequest;
use kafkit_protocol::{ApiKey, ErrorCode};
use tracing::Instrument;

use super::ProducerId;
use crate::txn::coordinator::{Ctx, feature_level};
use crate::txn::requests::INIT_PRODUCER_ID_MAX;
use crate::{Error, WriterConfig};

/// What InitProducerId answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Init {
    pub(crate) producer: ProducerId,
    /// The answering broker's `transaction.version` level, when known.
    pub(crate) level: Option<i16>,
}

/// InitProducerId for the writer `config` describes; with `current`, a
/// bump of that producer's epoch.
pub(crate) async fn init_producer_id(
    transport: &Transport,
    config: &WriterConfig,
    current: Option<ProducerId>,
) -> Result<Init, Error> {
    let txn_id = config.transactional_id.as_deref();
    let span = tracing::info_span!("kafka_init_producer_id", txn_id, bump = current.is_some());
    let attempt = || attempt(transport, config, current);
    let result = match txn_id {
        Some(id) => {
            let ctx = Ctx {
                transport,
                config,
                id,
            };
            ctx.retrying(ApiKey::InitProducerId, attempt)
                .instrument(span)
                .await
        }
        None => transport
            .retry(attempt)
            .instrument(span)
            .await
            .map_err(Error::Kafka),
    };
    match &result {
        Ok(init) => tracing::info!(
            txn_id,
            producer_id = init.producer.id,
            epoch = init.producer.epoch,
            transaction_version = init.level,
            "producer id"
        ),
        Err(e) => tracing::warn!(txn_id, error = %e, "InitProducerId failed"),
    }
    result
}

/// One InitProducerId request and its answer.
async fn attempt(
    transport: &Transport,
    config: &WriterConfig,
    current: Option<ProducerId>,
) -> Result<Init, kafkit_conn::Error> {
    let txn_id = config.transactional_id.as_deref();
    let conn = match txn_id {
        Some(id) => {
            let key = CoordinatorKey::Transaction(id.to_owned());
            transport.coordinator(&key, Purpose::Admin).await?
        }
        None => transport.any_broker().await?,
    };
    let version = conn
        .version_for(ApiKey::InitProducerId)?
        .min(INIT_PRODUCER_ID_MAX);
    let mut request = InitProducerIdRequest {
        transactional_id: txn_id.map(str::to_owned),
        transaction_timeout_ms: match txn_id {
            Some(_) => i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX),
            None => -1,
        },
        ..Default::default()
    };
    match current {
        Some(current) if version >= 3 => {
            request.producer_id = current.id;
            request.producer_epoch = current.epoch;
        }
        Some(_) if txn_id.is_some() => {
            return Err(
                kafkit_conn::Error::from_code(ErrorCode::UNSUPPORTED_VERSION).with_message(
                    "recovering after an aborted transaction needs InitProducerId v3 (Kafka 2.5+)",
                ),
            );
        }
        _ => {}
    }
    let response = conn.request_at(version, request).await?;
    kafkit_conn::Error::check(response.error_code, None)
        .map_err(|e| e.with_api(ApiKey::InitProducerId).with_broker(conn.addr()))?;
    Ok(Init {
        producer: ProducerId {
            id: response.producer_id,
            epoch: response.producer_epoch,
        },
        level: feature_level(&conn),
    })
}
