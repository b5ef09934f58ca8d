//! Sans-IO framing: the int32 size prefix and the request/response headers.
//!
//! Every message on the wire is `size: int32` followed by `size` bytes: a
//! header (see [`ApiKey::request_header_version`] and
//! [`ApiKey::response_header_version`]) and then the body.
//!
//! - Clients: [`encode_request`] (or [`encode_request_chunks`], which
//!   leaves large record sets out of the buffer), then feed received bytes to
//!   [`decode_frame`] and hand each frame to [`decode_response`] (typed) or
//!   [`decode_response_body`] (by API key); [`peek_correlation_id`] tells
//!   which in-flight request a frame answers.
//! - Test brokers: [`decode_request`] and [`encode_response`] /
//!   [`encode_response_body`].
//!
//! Frames handed to the decoders have their size prefix already removed (as
//! [`decode_frame`] returns them). Every decoder requires the body to fill
//! the frame exactly ([`DecodeError::TrailingBytes`] otherwise).

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use crate::frame_chunks::encode_request_chunks;
use crate::messages::{ApiKey, RequestBody, RequestHeader, ResponseBody, ResponseHeader};
use crate::{DecodeError, EncodeError, Message, Request, Response};

/// Writes a size placeholder, runs `write`, then patches the size. On
/// failure `buf` is restored to its previous length.
fn sized(
    buf: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    if let Err(e) = write(buf) {
        buf.truncate(start);
        return Err(e);
    }
    match size_prefix(buf.len() - start - 4) {
        Ok(prefix) => {
            buf[start..start + 4].copy_from_slice(&prefix);
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// The size prefix of a frame of `len` bytes after it, or why there is
/// none (over `i32::MAX`).
pub(crate) fn size_prefix(len: usize) -> Result<[u8; 4], EncodeError> {
    i32::try_from(len)
        .map(i32::to_be_bytes)
        .map_err(|_| EncodeError::TooLong {
            what: "frame",
            len,
            max: i32::MAX as usize,
        })
}

pub(crate) fn request_header(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> RequestHeader {
    RequestHeader {
        request_api_key: api_key.as_i16(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..RequestHeader::default()
    }
}

/// Appends one complete request frame: size, header (v1, or v2 for flexible
/// versions, with `client_id` in the classic encoding) and `body` at `version`.
///
/// On error nothing is appended.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let header = request_header(R::API_KEY, version, correlation_id, client_id);
    sized(buf, |buf| {
        header.encode(buf, R::API_KEY.request_header_version(version))?;
        body.encode(buf, version)
    })
}

/// [`encode_request`] for a body chosen at run time.
pub fn encode_request_body(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &RequestBody,
) -> Result<(), EncodeError> {
    let api_key = body.api_key();
    let header = request_header(api_key, version, correlation_id, client_id);
    sized(buf, |buf| {
        header.encode(buf, api_key.request_header_version(version))?;
        body.encode(buf, version)
    })
}

/// Appends one complete response frame (for test brokers): size, header
/// (v0, or v1 for flexible versions except ApiVersions) and `body`.
pub fn encode_response<R: Response>(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..ResponseHeader::default()
    };
    sized(buf, |buf| {
        header.encode(buf, R::API_KEY.response_header_version(version))?;
        body.encode(buf, version)
    })
}

/// [`encode_response`] for a body chosen at run time.
pub fn encode_response_body(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..ResponseHeader::default()
    };
    sized(buf, |buf| {
        header.encode(buf, body.api_key().response_header_version(version))?;
        body.encode(buf, version)
    })
}

/// Splits one complete size-prefixed frame off the front of `buf` and
/// returns it without the prefix.
///
/// `Ok(None)` means more bytes are needed (nothing is consumed). A negative
/// size, or one above `max_frame`, is an error as soon as the 4 size bytes
/// are in; nothing is allocated for it.
pub fn decode_frame(buf: &mut BytesMut, max_frame: usize) -> Result<Option<Bytes>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(DecodeError::NegativeLength {
            what: "frame size",
            len: size.into(),
        });
    }
    let size = size as usize;
    if size > max_frame {
        return Err(DecodeError::TooLarge {
            what: "frame",
            len: size as u64,
            limit: max_frame as u64,
        });
    }
    if buf.len() - 4 < size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// The correlation id of a response frame (its first 4 bytes in every
/// response header version), without decoding anything else.
pub fn peek_correlation_id(frame: &Bytes) -> Result<i32, DecodeError> {
    match frame.get(..4) {
        Some(b) => Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(DecodeError::Truncated {
            what: "response header",
            needed: 4,
            remaining: frame.len(),
        }),
    }
}

fn finish(frame: &Bytes, what: &'static str) -> Result<(), DecodeError> {
    if frame.has_remaining() {
        Err(DecodeError::TrailingBytes {
            what,
            remaining: frame.remaining(),
        })
    } else {
        Ok(())
    }
}

fn decode_response_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<i32, DecodeError> {
    let header = ResponseHeader::decode(frame, api_key.response_header_version(version))?;
    Ok(header.correlation_id)
}

/// Decodes a response frame of type `R` at `version` (the request's
/// version): returns the correlation id and the body.
///
/// `api_key` must be `R::API_KEY`; it is taken explicitly so that call sites
/// read the same as [`decode_response_body`].
pub fn decode_response<R: Response>(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(i32, R), DecodeError> {
    if api_key != R::API_KEY {
        return Err(DecodeError::Invalid {
            what: R::NAME,
            reason: format!("asked to decode it as a {api_key} response"),
        });
    }
    let correlation_id = decode_response_header(&mut frame, api_key, version)?;
    let body = R::decode(&mut frame, version)?;
    finish(&frame, R::NAME)?;
    Ok((correlation_id, body))
}

/// Decodes a response frame of any API: returns the correlation id and the body.
pub fn decode_response_body(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseBody), DecodeError> {
    let correlation_id = decode_response_header(&mut frame, api_key, version)?;
    let body = ResponseBody::decode(api_key, version, &mut frame)?;
    finish(&frame, api_key.name())?;
    Ok((correlation_id, body))
}

/// The API key and version of a request frame, read from its first 4 bytes.
///
/// A broker uses this to answer requests it cannot decode (for example an
/// ApiVersions request of a newer version) with an error response.
pub fn peek_request_api(frame: &Bytes) -> Result<(i16, i16), DecodeError> {
    match frame.get(..4) {
        Some(b) => Ok((
            i16::from_be_bytes([b[0], b[1]]),
            i16::from_be_bytes([b[2], b[3]]),
        )),
        None => Err(DecodeError::Truncated {
            what: "request header",
            needed: 4,
            remaining: frame.len(),
        }),
    }
}

/// Decodes a request frame (for test brokers): the header, whose API key
/// and version select the body type.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    let (key, version) = peek_request_api(&frame)?;
    let api_key = ApiKey::from_i16(key).ok_or(DecodeError::UnknownApiKey(key))?;
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))?;
    let body = RequestBody::decode(api_key, version, &mut frame)?;
    finish(&frame, api_key.name())?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::api_versions_response::ApiVersion;
    use crate::messages::{
        ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    };

    const MAX: usize = 1 << 20;

    fn api_versions_request() -> ApiVersionsRequest {
        ApiVersionsRequest {
            client_software_name: "kafkit".into(),
            client_software_version: "0.1.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn request_frame_bytes_classic_and_flexible() {
        // ApiVersions v0: header v1 (key 18, version 0, correlation 7, client "ab"), empty body.
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 7, Some("ab"), 5, &api_versions_request()).unwrap_err();
        assert!(buf.is_empty(), "a failed encode appends nothing");
        encode_request(&mut buf, 7, Some("ab"), 0, &ApiVersionsRequest::default()).unwrap();
        assert_eq!(
            &buf[..],
            &[0, 0, 0, 12, 0, 18, 0, 0, 0, 0, 0, 7, 0, 2, b'a', b'b']
        );

        // v3: header v2 (classic client id, empty tagged section), compact strings.
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, None, 3, &api_versions_request()).unwrap();
        let mut want = vec![0, 0, 0, 25, 0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0];
        want.extend_from_slice(b"\x07kafkit\x060.1.0\x00");
        assert_eq!(&buf[..], &want[..]);
    }

    #[test]
    fn incomplete_frame_needs_more_bytes() {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, Some("c"), 3, &api_versions_request()).unwrap();
        let full = buf.clone();
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(decode_frame(&mut part, MAX).unwrap(), None, "cut at {cut}");
            assert_eq!(part.len(), cut, "nothing consumed");
        }
        // Two frames back to back, then a partial third.
        let mut stream = BytesMut::new();
        stream.extend_from_slice(&full);
        stream.extend_from_slice(&full);
        stream.extend_from_slice(&full[..5]);
        assert_eq!(
            decode_frame(&mut stream, MAX).unwrap().unwrap(),
            Bytes::copy_from_slice(&full[4..])
        );
        assert!(decode_frame(&mut stream, MAX).unwrap().is_some());
        assert_eq!(decode_frame(&mut stream, MAX).unwrap(), None);
        assert_eq!(stream.len(), 5);
    }

    #[test]
    fn negative_and_oversize_frames_are_errors() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(
            decode_frame(&mut buf, MAX),
            Err(DecodeError::NegativeLength {
                what: "frame size",
                len: -2
            })
        );
        // Only the size is present: the error comes before any allocation.
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            decode_frame(&mut buf, MAX),
            Err(DecodeError::TooLarge {
                what: "frame",
                len: i32::MAX as u64,
                limit: MAX as u64
            })
        );
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert!(decode_frame(&mut buf, 2).is_err());
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        assert_eq!(decode_frame(&mut buf, 0).unwrap().unwrap().len(), 0);
    }

    #[test]
    fn request_round_trip_through_decode_request() {
        for version in 0..=4 {
            let body = if version >= 3 {
                api_versions_request()
            } else {
                ApiVersionsRequest::default()
            };
            let mut buf = BytesMut::new();
            encode_request(&mut buf, 42, Some("client-1"), version, &body).unwrap();
            let frame = decode_frame(&mut buf, MAX).unwrap().unwrap();
            assert!(buf.is_empty());
            assert_eq!(peek_request_api(&frame).unwrap(), (18, version));
            let (header, decoded) = decode_request(frame).unwrap();
            assert_eq!(header.correlation_id, 42);
            assert_eq!(header.client_id.as_deref(), Some("client-1"));
            assert_eq!(header.request_api_version, version);
            assert_eq!(decoded, RequestBody::ApiVersions(body));
        }
        // Dynamic encoding gives the same bytes as the typed one.
        let mut a = BytesMut::new();
        let mut b = BytesMut::new();
        let req = MetadataRequest {
            topics: None,
            ..Default::default()
        };
        encode_request(&mut a, 5, Some("x"), 12, &req).unwrap();
        encode_request_body(&mut b, 5, Some("x"), 12, &req.clone().into()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn response_round_trip_and_header_versions() {
        let body = ApiVersionsResponse {
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [0, 3] {
            let mut buf = BytesMut::new();
            encode_response(&mut buf, 9, version, &body).unwrap();
            // ApiVersions responses always use header v0: the body follows the correlation id directly.
            assert_eq!(&buf[4..10], &[0, 0, 0, 9, 0, 0]);
            let frame = decode_frame(&mut buf, MAX).unwrap().unwrap();
            assert_eq!(peek_correlation_id(&frame).unwrap(), 9);
            let (cid, decoded) =
                decode_response::<ApiVersionsResponse>(frame.clone(), ApiKey::ApiVersions, version)
                    .unwrap();
            assert_eq!((cid, &decoded), (9, &body));
            let (cid, any) =
                decode_response_body(ApiKey::ApiVersions, version, frame.clone()).unwrap();
            assert_eq!((cid, any), (9, ResponseBody::ApiVersions(body.clone())));
            assert!(
                decode_response::<ApiVersionsResponse>(frame, ApiKey::Metadata, version).is_err()
            );
        }
        // A flexible Metadata response has header v1: correlation id then an empty tagged section.
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 3, 12, &MetadataResponse::default()).unwrap();
        assert_eq!(&buf[4..9], &[0, 0, 0, 3, 0]);
        let mut buf2 = BytesMut::new();
        encode_response_body(&mut buf2, 3, 12, &MetadataResponse::default().into()).unwrap();
        assert_eq!(buf, buf2);
        let frame = decode_frame(&mut buf, MAX).unwrap().unwrap();
        let (cid, m) = decode_response::<MetadataResponse>(frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!((cid, m), (3, MetadataResponse::default()));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 1, 0, &ApiVersionsResponse::default()).unwrap();
        buf.put_u8(0xaa);
        let frame = buf.freeze().slice(4..);
        let err = decode_response::<ApiVersionsResponse>(frame.clone(), ApiKey::ApiVersions, 0)
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::TrailingBytes {
                what: "ApiVersionsResponse",
                remaining: 1
            }
        );
        assert!(matches!(
            decode_response_body(ApiKey::ApiVersions, 0, frame),
            Err(DecodeError::TrailingBytes { remaining: 1, .. })
        ));

        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, None, 0, &ApiVersionsRequest::default()).unwrap();
        buf.put_u8(0);
        let frame = buf.freeze().slice(4..);
        assert!(matches!(
            decode_request(frame),
            Err(DecodeError::TrailingBytes { remaining: 1, .. })
        ));
    }

    #[test]
    fn malformed_requests_are_typed_errors() {
        assert_eq!(
            decode_request(Bytes::from_static(&[0x7f, 0x00, 0, 0])),
            Err(DecodeError::UnknownApiKey(0x7f00))
        );
        assert!(
            decode_request(Bytes::from_static(&[0, 18]))
                .unwrap_err()
                .is_truncated()
        );
        // ApiVersions v99 is not defined.
        let frame = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 1, 0, 0, 0]);
        assert!(matches!(
            decode_request(frame),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        assert!(peek_correlation_id(&Bytes::from_static(&[1, 2])).is_err());
    }
}
