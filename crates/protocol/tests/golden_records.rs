//! Golden frames that carry records: librdkafka's Produce v10 requests (one
//! per codec, plus an idempotent one) and tansu's Fetch v16 responses that
//! return those batches. Each frame is decoded with `kafkit_protocol::frame`,
//! its `records` field with `kafkit_protocol::records::RecordSet`, every
//! batch header and record is checked against `manifest.json`, and the whole
//! frame re-encodes byte for byte.

mod golden_common;

use golden_common::*;
use kafkit_protocol::frame::{decode_request, decode_response};
use kafkit_protocol::messages::{ApiKey, FetchResponse, RequestBody};

const CODECS: [&str; 6] = ["none", "gzip", "snappy", "lz4", "zstd", "none_idempotent"];

#[test]
fn librdkafka_produce_v10_requests() {
    let mut records = 0;
    for codec in CODECS {
        let path = format!("librdkafka/produce_{codec}_request.bin");
        let e = entry(&path);
        assert_eq!(
            (api_key(e), api_version(e)),
            (ApiKey::Produce, 10),
            "{path}"
        );
        let frame = load(&path);
        let (header, body) =
            decode_request(frame.clone()).unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(
            i64::from(header.correlation_id),
            int(&e["correlation_id"]),
            "{path}"
        );
        assert_eq!(
            header.client_id.as_deref(),
            opt_string(&e["client_id"]),
            "{path}"
        );
        let RequestBody::Produce(req) = &body else {
            panic!("{path}: not Produce")
        };

        assert_eq!(
            req.transactional_id.as_deref(),
            opt_string(&e["transactional_id"]),
            "{path}"
        );
        assert_eq!(i64::from(req.acks), int(&e["acks"]), "{path}: acks");
        assert_eq!(
            i64::from(req.timeout_ms),
            int(&e["timeout_ms"]),
            "{path}: timeout"
        );
        assert_eq!(req.topic_data.len(), 1, "{path}");
        let topic = &req.topic_data[0];
        assert_eq!(topic.name, string(&e["topic"]), "{path}: topic");
        assert!(topic.topic_id.is_zero(), "{path}: v10 names topics by name");
        assert_eq!(topic.partition_data.len(), 1, "{path}");
        let part = &topic.partition_data[0];
        assert_eq!(
            i64::from(part.index),
            int(&e["partition"]),
            "{path}: partition"
        );

        // The records field is a zero-copy slice of the frame at the offset
        // the manifest gives, and equal to the extracted batch file.
        let data = part.records.as_ref().expect("records");
        let start = int(&e["records_offset_in_frame"]) as usize;
        let len = int(&e["records_length"]) as usize;
        assert_eq!(data.len(), len, "{path}: records length");
        assert_eq!(
            &data[..],
            &frame[start..start + len],
            "{path}: records position"
        );
        assert_eq!(
            data.as_ptr(),
            frame[start..].as_ptr(),
            "{path}: records not copied"
        );
        let records_file = string(&e["records_file"]);
        assert_eq!(data, &load(records_file), "{path}: vs {records_file}");

        let batch_entry = entry(records_file);
        assert_eq!(
            batch_entry["codec"],
            codec.trim_end_matches("_idempotent"),
            "{path}"
        );
        assert_eq!(
            batch_entry["idempotent"],
            codec.ends_with("idempotent"),
            "{path}"
        );
        records += check_record_set(data, &batch_entry["batches"], &path);

        assert_same_bytes(&reencode_request(&header, &body), &frame, &path);
    }
    assert_eq!(records, 5 * CODECS.len());
}

#[test]
fn tansu_fetch_v16_responses() {
    let mut records = 0;
    for codec in CODECS {
        let path = format!("tansu/fetch_response_{codec}.bin");
        let e = entry(&path);
        let version = api_version(e);
        assert_eq!((api_key(e), version), (ApiKey::Fetch, 16), "{path}");
        let frame = load(&path);
        let (cid, r) = decode_response::<FetchResponse>(frame.clone(), ApiKey::Fetch, version)
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(i64::from(cid), int(&e["correlation_id"]), "{path}");

        let d = &e["decoded"];
        assert_eq!(
            i64::from(r.throttle_time_ms),
            int(&d["throttle_time_ms"]),
            "{path}"
        );
        assert_eq!(i64::from(r.error_code.0), int(&d["error_code"]), "{path}");
        assert_eq!(i64::from(r.session_id), int(&d["session_id"]), "{path}");
        assert_eq!(d["node_endpoints"], serde_json::json!([]), "{path}");
        assert!(r.node_endpoints.is_empty(), "{path}");
        // tansu writes NodeEndpoints (top-level tag 0) as an empty array.
        assert_eq!(
            r.unknown_tagged_fields.present_known(),
            &[0],
            "{path}: tag 0 seen"
        );
        assert!(
            r.unknown_tagged_fields.is_empty(),
            "{path}: no unknown tags"
        );

        assert_eq!(r.responses.len(), 1, "{path}");
        let topic = &r.responses[0];
        assert_eq!(opt_string(&e["topic"]), None, "{path}");
        assert!(topic.topic.is_empty(), "{path}: v13+ names topics by id");
        assert_eq!(topic.topic_id, uuid(&e["topic_id"]), "{path}: topic id");
        assert_eq!(topic.partitions.len(), 1, "{path}");
        let p = &topic.partitions[0];
        let w = &e["partition"];
        assert_eq!(
            i64::from(p.partition_index),
            int(&w["partition_index"]),
            "{path}"
        );
        assert_eq!(i64::from(p.error_code.0), int(&w["error_code"]), "{path}");
        assert_eq!(p.high_watermark, int(&w["high_watermark"]), "{path}");
        assert_eq!(
            p.last_stable_offset,
            int(&w["last_stable_offset"]),
            "{path}"
        );
        assert_eq!(p.log_start_offset, int(&w["log_start_offset"]), "{path}");
        assert_eq!(w["aborted_transactions"], serde_json::json!([]), "{path}");
        assert_eq!(p.aborted_transactions.as_deref(), Some(&[][..]), "{path}");
        assert_eq!(
            i64::from(p.preferred_read_replica),
            int(&w["preferred_read_replica"]),
            "{path}"
        );
        assert!(
            p.unknown_tagged_fields.present_known().is_empty(),
            "{path}: partitions carry no tags"
        );

        let data = p.records.as_ref().expect("records");
        let start = int(&e["records_offset_in_frame"]) as usize;
        let len = int(&e["records_length"]) as usize;
        assert_eq!(
            &data[..],
            &frame[start..start + len],
            "{path}: records position"
        );
        records += check_record_set(data, &e["batches"], &path);
        // tansu hands back librdkafka's batch unchanged.
        assert_eq!(e["identical_to_produced_batch"], true, "{path}");
        assert_eq!(
            data,
            &load(&format!("librdkafka/batch_{codec}.bin")),
            "{path}: same batch as produced"
        );

        assert_same_bytes(&reencode_response(cid, version, &r.into()), &frame, &path);
    }
    assert_eq!(records, 5 * CODECS.len());
}
