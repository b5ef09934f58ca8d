//! Stamping a batch with a producer id, epoch and base sequence: when it
//! is encoded, or again in its bytes (with the CRC) after a new epoch.

use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::batch::Batch;

/// Byte offsets in a record batch header (see kafkit-protocol `records`).
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const PRODUCER_ID_OFFSET: usize = 43;
const HEADER_SIZE: usize = 61;

/// A producer id and epoch; [`ProducerId::NONE`] when not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerId {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

impl ProducerId {
    pub(crate) const NONE: ProducerId = ProducerId { id: -1, epoch: -1 };

    pub(crate) fn is_none(self) -> bool {
        self.id < 0
    }
}

/// The producer and base sequence an encoded batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) producer: ProducerId,
    /// The base sequence; -1 when not idempotent.
    pub(crate) sequence: i32,
}

impl Stamp {
    /// Not stamped yet, or not idempotent.
    pub(crate) const NONE: Stamp = Stamp {
        producer: ProducerId::NONE,
        sequence: -1,
    };
}

/// The sequence after `records` records from `seq`, wrapping at `i32::MAX`
/// as Kafka does.
pub(super) fn next_sequence(seq: i32, records: usize) -> i32 {
    ((i64::from(seq) + records as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// Whether `batch` must be (re)stamped before sending under `producer`.
pub(super) fn needs_stamp(batch: &Batch, producer: ProducerId) -> bool {
    batch.encoded.is_none() || batch.stamp.producer != producer
}

/// Finishes `batch` (encoding and compressing it) or re-stamps its bytes,
/// with `producer` and base sequence `seq` (-1 when not idempotent).
pub(super) fn stamp(batch: &mut Batch, producer: ProducerId, seq: i32) -> Result<(), Error> {
    let seq = if producer.is_none() { -1 } else { seq };
    if let Some(builder) = batch.builder.take() {
        let mut builder = builder.with_producer(producer.id, producer.epoch, seq);
        batch.encoded = Some(builder.finish()?);
    } else if let Some(bytes) = &batch.encoded {
        batch.encoded = Some(restamp(bytes, producer, seq));
    }
    batch.stamp = Stamp {
        producer,
        sequence: seq,
    };
    Ok(())
}

/// A copy of an encoded batch with a new producer id, epoch and base
/// sequence, and its CRC32C recomputed (it covers them).
fn restamp(batch: &Bytes, producer: ProducerId, seq: i32) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    if b.len() < HEADER_SIZE {
        return batch.clone();
    }
    b[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer.id.to_be_bytes());
    b[PRODUCER_ID_OFFSET + 8..PRODUCER_ID_OFFSET + 10]
        .copy_from_slice(&producer.epoch.to_be_bytes());
    b[PRODUCER_ID_OFFSET + 10..PRODUCER_ID_OFFSET + 14].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kafkit_protocol::records::{RecordBatch, RecordBatchBuilder, RecordSet};

    use super::*;

    fn batch() -> Batch {
        let mut builder = RecordBatchBuilder::new(0);
        builder.append(5, None, Some(b"one"), &[]).unwrap();
        builder.append(6, None, Some(b"two"), &[]).unwrap();
        Batch::new(1, Arc::from("t"), 0, builder)
    }

    fn header(b: &Batch) -> (i64, i16, i32) {
        let mut bytes = b.encoded.clone().unwrap();
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        let batch = RecordBatch::decode(&mut bytes).unwrap();
        assert_eq!(batch.crc(), crc);
        (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        )
    }

    #[test]
    fn stamping_then_restamping_keeps_a_valid_batch() {
        let mut b = batch();
        let p = ProducerId { id: 9, epoch: 2 };
        assert!(needs_stamp(&b, p));
        stamp(&mut b, p, 40).unwrap();
        assert!(!needs_stamp(&b, p));
        assert_eq!(header(&b), (9, 2, 40));
        let bumped = ProducerId { id: 9, epoch: 3 };
        assert!(needs_stamp(&b, bumped));
        stamp(&mut b, bumped, 0).unwrap();
        // The CRC is checked when the records are read back.
        assert_eq!(header(&b), (9, 3, 0));
        let set = RecordSet::new(b.encoded.clone().unwrap());
        let values: Vec<_> = set.records().map(|r| r.unwrap().value.unwrap()).collect();
        assert_eq!(values, ["one", "two"]);
    }

    #[test]
    fn without_idempotence_there_is_no_sequence() {
        let mut b = batch();
        stamp(&mut b, ProducerId::NONE, 40).unwrap();
        assert_eq!(header(&b), (-1, -1, -1));
    }

    #[test]
    fn sequences_wrap_at_int32_max() {
        assert_eq!(next_sequence(5, 3), 8);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 4), 2);
    }
}
