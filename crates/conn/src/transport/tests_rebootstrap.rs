//! Rebootstrapping (KIP-899, KIP-1102) against two in-process
//! [`FakeCluster`]s: the one the transport starts on, and the one that
//! replaces it at other addresses, both in the bootstrap list.

use std::time::Duration;

use super::fake_cluster::FakeCluster;
use super::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Bootstraps from `old`'s first broker, with `new`'s first broker listed
/// after it.
fn config(old: &FakeCluster, new: &FakeCluster, recovery: MetadataRecovery) -> TransportConfig {
    let mut config = TransportConfig::new([old.addr(1), new.addr(1)]);
    config.metadata_recovery = recovery;
    config.metadata_max_age = Duration::from_secs(600);
    config
}

fn ports(cluster: &Cluster) -> Vec<String> {
    let mut addrs: Vec<String> = cluster.brokers().values().map(Broker::addr).collect();
    addrs.sort();
    addrs
}

fn addrs(fake: &FakeCluster, n: i32) -> Vec<String> {
    let mut addrs: Vec<String> = (1..=n).map(|id| fake.addr(id)).collect();
    addrs.sort();
    addrs
}

async fn refresh(transport: &Transport) -> Result<Arc<Cluster>, Error> {
    tokio::time::timeout(LIMIT, transport.refresh_all_topics())
        .await
        .expect("the refresh ends")
}

#[tokio::test]
async fn a_cluster_that_moved_is_found_through_the_bootstrap_list() {
    let old = FakeCluster::start(2).await;
    let new = FakeCluster::start(2).await;
    let transport = Transport::connect(config(&old, &new, MetadataRecovery::Rebootstrap))
        .await
        .unwrap();
    assert_eq!(ports(&transport.snapshot()), addrs(&old, 2));
    assert_eq!(transport.rebootstraps(), 0);
    let old_addrs = addrs(&old, 2);
    drop(old);

    let cluster = refresh(&transport).await.unwrap();
    assert_eq!(ports(&cluster), addrs(&new, 2));
    assert_eq!(transport.rebootstraps(), 1);
    // The old brokers' connections left the pool with them.
    for addr in old_addrs {
        assert!(!transport.inner.has_live_conn(&addr));
    }
    // Known brokers answer again: no further rebootstrap.
    refresh(&transport).await.unwrap();
    assert_eq!(transport.rebootstraps(), 1);
}

#[tokio::test]
async fn without_recovery_a_cluster_that_moved_stays_lost() {
    let old = FakeCluster::start(2).await;
    let new = FakeCluster::start(2).await;
    let transport = Transport::connect(config(&old, &new, MetadataRecovery::None))
        .await
        .unwrap();
    drop(old);
    assert!(refresh(&transport).await.is_err());
    assert!(refresh(&transport).await.is_err());
    assert_eq!(transport.rebootstraps(), 0);
    assert!(
        new.metadata_count() == 0,
        "only the bootstrap list knows it"
    );
}

#[tokio::test]
async fn rebootstrap_required_sends_the_refresh_to_the_bootstrap_list() {
    let old = FakeCluster::start(2).await;
    let new = FakeCluster::start(2).await;
    let transport = Transport::connect(config(&old, &new, MetadataRecovery::Rebootstrap))
        .await
        .unwrap();
    old.state().rebootstrap_required.extend([1, 2]);
    let asked_before = old.metadata_count();

    let cluster = refresh(&transport).await.unwrap();
    assert_eq!(ports(&cluster), addrs(&new, 2));
    assert_eq!(transport.rebootstraps(), 1);
    // One known broker asked for it; the other was not asked.
    assert_eq!(old.metadata_count(), asked_before + 1);
}
