//! Cross-module tests: batch-level error handling, record sets, round-trip
//! and no-panic property tests.

use bytes::Bytes;
use proptest::prelude::*;

use super::legacy::tests::{message, wrapper};
use super::*;
use crate::DecodeError;
use crate::compression::Compression;

mod golden;

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: an
/// implementation independent of the `crc32c` crate.
pub(crate) fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the CRC of the v2 batch at the start of `buf` after a test
/// edited it.
fn recrc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn simple_batch(base: i64, n: usize, codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(base).with_compression(codec, None);
    for i in 0..n {
        b.append(
            1_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(b"value"),
            &[],
        )
        .unwrap();
    }
    b.finish().unwrap()
}

fn all_records(data: Bytes) -> Result<Vec<Record>, DecodeError> {
    RecordSet::new(data).records().collect()
}

#[test]
fn crc32c_reference_vector() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn crc_mismatch_is_detected() {
    let mut raw = simple_batch(0, 3, Compression::None).to_vec();
    let last = raw.len() - 1;
    raw[last] ^= 0x40;
    let err = RecordBatch::decode(&mut Bytes::from(raw.clone())).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::CrcMismatch {
                what: "record batch CRC32C",
                ..
            }
        ),
        "{err:?}"
    );
    let opts = DecodeOptions::default().with_verify_crc(false);
    assert!(RecordBatch::decode_with(&mut Bytes::from(raw), &opts).is_ok());
}

#[test]
fn record_count_must_match_the_data() {
    let raw = simple_batch(0, 3, Compression::None).to_vec();
    // Count larger than the bytes can hold: rejected at decode.
    let mut big = raw.clone();
    big[57..61].copy_from_slice(&1000i32.to_be_bytes());
    recrc(&mut big);
    assert!(matches!(
        RecordBatch::decode(&mut Bytes::from(big)),
        Err(DecodeError::Invalid { .. })
    ));
    // One more than present: a truncation error after three records.
    let mut more = raw.clone();
    more[57..61].copy_from_slice(&4i32.to_be_bytes());
    recrc(&mut more);
    let results: Vec<_> = RecordBatch::decode(&mut Bytes::from(more))
        .unwrap()
        .records()
        .collect();
    assert_eq!(results.len(), 4);
    assert!(results[3].as_ref().unwrap_err().is_truncated());
    // Fewer than present: trailing bytes.
    let mut fewer = raw.clone();
    fewer[57..61].copy_from_slice(&2i32.to_be_bytes());
    recrc(&mut fewer);
    let results: Vec<_> = RecordBatch::decode(&mut Bytes::from(fewer))
        .unwrap()
        .records()
        .collect();
    assert!(matches!(results[2], Err(DecodeError::TrailingBytes { .. })));
    // Negative count.
    let mut neg = raw;
    neg[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    recrc(&mut neg);
    assert!(matches!(
        RecordBatch::decode(&mut Bytes::from(neg)),
        Err(DecodeError::NegativeLength { .. })
    ));
}

#[test]
fn compressed_count_mismatch_and_decompression_errors() {
    let mut raw = simple_batch(0, 3, Compression::Zstd).to_vec();
    raw[57..61].copy_from_slice(&5000i32.to_be_bytes());
    recrc(&mut raw);
    let mut it = RecordBatch::decode(&mut Bytes::from(raw.clone()))
        .unwrap()
        .records();
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    // Garbage where the compressed data should be.
    let n = raw.len();
    raw[61..n].fill(0x5a);
    recrc(&mut raw);
    let mut it = RecordBatch::decode(&mut Bytes::from(raw))
        .unwrap()
        .records();
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    // The decompression cap applies.
    let mut b = RecordBatch::decode(&mut simple_batch(0, 100, Compression::Gzip)).unwrap();
    b.set_decompressed_limit(64);
    assert!(matches!(
        b.records().next(),
        Some(Err(DecodeError::DecompressedTooLarge { .. }))
    ));
}

#[test]
fn truncated_tail_at_every_cut() {
    let first = simple_batch(0, 2, Compression::None);
    let second = simple_batch(2, 2, Compression::Snappy);
    let whole: Vec<u8> = [&first[..], &second[..]].concat();
    for cut in first.len()..=whole.len() {
        let set = RecordSet::new(Bytes::copy_from_slice(&whole[..cut]));
        let mut batches = set.batches();
        assert_eq!(batches.next().unwrap().unwrap().last_offset(), 1);
        let complete = cut == whole.len();
        if complete {
            assert_eq!(batches.next().unwrap().unwrap().last_offset(), 3);
        }
        assert!(batches.next().is_none(), "cut {cut}");
        assert_eq!(batches.truncated_tail(), !complete && cut > first.len());
        assert_eq!(
            batches.truncated_bytes(),
            if complete { 0 } else { cut - first.len() }
        );
        let n = set.records().inspect(|r| assert!(r.is_ok())).count();
        assert_eq!(n, if complete { 4 } else { 2 });
    }
    // A first batch larger than the whole fetch: nothing, but truncated.
    let mut only = RecordSet::new(second.slice(..30)).batches();
    assert!(only.next().is_none() && only.truncated_tail());
}

#[test]
fn corrupt_batch_in_the_middle_is_an_error() {
    let mut whole: Vec<u8> = [
        simple_batch(0, 2, Compression::None),
        simple_batch(2, 2, Compression::None),
    ]
    .concat();
    whole.extend_from_slice(&simple_batch(4, 1, Compression::None));
    let second = simple_batch(0, 2, Compression::None).len();
    whole[second + 30] ^= 1;
    let results: Vec<_> = RecordSet::new(Bytes::from(whole)).batches().collect();
    assert_eq!(results.len(), 2);
    assert!(matches!(results[1], Err(DecodeError::CrcMismatch { .. })));
}

#[test]
fn bad_sizes_and_magics_are_typed_errors() {
    let good = simple_batch(0, 1, Compression::None);
    let mut neg = good.to_vec();
    neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    let err = RecordSet::new(Bytes::from(neg))
        .batches()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::NegativeLength { .. }));
    let opts = DecodeOptions::default().with_max_batch_size(10);
    let err = RecordSet::with_options(good.clone(), opts)
        .batches()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }));
    let mut small = good.to_vec();
    small[8..12].copy_from_slice(&20i32.to_be_bytes());
    let err = RecordSet::new(Bytes::from(small))
        .batches()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { .. }));
    let mut tiny = good.to_vec();
    tiny[8..12].copy_from_slice(&3i32.to_be_bytes());
    assert!(
        RecordSet::new(Bytes::from(tiny))
            .batches()
            .next()
            .unwrap()
            .is_err()
    );
    let mut magic = good.to_vec();
    magic[16] = 3;
    let err = RecordSet::new(Bytes::from(magic))
        .batches()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedMagic(3));
    let mut codec = good.to_vec();
    codec[22] |= 7;
    recrc(&mut codec);
    assert_eq!(
        RecordBatch::decode(&mut Bytes::from(codec)).unwrap_err(),
        DecodeError::UnknownCompression(7)
    );
}

