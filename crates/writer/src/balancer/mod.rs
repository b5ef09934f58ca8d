//! Balancers: which partition a message without an explicit one goes to.
//!
//! [`Balancer`] is one small method, and closures
//! `Fn(&str, &Message, usize) -> i32` implement it (kafka-go's
//! `BalancerFunc`). The ones here:
//!
//! | balancer | keyed records | keyless records | same choice as |
//! | --- | --- | --- | --- |
//! | [`DefaultBalancer`] | murmur2 | sticky | the Java client |
//! | [`Murmur2`] | murmur2, `& 0x7fffffff`, seed `0x9747b28c` | sticky | Java's default partitioner, librdkafka `murmur2_random` |
//! | [`Crc32`] | CRC-32 (IEEE) of the key, unsigned | sticky | librdkafka `consistent`/`consistent_random` |
//! | [`Hash`](struct@Hash) | FNV-1a 32, `abs(int32(h) % n)` | random | sarama's `HashPartitioner` (and kafka-go's `Hash`) |
//! | [`ReferenceHash`] | FNV-1a 32, `(int32(h) & 0x7fffffff) % n` | random | sarama's `ReferenceHashPartitioner` |
//! | [`Sticky`] | sticky | sticky | KIP-480/794 |
//! | [`RoundRobin`] | one partition after another | same | kafka-go's `RoundRobin` |
//! | [`LeastBytes`] | the partition written the fewest bytes | same | kafka-go's `LeastBytes` |
//!
//! A balancer is called with the writer's accumulator locked, so it should
//! be quick and must not block.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Message;

mod hash;
mod spread;

pub use hash::{Crc32, Hash, Murmur2, ReferenceHash, crc32_partition, fnv1a, murmur2};
pub use spread::{LeastBytes, RoundRobin, Sticky};

/// Picks the partition of a message that has no explicit one.
///
/// `partitions` is the topic's partition count (at least 1); the answer is
/// taken modulo it, so an out-of-range answer cannot misroute.
pub trait Balancer: Send + Sync + 'static {
    /// The partition, in `0..partitions`, for `message` on `topic`.
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32;
}

impl<F> Balancer for F
where
    F: Fn(&str, &Message, usize) -> i32 + Send + Sync + 'static,
{
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        self(topic, message, partitions)
    }
}

/// The default: keyed records by murmur2 as the Java client does, keyless
/// records sticky per batch (KIP-480/794).
#[derive(Debug, Default)]
pub struct DefaultBalancer {
    keyless: Sticky,
}

impl Balancer for DefaultBalancer {
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        match &message.key {
            Some(key) => Murmur2::partition_for(key, partitions),
            None => self.keyless.balance(topic, message, partitions),
        }
    }
}

/// A small, lock-free pseudo-random source (xorshift64*), seeded from the
/// clock and an address: balancers need spread, not cryptography.
#[derive(Debug)]
pub(crate) struct Random(AtomicU64);

impl Random {
    pub(crate) fn new() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Random(AtomicU64::new((nanos ^ addr.rotate_left(32)) | 1))
    }

    pub(crate) fn below(&self, n: usize) -> usize {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::Relaxed);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((r >> 32) as usize) % n.max(1)
    }
}

impl Default for Random {
    fn default() -> Self {
        Random::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_balancers() {
        let last = |_: &str, _: &Message, n: usize| n as i32 - 1;
        let b: &dyn Balancer = &last;
        assert_eq!(b.balance("t", &Message::new("v"), 6), 5);
    }

    #[test]
    fn the_default_hashes_keys_like_java_and_sticks_without() {
        let b = DefaultBalancer::default();
        let keyed = Message::new("v").with_key("foobar");
        // Java: toPositive(murmur2("foobar")) % 10, murmur2 = -790332482.
        assert_eq!(
            b.balance("t", &keyed, 10),
            ((-790332482i32 & 0x7fffffff) % 10)
        );
        let first = b.balance("t", &Message::new("v"), 6);
        assert_eq!(b.balance("t", &Message::new("v"), 6), first);
    }

    #[test]
    fn random_stays_in_range_and_spreads() {
        let r = Random::new();
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            seen[r.below(4)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
