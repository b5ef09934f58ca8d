//! Golden frames: every request and response captured from real peers
//! (librdkafka 2.16 and the tansu broker, `tests/fixtures/`) decodes with
//! `kafkit_protocol::frame` to what `manifest.json` says, and re-encodes to
//! the very same bytes.
//!
//! The records inside Produce requests and Fetch responses are checked in
//! `golden_records.rs`; the batches alone are checked in
//! `src/records/tests/golden.rs`.

mod golden_common;

use std::collections::BTreeSet;

use bytes::Bytes;
use golden_common::*;
use kafkit_protocol::frame::{decode_request, decode_response, decode_response_body};
use kafkit_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, InitProducerIdResponse,
    MetadataResponse, ProduceResponse, RequestBody, ResponseBody,
};
use kafkit_protocol::{DecodeError, Message, VersionRange};
use serde_json::Value;

/// Decodes one request fixture, checks its header against the manifest and
/// its re-encoding against the file.
fn request(path: &str) -> (Value, RequestBody) {
    let e = entry(path).clone();
    assert_eq!(e["kind"], "request", "{path}");
    let frame = load(path);
    let (header, body) =
        decode_request(frame.clone()).unwrap_or_else(|err| panic!("{path}: {err}"));
    assert_eq!(
        header.request_api_key,
        api_key(&e).as_i16(),
        "{path}: api key"
    );
    assert_eq!(
        header.request_api_version,
        api_version(&e),
        "{path}: api version"
    );
    assert_eq!(
        i64::from(header.correlation_id),
        int(&e["correlation_id"]),
        "{path}: correlation id"
    );
    assert_eq!(
        header.client_id.as_deref(),
        opt_string(&e["client_id"]),
        "{path}: client id"
    );
    assert_eq!(
        i64::from(api_key(&e).request_header_version(api_version(&e))),
        int(&e["header_version"]),
        "{path}: header version"
    );
    assert!(
        header.unknown_tagged_fields.is_empty(),
        "{path}: no header tags"
    );
    assert_eq!(body.api_key(), api_key(&e), "{path}");
    assert_same_bytes(&reencode_request(&header, &body), &frame, path);
    (e, body)
}

/// Decodes one response fixture by API key (as a client does with
/// `decode_response_body`), checks its correlation id, re-encodes it.
fn response(path: &str) -> (Value, ResponseBody) {
    let e = entry(path).clone();
    assert_eq!(e["kind"], "response", "{path}");
    let (key, version) = (api_key(&e), api_version(&e));
    assert_eq!(
        i64::from(key.response_header_version(version)),
        int(&e["header_version"]),
        "{path}: header version"
    );
    let frame = load(path);
    let (cid, body) = decode_response_body(key, version, frame.clone())
        .unwrap_or_else(|err| panic!("{path}: {err}"));
    assert_eq!(
        i64::from(cid),
        int(&e["correlation_id"]),
        "{path}: correlation id"
    );
    assert_eq!(body.api_key(), key, "{path}");
    assert_same_bytes(&reencode_response(cid, version, &body), &frame, path);
    (e, body)
}

/// The typed decoder (`decode_response::<R>`) agrees with the dynamic one.
fn typed_response<R: kafkit_protocol::Response>(path: &str) -> R {
    let e = entry(path);
    let (cid, body) = decode_response::<R>(load(path), api_key(e), api_version(e))
        .unwrap_or_else(|err| panic!("{path}: {err}"));
    assert_eq!(i64::from(cid), int(&e["correlation_id"]), "{path}");
    body
}

#[test]
fn every_frame_fixture_decodes_and_reencodes_byte_exact() {
    let mut exact = 0;
    let mut unsupported = 0;
    for kind in ["request", "response"] {
        for path in files_of_kind(kind) {
            let e = entry(path);
            if supported(e) {
                if kind == "request" {
                    request(path);
                } else {
                    response(path);
                }
                exact += 1;
            } else {
                // Only the legacy Produce v1/v2 frames fall outside Kafka 4.x.
                assert_eq!(api_key(e), ApiKey::Produce, "{path}");
                assert!(api_version(e) < 3, "{path}");
                unsupported += 1;
            }
        }
    }
    // 18 requests + 18 responses in range; 8 legacy requests + 6 responses.
    assert_eq!((exact, unsupported), (36, 14));
}

