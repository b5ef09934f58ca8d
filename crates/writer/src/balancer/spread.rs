//! Balancers that spread records regardless of keys: [`Sticky`],
//! [`RoundRobin`], [`LeastBytes`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, Random};
use crate::Message;

/// The sticky partitioner (KIP-480, with KIP-794's switch by bytes): all
/// records of a topic go to one partition until about `switch_bytes` were
/// written to it, then to another partition picked at random. Records
/// therefore fill batches instead of trickling one per partition, which is
/// what makes keyless writes cheap, while load still evens out over time.
#[derive(Debug)]
pub struct Sticky {
    switch_bytes: usize,
    random: Random,
    /// Per topic: the current partition and the bytes written to it. A
    /// short list scanned by string comparison: cheaper than hashing the
    /// topic for the few topics a writer has.
    current: Mutex<Vec<(String, i32, usize)>>,
}

impl Default for Sticky {
    /// Switches after 64 KiB: four times Java's 16 KiB `batch.size`, so
    /// that a partition's batch is worth a request of its own.
    fn default() -> Self {
        Sticky::new(64 << 10)
    }
}

impl Sticky {
    /// A sticky balancer that moves on after `switch_bytes`.
    pub fn new(switch_bytes: usize) -> Sticky {
        Sticky {
            switch_bytes: switch_bytes.max(1),
            random: Random::new(),
            current: Mutex::new(Vec::new()),
        }
    }

    fn pick_other(&self, previous: Option<i32>, partitions: usize) -> i32 {
        if partitions <= 1 {
            return 0;
        }
        match previous {
            // Any partition but the previous one.
            Some(prev) if (prev as usize) < partitions => {
                let step = 1 + self.random.below(partitions - 1);
                ((prev as usize + step) % partitions) as i32
            }
            _ => self.random.below(partitions) as i32,
        }
    }
}

impl Balancer for Sticky {
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        let size = message.estimated_size();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, partition, written)) = current.iter_mut().find(|(t, ..)| t == topic) {
            if *written < self.switch_bytes && (*partition as usize) < partitions {
                *written += size;
                return *partition;
            }
            let next = self.pick_other(Some(*partition), partitions);
            *partition = next;
            *written = size;
            return next;
        }
        let first = self.pick_other(None, partitions);
        current.push((topic.to_owned(), first, size));
        first
    }
}

/// One partition after another (kafka-go's `RoundRobin`, sarama's
/// `RoundRobinPartitioner`), shared by every topic of the writer.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn balance(&self, _topic: &str, _message: &Message, partitions: usize) -> i32 {
        (self.next.fetch_add(1, Ordering::Relaxed) % partitions.max(1)) as i32
    }
}

/// The partition this balancer has sent the fewest bytes so far (kafka-go's
/// `LeastBytes`), ties going to the lowest partition.
#[derive(Debug, Default)]
pub struct LeastBytes {
    written: Mutex<HashMap<String, Vec<u64>>>,
}

impl Balancer for LeastBytes {
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let counts = written.entry(topic.to_owned()).or_default();
        counts.resize(partitions.max(1), 0);
        let (index, _) = counts
            .iter()
            .enumerate()
            .min_by_key(|&(i, &bytes)| (bytes, i))
            .expect("at least one partition");
        counts[index] += message.estimated_size() as u64;
        index as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles() {
        let b = RoundRobin::default();
        let m = Message::new("v");
        let got: Vec<i32> = (0..8).map(|_| b.balance("t", &m, 3)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0, 1]);
    }

    #[test]
    fn least_bytes_fills_the_emptiest() {
        let b = LeastBytes::default();
        let big = Message::new(vec![0u8; 1000]);
        let small = Message::new("v");
        assert_eq!(b.balance("t", &big, 3), 0);
        assert_eq!(b.balance("t", &small, 3), 1);
        assert_eq!(b.balance("t", &small, 3), 2);
        assert_eq!(b.balance("t", &small, 3), 1);
        // Another topic keeps its own counts.
        assert_eq!(b.balance("u", &small, 3), 0);
    }

    #[test]
    fn sticky_sticks_then_moves_on() {
        let b = Sticky::new(1000);
        let m = Message::new(vec![0u8; 64]);
        let first = b.balance("t", &m, 6);
        let mut run = 1;
        let mut next = first;
        while next == first {
            next = b.balance("t", &m, 6);
            run += 1;
            assert!(run < 100, "never switched");
        }
        // About 1000 bytes of ~100-byte records, then a different partition.
        assert!((8..=13).contains(&run), "{run}");
        assert_ne!(next, first);
        assert_eq!(b.balance("t", &m, 1), 0);
    }

    #[test]
    fn sticky_spreads_over_time() {
        let b = Sticky::new(100);
        let m = Message::new(vec![0u8; 64]);
        let mut seen = [false; 4];
        for _ in 0..400 {
            seen[b.balance("t", &m, 4) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}
