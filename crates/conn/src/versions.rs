//! ApiVersions negotiation (KIP-35, KIP-511) and per-API version choice.
//!
//! On open, [`negotiate`] asks the broker which versions of each API it
//! speaks. It starts at the highest ApiVersions version kafkit supports
//! (v4, carrying the client's software name and version). A broker that does
//! not know that version answers `UNSUPPORTED_VERSION` with a v0 body that
//! lists its own ApiVersions range; we retry once at the highest version
//! both sides know, falling back to v0.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafkit_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafkit_protocol::{ApiKey, DecodeError, ErrorCode, Message, VersionRange, frame};

use crate::{Conn, Error, ErrorKind};

/// The software name sent in ApiVersions v3+ (KIP-511).
pub const CLIENT_SOFTWARE_NAME: &str = "kafkit";
/// The software version sent in ApiVersions v3+ (KIP-511).
pub const CLIENT_SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version ranges one broker advertised, by API key, and the
/// cluster-wide finalized feature levels it knew of (ApiVersions v3+,
/// KIP-584), such as `transaction.version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerVersions {
    ranges: HashMap<i16, VersionRange>,
    features: HashMap<String, i16>,
    features_epoch: i64,
}

impl BrokerVersions {
    /// From an ApiVersions response.
    pub fn from_response(response: &ApiVersionsResponse) -> BrokerVersions {
        let ranges = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
            .collect();
        // The features are valid only with a known epoch.
        let features = if response.finalized_features_epoch >= 0 {
            response
                .finalized_features
                .iter()
                .map(|f| (f.name.clone(), f.max_version_level))
                .collect()
        } else {
            HashMap::new()
        };
        BrokerVersions {
            ranges,
            features,
            features_epoch: response.finalized_features_epoch,
        }
    }

    /// The finalized (cluster-wide) level of feature `name`, such as
    /// `transaction.version`, when the broker named one: `None` from
    /// brokers before ApiVersions v3 or that left the feature out.
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    /// The epoch of the finalized features; -1 when unknown.
    pub fn finalized_features_epoch(&self) -> i64 {
        self.features_epoch
    }

    /// The range the broker advertised for `api`, if any.
    pub fn range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&api.as_i16()).copied()
    }

    /// The highest version of `api` both sides speak. kafkit's side is the
    /// API's *stable* versions: a latest version Kafka marks unstable (such
    /// as InitProducerId's newest) is never negotiated.
    pub fn version_for(&self, api: ApiKey) -> Result<i16, Error> {
        let ours = api.stable_versions();
        let broker = self.range(api);
        broker
            .and_then(|b| ours.intersect(&b))
            .map(|common| common.max)
            .ok_or_else(|| {
                Error::new(ErrorKind::UnsupportedVersion { api, ours, broker }).with_api(api)
            })
    }
}

/// What one ApiVersions attempt told us.
#[derive(Debug)]
enum Answer {
    Versions(BrokerVersions),
    /// The broker refused with another error code.
    Failed(ErrorCode),
    /// The broker does not speak the version we sent; retry at this one.
    RetryAt(i16),
}

/// Reads an ApiVersions response sent at `version`.
///
/// A broker that does not support `version` answers with a v0 body and
/// `UNSUPPORTED_VERSION` (KIP-511), so a frame that does not decode at
/// `version` is tried again as v0 before it counts as corrupt.
fn read_answer(frame: Bytes, version: i16) -> Result<Answer, DecodeError> {
    let api = ApiKey::ApiVersions;
    let response = match frame::decode_response::<ApiVersionsResponse>(frame.clone(), api, version)
    {
        Ok((_, response)) => response,
        Err(first) if version > 0 => match frame::decode_response(frame.clone(), api, 0) {
            Ok((_, response)) => response,
            Err(_) if refuses_version(&frame) => return Ok(Answer::RetryAt(0)),
            Err(_) => return Err(first),
        },
        Err(e) => return Err(e),
    };
    match response.error_code {
        ErrorCode::UNSUPPORTED_VERSION if version > 0 => {
            let theirs = BrokerVersions::from_response(&response).range(api);
            let retry = theirs.map_or(0, |r| r.max.min(version - 1).max(0));
            Ok(Answer::RetryAt(retry))
        }
        ErrorCode::NONE => Ok(Answer::Versions(BrokerVersions::from_response(&response))),
        code => Ok(Answer::Failed(code)),
    }
}

/// True when a response `frame` (correlation id, then body) that decodes at
/// no version still starts its body with `UNSUPPORTED_VERSION`.
/// librdkafka's mock cluster (2.16) answers a flexible ApiVersions version
/// it lacks with such a body (a one-byte key count, no tagged fields); v0,
/// which every broker speaks, is then the version to retry at.
fn refuses_version(frame: &[u8]) -> bool {
    frame.get(4..6) == Some(&ErrorCode::UNSUPPORTED_VERSION.0.to_be_bytes()[..])
}

