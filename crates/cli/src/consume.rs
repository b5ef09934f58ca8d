//! `kafkit consume TOPIC`: prints records as they arrive. Without `--group`
//! it reads the topic's partitions (or one, `--partition`) with a
//! kafkit-reader [`Fetcher`] from `--offset`/`--timestamp`; with `--group`
//! it joins the group with a [`Reader`](kafkit_reader::Reader) and commits
//! what it printed (see `consume_group.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use kafkit_admin::{Admin, IsolationLevel, OffsetSpec};
use kafkit_reader::{FetchConfig, Fetcher, Message, StartOffset, TopicPartition};
use tracing::Instrument;

use crate::cluster::{lookup, parse_time, topic_partitions};
use crate::connect::ConnectArgs;
use crate::error::{Exit, Failure, Result};
use crate::format::Format;
use crate::progress::Progress;
use crate::stats::{FetcherSnapshot, StatsTicker};

/// How often the loop wakes without records, to flush and check `--exit`.
pub const TICK: Duration = Duration::from_millis(200);

/// Consume records and print them to stdout.
#[derive(Debug, Args)]
#[command(after_help = const_format_help())]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,

    /// Where to start: beginning, end, an offset N, or -N (N records
    /// before the end of each partition). With --group: where partitions
    /// without a committed offset start (beginning or end).
    #[arg(
        short,
        long,
        default_value = "beginning",
        allow_hyphen_values = true,
        value_name = "beginning|end|N|-N",
        conflicts_with = "timestamp"
    )]
    pub offset: OffsetArg,

    /// Start at the first record at or after this time (RFC 3339, or
    /// milliseconds since the Unix epoch).
    #[arg(short, long, value_parser = parse_time, value_name = "TIME")]
    pub timestamp: Option<SystemTime>,

    /// Read only this partition (default: all of them).
    #[arg(short, long, value_name = "N", conflicts_with = "group")]
    pub partition: Option<i32>,

    /// Join this consumer group and read what it assigns, committing the
    /// offsets of the records printed.
    #[arg(short = 'G', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// How to print each record: plain (the value), json, or a format
    /// string such as '%k=%v (%p@%o)'.
    #[arg(short, long, default_value = "plain", value_name = "FORMAT")]
    pub format: Format,

    /// Exit at the end of every partition read: once each has reached the
    /// end offset it had when the command started, and no record came for
    /// 200 ms (tansu's end offsets fall short of a batch's last record).
    #[arg(short, long)]
    pub exit: bool,

    /// Exit after printing N records.
    #[arg(short, long, value_name = "N")]
    pub count: Option<u64>,

    /// With --group: how long the coordinator waits for a heartbeat before
    /// it drops this member. Short, because a command-line consumer comes
    /// and goes, and some brokers (tansu) hold a join for half of it.
    #[arg(long, default_value = "10s", value_parser = crate::connect::parse_duration, value_name = "DURATION")]
    pub session_timeout: Duration,

    /// Read only committed transactional records.
    #[arg(long)]
    pub read_committed: bool,

    /// The rack (availability zone) this consumer runs in, Kafka's
    /// client.rack: a cluster with a rack-aware replica selector serves
    /// the fetches from a replica in that rack (KIP-392).
    #[arg(long, value_name = "RACK")]
    pub rack: Option<String>,

    /// Print a JSON snapshot of the client's statistics to stderr every
    /// DURATION (per-broker round trips, per-partition offsets and lag,
    /// the group's state), one object per line.
    #[arg(long, value_parser = crate::connect::parse_duration, value_name = "DURATION")]
    pub stats: Option<Duration>,
}

const fn const_format_help() -> &'static str {
    concat!(
        "Examples:\n",
        "  kafkit consume orders --offset beginning --exit\n",
        "  kafkit consume orders -p 0 -o -10 -f '%k=%v (%p@%o)'\n",
        "  kafkit consume orders --timestamp 2026-11-23T09:00:00Z -f json -c 100\n",
        "  kafkit consume orders --group billing --offset end\n\n",
        "Format strings (--format '...'):\n",
        "  %t topic        %p partition    %o offset       %T timestamp (ms)\n",
        "  %k key          %K key length   %v value (%s)   %S value length\n",
        "  %h headers as key=value,key=value               %% a percent sign\n",
        "  \\n newline      \\t tab\n",
        "A newline ends each record unless the format already ends with \\n.\n",
        "json prints topic, partition, offset, timestamp, key, value and headers;\n",
        "keys and values that are not UTF-8 appear as key_base64/value_base64.\n\n",
        "Stop with Ctrl-C: group mode then commits and leaves the group."
    )
}