#[test]
fn legacy_produce_frames_are_unsupported_versions() {
    let mut n = 0;
    for kind in ["request", "response"] {
        for path in files_of_kind(kind)
            .into_iter()
            .filter(|p| p.contains("legacy_"))
        {
            let e = entry(path);
            let version = api_version(e);
            assert!(matches!(version, 1 | 2), "{path}");
            let frame = load(path);
            let (err, message) = if kind == "request" {
                (decode_request(frame).unwrap_err(), "ProduceRequest")
            } else {
                (
                    decode_response_body(ApiKey::Produce, version, frame).unwrap_err(),
                    "ProduceResponse",
                )
            };
            assert_eq!(
                err,
                DecodeError::UnsupportedVersion {
                    message,
                    version,
                    min: 3,
                    max: 13
                },
                "{path}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 14);
}

/// The api keys of an ApiVersions response as a set (tansu lists them in
/// hash-map order, which changes between captures).
fn api_key_set(r: &ApiVersionsResponse) -> BTreeSet<(i16, i16, i16)> {
    r.api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect()
}

fn manifest_api_key_set(decoded: &Value) -> BTreeSet<(i16, i16, i16)> {
    decoded["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                int(&k["api_key"]) as i16,
                int(&k["min_version"]) as i16,
                int(&k["max_version"]) as i16,
            )
        })
        .collect()
}

#[test]
fn tansu_api_versions_responses() {
    for path in [
        "tansu/api_versions_v0_response.bin",
        "tansu/api_versions_v3_response.bin",
        "tansu/api_versions_v3_response_to_librdkafka.bin",
        "tansu/api_versions_v4_response.bin",
    ] {
        let (e, body) = response(path);
        let ResponseBody::ApiVersions(r) = body else {
            panic!("{path}: not ApiVersions")
        };
        assert_eq!(
            r,
            typed_response::<ApiVersionsResponse>(path),
            "{path}: typed decode"
        );
        let d = &e["decoded"];
        assert_eq!(i64::from(r.error_code.0), int(&d["error_code"]), "{path}");
        let keys = api_key_set(&r);
        assert_eq!(keys.len(), r.api_keys.len(), "{path}: no duplicate keys");
        assert_eq!(keys, manifest_api_key_set(d), "{path}: api keys");
        assert_eq!(keys.len(), 36, "{path}");
        // The ranges a client negotiates against tansu.
        for (key, min, max) in [
            (ApiKey::Produce, 0, 11),
            (ApiKey::Fetch, 0, 17),
            (ApiKey::Metadata, 0, 12),
        ] {
            let got = r.api_keys.iter().find(|k| k.api_key == key.as_i16());
            let got = got.unwrap_or_else(|| panic!("{path}: {key} missing"));
            assert_eq!(
                (got.min_version, got.max_version),
                (min, max),
                "{path}: {key}"
            );
            // What kafkit would negotiate: the top of the overlap with our range.
            let ours = key.request_versions();
            let both = ours
                .intersect(&VersionRange::new(min, max))
                .expect("overlap");
            assert_eq!(both.max, max.min(ours.max), "{path}: {key}");
        }
        assert!(
            r.api_keys
                .iter()
                .all(|k| k.unknown_tagged_fields.is_empty()),
            "{path}"
        );
        assert!(
            r.unknown_tagged_fields.is_empty(),
            "{path}: no unknown tags"
        );

        if api_version(&e) == 0 {
            assert_eq!(
                r.unknown_tagged_fields.present_known(),
                &[] as &[u32],
                "{path}"
            );
            continue;
        }
        assert_eq!(
            i64::from(r.throttle_time_ms),
            int(&d["throttle_time_ms"]),
            "{path}"
        );
        // tansu writes all four tagged fields although each holds its default.
        let tags: Vec<u32> = d["tagged_field_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| int(t) as u32)
            .collect();
        assert_eq!(tags, [0, 1, 2, 3], "{path}");
        assert_eq!(
            r.unknown_tagged_fields.present_known(),
            &tags[..],
            "{path}: tags seen"
        );
        let t = &d["tagged_fields"];
        assert_eq!(t["supported_features"], Value::Array(vec![]), "{path}");
        assert!(r.supported_features.is_empty(), "{path}: SupportedFeatures");
        assert_eq!(
            r.finalized_features_epoch,
            int(&t["finalized_features_epoch"]),
            "{path}"
        );
        assert_eq!(
            r.finalized_features_epoch, -1,
            "{path}: FinalizedFeaturesEpoch"
        );
        assert_eq!(t["finalized_features"], Value::Array(vec![]), "{path}");
        assert!(r.finalized_features.is_empty(), "{path}: FinalizedFeatures");
        assert_eq!(
            Some(r.zk_migration_ready),
            t["zk_migration_ready"].as_bool(),
            "{path}"
        );
        assert!(!r.zk_migration_ready, "{path}: ZkMigrationReady");

        // Byte-exact only because the present tags are remembered: built in
        // code (no presence) the same values leave out all four, which is
        // 1+1+1 + 1+1+8 + 1+1+1 + 1+1+1 = 19 bytes of tagged section.
        let mut plain = r.clone();
        plain.unknown_tagged_fields.clear_presence();
        assert_eq!(plain, r, "presence does not take part in equality");
        let shorter = reencode_response(
            int(&e["correlation_id"]) as i32,
            api_version(&e),
            &plain.into(),
        );
        assert_eq!(shorter.len() + 19, load(path).len(), "{path}");
    }
}

#[test]
fn api_versions_requests() {
    for path in [
        "librdkafka/api_versions_v3_request.bin",
        "tansu/api_versions_v0_request.bin",
        "tansu/api_versions_v3_request.bin",
        "tansu/api_versions_v4_request.bin",
    ] {
        let (e, body) = request(path);
        let RequestBody::ApiVersions(r) = body else {
            panic!("{path}")
        };
        let d = &e["decoded"];
        if api_version(&e) == 0 {
            assert_eq!(
                r,
                ApiVersionsRequest::default(),
                "{path}: v0 has an empty body"
            );
            continue;
        }
        assert_eq!(
            r.client_software_name,
            string(&d["client_software_name"]),
            "{path}"
        );
        assert_eq!(
            r.client_software_version,
            string(&d["client_software_version"]),
            "{path}"
        );
        assert_eq!(
            d["tagged_fields"],
            Value::Object(Default::default()),
            "{path}"
        );
        assert!(r.unknown_tagged_fields.is_empty(), "{path}");
    }
}

#[test]
fn metadata_v12_request_and_response() {
    let (e, body) = request("librdkafka/metadata_v12_request.bin");
    let RequestBody::Metadata(req) = body else {
        panic!()
    };
    let d = &e["decoded"];
    let topics = req.topics.as_ref().expect("specific topics");
    let want = d["topics"].as_array().unwrap();
    assert_eq!(topics.len(), want.len());
    for (t, w) in topics.iter().zip(want) {
        assert_eq!(t.topic_id, uuid(&w["topic_id"]));
        assert!(t.topic_id.is_zero());
        assert_eq!(t.name.as_deref(), opt_string(&w["name"]));
    }
    assert_eq!(
        Some(req.allow_auto_topic_creation),
        d["allow_auto_topic_creation"].as_bool()
    );
    assert_eq!(
        Some(req.include_topic_authorized_operations),
        d["include_topic_authorized_operations"].as_bool()
    );

    let path = "tansu/metadata_v12_response.bin";
    let (e, body) = response(path);
    let ResponseBody::Metadata(r) = body else {
        panic!()
    };
    assert_eq!(r, typed_response::<MetadataResponse>(path));
    let d = &e["decoded"];
    assert_eq!(i64::from(r.throttle_time_ms), int(&d["throttle_time_ms"]));
    assert_eq!(r.cluster_id.as_deref(), opt_string(&d["cluster_id"]));
    assert_eq!(i64::from(r.controller_id), int(&d["controller_id"]));
    let brokers = d["brokers"].as_array().unwrap();
    assert_eq!(r.brokers.len(), brokers.len());
    for (b, w) in r.brokers.iter().zip(brokers) {
        assert_eq!(i64::from(b.node_id), int(&w["node_id"]));
        assert_eq!(b.host, string(&w["host"]));
        assert_eq!(i64::from(b.port), int(&w["port"]));
        assert_eq!(b.rack.as_deref(), opt_string(&w["rack"]));
    }
    let topics = d["topics"].as_array().unwrap();
    assert_eq!(r.topics.len(), topics.len());
    for (t, w) in r.topics.iter().zip(topics) {
        assert_eq!(i64::from(t.error_code.0), int(&w["error_code"]));
        assert_eq!(t.name.as_deref(), opt_string(&w["name"]));
        assert_eq!(t.topic_id, uuid(&w["topic_id"]));
        assert_eq!(Some(t.is_internal), w["is_internal"].as_bool());
        assert_eq!(
            i64::from(t.topic_authorized_operations),
            int(&w["topic_authorized_operations"])
        );
        let parts = w["partitions"].as_array().unwrap();
        assert_eq!(t.partitions.len(), parts.len());
        for (p, w) in t.partitions.iter().zip(parts) {
            assert_eq!(i64::from(p.error_code.0), int(&w["error_code"]));
            assert_eq!(i64::from(p.partition_index), int(&w["partition_index"]));
            assert_eq!(i64::from(p.leader_id), int(&w["leader_id"]));
            assert_eq!(i64::from(p.leader_epoch), int(&w["leader_epoch"]));
            let ids = |v: &Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| int(x) as i32)
                    .collect::<Vec<_>>()
            };
            assert_eq!(p.replica_nodes, ids(&w["replica_nodes"]));
            assert_eq!(p.isr_nodes, ids(&w["isr_nodes"]));
            assert_eq!(p.offline_replicas, ids(&w["offline_replicas"]));
        }
    }
}

