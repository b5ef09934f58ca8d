//! The workloads and their fixed shapes.

use std::time::Duration;

/// Every producer waits this long for a batch to fill.
pub const LINGER: Duration = Duration::from_millis(5);
/// The producers' buffer where a client has such a limit (kafkit's writer
/// defaults): 16 MiB and at most 1,000,000 records.
pub const BUFFER_BYTES: u64 = 16 << 20;
pub const BUFFER_RECORDS: u64 = 1_000_000;
/// The Java producer's `batch.size`: 1 MiB like the others' batch limits
/// (its default, 16 KiB, would cap its batches at about 150 records of 100 B).
pub const JAVA_BATCH_SIZE: u64 = 1 << 20;
/// Distinct keys of the keyed workload.
pub const KEYS: u32 = 10_000;

/// One benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    /// `--records` x 100 B to 6 partitions, record `i` to partition `i % 6`.
    Produce,
    /// Those records, read from the start of the 6 partitions.
    Consume,
    /// `--records / 5` x 1 KiB with keys (10,000 distinct), placed by murmur2.
    ProduceKeyed,
    /// `--records` x 100 B over 100 partitions, read from the start.
    Consume100,
    /// `--records` x 100 B over 10 topics of 100 partitions each (1,000
    /// partitions), read from the start: what fetch sessions (KIP-227) save.
    Consume1000,
    /// Larger records, the same bytes as `Produce` (`--records / 10` x 1 KiB,
    /// `/ 100` x 10 KiB, `/ 1000` x 100 KiB) to 6 partitions, no keys: the
    /// cost per byte.
    ProduceSized(Size),
    /// Those records, read from the start of the 6 partitions.
    ConsumeSized(Size),
}

/// A record size of the per-byte workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    K1,
    K10,
    K100,
}

impl Size {
    pub const ALL: [Size; 3] = [Size::K1, Size::K10, Size::K100];

    /// The record's value size, and how many times fewer records than
    /// `--records` carry the same bytes.
    fn bytes_and_divisor(self) -> (usize, u64) {
        match self {
            Size::K1 => (1 << 10, 10),
            Size::K10 => (10 << 10, 100),
            Size::K100 => (100 << 10, 1000),
        }
    }
}

/// What a benchmark moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub records: u64,
    pub record_size: usize,
    /// Topics, each with `partitions` partitions: record `i` goes to topic
    /// `i % topics` (see [`Shape::place`]).
    pub topics: u32,
    pub partitions: u32,
    pub keys: u32,
}

impl Shape {
    /// Where an unkeyed record `i` goes: topic `i % topics`, partition
    /// `(i / topics) % partitions`, so every partition of every topic gets
    /// the same share (with one topic, partition `i % partitions`).
    pub fn place(topics: u32, partitions: u32, i: u64) -> (usize, i32) {
        let topics = u64::from(topics.max(1));
        let topic = (i % topics) as usize;
        let partition = ((i / topics) % u64::from(partitions.max(1))) as i32;
        (topic, partition)
    }

    /// The topics' names: `base` alone for one topic, `base-0`, `base-1`,
    /// ... for more.
    pub fn topic_names(&self, base: &str) -> Vec<String> {
        if self.topics <= 1 {
            vec![base.to_owned()]
        } else {
            (0..self.topics).map(|t| format!("{base}-{t}")).collect()
        }
    }

    /// Partitions over all topics.
    pub fn total_partitions(&self) -> u32 {
        self.topics.max(1) * self.partitions
    }
}

impl Bench {
    pub const ALL: &[Bench] = &[
        Bench::Produce,
        Bench::Consume,
        Bench::ProduceKeyed,
        Bench::Consume100,
        Bench::Consume1000,
        Bench::ProduceSized(Size::K1),
        Bench::ConsumeSized(Size::K1),
        Bench::ProduceSized(Size::K10),
        Bench::ConsumeSized(Size::K10),
        Bench::ProduceSized(Size::K100),
        Bench::ConsumeSized(Size::K100),
    ];

