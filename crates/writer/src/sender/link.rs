//! One submitter task per broker, so that produce requests reach the
//! broker's connection in the order the sender built them.
//!
//! Order matters for idempotence: two requests carrying consecutive
//! batches of one partition must be written in sequence order, or the
//! broker rejects the later sequence it sees first. Spawning one task per
//! request would let the runtime start them in any order. Here a broker's
//! requests are taken one at a time from a channel; each is polled until
//! it has been handed to the connection's driver (which writes frames in
//! the order it receives them; a request waiting for an in-flight slot
//! waits in a FIFO queue), and only its answer is awaited on a task of its
//! own, so requests still pipeline.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use kafkit_conn::{Conn, Purpose, Transport};
use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafkit_protocol::{ApiKey, Uuid};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Outcome;
use crate::txn::version::TxnVersion;

/// Which batch: its partition and its id (`Batch::id`), as a request's
/// outcome names the batches it carried.
#[derive(Debug, Clone)]
pub(crate) struct BatchRef {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) id: u64,
}

/// One batch in a request, and its encoded bytes.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) batch: BatchRef,
    pub(super) records: Bytes,
}

/// A request for a broker's submitter.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) broker: i32,
    pub(super) addr: String,
    pub(super) acks: i16,
    pub(super) timeout_ms: i32,
    pub(super) items: Vec<Item>,
    pub(super) records: usize,
    /// The writer's transactional id: its batches belong to a transaction.
    pub(super) transactional_id: Option<Arc<str>>,
    /// The transaction's protocol: v1 caps Produce below v12, v2 needs it.
    pub(super) txn_version: Option<TxnVersion>,
}

/// Starts the submitter of one broker; it stops when `jobs` closes.
pub(super) fn spawn(
    transport: Transport,
    outcomes: mpsc::UnboundedSender<Outcome>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut jobs) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            submit(&transport, job, &outcomes).await;
        }
    });
    tx
}

/// Hands one request to the broker's connection, and leaves the wait for
/// its answer to a task of its own.
async fn submit(transport: &Transport, job: Job, outcomes: &mpsc::UnboundedSender<Outcome>) {
    let span = tracing::debug_span!(
        "kafka_produce",
        broker = job.broker,
        addr = %job.addr,
        batches = job.items.len(),
        records = job.records
    );
    let sent: Vec<BatchRef> = job.items.iter().map(|item| item.batch.clone()).collect();
    let (broker, addr) = (job.broker, job.addr.clone());
    let report = {
        let outcomes = outcomes.clone();
        let addr = addr.clone();
        move |result| {
            if let Err(e) = &result {
                tracing::debug!(error = %e, "produce request failed");
            }
            let _ = outcomes.send(Outcome::Produced {
                broker,
                addr,
                sent,
                result,
            });
        }
    };
    let conn = match transport
        .conn(&job.addr, Purpose::Produce)
        .instrument(span.clone())
        .await
    {
        Ok(conn) => conn,
        Err(e) => return report(Err(e)),
    };
    let request = match build(transport, &conn, job) {
        Ok(request) => request,
        Err(e) => return report(Err(e)),
    };
    let (version, request) = request;
    let mut answer = Box::pin(
        async move {
            conn.request_at(version, request)
                .await
                .map_err(|e| e.with_broker(&addr).with_api(ApiKey::Produce))
        }
        .instrument(span),
    );
    // One poll hands the frame to the driver (or queues for a slot).
    let first = std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => report(result),
        Poll::Pending => {
            tokio::spawn(async move { report(answer.await) });
        }
    }
}

/// The ProduceRequest for `job` at the version `conn` negotiated.
fn build(
    transport: &Transport,
    conn: &Conn,
    job: Job,
) -> Result<(i16, ProduceRequest), kafkit_conn::Error> {
    let mut version = conn.version_for(ApiKey::Produce)?;
    if job.transactional_id.is_some() {
        let txn = job.txn_version.unwrap_or(TxnVersion::V1);
        version = txn.produce(version).map_err(|code| {
            kafkit_conn::Error::from_code(code)
                .with_message("transaction.version 2 is enabled but the broker lacks Produce v12")
                .with_api(ApiKey::Produce)
        })?;
    }
    let snapshot = transport.snapshot();
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for Item {
        batch: BatchRef {
            topic, partition, ..
        },
        records,
    } in job.items
    {
        let data = PartitionProduceData {
            index: partition,
            records: Some(records),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| *t.name == *topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(TopicProduceData {
                name: topic.to_string(),
                // Produce v13 names topics by id only (KIP-516).
                topic_id: if version >= 13 {
                    snapshot.topic_id(&topic).unwrap_or(Uuid::ZERO)
                } else {
                    Uuid::ZERO
                },
                partition_data: vec![data],
                ..Default::default()
            }),
        }
    }
    let request = ProduceRequest {
        transactional_id: job.transactional_id.as_deref().map(str::to_owned),
        acks: job.acks,
        timeout_ms: job.timeout_ms,
        topic_data: topics,
        ..Default::default()
    };
    Ok((version, request))
}
