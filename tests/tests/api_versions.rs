//! A client asks the broker which API versions it speaks (ApiVersions).

use std::collections::BTreeSet;

use kafkit_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafkit_protocol::{ErrorCode, VersionRange};
use kafkit_tests::{RawClient, TestBroker, advertised};

/// Every API a client needs to produce and consume, with kafkit's range.
const CORE_APIS: [ApiKey; 3] = [ApiKey::Produce, ApiKey::Fetch, ApiKey::Metadata];

#[test]
fn broker_advertises_produce_fetch_and_metadata_at_v0() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());

    // v0 is the one request every broker must answer, and its request body is empty.
    let response = client.request(0, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, ErrorCode::NONE);
    for key in CORE_APIS {
        let broker_range =
            advertised(&response, key).unwrap_or_else(|| panic!("{key} is not advertised"));
        assert!(
            broker_range.min <= broker_range.max,
            "{key}: empty range {broker_range:?}"
        );
        assert!(
            broker_range.intersect(&key.request_versions()).is_some(),
            "{key}: the broker speaks {broker_range:?}, kafkit {:?}",
            key.request_versions()
        );
    }
    if broker.is_tansu() {
        assert_eq!(
            advertised(&response, ApiKey::Produce),
            Some(VersionRange::new(0, 11))
        );
        assert_eq!(
            advertised(&response, ApiKey::Fetch),
            Some(VersionRange::new(0, 17))
        );
        assert_eq!(
            advertised(&response, ApiKey::Metadata),
            Some(VersionRange::new(0, 12))
        );
        assert_eq!(
            advertised(&response, ApiKey::ApiVersions),
            Some(VersionRange::new(0, 4))
        );
        assert_eq!(
            advertised(&response, ApiKey::CreateTopics),
            Some(VersionRange::new(0, 7))
        );
        assert_eq!(
            advertised(&response, ApiKey::DeleteTopics),
            Some(VersionRange::new(0, 6))
        );
    }
    // Fields from later versions are absent at v0 and so take their defaults.
    assert_eq!(response.throttle_time_ms, 0);
    assert!(response.supported_features.is_empty());
    assert!(response.unknown_tagged_fields.is_empty());
}

#[test]
fn api_versions_v3_decodes_the_brokers_tagged_fields() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());

    // v3 is flexible: the request header is v2, but the response header stays
    // v0 (KIP-511), and tansu's body ends with four tagged fields (tags 0-3).
    let v3 = client.api_versions(3);
    let v0 = client.request(0, &ApiVersionsRequest::default());

    // The broker's whole answer decoded: the same APIs as at v0, and every
    // tagged field was a known one, so none were kept as unknown.
    let keys = |r: &kafkit_protocol::messages::ApiVersionsResponse| {
        r.api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&v3), keys(&v0));
    assert!(
        v3.unknown_tagged_fields.is_empty(),
        "unknown tagged fields: {:?}",
        v3.unknown_tagged_fields
    );
    assert!(
        v3.api_keys
            .iter()
            .all(|k| k.unknown_tagged_fields.is_empty())
    );
    if broker.is_tansu() {
        // tansu sends the four fields with these values (BROKERS.md).
        assert!(v3.supported_features.is_empty());
        assert_eq!(v3.finalized_features_epoch, -1);
        assert!(v3.finalized_features.is_empty());
        assert!(!v3.zk_migration_ready);
    }
}

#[test]
fn client_and_broker_agree_on_versions_for_the_core_apis() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    let produce = client.version::<kafkit_protocol::messages::ProduceRequest>();
    let fetch = client.version::<kafkit_protocol::messages::FetchRequest>();
    let metadata = client.version::<kafkit_protocol::messages::MetadataRequest>();
    if broker.is_tansu() {
        // kafkit speaks Produce 3-13, Fetch 4-18, Metadata 0-13; tansu tops out lower.
        assert_eq!((produce, fetch, metadata), (11, 17, 12));
    }
}