#[test]
fn mixed_formats_flatten_and_control_batches_are_skipped() {
    let mut set = message(0, 0, 0, 0, None, Some(b"v0"));
    set.extend(wrapper(
        2,
        1,
        Compression::Gzip,
        false,
        7,
        &[
            message(0, 1, 0, 6, None, Some(b"a")),
            message(1, 1, 0, 7, None, Some(b"b")),
        ]
        .concat(),
    ));
    set.extend_from_slice(&simple_batch(3, 2, Compression::Lz4));
    set.extend_from_slice(&control_batch(5, 1, 0, &ControlRecord::abort(3), 99).unwrap());
    set.extend_from_slice(&simple_batch(6, 1, Compression::None));
    let recs = all_records(Bytes::from(set.clone())).unwrap();
    let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4, 6]);
    let with_control: Vec<_> = RecordSet::new(Bytes::from(set))
        .records()
        .include_control(true)
        .collect();
    assert_eq!(with_control.len(), 7);
    let marker = ControlRecord::parse(with_control[5].as_ref().unwrap()).unwrap();
    assert_eq!(marker.kind, ControlRecordType::Abort);
}

#[test]
fn empty_compacted_batch_with_codec_bits() {
    // A header-only batch (recordsCount 0, no records section) as log
    // compaction writes it, keeping the codec in its attributes.
    let mut raw = simple_batch(7, 1, Compression::Zstd).to_vec();
    raw.truncate(BATCH_HEADER_SIZE);
    raw[8..12].copy_from_slice(&((BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32).to_be_bytes());
    raw[57..61].copy_from_slice(&0i32.to_be_bytes());
    recrc(&mut raw);
    let batch = RecordBatch::decode(&mut Bytes::from(raw)).unwrap();
    assert_eq!(
        (
            batch.compression(),
            batch.record_count(),
            batch.next_offset()
        ),
        (Compression::Zstd, 0, 8)
    );
    assert_eq!(batch.records().count(), 0);
}

#[test]
fn empty_and_tiny_sets() {
    assert!(RecordSet::new(Bytes::new()).batches().next().is_none());
    let mut b = RecordSet::new(Bytes::from_static(&[0; 11])).batches();
    assert!(b.next().is_none() && b.truncated_tail());
}

#[test]
fn records_are_zero_copy_slices() {
    let raw = simple_batch(0, 3, Compression::None);
    let range = raw.as_ptr_range();
    for r in all_records(raw.clone()).unwrap() {
        let v = r.value.unwrap();
        assert!(
            range.contains(&v.as_ptr()),
            "value must point into the fetch buffer"
        );
    }
}

type Hdrs = Vec<(String, Option<Vec<u8>>)>;

fn arb_record() -> impl Strategy<Value = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Hdrs)> {
    (
        prop_oneof![Just(-1i64), 0i64..2_000_000_000_000, any::<i64>()],
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                "[a-z\u{e9}]{0,6}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..4,
        ),
    )
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_roundtrip(
        records in proptest::collection::vec(arb_record(), 1..30),
        codec in arb_codec(),
        base_offset in 0i64..1 << 40,
        producer in (any::<i64>(), any::<i16>(), 0i32..i32::MAX),
        transactional: bool,
        control: bool,
        log_append in proptest::option::of(0i64..1 << 42),
        epoch: i32,
    ) {
        let mut b = RecordBatchBuilder::new(base_offset)
            .with_compression(codec, None)
            .with_producer(producer.0, producer.1, producer.2)
            .with_transactional(transactional)
            .with_control(control)
            .with_log_append_time(log_append)
            .with_partition_leader_epoch(epoch);
        for (ts, k, v, h) in &records {
            let hs: Vec<(&str, Option<&[u8]>)> = h.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            b.append(*ts, k.as_deref(), v.as_deref(), &hs).unwrap();
        }
        let raw = b.finish().unwrap();
        let set = RecordSet::new(raw.clone());
        let mut batches = set.batches();
        let Some(Ok(Batch::V2(batch))) = batches.next() else { panic!("one v2 batch expected") };
        prop_assert!(batches.next().is_none());
        prop_assert!(!batches.truncated_tail());
        prop_assert_eq!(batch.size_in_bytes(), raw.len());
        prop_assert_eq!(batch.compression(), codec);
        prop_assert_eq!((batch.is_transactional(), batch.is_control()), (transactional, control));
        prop_assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_sequence()), producer);
        prop_assert_eq!(batch.partition_leader_epoch(), epoch);
        prop_assert_eq!(batch.record_count(), records.len());
        prop_assert_eq!(batch.last_offset(), base_offset + records.len() as i64 - 1);
        let max_ts = records.iter().map(|r| r.0).max().unwrap();
        prop_assert_eq!(batch.max_timestamp(), log_append.unwrap_or(max_ts));
        let decoded: Vec<Record> = batch.records().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (r, (ts, k, v, h))) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(r.offset, base_offset + i as i64);
            prop_assert_eq!(r.timestamp, log_append.unwrap_or(*ts));
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
            let got: Vec<(String, Option<Vec<u8>>)> = r.headers.iter()
                .map(|x| (x.key_str().unwrap().to_owned(), x.value.map(|v| v.to_vec())))
                .collect();
            prop_assert_eq!(&got, h);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(Bytes::from(data));
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_prefix_never_panic(
        magic in 0u8..4,
        size in any::<i32>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut v = vec![0u8; 8];
        v.extend_from_slice(&size.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, magic]);
        v.extend_from_slice(&data);
        exercise(Bytes::from(v));
    }

    #[test]
    fn mutated_valid_sets_never_panic(
        codec in arb_codec(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let base = valid_mixed_set(codec);
        let mut v = base.to_vec();
        for (at, byte) in &mutations {
            let i = at.index(v.len());
            v[i] = *byte;
        }
        exercise(Bytes::from(v.clone()));
        let end = cut.index(v.len() + 1);
        exercise(Bytes::from(v[..end].to_vec()));
    }
}