    /// The workloads of the positional mode (`produce`, `consume`, `sizes`,
    /// `all`; `all` leaves the per-byte ones to `sizes`).
    pub fn for_mode(mode: &str) -> &'static [Bench] {
        match mode {
            "produce" => &[Bench::Produce, Bench::ProduceKeyed],
            "consume" => &[Bench::Consume, Bench::Consume100, Bench::Consume1000],
            "sizes" => &Bench::ALL[5..],
            _ => &Bench::ALL[..5],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bench::Produce => "produce",
            Bench::Consume => "consume",
            Bench::ProduceKeyed => "produce-keyed",
            Bench::Consume100 => "consume-100p",
            Bench::Consume1000 => "consume-1000p",
            Bench::ProduceSized(Size::K1) => "produce-1k",
            Bench::ConsumeSized(Size::K1) => "consume-1k",
            Bench::ProduceSized(Size::K10) => "produce-10k",
            Bench::ConsumeSized(Size::K10) => "consume-10k",
            Bench::ProduceSized(Size::K100) => "produce-100k",
            Bench::ConsumeSized(Size::K100) => "consume-100k",
        }
    }

    pub fn from_name(name: &str) -> Option<Bench> {
        Bench::ALL.iter().copied().find(|b| b.name() == name)
    }

    pub fn is_produce(self) -> bool {
        matches!(
            self,
            Bench::Produce | Bench::ProduceKeyed | Bench::ProduceSized(_)
        )
    }

    /// The shape for `--records records`.
    pub fn shape(self, records: u64) -> Shape {
        match self {
            Bench::Produce | Bench::Consume => Shape {
                records,
                record_size: 100,
                topics: 1,
                partitions: 6,
                keys: 0,
            },
            Bench::ProduceKeyed => Shape {
                records: (records / 5).max(1),
                record_size: 1024,
                topics: 1,
                partitions: 6,
                keys: KEYS,
            },
            Bench::Consume100 => Shape {
                records,
                record_size: 100,
                topics: 1,
                partitions: 100,
                keys: 0,
            },
            Bench::Consume1000 => Shape {
                records,
                record_size: 100,
                topics: 10,
                partitions: 100,
                keys: 0,
            },
            Bench::ProduceSized(size) | Bench::ConsumeSized(size) => {
                let (record_size, divisor) = size.bytes_and_divisor();
                Shape {
                    records: (records / divisor).max(1),
                    record_size,
                    topics: 1,
                    partitions: 6,
                    keys: 0,
                }
            }
        }
    }

    /// The table's title.
    pub fn title(self, records: u64) -> String {
        let s = self.shape(records);
        let linger = LINGER.as_millis();
        match self {
            Bench::Produce => format!(
                "produce: {} records x {} B to {} partitions (record i to partition i % {}), \
                 no keys, acks=all, idempotent (kafka-go cannot be), linger {linger} ms, \
                 no compression",
                s.records, s.record_size, s.partitions, s.partitions
            ),
            Bench::Consume => format!(
                "consume: {} records x {} B from the start of {} partitions, no group",
                s.records, s.record_size, s.partitions
            ),
            Bench::ProduceKeyed => format!(
                "produce-keyed: {} records x {} B with keys ({} distinct, 10 B) to {} \
                 partitions by murmur2, acks=all, idempotent (kafka-go cannot be), linger \
                 {linger} ms, no compression",
                s.records, s.record_size, s.keys, s.partitions
            ),
            Bench::Consume100 => format!(
                "consume-100p: {} records x {} B from the start of {} partitions, no group",
                s.records, s.record_size, s.partitions
            ),
            Bench::Consume1000 => format!(
                "consume-1000p: {} records x {} B from the start of {} topics x {} partitions \
                 ({} partitions), no group",
                s.records,
                s.record_size,
                s.topics,
                s.partitions,
                s.total_partitions()
            ),
            Bench::ProduceSized(_) => format!(
                "{}: {} records x {} B to {} partitions (record i to partition i % {}), \
                 no keys, acks=all, idempotent (kafka-go cannot be), linger {linger} ms, \
                 no compression",
                self.name(),
                s.records,
                s.record_size,
                s.partitions,
                s.partitions
            ),
            Bench::ConsumeSized(_) => format!(
                "{}: {} records x {} B from the start of {} partitions, no group",
                self.name(),
                s.records,
                s.record_size,
                s.partitions
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_records() {
        assert_eq!(
            Bench::Produce.shape(10),
            Shape {
                records: 10,
                record_size: 100,
                topics: 1,
                partitions: 6,
                keys: 0
            }
        );
        assert_eq!(Bench::ProduceKeyed.shape(1_000_000).records, 200_000);
        assert_eq!(Bench::ProduceKeyed.shape(3).records, 1);
        assert_eq!(Bench::Consume100.shape(7).partitions, 100);
        let wide = Bench::Consume1000.shape(7);
        assert_eq!((wide.topics, wide.total_partitions()), (10, 1000));
        assert_eq!(wide.topic_names("t")[9], "t-9");
        assert_eq!(Bench::Consume.shape(7).topic_names("t"), ["t"]);
        for &b in Bench::ALL {
            assert_eq!(Bench::from_name(b.name()), Some(b));
            assert!(b.title(1000).starts_with(b.name()));
        }
        assert_eq!(Bench::for_mode("produce").len(), 2);
        assert_eq!(Bench::for_mode("all").len(), 5);
        let sized = Bench::ConsumeSized(Size::K10).shape(1_000_000);
        assert_eq!((sized.records, sized.record_size), (10_000, 10 << 10));
        assert!(Bench::for_mode("sizes").iter().all(|b| matches!(
            b,
            Bench::ProduceSized(_) | Bench::ConsumeSized(_)
        )));
        assert!(Bench::for_mode("consume").iter().all(|b| !b.is_produce()));
    }

    #[test]
    fn records_spread_evenly() {
        // One topic: record i to partition i % partitions, as before.
        assert_eq!(Shape::place(1, 6, 13), (0, 1));
        let mut counts = vec![0u32; 1000];
        for i in 0..100_000 {
            let (t, p) = Shape::place(10, 100, i);
            counts[t * 100 + p as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == 100));
    }
}
