//! `ResponseBody::decode` for every API and version, with the round-trip
//! property; the same bytes also go through `decode_response_body` as a
//! whole frame (response header first).
//!
//! Input: `api_key:u8 version:u8 body...` (see `pick_api`/`pick_version`:
//! live keys and in-range versions are taken as is).
#![no_main]

use bytes::{Bytes, BytesMut};
use kafkit_protocol::frame::{
    decode_frame, decode_response_body, encode_response_body, peek_correlation_id,
};
use kafkit_protocol::messages::ResponseBody;
use kafkit_protocol_fuzz::{pick_api, pick_version, round_trip_response, same};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [key, version, body @ ..] = data else {
        return;
    };
    let api = pick_api(*key);
    let version = pick_version(api, *version);

    let mut buf = Bytes::copy_from_slice(body);
    if let Ok(decoded) = ResponseBody::decode(api, version, &mut buf) {
        assert!(buf.len() <= body.len());
        round_trip_response(api, version, &decoded);
    }

    // The same bytes as a frame: header, then a body that fills the frame.
    let frame = Bytes::copy_from_slice(body);
    if let Ok((correlation_id, decoded)) = decode_response_body(api, version, frame.clone()) {
        assert_eq!(peek_correlation_id(&frame), Ok(correlation_id));
        round_trip_response(api, version, &decoded);
        let mut out = BytesMut::new();
        encode_response_body(&mut out, correlation_id, version, &decoded)
            .expect("a decoded response re-encodes");
        let frame = decode_frame(&mut out, usize::MAX)
            .unwrap()
            .expect("a whole frame");
        let (cid, again) =
            decode_response_body(api, version, frame).expect("a re-encoded response decodes");
        assert_eq!(cid, correlation_id);
        assert!(
            same(&decoded, &again),
            "response changed through encode_response_body"
        );
    }
});
