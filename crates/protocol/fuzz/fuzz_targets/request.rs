//! `RequestBody::decode` for every API and version, with the round-trip
//! property.
//!
//! Input: `api_key:u8 version:u8 body...` (see `pick_api`/`pick_version`:
//! live keys and in-range versions are taken as is).
#![no_main]

use bytes::Bytes;
use kafkit_protocol::messages::RequestBody;
use kafkit_protocol_fuzz::{pick_api, pick_version, round_trip_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [key, version, body @ ..] = data else {
        return;
    };
    let api = pick_api(*key);
    let version = pick_version(api, *version);
    let mut buf = Bytes::copy_from_slice(body);
    if let Ok(decoded) = RequestBody::decode(api, version, &mut buf) {
        assert!(buf.len() <= body.len());
        round_trip_request(api, version, &decoded);
    }
});
