//! Shared by the golden-bytes integration tests (`golden_frames.rs`,
//! `golden_records.rs`, `bad_input.rs`): loading the fixtures in
//! `tests/fixtures/` and reading values out of its `manifest.json`.
//!
//! Frames are stored without their 4-byte size prefix (see the fixtures'
//! README): a request starts at `request_api_key`, a response at
//! `correlation_id`, exactly what `frame::decode_frame` hands out.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame::{encode_request_body, encode_response_body};
use kafkit_protocol::messages::{ApiKey, RequestBody, RequestHeader, ResponseBody};
use kafkit_protocol::records::{Batch, Record, RecordBatch, RecordSet};
use kafkit_protocol::{DecodeError, Uuid};
use serde_json::Value;

/// `crates/protocol/tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The parsed `manifest.json`.
pub fn manifest() -> &'static Value {
    static MANIFEST: OnceLock<Value> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures_dir().join("manifest.json"))
            .expect("tests/fixtures/manifest.json");
        serde_json::from_str(&text).expect("manifest.json is valid JSON")
    })
}

/// The manifest entry of fixture `path` (relative to the fixtures dir).
pub fn entry(path: &str) -> &'static Value {
    manifest()["files"]
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in manifest.json"))
}

/// The bytes of fixture `path`, checked against the manifest's `size`.
pub fn load(path: &str) -> Bytes {
    let raw = std::fs::read(fixtures_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        raw.len() as u64,
        int(&entry(path)["size"]) as u64,
        "{path}: size"
    );
    Bytes::from(raw)
}

/// Every fixture path of the given `kind` (`request`, `response`, `batch`,
/// `message_set`), in manifest order.
pub fn files_of_kind(kind: &str) -> Vec<&'static str> {
    manifest()["files"]
        .as_object()
        .expect("files is an object")
        .iter()
        .filter(|(_, v)| v["kind"] == kind)
        .map(|(k, _)| k.as_str())
        .collect()
}

/// A JSON integer as i64 (panics on anything else).
pub fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// A JSON string (panics on anything else).
pub fn string(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// A JSON string or null.
pub fn opt_string(v: &Value) -> Option<&str> {
    if v.is_null() { None } else { Some(string(v)) }
}

/// A manifest byte value: `null`, `{"utf8": "..."}` or `{"hex": "..."}`.
pub fn byte_value(v: &Value) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    if let Some(s) = v.get("utf8") {
        return Some(string(s).as_bytes().to_vec());
    }
    if let Some(h) = v.get("hex") {
        return Some(hex(string(h)));
    }
    panic!("not a manifest byte value: {v}");
}

/// Decodes a hex string.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

/// A UUID written as 32 hex digits.
pub fn uuid(v: &Value) -> Uuid {
    let bytes: [u8; 16] = hex(string(v)).try_into().expect("16-byte uuid");
    Uuid::from_bytes(bytes)
}

/// The API key of a frame's manifest entry.
pub fn api_key(e: &Value) -> ApiKey {
    let key = int(&e["api_key"]) as i16;
    ApiKey::from_i16(key).unwrap_or_else(|| panic!("unknown api key {key}"))
}

/// The API version of a frame's manifest entry.
pub fn api_version(e: &Value) -> i16 {
    int(&e["api_version"]) as i16
}

/// True when this crate defines the frame's API version (the legacy Produce
/// v1/v2 frames are below Kafka 4.x's minimum).
pub fn supported(e: &Value) -> bool {
    // A response is defined at exactly the versions of its request.
    api_key(e).request_versions().contains(api_version(e))
}

/// Re-encodes a decoded request frame with the crate's frame encoder and
/// returns it without the size prefix (checking the prefix on the way).
pub fn reencode_request(header: &RequestHeader, body: &RequestBody) -> Bytes {
    let mut buf = BytesMut::new();
    encode_request_body(
        &mut buf,
        header.correlation_id,
        header.client_id.as_deref(),
        header.request_api_version,
        body,
    )
    .unwrap_or_else(|e| panic!("re-encode {:?}: {e}", body.api_key()));
    strip_size(buf)
}

/// Re-encodes a decoded response frame and returns it without the size prefix.
pub fn reencode_response(correlation_id: i32, version: i16, body: &ResponseBody) -> Bytes {
    let mut buf = BytesMut::new();
    encode_response_body(&mut buf, correlation_id, version, body)
        .unwrap_or_else(|e| panic!("re-encode {:?}: {e}", body.api_key()));
    strip_size(buf)
}

fn strip_size(mut buf: BytesMut) -> Bytes {
    let size = i32::from_be_bytes(buf[..4].try_into().unwrap());
    assert_eq!(size as usize, buf.len() - 4, "size prefix");
    buf.split_off(4).freeze()
}