/// `--offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetArg {
    /// The first offset held.
    Beginning,
    /// The end of the log: new records only.
    End,
    /// This offset.
    At(i64),
    /// This many records before the end.
    FromEnd(i64),
}

impl FromStr for OffsetArg {
    type Err = String;

    fn from_str(s: &str) -> Result<OffsetArg, String> {
        match s {
            "beginning" | "earliest" | "first" => Ok(OffsetArg::Beginning),
            "end" | "latest" | "last" => Ok(OffsetArg::End),
            _ => match s.parse::<i64>() {
                Ok(n) if n < 0 => Ok(OffsetArg::FromEnd(n.saturating_neg())),
                Ok(n) => Ok(OffsetArg::At(n)),
                Err(_) => Err(format!("{s:?} is not beginning, end, N or -N")),
            },
        }
    }
}

pub fn isolation(args: &ConsumeArgs) -> IsolationLevel {
    if args.read_committed {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    }
}

/// [`isolation`] as kafkit-reader names it.
pub fn reader_isolation(args: &ConsumeArgs) -> kafkit_reader::IsolationLevel {
    match isolation(args) {
        IsolationLevel::ReadCommitted => kafkit_reader::IsolationLevel::ReadCommitted,
        IsolationLevel::ReadUncommitted => kafkit_reader::IsolationLevel::ReadUncommitted,
    }
}

/// Where each partition starts, resolving -N against the current offsets.
async fn starts(
    admin: &Admin,
    args: &ConsumeArgs,
    tps: &[kafkit_admin::TopicPartition],
) -> Result<Vec<(TopicPartition, StartOffset)>> {
    let to_reader = |tp: &TopicPartition| tp.clone();
    if let Some(t) = args.timestamp {
        return Ok(tps
            .iter()
            .map(|tp| (to_reader(tp), StartOffset::Timestamp(t)))
            .collect());
    }
    let from_end = match args.offset {
        OffsetArg::Beginning => StartOffset::Earliest,
        OffsetArg::End => StartOffset::Latest,
        OffsetArg::At(n) => StartOffset::Offset(n),
        OffsetArg::FromEnd(n) => {
            let earliest = lookup(admin, tps, OffsetSpec::Earliest, isolation(args)).await?;
            let latest = lookup(admin, tps, OffsetSpec::Latest, isolation(args)).await?;
            return Ok(tps
                .iter()
                .map(|tp| {
                    let start = (latest[tp].offset - n).max(earliest[tp].offset);
                    (to_reader(tp), StartOffset::Offset(start))
                })
                .collect());
        }
    };
    Ok(tps.iter().map(|tp| (to_reader(tp), from_end)).collect())
}

/// Writes records to stdout, flushing at least every [`TICK`].
#[derive(Debug)]
pub struct Output {
    out: std::io::BufWriter<std::io::Stdout>,
    flushed: Instant,
    format: Format,
}

impl Output {
    /// Output in `format`.
    pub fn new(format: Format) -> Output {
        Output {
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout()),
            flushed: Instant::now(),
            format,
        }
    }

    /// Prints `m`. A closed pipe (`| head`) is not an error: it ends the run.
    pub fn print(&mut self, m: &Message) -> std::io::Result<()> {
        self.format.write(&mut self.out, m)?;
        if self.flushed.elapsed() >= TICK {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.flushed = Instant::now();
        self.out.flush()
    }
}

