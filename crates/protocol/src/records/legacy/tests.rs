//! Tests for legacy message sets, with a test-only v0/v1 encoder.

use super::*;
use crate::records::{Batch, RecordSet};
use bytes::{BufMut, BytesMut};

/// Encodes one legacy message (test-only: the crate does not write v0/v1).
pub(crate) fn message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i8(magic);
    body.put_i8(attributes);
    if magic == 1 {
        body.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => body.put_i32(-1),
            Some(b) => {
                body.put_i32(b.len() as i32);
                body.put_slice(b);
            }
        }
    }
    let mut out = BytesMut::new();
    out.put_i64(offset);
    out.put_i32(body.len() as i32 + 4);
    out.put_u32(crc32fast::hash(&body));
    out.put_slice(&body);
    out.to_vec()
}

/// Encodes a compressed wrapper around the message set `inner`.
pub(crate) fn wrapper(
    offset: i64,
    magic: i8,
    codec: Compression,
    log_append: bool,
    ts: i64,
    inner: &[u8],
) -> Vec<u8> {
    let mut compressed = BytesMut::new();
    if magic == 0 && matches!(codec, Compression::Lz4) {
        compression::compress_lz4_legacy(None, inner, &mut compressed).unwrap();
    } else {
        compression::compress(codec, None, inner, &mut compressed).unwrap();
    }
    let attrs = codec.id() as i8 | if log_append { TIMESTAMP_TYPE_FLAG } else { 0 };
    message(offset, magic, attrs, ts, None, Some(&compressed))
}

fn collect(set: Vec<u8>, opts: DecodeOptions) -> Result<Vec<Record>, DecodeError> {
    RecordSet::with_options(Bytes::from(set), opts)
        .records()
        .collect()
}

fn offsets_and_ts(records: &[Record]) -> Vec<(i64, i64)> {
    records.iter().map(|r| (r.offset, r.timestamp)).collect()
}

#[test]
fn plain_v0_and_v1_sets() {
    let mut set = message(5, 0, 0, 0, Some(b"k"), Some(b"v"));
    set.extend(message(6, 0, 0, 0, None, None));
    set.extend(message(7, 1, 0, 1234, None, Some(b"x")));
    set.extend(message(
        8,
        1,
        TIMESTAMP_TYPE_FLAG,
        99,
        Some(b""),
        Some(b"y"),
    ));
    let recs = collect(set.clone(), DecodeOptions::default()).unwrap();
    assert_eq!(
        offsets_and_ts(&recs),
        vec![(5, -1), (6, -1), (7, 1234), (8, 99)]
    );
    assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!((recs[1].key.clone(), recs[1].value.clone()), (None, None));
    assert_eq!(recs[3].key.as_deref(), Some(&b""[..]));
    assert!(recs.iter().all(|r| r.headers.is_empty()));
    let batches: Vec<Batch> = RecordSet::new(Bytes::from(set))
        .batches()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches[0].timestamp_type(), TimestampType::NoTimestamp);
    assert_eq!(batches[3].timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batches[2].magic(), 1);
}

#[test]
fn v1_wrapper_relative_offsets() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
        let mut inner = message(0, 1, 0, 10, None, Some(b"a"));
        inner.extend(message(1, 1, 0, 11, None, Some(b"b")));
        inner.extend(message(2, 1, 0, 12, None, Some(b"c")));
        let set = wrapper(102, 1, codec, false, 12, &inner);
        let recs = collect(set, DecodeOptions::default()).unwrap();
        assert_eq!(
            offsets_and_ts(&recs),
            vec![(100, 10), (101, 11), (102, 12)],
            "{codec}"
        );
        assert_eq!(recs[2].value.as_deref(), Some(&b"c"[..]));
    }
}

#[test]
fn v1_log_append_wrapper_overrides_timestamps() {
    let mut inner = message(0, 1, 0, 10, None, Some(b"a"));
    inner.extend(message(1, 1, 0, 11, None, Some(b"b")));
    let set = wrapper(41, 1, Compression::Gzip, true, 777, &inner);
    let recs = collect(set, DecodeOptions::default()).unwrap();
    assert_eq!(offsets_and_ts(&recs), vec![(40, 777), (41, 777)]);
}

