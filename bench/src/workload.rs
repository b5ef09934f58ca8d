//! The four workloads and their fixed shapes.

use std::time::Duration;

/// Every producer waits this long for a batch to fill.
pub const LINGER: Duration = Duration::from_millis(5);
/// The producers' buffer where a client has such a limit (kafkit's writer
/// defaults): 64 MiB and at most 1,000,000 records.
pub const BUFFER_BYTES: u64 = 64 << 20;
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
}

/// What a benchmark moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub records: u64,
    pub record_size: usize,
    pub partitions: u32,
    pub keys: u32,
}

impl Bench {
    pub const ALL: &[Bench] = &[
        Bench::Produce,
        Bench::Consume,
        Bench::ProduceKeyed,
        Bench::Consume100,
    ];

    /// The workloads of the positional mode (`produce`, `consume`, `all`).
    pub fn for_mode(mode: &str) -> &'static [Bench] {
        match mode {
            "produce" => &[Bench::Produce, Bench::ProduceKeyed],
            "consume" => &[Bench::Consume, Bench::Consume100],
            _ => Bench::ALL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bench::Produce => "produce",
            Bench::Consume => "consume",
            Bench::ProduceKeyed => "produce-keyed",
            Bench::Consume100 => "consume-100p",
        }
    }

    pub fn from_name(name: &str) -> Option<Bench> {
        Bench::ALL.iter().copied().find(|b| b.name() == name)
    }

    pub fn is_produce(self) -> bool {
        matches!(self, Bench::Produce | Bench::ProduceKeyed)
    }

    /// The shape for `--records records`.
    pub fn shape(self, records: u64) -> Shape {
        match self {
            Bench::Produce | Bench::Consume => Shape {
                records,
                record_size: 100,
                partitions: 6,
                keys: 0,
            },
            Bench::ProduceKeyed => Shape {
                records: (records / 5).max(1),
                record_size: 1024,
                partitions: 6,
                keys: KEYS,
            },
            Bench::Consume100 => Shape {
                records,
                record_size: 100,
                partitions: 100,
                keys: 0,
            },
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
                partitions: 6,
                keys: 0
            }
        );
        assert_eq!(Bench::ProduceKeyed.shape(1_000_000).records, 200_000);
        assert_eq!(Bench::ProduceKeyed.shape(3).records, 1);
        assert_eq!(Bench::Consume100.shape(7).partitions, 100);
        for &b in Bench::ALL {
            assert_eq!(Bench::from_name(b.name()), Some(b));
            assert!(b.title(1000).starts_with(b.name()));
        }
        assert_eq!(Bench::for_mode("produce").len(), 2);
        assert!(Bench::for_mode("consume").iter().all(|b| !b.is_produce()));
    }
}