#[test]
fn init_producer_id_v4_request_and_response() {
    let (e, body) = request("librdkafka/init_producer_id_v4_request.bin");
    let RequestBody::InitProducerId(req) = body else {
        panic!()
    };
    let d = &e["decoded"];
    assert_eq!(
        req.transactional_id.as_deref(),
        opt_string(&d["transactional_id"])
    );
    assert_eq!(
        i64::from(req.transaction_timeout_ms),
        int(&d["transaction_timeout_ms"])
    );
    assert_eq!(req.producer_id, int(&d["producer_id"]));
    assert_eq!(i64::from(req.producer_epoch), int(&d["producer_epoch"]));
    assert!(!req.keep_prepared_txn && req.unknown_tagged_fields.is_empty());

    let path = "tansu/init_producer_id_v4_response.bin";
    let (e, body) = response(path);
    let ResponseBody::InitProducerId(r) = body else {
        panic!()
    };
    assert_eq!(r, typed_response::<InitProducerIdResponse>(path));
    let d = &e["decoded"];
    assert_eq!(i64::from(r.throttle_time_ms), int(&d["throttle_time_ms"]));
    assert_eq!(i64::from(r.error_code.0), int(&d["error_code"]));
    assert_eq!(r.producer_id, int(&d["producer_id"]));
    assert_eq!(i64::from(r.producer_epoch), int(&d["producer_epoch"]));
    assert_eq!((r.producer_id, r.producer_epoch), (1, 0));
}

