//! Hostile and broken input built from real frames (the golden fixtures in
//! `tests/fixtures/`): every truncation is an error, every flipped byte is an
//! error or a clean decode (never a panic), and specific corruptions give
//! specific typed errors.

mod golden_common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::{Bytes, BytesMut};
use golden_common::*;
use kafkit_protocol::frame::{
    decode_frame, decode_request, decode_response_body, encode_request_body, encode_response_body,
};
use kafkit_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestBody, RequestHeader, ResponseBody,
};
use kafkit_protocol::records::RecordSet;
use kafkit_protocol::{DecodeError, Message};

const MAX_FRAME: usize = 100 << 20;

/// One fixture frame with what it takes to decode it.
struct Fixture {
    path: &'static str,
    frame: Bytes,
    /// `None` for a request (the header says), the key and version for a response.
    response: Option<(ApiKey, i16)>,
}

// Short-lived test values: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    Request(RequestHeader, RequestBody),
    Response(i32, ResponseBody),
}

impl Fixture {
    fn decode(&self, frame: Bytes) -> Result<Decoded, DecodeError> {
        match self.response {
            None => decode_request(frame).map(|(h, b)| Decoded::Request(h, b)),
            Some((key, version)) => {
                decode_response_body(key, version, frame).map(|(c, b)| Decoded::Response(c, b))
            }
        }
    }
}

/// Every frame fixture at a version this crate defines (36 frames: all the
/// ApiVersions, Metadata, Produce v10, Fetch v16 and InitProducerId ones).
fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for kind in ["request", "response"] {
        for path in files_of_kind(kind) {
            let e = entry(path);
            if !supported(e) {
                continue;
            }
            let response = (kind == "response").then(|| (api_key(e), api_version(e)));
            out.push(Fixture {
                path,
                frame: load(path),
                response,
            });
        }
    }
    assert_eq!(out.len(), 36);
    out
}

/// The `records` fields of a decoded Produce request or Fetch response.
fn records_fields(d: &Decoded) -> Vec<Bytes> {
    match d {
        Decoded::Request(_, RequestBody::Produce(p)) => p
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .filter_map(|p| p.records.clone())
            .collect(),
        Decoded::Response(_, ResponseBody::Fetch(f)) => f
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// Walks every batch and record of a records field; errors are fine.
fn walk_records(data: Bytes) -> usize {
    let set = RecordSet::new(data);
    let mut n = 0;
    for batch in set.batches() {
        let Ok(batch) = batch else { break };
        for r in batch.records() {
            let Ok(r) = r else { break };
            n += r.headers.iter().count() + 1;
        }
    }
    n + set.records().filter(Result::is_ok).count()
}

/// A decoded (possibly corrupted) frame re-encodes, if at all, to bytes that
/// decode to the same value and re-encode to themselves.
fn check_stable(fx: &Fixture, d: &Decoded, what: &str) {
    let mut buf = BytesMut::new();
    let encoded = match (d, fx.response) {
        (Decoded::Request(h, b), None) => encode_request_body(
            &mut buf,
            h.correlation_id,
            h.client_id.as_deref(),
            h.request_api_version,
            b,
        ),
        (Decoded::Response(c, b), Some((_, version))) => {
            encode_response_body(&mut buf, *c, version, b)
        }
        _ => unreachable!("requests decode to requests"),
    };
    // Some corrupted values cannot be encoded (e.g. a field that the
    // relabelled version lacks); that is an error, not a panic.
    let bytes = encoded.ok().map(|()| buf.split_off(4).freeze());
    let Some(bytes) = bytes else { return };
    let again = fx
        .decode(bytes.clone())
        .unwrap_or_else(|e| panic!("{what}: our own re-encoding does not decode: {e}"));
    let same = match (d, &again) {
        (Decoded::Request(h1, b1), Decoded::Request(h2, b2)) => {
            h1.correlation_id == h2.correlation_id && h1.client_id == h2.client_id && b1 == b2
        }
        (Decoded::Response(c1, b1), Decoded::Response(c2, b2)) => c1 == c2 && b1 == b2,
        _ => false,
    };
    assert!(same, "{what}: value changed across re-encode");
}

#[test]
fn every_truncation_of_every_frame_is_an_error() {
    let mut cuts = 0;
    for fx in fixtures() {
        for cut in 0..fx.frame.len() {
            let part = fx.frame.slice(..cut);
            match fx.decode(part) {
                Ok(_) => panic!("{} cut at {cut} of {} decoded", fx.path, fx.frame.len()),
                // Inside a complete frame the only honest answer is "truncated".
                Err(e) => assert!(e.is_truncated(), "{} cut at {cut}: {e:?}", fx.path),
            }
            cuts += 1;
        }
        // The whole frame decodes; one byte more is a TrailingBytes error.
        assert!(fx.decode(fx.frame.clone()).is_ok(), "{}", fx.path);
        let mut longer = BytesMut::from(&fx.frame[..]);
        longer.extend_from_slice(&[0]);
        assert!(
            matches!(
                fx.decode(longer.freeze()),
                Err(DecodeError::TrailingBytes { remaining: 1, .. })
            ),
            "{}",
            fx.path
        );
    }
    eprintln!("{cuts} truncations");
    assert!(cuts > 8_000, "{cuts}");
}

/// A message decoder reads one value off the front of a buffer and stops, so
/// input that ends cleanly at a structure boundary (here an array count of 0
/// before 35 real entries) decodes as a message. Only the frame decoders know
/// where the frame ends and reject what is left over.
#[test]
fn frame_decoders_catch_what_message_decoders_cannot() {
    let frame = load("tansu/api_versions_v0_response.bin");
    let mut body = BytesMut::from(&frame[4..]);
    body[2..6].copy_from_slice(&0i32.to_be_bytes()); // api_keys count 0
    let mut rd = body.clone().freeze();
    let r = ApiVersionsResponse::decode(&mut rd, 0).unwrap();
    assert!(r.api_keys.is_empty());
    assert_eq!(
        rd.len(),
        frame.len() - 10,
        "the message decoder stops early"
    );
    let mut whole = BytesMut::from(&frame[..4]);
    whole.extend_from_slice(&body);
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 0, whole.freeze()),
        Err(DecodeError::TrailingBytes {
            what: "ApiVersions",
            remaining: frame.len() - 10
        })
    );
}

