//! [`PartitionStats`]: each assigned partition's offsets, lag and buffered
//! bytes, as librdkafka's per-partition statistics give them.

use super::Fetcher;
use super::state::FetchState;

/// One assigned partition, from [`Fetcher::partition_stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PartitionStats {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to hand to the caller, once known.
    pub position: Option<i64>,
    /// The offset the next fetch starts at, once known.
    pub fetch_offset: Option<i64>,
    /// The last high watermark a fetch reported.
    pub high_watermark: Option<i64>,
    /// The last stable offset a fetch reported (read_committed's end).
    pub last_stable_offset: Option<i64>,
    /// The log start offset a fetch reported.
    pub log_start_offset: Option<i64>,
    /// Messages between the position and the end of the log (the last
    /// stable offset under read_committed), once both are known.
    pub lag: Option<i64>,
    /// Fetched bytes of this partition waiting for the caller.
    pub buffered_bytes: usize,
    /// The follower it is fetched from (KIP-392), `None` for its leader.
    pub read_replica: Option<i32>,
    /// Stopped: an error the caller must handle (offset out of range with
    /// no reset policy).
    pub stopped: bool,
}

impl Fetcher {
    /// Each assigned partition's offsets, lag and buffered bytes, sorted
    /// by topic and partition.
    pub fn partition_stats(&self) -> Vec<PartitionStats> {
        let st = self.shared.lock();
        let known = |v: i64| (v >= 0).then_some(v);
        let mut out: Vec<PartitionStats> = st
            .parts
            .iter()
            .map(|(tp, part)| {
                let current = self.current.as_ref().filter(|c| &c.tp == tp);
                let position = current.map(|c| c.position).or(part.position);
                let end = part.end_offset(self.read_committed);
                let buffered: usize = st
                    .ready
                    .iter()
                    .chain(current)
                    .filter(|c| &c.tp == tp)
                    .map(|c| c.bytes)
                    .sum();
                PartitionStats {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                    position,
                    fetch_offset: match part.fetch {
                        FetchState::At(offset) => Some(offset),
                        _ => None,
                    },
                    high_watermark: known(part.high_watermark),
                    last_stable_offset: known(part.last_stable_offset),
                    log_start_offset: known(part.log_start_offset),
                    lag: position.zip(end).map(|(p, e)| (e - p).max(0)),
                    buffered_bytes: buffered,
                    read_replica: part.read_replica.map(|r| r.broker),
                    stopped: part.fetch == FetchState::Stopped,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}