#[test]
fn tansu_produce_v10_responses() {
    let paths: Vec<&str> = files_of_kind("response")
        .into_iter()
        .filter(|p| p.starts_with("tansu/produce_"))
        .collect();
    assert_eq!(paths.len(), 6);
    for path in paths {
        let (e, body) = response(path);
        let ResponseBody::Produce(r) = body else {
            panic!("{path}")
        };
        assert_eq!(r, typed_response::<ProduceResponse>(path), "{path}");
        let d = &e["decoded"];
        assert_eq!(
            i64::from(r.throttle_time_ms),
            int(&d["throttle_time_ms"]),
            "{path}"
        );
        let topics = d["responses"].as_array().unwrap();
        assert_eq!(r.responses.len(), topics.len(), "{path}");
        for (t, w) in r.responses.iter().zip(topics) {
            assert_eq!(t.name, string(&w["name"]), "{path}");
            let parts = w["partitions"].as_array().unwrap();
            assert_eq!(t.partition_responses.len(), parts.len(), "{path}");
            for (p, w) in t.partition_responses.iter().zip(parts) {
                assert_eq!(i64::from(p.index), int(&w["index"]), "{path}");
                assert_eq!(i64::from(p.error_code.0), int(&w["error_code"]), "{path}");
                assert_eq!(p.base_offset, int(&w["base_offset"]), "{path}");
                assert_eq!(
                    p.log_append_time_ms,
                    int(&w["log_append_time_ms"]),
                    "{path}"
                );
                assert_eq!(p.log_start_offset, int(&w["log_start_offset"]), "{path}");
                assert_eq!(w["record_errors"], Value::Array(vec![]), "{path}");
                assert!(p.record_errors.is_empty(), "{path}");
                assert_eq!(
                    p.error_message.as_deref(),
                    opt_string(&w["error_message"]),
                    "{path}"
                );
            }
        }
    }
}