/// A set with every kind of batch, used as the seed for mutation.
fn valid_mixed_set(codec: Compression) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(10).with_compression(codec, None);
    b.append(
        1,
        Some(b"key"),
        Some(b"value"),
        &[("h1", Some(b"x")), ("h2", None)],
    )
    .unwrap();
    b.append(2, None, None, &[]).unwrap();
    let mut set = b.finish().unwrap().to_vec();
    set.extend_from_slice(&control_batch(12, 1, 0, &ControlRecord::commit(1), 3).unwrap());
    let inner = [
        message(0, 1, 0, 6, Some(b"k"), Some(b"a")),
        message(1, 1, 0, 7, None, Some(b"b")),
    ]
    .concat();
    let nested = wrapper(1, 1, Compression::Gzip, true, 8, &inner);
    set.extend(wrapper(
        14,
        1,
        Compression::Snappy,
        false,
        8,
        &[message(0, 1, 0, 1, None, None), nested].concat(),
    ));
    set.extend(message(15, 0, 0, 0, None, Some(b"old")));
    set
}

/// Walks everything a consumer could touch, with and without CRC checks.
fn exercise(data: Bytes) {
    for opts in [
        DecodeOptions::default(),
        DecodeOptions::default()
            .with_verify_crc(false)
            .with_decompressed_limit(1 << 16),
    ] {
        let set = RecordSet::with_options(data.clone(), opts);
        for batch in set.batches().flatten() {
            let _ = (
                batch.last_offset(),
                batch.timestamp_type(),
                batch.producer_id(),
            );
            if let Batch::V2(b) = &batch {
                let _ = (b.last_sequence(), b.delete_horizon_ms(), b.next_offset());
            }
            for rec in batch.records().flatten() {
                for h in &rec.headers {
                    let _ = h.key_str();
                }
                let _ = rec.headers.get("h1");
                let _ = ControlRecord::parse(&rec);
            }
        }
        let _ = set.records().include_control(true).count();
        let _ = RecordBatch::decode_with(&mut data.clone(), &opts).map(|b| b.records().count());
        let _ = LegacyBatch::decode_with(&mut data.clone(), &opts).map(|b| b.records().count());
    }
}
