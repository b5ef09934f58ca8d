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

use kafkit_reader::{GroupMetadata, Message, Reader, StartOffset};
use kafkit_writer::{ConsumerGroupMetadata, Writer};
use tracing::Instrument;

use crate::output::dead_letter;
use crate::txn::{Revocations, TxnState};
use crate::{BoxError, Error, IntoOutputs, ProcessorBuilder, ProcessorConfig};

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
                .connect()
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
    /// visible to read_committed readers.
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
        let mut shutdown = shutdown;
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
            let retry = matches!(error, Error::Writer(_));
            tracing::warn!(error = %error, retry, "transaction failed; aborting");
            self.abort().await?;
            failures += 1;
            if !retry || failures >= self.config.max_consecutive_aborts {
                return Err(error);
            }
            tokio::time::sleep(self.config.retry.delay(failures)).await;
        }
    }

    /// Finishes what a cancelled run left: a commit that had started is
    /// completed, an open transaction is aborted and its inputs rewound.
    async fn recover(&mut self) -> Result<(), Error> {
        let Some(txn) = &self.txn else {
            return Ok(());
        };
        if txn.committing {
            tracing::info!("finishing the commit a cancelled run started");
            match self.writer.commit_transaction().await {
                Ok(()) => {
                    self.committed();
                    return Ok(());
                }
                Err(e) if e.is_fatal() => {
                    self.txn = None;
                    return Err(e.into());
                }
                Err(e) => tracing::warn!(error = %e, "the resumed commit failed; aborting"),
            }
        }
        self.abort().await
    }

    /// One transaction, from its first record to its commit.
    async fn transaction<S, F, Fut, O, E>(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut S>,
        f: &mut F,
    ) -> Result<Step, Error>
    where
        S: Future<Output = ()>,
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: IntoOutputs,
        E: Into<BoxError>,
    {
        // Wait for a record before opening a transaction: an idle
        // processor holds none open.
        let first = tokio::select! {
            biased;
            () = shutdown.as_mut() => return Ok(Step::Shutdown),
            m = self.reader.fetch_message() => m?,
        };
        // Nothing was consumed yet: what the group took away so far does
        // not concern the transaction about to start.
        self.revocations.take();
        self.writer.begin_transaction()?;
        let mut txn = TxnState::new();
        txn.consume(&first);
        self.txn = Some(txn);
        let span = tracing::debug_span!("kafkit_stream_txn", records = tracing::field::Empty);
        let step = async {
            self.process(first, f).await?;
            let deadline = tokio::time::Instant::now() + self.config.commit_every;
            let mut stop = false;
            while self.open().records < self.config.max_records_per_txn {
                let m = tokio::select! {
                    biased;
                    () = shutdown.as_mut() => { stop = true; break; }
                    () = tokio::time::sleep_until(deadline) => break,
                    m = self.reader.fetch_message() => m?,
                };
                // Counted first, so that an abort rewinds to it too.
                self.txn.as_mut().expect("open").consume(&m);
                if self.rebalanced() {
                    return Ok(Step::Rebalanced);
                }
                self.process(m, f).await?;
            }
            if self.rebalanced() {
                return Ok(Step::Rebalanced);
            }
            self.commit().await?;
            Ok(if stop {
                Step::Shutdown
            } else {
                Step::Committed
            })
        }
        .instrument(span.clone())
        .await;
        span.record("records", self.txn.as_ref().map_or(0, |t| t.records));
        if let Ok(Step::Rebalanced) = step {
            tracing::info!("a partition of the open transaction was revoked; aborting it");
            self.stats.rebalance_aborts += 1;
            self.abort().await?;
        }
        step
    }

    fn open(&self) -> &TxnState {
        self.txn.as_ref().expect("a transaction is open")
    }

    /// True when the group took away a partition the open transaction
    /// consumed from.
    fn rebalanced(&self) -> bool {
        let gone = self.revocations.take();
        !gone.is_empty() && self.open().touches(&gone)
    }

    /// Runs `f` on `m` with retries and writes its outputs, or the dead
    /// letter.
    async fn process<F, Fut, O, E>(&mut self, m: Message, f: &mut F) -> Result<(), Error>
    where
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Result<O, E>>,
        O: IntoOutputs,
        E: Into<BoxError>,
    {
        let policy = &self.config.retry;
        let mut attempt = 0;
        let error: BoxError = loop {
            attempt += 1;
            match f(m.clone()).await {
                Ok(outputs) => {
                    for output in outputs.into_outputs() {
                        let _delivery = self.writer.send(output.into_message()).await?;
                        self.txn.as_mut().expect("open").outputs += 1;
                    }
                    return Ok(());
                }
                Err(e) if attempt < policy.attempts => {
                    let e: BoxError = e.into();
                    let delay = policy.delay(attempt);
                    tracing::debug!(
                        topic = %m.topic, partition = m.partition, offset = m.offset,
                        attempt, error = %e, ?delay, "processing failed; retrying"
                    );
                    self.stats.retries += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => break e.into(),
            }
        };
        let Some(topic) = &policy.dead_letter_topic else {
            return Err(Error::Processing {
                topic: m.topic.to_string(),
                partition: m.partition,
                offset: m.offset,
                attempts: attempt,
                source: error,
            });
        };
        tracing::warn!(
            topic = %m.topic, partition = m.partition, offset = m.offset,
            attempts = attempt, error = %error, dead_letter_topic = %topic,
            "processing failed; sending the record to the dead-letter topic"
        );
        let letter = dead_letter(topic, &m, &error.to_string(), attempt);
        let _delivery = self.writer.send(letter).await?;
        self.txn.as_mut().expect("open").dead_letters += 1;
        Ok(())
    }

    /// Sends the input offsets and commits.
    async fn commit(&mut self) -> Result<(), Error> {
        let offsets = self.open().offsets();
        let group = self
            .reader
            .group_metadata()
            .map(consumer_group)
            .expect("the reader is a group reader");
        self.writer
            .send_offsets_to_transaction(&offsets, &group)
            .await?;
        self.txn.as_mut().expect("open").committing = true;
        self.writer.commit_transaction().await?;
        self.committed();
        Ok(())
    }

    fn committed(&mut self) {
        let txn = self.txn.take().expect("a transaction was open");
        self.stats.commits += 1;
        self.stats.records += txn.records as u64;
        self.stats.outputs += txn.outputs;
        self.stats.dead_letters += txn.dead_letters;
        tracing::debug!(
            records = txn.records,
            outputs = txn.outputs,
            elapsed = ?txn.started.elapsed(),
            "transaction committed"
        );
    }

    /// Aborts the open transaction, if any, and reads its inputs that are
    /// still assigned again from where it started (the others are read by
    /// their new owner from the last committed offsets).
    async fn abort(&mut self) -> Result<(), Error> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        self.stats.aborts += 1;
        // Rewind first: it cannot fail for an assigned partition, and the
        // reader must not hand out what follows the aborted records.
        let assigned = self.reader.assignment();
        for (tp, first) in txn.rewind_points() {
            if assigned.contains(&tp) {
                self.reader.seek(&tp, StartOffset::Offset(first))?;
            }
        }
        self.writer.abort_transaction().await?;
        tracing::debug!(records = txn.records, "transaction aborted");
        Ok(())
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

/// The reader's view of the group, as the writer's TxnOffsetCommit wants it.
fn consumer_group(g: GroupMetadata) -> ConsumerGroupMetadata {
    ConsumerGroupMetadata {
        group_id: g.group_id,
        generation_id: g.generation_id,
        member_id: g.member_id,
        group_instance_id: g.group_instance_id,
    }
}
