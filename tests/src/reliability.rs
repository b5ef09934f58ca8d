//! How a reliability scenario is counted: what was sent, what came back,
//! what is missing, what came back more than once and what came back out of
//! order, printed as the one machine-readable line that
//! `cargo xtask reliability` collects into its table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The outcome of a reliability scenario, counted end to end.
///
/// For a writer, `received` is what a read of the topic found; for a
/// consumer, what it processed: `lost` then counts records skipped, and
/// `duplicated` records processed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reliability {
    /// The scenario's name.
    pub scenario: String,
    /// Distinct records sent.
    pub sent: u64,
    /// Records received, duplicates included.
    pub received: u64,
    /// Sent records never received.
    pub lost: u64,
    /// Receptions beyond the first of each record.
    pub duplicated: u64,
    /// Records that came after a record sent later to the same partition
    /// (counted only by [`Reliability::count_partitions`]).
    pub reordered: u64,
    /// How long the client took to recover from the worst fault.
    pub recover: Duration,
}

impl Reliability {
    /// Counts `received` (record ids, in any order, duplicates kept)
    /// against `sent` (distinct ids), and prints the machine-readable
    /// `RELIABILITY scenario=... sent=... received=... lost=...
    /// duplicated=... reordered=... recover_ms=...` line.
    pub fn count(scenario: &str, sent: &[u64], received: &[u64], recover: Duration) -> Reliability {
        let report = Reliability::tally(scenario, sent, received, 0, recover);
        println!("{report}");
        report
    }

    /// As [`count`](Self::count), per partition: `sent[p]` in the order
    /// each record was sent to partition `p`, `received[p]` in the order
    /// the partition holds them. A record found before one sent ahead of
    /// it to the same partition counts as reordered (a duplicate found
    /// again later counts as duplicated only).
    pub fn count_partitions(
        scenario: &str,
        sent: &[Vec<u64>],
        received: &[Vec<u64>],
        recover: Duration,
    ) -> Reliability {
        assert_eq!(sent.len(), received.len(), "one list per partition");
        let reordered = sent
            .iter()
            .zip(received)
            .map(|(sent, received)| reorderings(sent, received))
            .sum();
        let flat = |lists: &[Vec<u64>]| lists.iter().flatten().copied().collect::<Vec<u64>>();
        let report = Reliability::tally(scenario, &flat(sent), &flat(received), reordered, recover);
        println!("{report}");
        report
    }

    fn tally(
        scenario: &str,
        sent: &[u64],
        received: &[u64],
        reordered: u64,
        recover: Duration,
    ) -> Reliability {
        let mut seen = HashMap::with_capacity(received.len());
        for id in received {
            *seen.entry(*id).or_insert(0u64) += 1;
        }
        Reliability {
            scenario: scenario.to_owned(),
            sent: sent.len() as u64,
            received: received.len() as u64,
            lost: sent.iter().filter(|id| !seen.contains_key(id)).count() as u64,
            duplicated: seen.values().map(|n| n - 1).sum(),
            reordered,
            recover,
        }
    }

    /// Every value of `topic`/`partition`, from offset 0 to the end, read
    /// straight from the broker at `addr` and parsed as a decimal record id
    /// (how the scenarios number their records). Blocking.
    ///
    /// # Panics
    ///
    /// If a fetch fails or a value is not a number.
    pub fn read_partition(addr: SocketAddr, topic: &str, partition: i32) -> Vec<u64> {
        let mut client = crate::RawClient::connect(addr);
        let (mut next, mut values) = (0, Vec::new());
        loop {
            let data = client.fetch(topic, partition, next);
            // An error (a leader that moved) would end the read early and
            // count the rest as lost: it fails the read instead.
            assert_eq!(
                data.error_code,
                kafkit_protocol::ErrorCode::NONE,
                "fetching {topic}-{partition} at {next} from {addr}"
            );
            let high_watermark = data.high_watermark;
            let set = kafkit_protocol::records::RecordSet::new(data.records.unwrap_or_default());
            let before = values.len();
            for record in set.records() {
                let record = record.expect("a fetched record decodes");
                if record.offset >= next {
                    next = record.offset + 1;
                    let value = record.value.as_deref().unwrap_or_default();
                    let id = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                    values.push(id.expect("record values are decimal ids"));
                }
            }
            if next >= high_watermark {
                return values;
            }
            assert!(
                values.len() > before,
                "{topic}-{partition}: no record at {next} below the high watermark {high_watermark}"
            );
        }
    }
}

/// Records of `received` found before a record sent ahead of them (first
/// receptions only: a repeat is a duplicate, counted elsewhere).
fn reorderings(sent: &[u64], received: &[u64]) -> u64 {
    let rank: HashMap<u64, usize> = sent.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut seen = std::collections::HashSet::with_capacity(received.len());
    let (mut highest, mut reordered) = (None, 0);
    for id in received {
        let Some(&at) = rank.get(id) else { continue };
        if !seen.insert(*id) {
            continue;
        }
        match highest {
            Some(h) if at < h => reordered += 1,
            _ => highest = Some(at),
        }
    }
    reordered
}

impl std::fmt::Display for Reliability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RELIABILITY scenario={} sent={} received={} lost={} duplicated={} reordered={} \
             recover_ms={}",
            self.scenario,
            self.sent,
            self.received,
            self.lost,
            self.duplicated,
            self.reordered,
            self.recover.as_millis()
        )
    }
}

/// True when `KAFKIT_RELIABILITY_FULL=1`: scenarios run at full size
/// (about a million records, minute-long storms) instead of CI size.
pub fn reliability_full() -> bool {
    std::env::var("KAFKIT_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_and_duplicated() {
        let r = Reliability::count("unit", &[1, 2, 3, 4], &[1, 1, 2, 4, 4, 4], Duration::ZERO);
        assert_eq!(
            (r.sent, r.received, r.lost, r.duplicated, r.reordered),
            (4, 6, 1, 3, 0)
        );
        assert!(r.to_string().contains(
            "scenario=unit sent=4 received=6 lost=1 duplicated=3 reordered=0 recover_ms=0"
        ));
    }

    #[test]
    fn counts_reordered_per_partition_apart_from_duplicates() {
        let sent = vec![vec![1, 2, 3, 4], vec![5, 6]];
        // 3 before 2: 2 is reordered; the second 3 is a duplicate only.
        let received = vec![vec![1, 3, 2, 3, 4], vec![5, 6]];
        let r = Reliability::count_partitions("unit", &sent, &received, Duration::ZERO);
        assert_eq!((r.lost, r.duplicated, r.reordered), (0, 1, 1));
        let in_order = vec![vec![1, 2, 2, 3, 4], vec![5, 6]];
        let r = Reliability::count_partitions("unit", &sent, &in_order, Duration::ZERO);
        assert_eq!((r.lost, r.duplicated, r.reordered), (0, 1, 0));
    }
}