#[test]
fn v0_wrapper_absolute_offsets_and_legacy_lz4() {
    for codec in [Compression::Gzip, Compression::Lz4] {
        let mut inner = message(50, 0, 0, 0, None, Some(b"a"));
        inner.extend(message(51, 0, 0, 0, Some(b"k"), Some(b"b")));
        let set = wrapper(51, 0, codec, false, 0, &inner);
        let recs = collect(set, DecodeOptions::default()).unwrap();
        assert_eq!(offsets_and_ts(&recs), vec![(50, -1), (51, -1)], "{codec}");
    }
}

fn nested_set() -> Vec<u8> {
    nested_set_sizes().0
}

/// The nested set, and the decompressed sizes of its two levels.
fn nested_set_sizes() -> (Vec<u8>, usize, usize) {
    // Outer wrapper (absolute 203) holds a plain message at relative 0
    // and a wrapper at relative 3 whose own inner set is 0, 1, 2.
    let mut deepest = message(0, 1, 0, 1, None, Some(b"x"));
    deepest.extend(message(1, 1, 0, 2, None, Some(b"y")));
    deepest.extend(message(2, 1, 0, 3, None, Some(b"z")));
    let mut middle = message(0, 1, 0, 0, None, Some(b"w"));
    middle.extend(wrapper(3, 1, Compression::Snappy, false, 3, &deepest));
    let mut set = wrapper(203, 1, Compression::Gzip, false, 3, &middle);
    set.extend(message(204, 1, 0, 9, None, Some(b"after")));
    (set, middle.len(), deepest.len())
}

#[test]
fn two_level_nested_wrappers() {
    let recs = collect(nested_set(), DecodeOptions::default()).unwrap();
    assert_eq!(
        offsets_and_ts(&recs),
        vec![(200, 0), (201, 1), (202, 2), (203, 3), (204, 9)]
    );
    let values: Vec<_> = recs.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["w", "x", "y", "z", "after"]);
}

#[test]
fn nesting_and_decompression_limits() {
    let err = collect(nested_set(), DecodeOptions::default().with_max_nesting(1)).unwrap_err();
    assert_eq!(err, DecodeError::NestingTooDeep { limit: 1 });
    // The cap counts both levels together.
    let (set, middle, deepest) = nested_set_sizes();
    assert!(middle > deepest);
    let opts = DecodeOptions::default().with_decompressed_limit(middle + deepest - 1);
    let err = collect(set.clone(), opts).unwrap_err();
    assert!(
        matches!(err, DecodeError::DecompressedTooLarge { .. }),
        "{err:?}"
    );
    assert!(
        collect(
            set,
            DecodeOptions::default().with_decompressed_limit(middle + deepest)
        )
        .is_ok()
    );
}

#[test]
fn crc_mismatch_and_corruption() {
    let mut set = message(1, 1, 0, 5, None, Some(b"value"));
    let last = set.len() - 1;
    set[last] ^= 1;
    let err = collect(set.clone(), DecodeOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::CrcMismatch {
            what: "message CRC32",
            ..
        }
    ));
    assert!(collect(set, DecodeOptions::default().with_verify_crc(false)).is_ok());
    // A wrapper with a null value, and one whose inner set is empty.
    let set = message(1, 1, Compression::Gzip.id() as i8, 0, None, None);
    assert!(collect(set, DecodeOptions::default()).is_err());
    let set = wrapper(1, 1, Compression::Gzip, false, 0, &[]);
    assert!(collect(set, DecodeOptions::default()).is_err());
}

#[test]
fn truncated_final_message_ends_cleanly() {
    let mut set = message(1, 1, 0, 5, None, Some(b"one"));
    let whole = set.len();
    set.extend(message(2, 1, 0, 6, None, Some(b"two")));
    for cut in whole..set.len() {
        let rs = RecordSet::new(Bytes::copy_from_slice(&set[..cut]));
        let mut it = rs.records();
        assert_eq!(it.next().unwrap().unwrap().offset, 1);
        assert!(it.next().is_none(), "cut at {cut}");
        assert_eq!(it.truncated_tail(), cut > whole);
    }
}

#[test]
fn truncated_inner_set_is_corruption() {
    let inner = message(0, 1, 0, 10, None, Some(b"abc"));
    let set = wrapper(0, 1, Compression::Gzip, false, 0, &inner[..inner.len() - 1]);
    assert!(
        collect(set, DecodeOptions::default())
            .unwrap_err()
            .is_truncated()
    );
}
