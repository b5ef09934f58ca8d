//! `kafkit consume TOPIC --group G`: joins the group with a kafkit-reader
//! [`Reader`], prints what the group assigns, marks each printed record
//! processed and commits every second and on exit (Ctrl-C, `--count`,
//! `--exit`), then leaves the group.

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit_admin::{Admin, IsolationLevel, OffsetSpec};
use kafkit_reader::{FetchConfig, OffsetReset, Reader, ReaderConfig, TopicPartition};

use crate::cluster::lookup;
use crate::connect::ConnectArgs;
use crate::consume::{
    ConsumeArgs, OffsetArg, Output, TICK, closed_pipe, isolation, reader_isolation,
};
use crate::error::{Failure, Result};
use crate::progress::Progress;
use crate::stats::StatsTicker;

/// How often marked offsets are committed while consuming. Printing a
/// record is cheap; a synchronous commit per record would cost a round
/// trip each. Close commits the rest.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// For `--exit`: where each partition ends (as the command starts) and
/// where the group would start it (its committed offset, else the
/// `--offset` reset), so a partition with nothing left counts as done
/// without a record.
#[derive(Debug, Default)]
struct Ends {
    end: BTreeMap<TopicPartition, i64>,
    position: BTreeMap<TopicPartition, i64>,
}

impl Ends {
    async fn load(
        admin: &Admin,
        group: &str,
        tps: &[kafkit_admin::TopicPartition],
        reset: OffsetReset,
        isolation: IsolationLevel,
    ) -> Result<Ends> {
        let latest = lookup(admin, tps, OffsetSpec::Latest, isolation).await?;
        let earliest = lookup(admin, tps, OffsetSpec::Earliest, isolation).await?;
        let committed = admin.fetch_offsets(group, Some(tps)).await?;
        let mut ends = Ends::default();
        for tp in tps {
            let end = latest[tp].offset;
            let start = match committed.get(tp) {
                Some(Ok(c)) if c.offset >= 0 => c.offset,
                _ if reset == OffsetReset::Latest => end,
                _ => earliest[tp].offset,
            };
            let key = tp.clone();
            ends.end.insert(key.clone(), end);
            ends.position.insert(key, start);
        }
        Ok(ends)
    }

    /// Notes that the record at `offset` of `tp` was printed.
    fn advance(&mut self, tp: TopicPartition, offset: i64) {
        let p = self.position.entry(tp).or_insert(0);
        *p = (*p).max(offset + 1);
    }

    /// True once the group assigned partitions and each is at its end.
    fn reached(&self, assignment: &[TopicPartition]) -> bool {
        !assignment.is_empty()
            && assignment.iter().all(|tp| {
                let end = self.end.get(tp).copied().unwrap_or(0);
                self.position.get(tp).copied().unwrap_or(0) >= end
            })
    }
}

/// Runs `consume --group`.
pub async fn run(
    connect: &ConnectArgs,
    admin: &Admin,
    args: &ConsumeArgs,
    group: &str,
    tps: &[kafkit_admin::TopicPartition],
    quiet: bool,
) -> Result<()> {
    let reset = match (args.offset, args.timestamp) {
        (OffsetArg::Beginning, None) => OffsetReset::Earliest,
        (OffsetArg::End, None) => OffsetReset::Latest,
        _ => {
            return Err(Failure::usage(
                "with --group, --offset is beginning or end (where partitions without a \
                 committed offset start); --timestamp and offsets need a partition reader",
            ));
        }
    };
    let isolation = isolation(args);
    let mut ends = match args.exit {
        true => Some(Ends::load(admin, group, tps, reset, isolation).await?),
        false => None,
    };
    let config = ReaderConfig {
        brokers: connect.bootstrap(),
        topic: Some(args.topic.clone()),
        group_id: Some(group.to_owned()),
        auto_offset_reset: reset,
        commit_interval: Some(COMMIT_INTERVAL),
        session_timeout: args.session_timeout,
        // A third of the session, as the Java client's defaults (45 s, 3 s) keep it well under.
        heartbeat_interval: (args.session_timeout / 3).max(Duration::from_millis(100)),
        rebalance_timeout: args.session_timeout.max(Duration::from_secs(10)),
        conn: connect.conn_config()?,
        fetch: FetchConfig {
            isolation_level: reader_isolation(args),
            rack: args.rack.clone(),
            ..FetchConfig::default()
        },
        ..ReaderConfig::default()
    };
    let mut reader = Reader::new(config).await?;
    let mut out = Output::new(args.format.clone());
    let mut progress = Progress::new("consumed", !quiet, None);
    let result = group_loop(&mut reader, ends.as_mut(), args, &mut out, &mut progress).await;
    // Commits what was printed and leaves the group, even after an error.
    let closed = reader.close().await;
    progress.finish();
    let flushed = out.flush();
    if !quiet {
        eprintln!("{} from {} (group {group})", progress.summary(), args.topic);
    }
    result?;
    closed.map_err(|e| Failure::from(e).context(format!("committing for group {group}")))?;
    match flushed {
        Err(e) if !closed_pipe(&e) => Err(Failure::from(e)),
        _ => Ok(()),
    }
}

async fn group_loop(
    reader: &mut Reader,
    mut ends: Option<&mut Ends>,
    args: &ConsumeArgs,
    out: &mut Output,
    progress: &mut Progress,
) -> Result<()> {
    let mut tick = tokio::time::interval(TICK);
    let mut stats = StatsTicker::new(args.stats);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut active = false;
    loop {
        if args.count.is_some_and(|n| progress.records >= n) {
            return Ok(());
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = stats.tick() => crate::stats::print("reader", &reader.stats()),
            _ = tick.tick() => {
                if let Err(e) = out.flush() {
                    return if closed_pipe(&e) { Ok(()) } else { Err(e.into()) };
                }
                // As in partition mode: only a quiet tick ends the run.
                let quiet = !std::mem::take(&mut active);
                if quiet && ends.as_ref().is_some_and(|e| e.reached(&reader.assignment())) {
                    return Ok(());
                }
            }
            m = reader.fetch_message() => {
                let m = m?;
                active = true;
                if let Err(e) = out.print(&m) {
                    return if closed_pipe(&e) { Ok(()) } else { Err(e.into()) };
                }
                progress.add(m.key_bytes().len() + m.value_bytes().len());
                if let Some(ends) = ends.as_deref_mut() {
                    ends.advance(TopicPartition::new(m.topic.clone(), m.partition), m.offset);
                }
                reader.commit_messages(std::slice::from_ref(&m)).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_is_reached_per_assigned_partition() {
        let tp = |p| TopicPartition::new("t", p);
        let mut ends = Ends::default();
        ends.end.insert(tp(0), 3);
        ends.end.insert(tp(1), 0);
        ends.position.insert(tp(0), 1);
        ends.position.insert(tp(1), 0);
        assert!(!ends.reached(&[]), "nothing assigned yet");
        assert!(ends.reached(&[tp(1)]), "an empty partition is done");
        assert!(!ends.reached(&[tp(0), tp(1)]));
        ends.advance(tp(0), 1);
        assert!(!ends.reached(&[tp(0)]));
        ends.advance(tp(0), 2);
        assert!(ends.reached(&[tp(0), tp(1)]));
        ends.advance(tp(0), 0);
        assert!(ends.reached(&[tp(0)]), "positions never go back");
    }
}
