//! [`Processor`]: the consume-transform-produce loop, one transaction at a
//! time.
//!
//! One transaction: wait for a record; `begin_transaction`; run the user
//! function on records (with retries, then the dead-letter topic) and
//! write its outputs, until `commit_every` has passed or
//! `max_records_per_txn` records were taken; send the next input offsets
//! with the group's metadata (`send_offsets_to_transaction`); commit.
//!
//! Rebalances are applied inside the reader's `fetch_message`, where the
//! listener (`txn.rs`) records the partitions taken away. If one of them
//! was consumed by the open transaction, its new owner will read it from
//! the last committed offsets, so this transaction must not commit: it is
//! aborted and the partitions still assigned are rewound to where the
//! transaction started reading them. The check runs after every fetch,
//! and no reader call happens between the last check and the commit, so
//! no revocation can slip in between.

use std::future::Future;
use std::task::{Context, Poll};

use kafkit_reader::{Message, Reader};
use kafkit_writer::Writer;
use tracing::Instrument;

use crate::txn::{Revocations, TxnState};
use crate::{BoxError, Error, IntoOutputs, ProcessorBuilder, ProcessorConfig};

mod transaction;

/// Counters of a [`Processor`], from [`Processor::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessorStats {
    /// Input records of committed transactions.
    pub records: u64,
    /// Output records of committed transactions (dead letters excluded).
    pub outputs: u64,
    /// Records sent to the dead-letter topic in committed transactions.
    pub dead_letters: u64,
    /// Function calls retried.
    pub retries: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Transactions aborted, for any reason.
    pub aborts: u64,
    /// Of those, aborted because the group took one of their partitions.
    pub rebalance_aborts: u64,
}

/// An exactly-once consume-transform-produce loop: a group [`Reader`]
/// (read_committed, no commits of its own) and a transactional [`Writer`]
/// committing the outputs and the input offsets together. See the
/// [crate docs](crate) for an example and the guarantees.
///
/// Dropping it never blocks; a transaction left open is aborted by the
/// broker after the transaction timeout, or at once by the next instance
/// with the same transactional id. [`close`](Processor::close) aborts it,
/// leaves the group and reports errors.
#[derive(Debug)]
pub struct Processor {
    reader: Reader,
    writer: Writer,
    config: ProcessorConfig,
    revocations: Revocations,
    /// The open transaction, kept here so that a cancelled run leaves it
    /// for the next call (or `close`) to finish.
    txn: Option<TxnState>,
    stats: ProcessorStats,
    closed: bool,
}

/// The caller's shutdown future, polled no more once it has completed:
/// it stays ready (an `async` block panics when polled again).
struct Shutdown<'a, S> {
    inner: std::pin::Pin<&'a mut S>,
    done: bool,
}

impl<S: Future<Output = ()>> Future for Shutdown<'_, S> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.done {
            std::task::ready!(self.inner.as_mut().poll(cx));
            self.done = true;
        }
        Poll::Ready(())
    }
}

/// How a transaction ended.
enum Step {
    Committed,
    Rebalanced,
    Shutdown,
}

impl Processor {
    /// A builder bootstrapping from `brokers`.
    pub fn builder<S: Into<String>>(brokers: impl IntoIterator<Item = S>) -> ProcessorBuilder {
        ProcessorBuilder::new(brokers)
    }

    /// Validates `config`, builds the transactional writer (InitProducerId
    /// fences an older instance with the same transactional id and aborts
    /// its open transaction), then starts the reader, which joins the
    /// group in the background. The writer comes first so that the
    /// reader's committed offsets already reflect the old instance's last
    /// transaction.
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn new(config: ProcessorConfig) -> Result<Processor, Error> {
        config.validate()?;
        let span = tracing::info_span!(
            "kafkit_stream_start",
            group = %config.group_id,
            transactional_id = %config.transactional_id
        );
        async move {
            let mut writer_config = config.writer.clone();
            writer_config.topic = None;
            let writer = Writer::builder(config.brokers.clone())
                .config(writer_config)
                .conn(config.reader.conn.clone())
                .transactional_id(config.transactional_id.clone())
                .transaction_timeout(config.transaction_timeout)
                .build()
                .await?;
            let revocations = Revocations::default();
            let reader = Reader::builder(config.brokers.clone())
                .config(config.reader_config())
                .on_rebalance(revocations.listener())
                .build()
                .await?;
            tracing::info!("processor started");
            Ok(Processor {
                reader,
                writer,
                config,
                revocations,
                txn: None,
                stats: ProcessorStats::default(),
                closed: false,
            })
        }
        .instrument(span)
        .await
    }