/// What ended a consume loop early, short of an error.
pub fn closed_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Runs `consume`.
pub async fn run(connect: &ConnectArgs, args: &ConsumeArgs, quiet: bool) -> Result<()> {
    let span = tracing::info_span!("kafkit_consume", topic = %args.topic, group = ?args.group);
    async {
        let transport = connect.connect().await?;
        let admin = Admin::new(transport.clone());
        let mut tps = topic_partitions(&admin, &args.topic).await?;
        if let Some(p) = args.partition {
            tps.retain(|tp| tp.partition == p);
            if tps.is_empty() {
                return Err(Failure::new(
                    Exit::NotFound,
                    format!("topic {} has no partition {p}", args.topic),
                ));
            }
        }
        if let Some(group) = &args.group {
            return crate::consume_group::run(connect, &admin, args, group, &tps, quiet).await;
        }
        let ends = match args.exit {
            true => Some(lookup(&admin, &tps, OffsetSpec::Latest, isolation(args)).await?),
            false => None,
        };
        let ends: Option<BTreeMap<TopicPartition, i64>> =
            ends.map(|ends| ends.into_iter().map(|(tp, o)| (tp, o.offset)).collect());
        let mut fetcher = Fetcher::new(
            transport.clone(),
            FetchConfig {
                isolation_level: reader_isolation(args),
                rack: args.rack.clone(),
                ..FetchConfig::default()
            },
        );
        fetcher.assign(starts(&admin, args, &tps).await?);
        let mut out = Output::new(args.format.clone());
        let mut progress = Progress::new("consumed", !quiet, None);
        let looped = consume_loop(
            &mut fetcher,
            &transport,
            ends.as_ref(),
            args,
            &mut out,
            &mut progress,
        );
        let result = looped.await;
        progress.finish();
        let flushed = out.flush();
        if !quiet {
            eprintln!("{} from {}", progress.summary(), args.topic);
        }
        result?;
        match flushed {
            Err(e) if !closed_pipe(&e) => Err(Failure::from(e)),
            _ => Ok(()),
        }
    }
    .instrument(span)
    .await
}

/// True when every partition's position reached its end offset. The loop
/// asks only after a tick without records: tansu's end offset is the last
/// batch's first offset + 1, so a position can pass it while that batch's
/// other records are still being handed out.
fn at_end(fetcher: &Fetcher, ends: &BTreeMap<TopicPartition, i64>) -> bool {
    ends.iter()
        .all(|(tp, end)| *end <= 0 || fetcher.position(tp).is_some_and(|p| p >= *end))
}

async fn consume_loop(
    fetcher: &mut Fetcher,
    transport: &kafkit_conn::Transport,
    ends: Option<&BTreeMap<TopicPartition, i64>>,
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
            () = stats.tick() => crate::stats::print("fetcher", &FetcherSnapshot {
                fetch: fetcher.stats(),
                partitions: fetcher.partition_stats(),
                transport: transport.stats(),
            }),
            _ = tick.tick() => {
                if let Err(e) = out.flush() {
                    return if closed_pipe(&e) { Ok(()) } else { Err(e.into()) };
                }
                // See `--exit`'s help: a quiet tick at the end offsets.
                let quiet = !std::mem::take(&mut active);
                if quiet && ends.is_some_and(|ends| at_end(fetcher, ends)) {
                    return Ok(());
                }
            }
            m = fetcher.next() => {
                let m = m?;
                active = true;
                if let Err(e) = out.print(&m) {
                    return if closed_pipe(&e) { Ok(()) } else { Err(e.into()) };
                }
                progress.add(m.key_bytes().len() + m.value_bytes().len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    fn parse(extra: &[&str]) -> std::result::Result<ConsumeArgs, clap::Error> {
        Test::try_parse_from(["t", "orders"].iter().chain(extra)).map(|t| t.args)
    }

    #[test]
    fn offsets_parse_in_every_form() {
        assert_eq!(parse(&[]).unwrap().offset, OffsetArg::Beginning);
        assert_eq!(parse(&["-o", "end"]).unwrap().offset, OffsetArg::End);
        assert_eq!(parse(&["-o", "42"]).unwrap().offset, OffsetArg::At(42));
        assert_eq!(
            parse(&["--offset", "-10"]).unwrap().offset,
            OffsetArg::FromEnd(10)
        );
        assert!(parse(&["-o", "middle"]).is_err());
    }

    #[test]
    fn exclusive_flags_are_refused() {
        assert!(parse(&["-o", "end", "--timestamp", "1000"]).is_err());
        assert!(parse(&["-p", "0", "--group", "g"]).is_err());
        let a = parse(&["-e", "-c", "5", "-f", "json", "-G", "g"]).unwrap();
        assert!(a.exit && a.count == Some(5) && a.group.as_deref() == Some("g"));
        assert_eq!(a.format, Format::Json);
        assert!(parse(&["-f", "%q"]).is_err());
        assert!(const_format_help().contains("%k key"));
    }
}