#[test]
fn flipping_any_byte_never_panics() {
    let mut decoded_ok = 0;
    let mut errors = 0;
    for fx in fixtures() {
        for at in 0..fx.frame.len() {
            for mask in [0xff_u8, 0x01, 0x80] {
                let mut bad = BytesMut::from(&fx.frame[..]);
                bad[at] ^= mask;
                let bad = bad.freeze();
                let what = format!("{} byte {at} ^ {mask:#04x}", fx.path);
                let outcome = catch_unwind(AssertUnwindSafe(|| match fx.decode(bad.clone()) {
                    Ok(d) => {
                        for data in records_fields(&d) {
                            walk_records(data);
                        }
                        check_stable(&fx, &d, &what);
                        true
                    }
                    Err(_) => false,
                }));
                match outcome {
                    Ok(true) => decoded_ok += 1,
                    Ok(false) => errors += 1,
                    Err(_) => panic!("{what}: panicked"),
                }
            }
        }
    }
    eprintln!("byte flips: {decoded_ok} decoded, {errors} typed errors");
    // Many flips land in plain values (ids, offsets, record bytes) and decode.
    assert!(
        decoded_ok > 1_000 && errors > 1_000,
        "{decoded_ok} ok, {errors} errors"
    );
}

/// `v` with `bytes[at..at + len]` replaced by `with`.
fn patch(v: &Bytes, at: usize, len: usize, with: &[u8]) -> Bytes {
    let mut out = BytesMut::from(&v[..at]);
    out.extend_from_slice(with);
    out.extend_from_slice(&v[at + len..]);
    out.freeze()
}