/// Runs the ApiVersions exchange on a fresh connection and stores the
/// result in it.
pub(crate) async fn negotiate(conn: &Conn, timeout: Option<Duration>) -> Result<(), Error> {
    let mut version = ApiVersionsRequest::VERSIONS.max;
    let request = ApiVersionsRequest {
        client_software_name: CLIENT_SOFTWARE_NAME.into(),
        client_software_version: CLIENT_SOFTWARE_VERSION.into(),
        ..Default::default()
    };
    // At most two rounds: the version we want, then the broker's.
    for _ in 0..2 {
        let frame = conn.roundtrip_typed(version, &request, timeout).await?;
        let answer = read_answer(frame, version).map_err(|e| {
            let e = Error::from(e).with_api(ApiKey::ApiVersions);
            conn.poison(e.clone());
            e.with_broker(conn.addr())
        })?;
        match answer {
            Answer::Failed(code) => {
                return Err(Error::check(code, None)
                    .unwrap_err()
                    .with_api(ApiKey::ApiVersions)
                    .with_broker(conn.addr()));
            }
            Answer::Versions(versions) => {
                let _ = conn.shared().versions.set(versions);
                return Ok(());
            }
            Answer::RetryAt(v) => version = v,
        }
    }
    Err(Error::check(ErrorCode::UNSUPPORTED_VERSION, None)
        .unwrap_err()
        .with_api(ApiKey::ApiVersions)
        .with_message("the broker rejected every ApiVersions version")
        .with_broker(conn.addr()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    use crate::fake_broker::api_versions_response as response;

    fn frame_of(body: &ApiVersionsResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        frame::encode_response(&mut buf, 1, version, body).unwrap();
        frame::decode_frame(&mut buf, 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn picks_highest_common_version() {
        let v = BrokerVersions::from_response(&response(
            ErrorCode::NONE,
            &[(ApiKey::Produce, 0, 11), (ApiKey::Fetch, 0, 17)],
        ));
        assert_eq!(v.version_for(ApiKey::Produce).unwrap(), 11);
        assert_eq!(v.version_for(ApiKey::Fetch).unwrap(), 17);
    }

    #[test]
    fn finalized_features_count_only_with_a_known_epoch() {
        use kafkit_protocol::messages::api_versions_response::FinalizedFeatureKey;
        let mut r = response(ErrorCode::NONE, &[(ApiKey::Produce, 0, 13)]);
        r.finalized_features = vec![FinalizedFeatureKey {
            name: "transaction.version".into(),
            max_version_level: 2,
            min_version_level: 2,
            ..Default::default()
        }];
        r.finalized_features_epoch = 7;
        let v = BrokerVersions::from_response(&r);
        assert_eq!(v.finalized_feature("transaction.version"), Some(2));
        assert_eq!(v.finalized_feature("group.version"), None);
        assert_eq!(v.finalized_features_epoch(), 7);
        r.finalized_features_epoch = -1;
        let v = BrokerVersions::from_response(&r);
        assert_eq!(v.finalized_feature("transaction.version"), None);
    }

    #[test]
    fn never_negotiates_an_unstable_version() {
        let api = ApiKey::InitProducerId;
        let v = BrokerVersions::from_response(&response(ErrorCode::NONE, &[(api, 0, i16::MAX)]));
        assert_eq!(v.version_for(api).unwrap(), api.max_stable_version());
    }

    #[test]
    fn missing_or_disjoint_api_is_unsupported_naming_both_ranges() {
        let v = BrokerVersions::from_response(&response(ErrorCode::NONE, &[(ApiKey::Fetch, 0, 3)]));
        let e = v.version_for(ApiKey::Fetch).unwrap_err();
        match e.kind() {
            ErrorKind::UnsupportedVersion { api, broker, .. } => {
                assert_eq!(*api, ApiKey::Fetch);
                assert_eq!(*broker, Some(VersionRange::new(0, 3)));
            }
            other => panic!("{other:?}"),
        }
        let e = v.version_for(ApiKey::Produce).unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
    }

    #[test]
    fn unsupported_version_answer_retries_at_the_brokers_version() {
        // An older broker answers a v4 request with a v0 body (KIP-511).
        let old = response(
            ErrorCode::UNSUPPORTED_VERSION,
            &[(ApiKey::ApiVersions, 0, 2)],
        );
        match read_answer(frame_of(&old, 0), 4).unwrap() {
            Answer::RetryAt(v) => assert_eq!(v, 2),
            other => panic!("{other:?}"),
        }
        // Without its own range listed, fall back to v0.
        let bare = response(ErrorCode::UNSUPPORTED_VERSION, &[]);
        assert!(matches!(
            read_answer(frame_of(&bare, 0), 3).unwrap(),
            Answer::RetryAt(0)
        ));
    }

    #[test]
    fn librdkafka_mock_refusal_of_a_flexible_version_retries_at_v0() {
        // The bytes librdkafka 2.16's mock cluster sends back for an
        // ApiVersions v4 request: correlation id 7, UNSUPPORTED_VERSION,
        // then a body that is neither v0 nor v4.
        let frame = Bytes::from_static(&[0, 0, 0, 7, 0, 0x23, 1, 0, 0x12, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert!(matches!(read_answer(frame, 4).unwrap(), Answer::RetryAt(0)));
    }

    #[test]
    fn a_normal_answer_decodes_at_the_sent_version() {
        let ok = response(ErrorCode::NONE, &[(ApiKey::Metadata, 0, 12)]);
        match read_answer(frame_of(&ok, 3), 3).unwrap() {
            Answer::Versions(v) => assert_eq!(v.version_for(ApiKey::Metadata).unwrap(), 12),
            other => panic!("{other:?}"),
        }
        assert!(read_answer(Bytes::from_static(b"\0\0\0\x01garbage"), 3).is_err());
    }
}