/// Asserts that two byte strings are equal, reporting the first difference.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |b: &[u8]| format!("{:02x?}", &b[at.saturating_sub(4)..(at + 8).min(b.len())]);
    panic!(
        "{what}: re-encoded bytes differ: {} vs {} bytes, first difference at {at}: got {} want {}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}

/// Checks one magic-2 batch's header against a manifest batch object.
pub fn check_batch_header(b: &RecordBatch, m: &Value, what: &str) {
    assert_eq!(
        b.base_offset(),
        int(&m["base_offset"]),
        "{what}: base_offset"
    );
    assert_eq!(
        b.size_in_bytes() as i64 - 12,
        int(&m["batch_length"]),
        "{what}: batch_length"
    );
    assert_eq!(
        i64::from(b.partition_leader_epoch()),
        int(&m["partition_leader_epoch"]),
        "{what}: partition_leader_epoch"
    );
    assert_eq!(i64::from(b.magic()), int(&m["magic"]), "{what}: magic");
    assert_eq!(i64::from(b.crc()), int(&m["crc"]), "{what}: crc");
    assert_eq!(
        i64::from(b.attributes()),
        int(&m["attributes"]),
        "{what}: attributes"
    );
    assert_eq!(
        b.compression().name(),
        string(&m["compression"]),
        "{what}: compression"
    );
    let ts_type = match b.timestamp_type() {
        kafkit_protocol::records::TimestampType::CreateTime => "create_time",
        kafkit_protocol::records::TimestampType::LogAppendTime => "log_append_time",
        kafkit_protocol::records::TimestampType::NoTimestamp => "no_timestamp",
    };
    assert_eq!(
        ts_type,
        string(&m["timestamp_type"]),
        "{what}: timestamp_type"
    );
    assert_eq!(
        Some(b.is_transactional()),
        m["is_transactional"].as_bool(),
        "{what}"
    );
    assert_eq!(Some(b.is_control()), m["is_control"].as_bool(), "{what}");
    assert_eq!(
        i64::from(b.last_offset_delta()),
        int(&m["last_offset_delta"]),
        "{what}: last_offset_delta"
    );
    assert_eq!(
        b.base_timestamp(),
        int(&m["base_timestamp"]),
        "{what}: base_timestamp"
    );
    assert_eq!(
        b.max_timestamp(),
        int(&m["max_timestamp"]),
        "{what}: max_timestamp"
    );
    assert_eq!(
        b.producer_id(),
        int(&m["producer_id"]),
        "{what}: producer_id"
    );
    assert_eq!(
        i64::from(b.producer_epoch()),
        int(&m["producer_epoch"]),
        "{what}: producer_epoch"
    );
    assert_eq!(
        i64::from(b.base_sequence()),
        int(&m["base_sequence"]),
        "{what}: base_sequence"
    );
    assert_eq!(
        b.record_count() as i64,
        int(&m["records_count"]),
        "{what}: records_count"
    );
    if let Some(size) = m.get("compressed_size") {
        assert_eq!(
            b.records_bytes().len() as i64,
            int(size),
            "{what}: compressed_size"
        );
    }
}

/// Checks decoded records against a manifest batch's `records` array
/// (offset and timestamp deltas from the batch base, key, value, headers).
pub fn check_records(
    records: &[Record],
    base_offset: i64,
    base_timestamp: i64,
    m: &Value,
    what: &str,
) {
    let want = m["records"].as_array().expect("records array");
    assert_eq!(records.len(), want.len(), "{what}: record count");
    for (i, (r, w)) in records.iter().zip(want).enumerate() {
        let what = format!("{what} record #{i}");
        assert_eq!(
            r.offset,
            base_offset + int(&w["offset_delta"]),
            "{what}: offset"
        );
        assert_eq!(
            r.timestamp,
            base_timestamp + int(&w["timestamp_delta"]),
            "{what}: timestamp delta"
        );
        assert_eq!(r.timestamp, int(&w["timestamp"]), "{what}: timestamp");
        assert_eq!(
            int(&w["attributes"]),
            0,
            "{what}: record attributes are unused"
        );
        assert_eq!(
            r.key.as_deref().map(<[u8]>::to_vec),
            byte_value(&w["key"]),
            "{what}: key"
        );
        assert_eq!(
            r.value.as_deref().map(<[u8]>::to_vec),
            byte_value(&w["value"]),
            "{what}: value"
        );
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|h| (h.key.to_vec(), h.value.map(|v| v.to_vec())))
            .collect();
        let want_h: Vec<(Vec<u8>, Option<Vec<u8>>)> = w["headers"]
            .as_array()
            .expect("headers array")
            .iter()
            .map(|h| {
                (
                    string(&h["key"]).as_bytes().to_vec(),
                    byte_value(&h["value"]),
                )
            })
            .collect();
        assert_eq!(got, want_h, "{what}: headers");
    }
}

/// Decodes a magic-2 `records` field and checks every batch header and
/// record against the manifest's `batches`. Returns the number of records.
pub fn check_record_set(records: &Bytes, batches: &Value, what: &str) -> usize {
    let set = RecordSet::new(records.clone());
    let mut iter = set.batches();
    let decoded: Vec<Batch> = iter
        .by_ref()
        .collect::<Result<_, DecodeError>>()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!iter.truncated_tail(), "{what}: nothing is cut off");
    let want = batches.as_array().expect("batches array");
    assert_eq!(decoded.len(), want.len(), "{what}: batch count");
    let mut n = 0;
    for (i, (b, m)) in decoded.iter().zip(want).enumerate() {
        let what = format!("{what} batch #{i}");
        let Batch::V2(b) = b else {
            panic!("{what}: expected a magic-2 batch")
        };
        check_batch_header(b, m, &what);
        if let Some(size) = m.get("uncompressed_size") {
            let raw = kafkit_protocol::compression::decompress(
                b.compression(),
                &b.records_bytes(),
                1 << 20,
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(raw.len() as i64, int(size), "{what}: uncompressed_size");
        }
        let records: Vec<Record> = b
            .records()
            .collect::<Result<_, DecodeError>>()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        check_records(&records, b.base_offset(), b.base_timestamp(), m, &what);
        n += records.len();
    }
    // The flattened view agrees with the per-batch one.
    assert_eq!(set.records().count(), n, "{what}: RecordSet::records");
    n
}
