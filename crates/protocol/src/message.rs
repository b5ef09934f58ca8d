//! The traits every generated message implements, and version ranges.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::messages::ApiKey;

/// An inclusive range of protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The lowest version, inclusive.
    pub min: i16,
    /// The highest version, inclusive.
    pub max: i16,
}

impl VersionRange {
    /// A range from `min` to `max`, inclusive.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// True when `version` lies in the range.
    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The versions both ranges hold, or `None` when they do not overlap.
    ///
    /// A client uses the highest version of `ours.intersect(brokers)`.
    pub fn intersect(&self, other: &VersionRange) -> Option<VersionRange> {
        let r = VersionRange::new(self.min.max(other.min), self.max.min(other.max));
        (r.min <= r.max).then_some(r)
    }
}

/// A structure with a versioned wire encoding: every request, response,
/// header and data message generated from Kafka's JSON definitions.
pub trait Message: Sized + Clone + Debug + Default + PartialEq {
    /// The name in Kafka's definitions, for example `ProduceRequest`.
    const NAME: &'static str;
    /// The versions this message defines.
    const VERSIONS: VersionRange;
    /// The first version that uses the flexible encoding (KIP-482), if any.
    const FLEXIBLE_SINCE: Option<i16>;

    /// Appends the encoding of `self` at `version` to `buf`.
    ///
    /// Fails if `version` is not in [`Self::VERSIONS`], or if a field the
    /// version lacks holds a value that would be silently dropped.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;

    /// Decodes one value at `version` from the front of `buf`, advancing it.
    ///
    /// Byte fields (`bytes`, `records`) are zero-copy slices of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;

    /// True when `version` uses the flexible encoding.
    fn is_flexible(version: i16) -> bool {
        Self::FLEXIBLE_SINCE.is_some_and(|v| version >= v)
    }
}

/// A request body: names its API key and its response type.
pub trait Request: Message {
    /// The API key sent in the request header.
    const API_KEY: ApiKey;
    /// The response body the broker answers with.
    type Response: Response;

    /// Whether the broker answers this request at all. True for every
    /// request but a Produce with `acks = 0`, which the broker never
    /// answers; a client must not wait for it, and a broker must not reply.
    fn expects_response(&self) -> bool {
        true
    }
}

/// A response body.
pub trait Response: Message {
    /// The API key of the request this answers.
    const API_KEY: ApiKey;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{MetadataRequest, ProduceRequest};

    #[test]
    fn only_an_acks_zero_produce_goes_unanswered() {
        let produce = |acks| ProduceRequest {
            acks,
            ..Default::default()
        };
        assert!(!produce(0).expects_response());
        assert!(produce(1).expects_response());
        assert!(produce(-1).expects_response());
        assert!(MetadataRequest::default().expects_response());
    }

    #[test]
    fn version_ranges_intersect_or_not() {
        let ours = VersionRange::new(3, 13);
        assert_eq!(
            ours.intersect(&VersionRange::new(0, 11)),
            Some(VersionRange::new(3, 11))
        );
        assert_eq!(ours.intersect(&VersionRange::new(0, 2)), None);
    }
}
