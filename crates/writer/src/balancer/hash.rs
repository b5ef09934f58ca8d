//! Key-hashing balancers, each choosing exactly the partition its
//! reference client chooses: [`Murmur2`] (Java, librdkafka `murmur2`),
//! [`Crc32`] (librdkafka `consistent`), [`Hash`] and [`ReferenceHash`]
//! (sarama).

use super::{Balancer, Random, Sticky};
use crate::Message;

/// Kafka's murmur2 (the Java client's `Utils.murmur2`): MurmurHash2,
/// 32-bit, seed `0x9747b28c`, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// FNV-1a, 32-bit (Go's `hash/fnv.New32a`).
pub fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// librdkafka's `consistent` partitioner: CRC-32 (IEEE) of the key,
/// unsigned, modulo the partition count.
pub fn crc32_partition(key: &[u8], partitions: usize) -> i32 {
    (crc32fast::hash(key) as usize % partitions.max(1)) as i32
}

/// Java's default partitioner for keyed records and librdkafka's
/// `murmur2_random`: `(murmur2(key) & 0x7fffffff) % partitions`. Keyless
/// records are sticky.
#[derive(Debug, Default)]
pub struct Murmur2 {
    keyless: Sticky,
}

impl Murmur2 {
    /// The partition for `key`.
    pub fn partition_for(key: &[u8], partitions: usize) -> i32 {
        ((murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
    }
}

impl Balancer for Murmur2 {
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        match &message.key {
            Some(key) => Murmur2::partition_for(key, partitions),
            None => self.keyless.balance(topic, message, partitions),
        }
    }
}

/// librdkafka's `consistent` partitioner for keyed records (CRC-32 of the
/// key); keyless records are sticky.
#[derive(Debug, Default)]
pub struct Crc32 {
    keyless: Sticky,
}

impl Balancer for Crc32 {
    fn balance(&self, topic: &str, message: &Message, partitions: usize) -> i32 {
        match &message.key {
            Some(key) => crc32_partition(key, partitions),
            None => self.keyless.balance(topic, message, partitions),
        }
    }
}

/// sarama's `HashPartitioner` (also kafka-go's `Hash`): FNV-1a of the key,
/// as a signed 32-bit number, modulo the count, made non-negative by
/// negation. Keyless records go to a random partition, as in sarama.
#[derive(Debug, Default)]
pub struct Hash {
    random: Random,
}

impl Hash {
    /// The partition for `key`.
    pub fn partition_for(key: &[u8], partitions: usize) -> i32 {
        let p = (fnv1a(key) as i32) % (partitions.max(1) as i32);
        p.wrapping_abs()
    }
}

impl Balancer for Hash {
    fn balance(&self, _topic: &str, message: &Message, partitions: usize) -> i32 {
        match &message.key {
            Some(key) => Hash::partition_for(key, partitions),
            None => self.random.below(partitions) as i32,
        }
    }
}

/// sarama's `ReferenceHashPartitioner`: FNV-1a of the key with the sign
/// bit masked off, modulo the count. Keyless records go to a random
/// partition, as in sarama.
#[derive(Debug, Default)]
pub struct ReferenceHash {
    random: Random,
}

impl ReferenceHash {
    /// The partition for `key`.
    pub fn partition_for(key: &[u8], partitions: usize) -> i32 {
        ((fnv1a(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
    }
}

impl Balancer for ReferenceHash {
    fn balance(&self, _topic: &str, message: &Message, partitions: usize) -> i32 {
        match &message.key {
            Some(key) => ReferenceHash::partition_for(key, partitions),
            None => self.random.below(partitions) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&str, i32)] = &[
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ];
        for &(key, hash) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            let expected = (hash & 0x7fffffff) % 7;
            assert_eq!(Murmur2::partition_for(key.as_bytes(), 7), expected);
        }
    }

    /// The FNV-1a reference vectors (Landon Curt Noll's test suite).
    #[test]
    fn fnv1a_matches_the_reference() {
        assert_eq!(fnv1a(b""), 0x811c9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9cf968);
    }

    /// sarama's `TestHashPartitionerMinInt32`: this key hashes to
    /// 0x80000000, the one value whose negation overflows.
    #[test]
    fn sarama_hashes_at_the_sign_boundary() {
        let key = b"1468509572224";
        assert_eq!(fnv1a(key), 0x8000_0000);
        // int32(-2^31) % 50 = -48, negated: 48. The reference variant masks
        // the sign bit first: 0 % 50 = 0.
        assert_eq!(Hash::partition_for(key, 50), 48);
        assert_eq!(ReferenceHash::partition_for(key, 50), 0);
        // "foobar": 0xbf9cf968 is negative as int32 (-1080231576).
        assert_eq!(
            Hash::partition_for(b"foobar", 7),
            (-1080231576i32 % 7).abs()
        );
        assert_eq!(ReferenceHash::partition_for(b"foobar", 7), 0x3f9cf968 % 7);
    }

    /// sarama's `TestConsistentCRCHashPartitioner`, whose unsigned CRC-32
    /// modulo is librdkafka's `consistent` partitioner.
    #[test]
    fn crc32_matches_librdkafka_consistent() {
        let cases = [
            ("abc123def456", 57),
            ("SheetJS", 26),
            ("9e8c7f4cf45857cfff7645d6", 24),
            ("3900446192ff85a5f67da10c", 75),
            ("0f4407b7a67d6d27de372198", 50),
        ];
        for (key, partition) in cases {
            assert_eq!(crc32_partition(key.as_bytes(), 100), partition, "{key}");
        }
        let b = Crc32::default();
        assert_eq!(
            b.balance("t", &Message::new("v").with_key("SheetJS"), 100),
            26
        );
    }

    #[test]
    fn keyless_records_stay_in_range() {
        let m = Message::new("v");
        for n in [1, 2, 7] {
            assert!((0..n as i32).contains(&Hash::default().balance("t", &m, n)));
            assert!((0..n as i32).contains(&ReferenceHash::default().balance("t", &m, n)));
            assert!((0..n as i32).contains(&Murmur2::default().balance("t", &m, n)));
        }
    }
}
