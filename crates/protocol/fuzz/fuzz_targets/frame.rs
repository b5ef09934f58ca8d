//! `decode_frame` fed in chunks, then `decode_request` on every frame.
//!
//! Input: `chunk_selector:u8` then a byte stream of size-prefixed frames.
//! Properties: splitting the stream into chunks of any size yields the same
//! frames (and the same error) as feeding it at once; `Ok(None)` consumes
//! nothing; a request that decodes re-encodes (header and body) to a frame
//! that decodes to the same request.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafkit_protocol::ApiKey;
use kafkit_protocol::frame::{decode_frame, decode_request, encode_request_body, peek_request_api};
use kafkit_protocol_fuzz::{round_trip_request, same};
use libfuzzer_sys::fuzz_target;

/// Small, so that oversize frames are easy to reach.
const MAX_FRAME: usize = 8 * 1024;

/// Splits `stream` into frames, feeding it `chunk` bytes at a time.
fn frames(stream: &[u8], chunk: usize) -> (Vec<Bytes>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, MAX_FRAME) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME);
                    assert_eq!(buf.len(), before - 4 - frame.len());
                    out.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn check_request(frame: Bytes) {
    let peeked = peek_request_api(&frame);
    let Ok((header, body)) = decode_request(frame) else {
        return;
    };
    let (key, version) = peeked.expect("a decoded request has an api key and version");
    let api = ApiKey::from_i16(key).expect("a decoded request has a known api key");
    assert_eq!(
        (header.request_api_key, header.request_api_version),
        (key, version)
    );
    round_trip_request(api, version, &body);

    let mut buf = BytesMut::new();
    encode_request_body(
        &mut buf,
        header.correlation_id,
        header.client_id.as_deref(),
        version,
        &body,
    )
    .expect("a decoded request re-encodes");
    let frame = decode_frame(&mut buf, usize::MAX)
        .unwrap()
        .expect("a whole frame");
    assert!(buf.is_empty());
    let (h2, b2) = decode_request(frame).expect("a re-encoded request decodes");
    assert_eq!(
        (
            h2.request_api_key,
            h2.request_api_version,
            h2.correlation_id,
            &h2.client_id
        ),
        (
            header.request_api_key,
            header.request_api_version,
            header.correlation_id,
            &header.client_id
        )
    );
    assert!(
        same(&body, &b2),
        "request changed through encode_request_body"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(selector % 64) + 1;
    let (chunked, chunked_err) = frames(stream, chunk);
    let (whole, whole_err) = frames(stream, stream.len().max(1));
    assert_eq!(chunked, whole, "chunking changed the frames");
    assert_eq!(chunked_err, whole_err, "chunking changed the error");
    for frame in chunked {
        check_request(frame);
    }
});
