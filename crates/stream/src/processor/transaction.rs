//! One transaction of a [`Processor`]: wait for a record, begin, run the
//! function on records (retries, dead letters) until the commit period or
//! the record limit, check for revoked partitions after every fetch, send
//! the input offsets and commit; and the ways out: abort with a rewind,
//! or finishing a commit that did not complete.

use std::future::Future;

use kafkit_conn::hooks::{HeaderLookup, TRACE_CONTEXT_HEADERS};
use kafkit_reader::{Message, StartOffset};
use tracing::Instrument;

use super::{Processor, Shutdown, Step};
use crate::output::dead_letter;
use crate::txn::TxnState;
use crate::{BoxError, Error, IntoOutputs};

impl Processor {
    /// Finishes what a cancelled run left: a commit that had started is
    /// completed, an open transaction is aborted and its inputs rewound.
    pub(super) async fn recover(&mut self) -> Result<(), Error> {
        let Some(txn) = &self.txn else {
            return Ok(());
        };
        if txn.committing {
            tracing::info!("finishing a commit that did not complete");
            match self.writer.commit_transaction().await {
                Ok(()) => {
                    self.committed();
                    return Ok(());
                }
                Err(e) if e.is_fatal() => {
                    self.txn = None;
                    return Err(e.into());
                }
                Err(e) if e.is_abortable() => {
                    tracing::warn!(error = %e, "the resumed commit failed; aborting");
                }
                // Still undecided (the coordinator unreachable): the writer
                // stays committing and the next call tries again.
                Err(e) => return Err(e.into()),
            }
        }
        self.abort().await
    }

    /// One transaction, from its first record to its commit.
    pub(super) async fn transaction<S, F, Fut, O, E>(
        &mut self,
        shutdown: &mut Shutdown<'_, S>,
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
            () = &mut *shutdown => return Ok(Step::Shutdown),
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
                    () = &mut *shutdown => { stop = true; break; }
                    () = tokio::time::sleep_until(deadline) => break,
                    m = self.reader.fetch_message() => m?,
                };
                // What the group took away came before `m`: forgotten
                // first, then `m` counted, so that an abort rewinds to it
                // too (its partition may have been given back).
                let rebalanced = self.rebalanced();
                self.txn.as_mut().expect("open").consume(&m);
                if rebalanced {
                    return Ok(Step::Rebalanced);
                }
                self.process(m, f).await?;
            }
            if self.rebalanced() || !self.in_group() {
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
    /// consumed from; the transaction forgets those partitions.
    fn rebalanced(&mut self) -> bool {
        let gone = self.revocations.take();
        !gone.is_empty() && self.txn.as_mut().expect("open").forget(&gone)
    }

    /// False when the reader's membership is gone (session expired,
    /// fenced) and it has not applied the loss yet: its group metadata
    /// then has no generation, and a TxnOffsetCommit without one is not
    /// fenced by the coordinator (it takes it as an old client's), so the
    /// inputs' next owner could commit them a second time. The
    /// transaction is aborted instead; the next fetch applies the loss.
    fn in_group(&self) -> bool {
        let g = self.reader.group_metadata().expect("a group reader");
        g.generation_id >= 0 && !g.member_id.is_empty()
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
                    let carry = self.writer.transport().hooks().is_installed();
                    for output in outputs.into_outputs() {
                        let mut message = output.into_message();
                        if carry {
                            carry_trace_context(&m, &mut message);
                        }
                        let _delivery = self.writer.send(message).await?;
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
    pub(super) async fn abort(&mut self) -> Result<(), Error> {
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        // Decided, whatever a commit said before: a failed abort is tried
        // again as an abort (the writer refuses to commit an aborting
        // transaction).
        txn.committing = false;
        // Rewind first: it cannot fail for an assigned partition, and the
        // reader must not hand out what follows the aborted records.
        // (Rewinding twice, when a failed abort is tried again, is
        // harmless: nothing was read in between.)
        let rewind = txn.rewind_points();
        let assigned = self.reader.assignment();
        for (tp, first) in rewind {
            if assigned.contains(&tp) {
                self.reader.seek(&tp, StartOffset::Offset(first))?;
            }
        }
        match self.writer.abort_transaction().await {
            Ok(()) => {}
            // Fenced: the broker ends it; nothing more to do here.
            Err(e) if e.is_fatal() => {
                self.txn = None;
                return Err(e.into());
            }
            // The writer stays aborting; the transaction stays here so
            // that the next run (or close) aborts it again.
            Err(e) => return Err(e.into()),
        }
        let txn = self.txn.take().expect("still open");
        self.stats.aborts += 1;
        tracing::debug!(records = txn.records, "transaction aborted");
        Ok(())
    }
}

/// Copies the input's trace context headers to an output that has none
/// of its own, so that the output's producer span (made by the hook)
/// continues the input's trace.
fn carry_trace_context(input: &Message, output: &mut kafkit_writer::Message) {
    for name in TRACE_CONTEXT_HEADERS {
        let Some(value) = HeaderLookup::header(&input.headers, name) else {
            continue;
        };
        if output.headers.iter().all(|h| h.key != name) {
            output.headers.push(kafkit_writer::Header {
                key: name.to_owned(),
                value: Some(value),
            });
        }
    }
}
