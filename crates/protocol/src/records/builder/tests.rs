//! Tests for the batch builder, including a byte-for-byte layout check.

use super::*;
use crate::records::tests::crc32c_bitwise;
use crate::records::{RecordBatch, RecordSet};

#[test]
fn byte_for_byte_layout() {
    let mut b = RecordBatchBuilder::new(0);
    b.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
    b.append(1005, None, Some(b"vv"), &[("h", Some(b"x"))])
        .unwrap();
    let batch = b.finish().unwrap();
    #[rustfmt::skip]
    let mut expected: Vec<u8> = vec![
        0, 0, 0, 0, 0, 0, 0, 0,         // baseOffset
        0, 0, 0, 71,                    // batchLength = 83 - 12
        0xff, 0xff, 0xff, 0xff,         // partitionLeaderEpoch
        2,                              // magic
        0, 0, 0, 0,                     // crc, patched below
        0, 0,                           // attributes
        0, 0, 0, 1,                     // lastOffsetDelta
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,   // baseTimestamp 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xed,   // maxTimestamp 1005
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId
        0xff, 0xff,                     // producerEpoch
        0xff, 0xff, 0xff, 0xff,         // baseSequence
        0, 0, 0, 2,                     // recordsCount
        // record 0: length 8, attrs, tsDelta 0, offDelta 0, key "k", value "v", 0 headers
        0x10, 0, 0, 0, 0x02, b'k', 0x02, b'v', 0,
        // record 1: length 12, attrs, tsDelta 5, offDelta 1, null key, value "vv", header h=x
        0x18, 0, 0x0a, 0x02, 0x01, 0x04, b'v', b'v', 0x02, 0x02, b'h', 0x02, b'x',
    ];
    let crc = crc32c_bitwise(&expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&batch[..], &expected[..]);
    let decoded = RecordBatch::decode(&mut batch.clone()).unwrap();
    assert_eq!(decoded.crc(), crc);
}

#[test]
fn header_fields_and_flags() {
    let mut b = RecordBatchBuilder::new(500)
        .with_producer(9, 4, 2_147_483_000)
        .with_transactional(true)
        .with_partition_leader_epoch(12)
        .with_log_append_time(Some(5555))
        .with_compression(Compression::Lz4, None);
    for i in 0..1000 {
        b.append(100 + i, None, Some(b"payload"), &[]).unwrap();
    }
    let batch = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
    assert_eq!(
        (
            batch.base_offset(),
            batch.last_offset(),
            batch.next_offset()
        ),
        (500, 1499, 1500)
    );
    assert_eq!(
        (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence()
        ),
        (9, 4, 2_147_483_000)
    );
    assert_eq!(batch.last_sequence(), 351);
    assert_eq!(batch.partition_leader_epoch(), 12);
    assert!(batch.is_transactional() && !batch.is_control() && !batch.has_delete_horizon());
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!((batch.base_timestamp(), batch.max_timestamp()), (100, 5555));
    assert_eq!(batch.compression(), Compression::Lz4);
    assert!(batch.records().all(|r| r.unwrap().timestamp == 5555));
    // The builder moved on: next batch starts at 1500, sequence wrapped.
    assert_eq!(b.base_offset(), 1500);
    b.append(1, None, None, &[]).unwrap();
    let next = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
    assert_eq!((next.base_offset(), next.base_sequence()), (1500, 352));
}

#[test]
fn sizes_gaps_and_errors() {
    let mut b = RecordBatchBuilder::new(10);
    assert!(b.finish().is_err());
    let headers: &[(&str, Option<&[u8]>)] = &[("a", None), ("bb", Some(b"123"))];
    let predicted = b.next_record_size(7, Some(b"key"), None, headers);
    let before = b.size_in_bytes();
    assert_eq!(b.append(7, Some(b"key"), None, headers).unwrap(), 10);
    assert_eq!(b.size_in_bytes() - before, predicted);
    assert_eq!(b.append_at_offset(15, 9, None, None, &[]).unwrap(), 15);
    assert!(b.append_at_offset(15, 9, None, None, &[]).is_err());
    assert!(b.append_at_offset(9, 9, None, None, &[]).is_err());
    assert!(b.set_base_offset(0).is_err());
    assert_eq!(b.append(3, None, None, &[]).unwrap(), 16);
    assert_eq!(
        (b.record_count(), b.last_offset_delta(), b.max_timestamp()),
        (3, 6, 9)
    );
    let raw = b.finish().unwrap();
    assert_eq!(raw.len(), before + predicted + 2 * 7);
    let offsets: Vec<i64> = RecordSet::new(raw)
        .records()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, [10, 15, 16]);
}

#[test]
fn switching_codecs_keeps_records() {
    let mut b = RecordBatchBuilder::new(0);
    b.append(1, Some(b"a"), None, &[]).unwrap();
    let mut b = b.with_compression(Compression::Gzip, Some(1));
    b.append(2, Some(b"b"), None, &[]).unwrap();
    let mut b = b.with_compression(Compression::None, None);
    b.append(3, Some(b"c"), None, &[]).unwrap();
    let keys: Vec<_> = RecordSet::new(b.finish().unwrap())
        .records()
        .map(|r| r.unwrap().key.unwrap())
        .collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

#[test]
fn max_timestamp_below_minus_one() {
    let mut b = RecordBatchBuilder::new(0);
    b.append(-5, None, None, &[]).unwrap();
    b.append(-3, None, None, &[]).unwrap();
    let batch = RecordBatch::decode(&mut b.finish().unwrap()).unwrap();
    assert_eq!((batch.base_timestamp(), batch.max_timestamp()), (-5, -3));
    let ts: Vec<i64> = batch.records().map(|r| r.unwrap().timestamp).collect();
    assert_eq!(ts, [-5, -3]);
}