#[test]
fn huge_array_counts_are_truncated_before_any_allocation() {
    // ApiVersions v0 response (classic): correlation id, error code, int32 count.
    let frame = load("tansu/api_versions_v0_response.bin");
    assert_eq!(&frame[6..10], &36i32.to_be_bytes());
    let remaining = frame.len() - 10;
    let bad = patch(&frame, 6, 4, &i32::MAX.to_be_bytes());
    let want = DecodeError::Truncated {
        what: "ApiVersionsResponse.api_keys",
        needed: i32::MAX as usize,
        remaining,
    };
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 0, bad.clone()).unwrap_err(),
        want
    );
    // The message decoder alone says the same.
    assert_eq!(
        ApiVersionsResponse::decode(&mut bad.slice(4..), 0).unwrap_err(),
        want
    );
    // Negative counts: -1 is null (not allowed here), below that is invalid.
    let null = patch(&frame, 6, 4, &(-1i32).to_be_bytes());
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 0, null).unwrap_err(),
        DecodeError::UnexpectedNull {
            what: "ApiVersionsResponse.api_keys"
        }
    );
    let min = patch(&frame, 6, 4, &i32::MIN.to_be_bytes());
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 0, min).unwrap_err(),
        DecodeError::NegativeLength {
            what: "ApiVersionsResponse.api_keys",
            len: i32::MIN.into()
        }
    );

    // ApiVersions v3 response (flexible): the count is a compact varint (n + 1).
    let frame = load("tansu/api_versions_v3_response.bin");
    assert_eq!(frame[6], 37);
    let remaining = frame.len() - 7;
    let huge = patch(&frame, 6, 1, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 3, huge).unwrap_err(),
        DecodeError::Truncated {
            what: "ApiVersionsResponse.api_keys",
            needed: u32::MAX as usize - 1,
            remaining,
        }
    );
    // A varint longer than 5 bytes, or whose 5th byte overflows 32 bits.
    for bad in [
        &[0xff, 0xff, 0xff, 0xff, 0x1f][..],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ] {
        assert_eq!(
            decode_response_body(ApiKey::ApiVersions, 3, patch(&frame, 6, 1, bad)).unwrap_err(),
            DecodeError::MalformedVarint {
                what: "ApiVersionsResponse.api_keys"
            }
        );
    }
    // Compact 0 is a null array, not allowed here.
    assert_eq!(
        decode_response_body(ApiKey::ApiVersions, 3, patch(&frame, 6, 1, &[0])).unwrap_err(),
        DecodeError::UnexpectedNull {
            what: "ApiVersionsResponse.api_keys"
        }
    );

    // A huge tagged-field count: a Fetch v16 response ends with its top-level
    // tagged section, `01` (one field) `00` (tag 0, NodeEndpoints) `01`
    // (size 1) `01` (an empty compact array).
    let fetch = load("tansu/fetch_response_none.bin");
    assert_eq!(
        &fetch[fetch.len() - 4..],
        &[1, 0, 1, 1],
        "1 tag: NodeEndpoints, 1 byte, empty array"
    );
    let bad = patch(&fetch, fetch.len() - 4, 1, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        decode_response_body(ApiKey::Fetch, 16, bad).unwrap_err(),
        DecodeError::Truncated {
            what: "FetchResponse",
            ..
        }
    ));
}

#[test]
fn negative_string_and_bytes_lengths() {
    // ApiVersions v0 request: header v1 = key, version, correlation id, then
    // client_id as an int16-length nullable string at byte 8.
    let frame = load("tansu/api_versions_v0_request.bin");
    assert_eq!(
        &frame[8..10],
        &(b"kafkit-capture".len() as i16).to_be_bytes()
    );
    let bad = patch(&frame, 8, 2, &(-2i16).to_be_bytes());
    assert_eq!(
        decode_request(bad).unwrap_err(),
        DecodeError::NegativeLength {
            what: "RequestHeader.client_id",
            len: -2
        }
    );
    // -1 is a null client id: the frame is then 14 bytes too long.
    let null = patch(&frame, 8, 2, &(-1i16).to_be_bytes());
    assert!(matches!(
        decode_request(null),
        Err(DecodeError::TrailingBytes { remaining: 14, .. })
    ));
    // The message decoder for the header says the same.
    assert_eq!(
        RequestHeader::decode(&mut patch(&frame, 8, 2, &(-2i16).to_be_bytes()), 1).unwrap_err(),
        DecodeError::NegativeLength {
            what: "RequestHeader.client_id",
            len: -2
        }
    );

    // A compact (flexible) string cannot be negative; 0 means null, which a
    // non-nullable field refuses. librdkafka's ApiVersions v3 request: the
    // header v2 (classic client id + empty tagged section), then the compact
    // client_software_name.
    let frame = load("librdkafka/api_versions_v3_request.bin");
    let at = 10 + b"kafkit-capture".len() + 1;
    assert_eq!(usize::from(frame[at]), b"confluent-kafka-python".len() + 1);
    assert_eq!(
        decode_request(patch(&frame, at, 1, &[0])).unwrap_err(),
        DecodeError::UnexpectedNull {
            what: "ApiVersionsRequest.client_software_name"
        }
    );

    // Bytes with an int32 length: librdkafka's Produce request re-encoded at
    // v8 (the last classic version), where `records` is int32-length bytes.
    let (header, body) = decode_request(load("librdkafka/produce_gzip_request.bin")).unwrap();
    let RequestBody::Produce(req) = &body else {
        panic!()
    };
    let records = req.topic_data[0].partition_data[0].records.clone().unwrap();
    let mut buf = BytesMut::new();
    encode_request_body(
        &mut buf,
        header.correlation_id,
        header.client_id.as_deref(),
        8,
        &body,
    )
    .unwrap();
    let v8 = buf.split_off(4).freeze();
    let at = v8.len() - records.len() - 4;
    assert_eq!(&v8[at..at + 4], &(records.len() as i32).to_be_bytes());
    assert!(decode_request(v8.clone()).is_ok());
    let bad = patch(&v8, at, 4, &(-5i32).to_be_bytes());
    assert_eq!(
        decode_request(bad).unwrap_err(),
        DecodeError::NegativeLength {
            what: "PartitionProduceData.records",
            len: -5
        }
    );
    // And a length larger than what is left.
    let bad = patch(&v8, at, 4, &i32::MAX.to_be_bytes());
    assert_eq!(
        decode_request(bad).unwrap_err(),
        DecodeError::Truncated {
            what: "PartitionProduceData.records",
            needed: i32::MAX as usize,
            remaining: records.len(),
        }
    );
}

