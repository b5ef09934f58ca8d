//! Helpers shared by the fuzz targets in `fuzz_targets/`: choosing an API
//! and version from input bytes, the message round-trip property, and
//! walking every record of a batch while touching every field.

use bytes::{Bytes, BytesMut};
use kafkit_protocol::ApiKey;
use kafkit_protocol::messages::{RequestBody, ResponseBody};
use kafkit_protocol::records::{
    Batch, ControlRecord, Headers, Record, RecordBatchBuilder, RecordSet,
};

/// The decompression cap every target uses: a bomb costs at most this much.
pub const DECOMPRESSED_LIMIT: usize = 1 << 20;

/// The API named by `key`: the wire key itself when it is a live one (so
/// seeds read naturally: `00 0a ...` is Produce v10), else `ApiKey::ALL`
/// indexed modulo its length.
pub fn pick_api(key: u8) -> ApiKey {
    ApiKey::from_i16(i16::from(key)).unwrap_or(ApiKey::ALL[usize::from(key) % ApiKey::ALL.len()])
}

/// A version of `api` from `v`: `v` itself when it is in the API's range,
/// else one picked modulo the range.
pub fn pick_version(api: ApiKey, v: u8) -> i16 {
    let range = api.request_versions();
    let v = i16::from(v);
    if range.contains(v) {
        return v;
    }
    let span = range.max - range.min + 1;
    range.min + v % span
}

/// Equality that treats the `f64` fields of quota messages sensibly: two
/// values are the same if they compare equal or print the same (NaN).
pub fn same<T: PartialEq + std::fmt::Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

/// Encodes a decoded body and checks the round trip: encoding must succeed,
/// decode again to an equal value consuming exactly the bytes written, and
/// encode again to the same bytes.
macro_rules! round_trip_body {
    ($ty:ty, $api:expr, $version:expr, $body:expr) => {{
        let (api, version, body): (ApiKey, i16, &$ty) = ($api, $version, $body);
        assert_eq!(body.api_key(), api);
        let mut first = BytesMut::new();
        body.encode(&mut first, version)
            .unwrap_or_else(|e| panic!("{api} v{version}: a decoded body failed to encode: {e}"));
        let mut input = first.clone().freeze();
        let again = <$ty>::decode(api, version, &mut input)
            .unwrap_or_else(|e| panic!("{api} v{version}: re-encoded body failed to decode: {e}"));
        assert!(
            input.is_empty(),
            "{api} v{version}: {} bytes left after decoding the re-encoded body",
            input.len()
        );
        assert!(
            same(body, &again),
            "{api} v{version}: round trip changed the body:\n{body:?}\n{again:?}"
        );
        let mut second = BytesMut::new();
        again.encode(&mut second, version).expect("second encode");
        assert_eq!(first, second, "{api} v{version}: encoding is not stable");
        first.freeze()
    }};
}

/// The round-trip property for a request body; returns its encoding.
pub fn round_trip_request(api: ApiKey, version: i16, body: &RequestBody) -> Bytes {
    round_trip_body!(RequestBody, api, version, body)
}

/// The round-trip property for a response body; returns its encoding.
pub fn round_trip_response(api: ApiKey, version: i16, body: &ResponseBody) -> Bytes {
    round_trip_body!(ResponseBody, api, version, body)
}

/// Touches every byte of a record: key, value and every header (whose
/// iteration must yield exactly `len()` items, as it cannot fail).
pub fn touch_record(r: &Record) -> u64 {
    let mut acc = r.offset as u64 ^ r.timestamp as u64;
    acc = acc.wrapping_add(sum(r.key.as_deref()));
    acc = acc.wrapping_add(sum(r.value.as_deref()));
    acc.wrapping_add(touch_headers(&r.headers))
}

fn touch_headers(h: &Headers) -> u64 {
    let mut acc = 0u64;
    let mut n = 0;
    let mut first_key = None;
    for header in h {
        n += 1;
        acc = acc
            .wrapping_add(sum(Some(&header.key)))
            .wrapping_add(sum(header.value.as_deref()));
        let _ = header.key_str();
        first_key.get_or_insert(header.key.clone());
    }
    assert_eq!(n, h.len(), "header iteration stopped early");
    assert_eq!(h.iter().len(), h.len());
    if let Some(key) = first_key.as_ref().and_then(|k| std::str::from_utf8(k).ok()) {
        let last = h
            .get(key)
            .expect("a header that was iterated can be found by key");
        assert_eq!(last.key, key.as_bytes());
    }
    let _ = format!("{h:?}");
    acc
}