    /// The configuration.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> ProcessorStats {
        self.stats.clone()
    }

    /// Input records not processed yet: between the reader's position and
    /// the end of the log, summed over the assigned partitions, as of the
    /// last fetches (no IO; see `Reader::lag`). Records of the open
    /// transaction count as processed.
    pub fn lag(&self) -> i64 {
        self.reader.lag()
    }

    /// The input partitions assigned to this instance now.
    pub fn assignment(&self) -> Vec<kafkit_reader::TopicPartition> {
        self.reader.assignment()
    }

    /// Runs `f` on every input record until an error stops it; see
    /// [`run_until`](Processor::run_until).
    ///
    /// Cancel safety: as `run_until`.
    pub async fn run<F, Fut, O, E>(&mut self, f: F) -> Result<(), Error>
    where
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: IntoOutputs,
        E: Into<BoxError>,
    {
        self.run_until(std::future::pending(), f).await
    }

    /// Runs `f` on every input record, in transactions, until `shutdown`
    /// completes (the open transaction is then committed and `Ok` is
    /// returned) or an error stops it. `f` gets each record (a cheap
    /// clone) and returns what to produce ([`IntoOutputs`]: an `Output`,
    /// an `Option`, a `Vec`); a record whose call keeps failing goes to
    /// the dead-letter topic or stops the processor (see
    /// [`RetryPolicy`](crate::RetryPolicy)).
    ///
    /// Errors: fatal writer errors ([`Error::is_fatal`]: fenced by a newer
    /// instance) at once; abortable ones after
    /// [`max_consecutive_aborts`](ProcessorConfig::max_consecutive_aborts)
    /// failed transactions in a row; reader errors; [`Error::Processing`].
    /// Whatever the error, the open transaction was aborted (or, when the
    /// writer is fenced, will be by the broker) and nothing of it is
    /// visible to read_committed readers; except when its commit kept
    /// failing without an answer (the coordinator unreachable): then it
    /// may have committed, and the next `run` or `close` finishes it.
    ///
    /// Cancel safety: no record is lost or duplicated, but the work of the
    /// open transaction is: dropped midway, the transaction stays open
    /// (nothing of it visible), and the next `run`/`run_until` aborts it
    /// and rewinds the inputs, or finishes its commit if the commit had
    /// started; [`close`](Processor::close) aborts it. Prefer `shutdown`
    /// to cancelling.
    pub async fn run_until<S, F, Fut, O, E>(&mut self, shutdown: S, mut f: F) -> Result<(), Error>
    where
        S: Future<Output = ()>,
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: IntoOutputs,
        E: Into<BoxError>,
    {
        if self.closed {
            return Err(Error::Closed);
        }
        let shutdown = std::pin::pin!(shutdown);
        let mut shutdown = Shutdown {
            inner: shutdown,
            done: false,
        };
        self.recover().await?;
        let mut failures = 0u32;
        loop {
            let result = self.transaction(&mut shutdown, &mut f).await;
            let error = match result {
                Ok(Step::Shutdown) => return Ok(()),
                Ok(Step::Committed | Step::Rebalanced) => {
                    failures = 0;
                    continue;
                }
                Err(e) => e,
            };
            // The transaction failed. Fenced: the writer is unusable and
            // the broker aborts what it left. Otherwise abort it (rewinding
            // its inputs); only writer errors are worth another try, the
            // reader retries on its own and the function already did.
            if error.is_fatal() {
                tracing::error!(error = %error, "writer fenced or unusable; stopping");
                self.txn = None;
                return Err(error);
            }
            failures += 1;
            let undecided = self.txn.as_ref().is_some_and(|t| t.committing)
                && matches!(&error, Error::Writer(e) if !e.is_abortable());
            if undecided {
                // commit_transaction failed without saying whether the
                // transaction committed: finish it (it may have), never
                // abort and rewind.
                let mut error = error;
                loop {
                    tracing::warn!(error = %error, "the commit did not complete; retrying it");
                    if failures >= self.config.max_consecutive_aborts {
                        return Err(error);
                    }
                    tokio::time::sleep(self.config.retry.delay(failures)).await;
                    match self.recover().await {
                        Ok(()) => break,
                        Err(e) if !e.is_fatal() && self.txn.is_some() => {
                            error = e;
                            failures += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            // Once shutdown has come, the failed transaction is aborted and
            // its error returned, not tried again.
            let retry = matches!(error, Error::Writer(_)) && !shutdown.done;
            tracing::warn!(error = %error, retry, "transaction failed; aborting");
            self.abort().await?;
            if !retry || failures >= self.config.max_consecutive_aborts {
                return Err(error);
            }
            tokio::time::sleep(self.config.retry.delay(failures)).await;
        }
    }

    /// Stops: aborts a transaction a cancelled run left open (or finishes
    /// its commit if the commit had started), closes the writer, then
    /// leaves the group (the reader commits nothing). Returns the first
    /// error. Later calls to `run` fail with [`Error::Closed`]; closing
    /// again returns `Ok`.
    ///
    /// Cancel safety: not cancel safe: dropped halfway, the processor is
    /// closed but the group may not have been left (the coordinator notices
    /// after the session timeout) and the transaction may still be open
    /// (the broker aborts it after the transaction timeout).
    pub async fn close(&mut self) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let span = tracing::info_span!("kafkit_stream_close", group = %self.config.group_id);
        async {
            // The writer ends what a cancelled run left: it aborts an open
            // transaction and finishes a commit that had started. The
            // group is left once no transaction of ours is open.
            if let Some(txn) = self.txn.take() {
                if !txn.committing {
                    self.stats.aborts += 1;
                }
            }
            let writer = self.writer.close().await.map_err(Error::from);
            let reader = self.reader.close().await.map_err(Error::from);
            let result = writer.and(reader);
            tracing::info!(ok = result.is_ok(), stats = ?self.stats, "processor closed");
            result
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_invalid_config_fails_before_any_connection() {
        // No broker listens on port 1: a connection attempt would fail
        // differently (and slowly).
        let err = Processor::builder(["127.0.0.1:1"])
            .group_id("g")
            .input_topics(["in"])
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("transactional_id")),
            "{err}"
        );
    }
}