#[test]
fn frame_size_prefixes() {
    let frame = load("librdkafka/metadata_v12_request.bin");
    let with_size = |size: i32| {
        let mut b = BytesMut::from(&size.to_be_bytes()[..]);
        b.extend_from_slice(&frame);
        b
    };
    // -1, and 0x80000000 (2 GiB as an unsigned size, i32::MIN as Kafka reads it).
    for size in [-1, i32::MIN] {
        let mut b = with_size(size);
        assert_eq!(
            decode_frame(&mut b, MAX_FRAME),
            Err(DecodeError::NegativeLength {
                what: "frame size",
                len: size.into()
            })
        );
        assert_eq!(b.len(), frame.len() + 4, "nothing consumed");
    }
    // 2 GiB - 1: over the cap as soon as the 4 size bytes are in.
    for mut b in [
        with_size(i32::MAX),
        BytesMut::from(&i32::MAX.to_be_bytes()[..]),
    ] {
        assert_eq!(
            decode_frame(&mut b, MAX_FRAME),
            Err(DecodeError::TooLarge {
                what: "frame",
                len: i32::MAX as u64,
                limit: MAX_FRAME as u64
            })
        );
    }
    // Without a cap, a 2 GiB frame just needs more bytes (none are reserved).
    let mut b = with_size(i32::MAX);
    assert_eq!(decode_frame(&mut b, usize::MAX), Ok(None));
    assert!(b.capacity() < 1 << 20);
    // The exact size splits the frame; one more waits for a byte; one less
    // hands the frame decoder a frame that is one byte short.
    let n = frame.len() as i32;
    assert_eq!(
        decode_frame(&mut with_size(n), MAX_FRAME).unwrap(),
        Some(frame.clone())
    );
    assert_eq!(
        decode_frame(&mut with_size(n + 1), MAX_FRAME).unwrap(),
        None
    );
    let short = decode_frame(&mut with_size(n - 1), MAX_FRAME)
        .unwrap()
        .unwrap();
    assert!(decode_request(short).unwrap_err().is_truncated());
    // A size just above the cap.
    assert!(matches!(
        decode_frame(&mut with_size(n), frame.len() - 1),
        Err(DecodeError::TooLarge { len, limit, .. }) if len == n as u64 && limit == n as u64 - 1
    ));
}

#[test]
fn unknown_api_keys_and_unsupported_versions() {
    let frame = load("librdkafka/api_versions_v3_request.bin");
    for key in [-1i16, 1000, i16::MAX, i16::MIN] {
        assert_eq!(
            decode_request(patch(&frame, 0, 2, &key.to_be_bytes())),
            Err(DecodeError::UnknownApiKey(key)),
            "{key}"
        );
    }
    // ApiVersions is defined at 0-4.
    for version in [5i16, 99, -1] {
        assert_eq!(
            decode_request(patch(&frame, 2, 2, &version.to_be_bytes())),
            Err(DecodeError::UnsupportedVersion {
                message: "ApiVersionsRequest",
                version,
                min: 0,
                max: 4
            }),
            "{version}"
        );
    }
    // Produce is defined at 3-13: librdkafka's v10 request relabelled.
    let produce = load("librdkafka/produce_none_request.bin");
    for version in [2i16, 14] {
        assert_eq!(
            decode_request(patch(&produce, 2, 2, &version.to_be_bytes())),
            Err(DecodeError::UnsupportedVersion {
                message: "ProduceRequest",
                version,
                min: 3,
                max: 13
            })
        );
    }
    // Responses: the caller's version is checked against the body type.
    let fetch = load("tansu/fetch_response_gzip.bin");
    assert_eq!(
        decode_response_body(ApiKey::Fetch, 19, fetch.clone()),
        Err(DecodeError::UnsupportedVersion {
            message: "FetchResponse",
            version: 19,
            min: 4,
            max: 18
        })
    );
    assert!(matches!(
        kafkit_protocol::frame::decode_response::<ApiVersionsResponse>(
            fetch,
            ApiKey::ApiVersions,
            7
        ),
        Err(DecodeError::UnsupportedVersion {
            message: "ApiVersionsResponse",
            version: 7,
            ..
        })
    ));
    // And the message decoders directly.
    assert_eq!(
        ApiVersionsRequest::decode(&mut Bytes::new(), 5),
        Err(DecodeError::UnsupportedVersion {
            message: "ApiVersionsRequest",
            version: 5,
            min: 0,
            max: 4
        })
    );
}