fn sum(b: Option<&[u8]>) -> u64 {
    b.map_or(u64::MAX, |b| {
        b.iter().map(|&x| u64::from(x)).sum::<u64>() + b.len() as u64
    })
}

/// Parses a record as a control record; when that works, the key it
/// encodes back to must be the key's first four bytes.
pub fn touch_control(r: &Record) {
    if let Ok(c) = ControlRecord::parse(r) {
        let key = r.key.as_ref().expect("a parsed control record has a key");
        assert_eq!(&c.key_bytes()[..], &key[..4]);
        assert_eq!(c.value_bytes(), r.value);
    }
}

/// Walks every batch and every record of `set`, checking record counts;
/// returns every record in order (up to the first error) and whether the
/// walk ended without error.
pub fn walk_set(set: &RecordSet) -> (Vec<Record>, bool) {
    let mut out = Vec::new();
    let mut batches = set.batches();
    for batch in batches.by_ref() {
        let Ok(batch) = batch else {
            return (out, false);
        };
        let _ = (
            batch.magic(),
            batch.last_offset(),
            batch.next_offset(),
            batch.compression(),
            batch.timestamp_type(),
            batch.is_transactional(),
            batch.is_control(),
            batch.producer_id(),
            batch.size_in_bytes(),
        );
        let mut n = 0usize;
        for r in batch.records() {
            let Ok(r) = r else { return (out, false) };
            n += 1;
            touch_record(&r);
            touch_control(&r);
            out.push(r);
        }
        if let Batch::V2(b) = &batch {
            assert_eq!(
                n,
                b.record_count(),
                "a batch whose records all decoded has recordsCount records"
            );
            rebuild_v2(b, &out[out.len() - n..]);
        }
    }
    let _ = (batches.truncated_tail(), batches.truncated_bytes());
    (out, true)
}

/// Re-encodes the records of a magic-2 batch with [`RecordBatchBuilder`]
/// (uncompressed) and checks they decode back to the same records.
fn rebuild_v2(batch: &kafkit_protocol::records::RecordBatch, records: &[Record]) {
    if records.is_empty() {
        return;
    }
    let append_time = (batch.timestamp_type()
        == kafkit_protocol::records::TimestampType::LogAppendTime)
        .then_some(batch.max_timestamp());
    let mut b = RecordBatchBuilder::new(batch.base_offset()).with_log_append_time(append_time);
    for r in records {
        if r.headers.iter().any(|h| h.key_str().is_err()) {
            return; // the builder takes header keys as &str
        }
        let headers: Vec<(Bytes, Option<Bytes>)> =
            r.headers.iter().map(|h| (h.key, h.value)).collect();
        let headers: Vec<(&str, Option<&[u8]>)> = headers
            .iter()
            .map(|(k, v)| (std::str::from_utf8(k).expect("checked above"), v.as_deref()))
            .collect();
        if b.append_at_offset(
            r.offset,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        )
        .is_err()
        {
            return; // offsets out of order, or too far from the base: not encodable
        }
    }
    let bytes = b.finish().expect("finish a non-empty batch");
    let set = RecordSet::new(bytes);
    let mut batches = set.batches();
    let rebuilt = batches
        .next()
        .expect("one batch")
        .expect("a built batch decodes");
    assert!(batches.next().is_none());
    let again: Vec<Record> = rebuilt
        .records()
        .map(|r| r.expect("a built record decodes"))
        .collect();
    assert_eq!(again.len(), records.len());
    for (a, b) in records.iter().zip(&again) {
        assert_eq!(
            (a.offset, a.timestamp, &a.key, &a.value),
            (b.offset, b.timestamp, &b.key, &b.value)
        );
        assert_eq!(
            a.headers.iter().collect::<Vec<_>>(),
            b.headers.iter().collect::<Vec<_>>()
        );
    }
}