/// Each Fetch v16 request librdkafka sent names the topic id and offset that
/// the matching tansu response answers.
#[test]
fn librdkafka_fetch_v16_requests_match_their_responses() {
    let paths: Vec<&str> = files_of_kind("request")
        .into_iter()
        .filter(|p| p.starts_with("librdkafka/fetch_"))
        .collect();
    assert_eq!(paths.len(), 6);
    for path in paths {
        let (_, body) = request(path);
        let RequestBody::Fetch(req) = body else {
            panic!("{path}")
        };
        let name = path
            .trim_start_matches("librdkafka/fetch_")
            .trim_end_matches("_request.bin");
        let resp = entry(&format!("tansu/fetch_response_{name}.bin"));
        assert_eq!(req.topics.len(), 1, "{path}");
        assert_eq!(
            req.topics[0].topic_id,
            uuid(&resp["topic_id"]),
            "{path}: topic id"
        );
        assert!(
            req.topics[0].topic.is_empty(),
            "{path}: v13+ names topics by id"
        );
        let p = &req.topics[0].partitions;
        assert_eq!(p.len(), 1, "{path}");
        assert_eq!(
            i64::from(p[0].partition),
            int(&resp["partition"]["partition_index"]),
            "{path}"
        );
        assert_eq!(p[0].fetch_offset, 0, "{path}: assigned at offset 0");
        assert_eq!(req.replica_id, -1, "{path}: a consumer");
        assert_eq!(req.max_wait_ms, 100, "{path}: fetch.wait.max.ms");
        assert!(req.max_bytes > 0 && req.min_bytes >= 0, "{path}");
        assert_eq!(
            req,
            FetchRequest::decode(&mut strip_header(path), 16).unwrap(),
            "{path}"
        );
    }
}

/// The body of a request fixture, after its header v2.
fn strip_header(path: &str) -> Bytes {
    let frame = load(path);
    let mut rest = frame.clone();
    let _ = kafkit_protocol::messages::RequestHeader::decode(&mut rest, 2).unwrap();
    rest
}

#[test]
fn the_frame_reader_splits_the_fixtures_back_out_of_a_stream() {
    // Concatenate every supported request with its size prefix, as on a
    // socket, and let decode_frame split them again.
    let paths: Vec<&str> = files_of_kind("request")
        .into_iter()
        .filter(|p| supported(entry(p)))
        .collect();
    let mut stream = bytes::BytesMut::new();
    for p in &paths {
        let f = load(p);
        stream.extend_from_slice(&(f.len() as i32).to_be_bytes());
        stream.extend_from_slice(&f);
    }
    for p in &paths {
        let f = kafkit_protocol::frame::decode_frame(&mut stream, 1 << 20)
            .unwrap()
            .expect("whole frame");
        assert_eq!(f, load(p), "{p}");
        assert_eq!(
            kafkit_protocol::frame::peek_request_api(&f).unwrap().0,
            api_key(entry(p)).as_i16()
        );
    }
    assert!(stream.is_empty());
    // Responses: peek_correlation_id reads the id without decoding anything else.
    for p in files_of_kind("response") {
        let f = load(p);
        assert_eq!(
            i64::from(kafkit_protocol::frame::peek_correlation_id(&f).unwrap()),
            int(&entry(p)["correlation_id"]),
            "{p}"
        );
    }
}
