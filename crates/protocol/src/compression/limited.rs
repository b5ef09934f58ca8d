//! Plumbing shared by the codecs: the size-limited reader every streaming
//! decoder goes through, and stand-ins for codecs disabled at compile time.

use std::io::{ErrorKind, Read};

use bytes::Bytes;

use super::corrupt;
use crate::DecodeError;

/// Largest read handed to a streaming decoder at once (and so the most the
/// output can overshoot before the limit check sees it).
const READ_CHUNK: usize = 64 * 1024;

/// Reads `reader` to its end into one buffer of at most `limit` bytes.
///
/// The buffer grows by doubling but never past `limit + 1` bytes; reading
/// the byte after `limit` is what proves the output too large. I/O errors
/// (which is how the streaming decoders report corrupt data) become
/// [`DecodeError::Decompression`].
#[cfg_attr(
    not(any(feature = "gzip", feature = "lz4", feature = "zstd")),
    allow(dead_code)
)]
pub(crate) fn read_limited<R: Read>(
    mut reader: R,
    codec: &'static str,
    limit: usize,
    size_hint: usize,
) -> Result<Bytes, DecodeError> {
    let cap = limit.saturating_add(1);
    let mut buf: Vec<u8> = Vec::with_capacity(size_hint.clamp(64, READ_CHUNK).min(cap));
    loop {
        if buf.len() == cap {
            return Err(DecodeError::DecompressedTooLarge { codec, limit });
        }
        if buf.len() == buf.capacity() {
            let target = buf.capacity().saturating_mul(2).clamp(64, cap);
            buf.reserve_exact(target - buf.len());
        }
        let start = buf.len();
        let end = buf.capacity().min(cap).min(start + READ_CHUNK);
        buf.resize(end, 0);
        match reader.read(&mut buf[start..end]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(Bytes::from(buf));
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => return Err(corrupt(codec, e)),
        }
    }
}

/// Stand-ins for codecs left out at compile time: same functions, each
/// failing with the `CompressionNotEnabled` error.
#[allow(unused_macros)]
macro_rules! disabled_codec {
    ($module:ident, $name:literal) => {
        #[allow(dead_code)]
        mod $module {
            use bytes::{Bytes, BytesMut};

            use crate::{DecodeError, EncodeError};

            pub(super) fn compress(
                _: Option<i32>,
                _: &[u8],
                _: &mut BytesMut,
            ) -> Result<(), EncodeError> {
                Err(EncodeError::CompressionNotEnabled($name))
            }
            pub(super) fn compress_legacy(
                _: Option<i32>,
                _: &[u8],
                _: &mut BytesMut,
            ) -> Result<(), EncodeError> {
                Err(EncodeError::CompressionNotEnabled($name))
            }
            pub(super) fn compress_raw(_: &[u8], _: &mut BytesMut) -> Result<(), EncodeError> {
                Err(EncodeError::CompressionNotEnabled($name))
            }
            pub(super) fn decompress(_: &[u8], _: usize) -> Result<Bytes, DecodeError> {
                Err(DecodeError::CompressionNotEnabled($name))
            }
            pub(super) fn decompress_legacy(_: &[u8], _: usize) -> Result<Bytes, DecodeError> {
                Err(DecodeError::CompressionNotEnabled($name))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_limited_stops_one_byte_past_limit() {
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                buf.fill(7);
                Ok(buf.len())
            }
        }
        let mut src = Endless(0);
        let err = read_limited(&mut src, "test", 1_000_000, 0).unwrap_err();
        assert_eq!(
            err,
            DecodeError::DecompressedTooLarge {
                codec: "test",
                limit: 1_000_000
            }
        );
        assert_eq!(src.0, 1_000_001, "must not read past limit + 1");
        assert_eq!(
            read_limited(&b"abc"[..], "test", 3, 0).unwrap(),
            &b"abc"[..]
        );
    }
}
