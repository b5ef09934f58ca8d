//! Rebootstrap (KIP-899, KIP-1102) on three Apache Kafka nodes: every
//! broker is replaced at once by one at another address, as a redeployment
//! onto new hosts does, while an idempotent writer produces and a group of
//! two kafkit `Reader`s consumes at-least-once.
//!
//! The clients bootstrap from the six addresses: the three the cluster
//! advertises at first (proxies in front of the nodes), and the three it
//! advertises after the redeployment (other proxies in front of the same
//! nodes), where nothing answers for the cluster before. A quarter of the
//! way in the nodes are killed together, the first three addresses go dark
//! for good (every connection closed, every new one too), and the nodes
//! start again with their data, advertised at the other three
//! (`ClusterScenario::redeploy`). No broker the clients know answers again:
//! only the bootstrap list leads to the cluster.
//!
//! Checked: the writer delivers every record once and in order per
//! partition, the group skips none, and each transport got there through
//! its bootstrap list (`Transport::rebootstraps`). A writer whose transport
//! may not rebootstrap (`MetadataRecovery::None`, Java's behaviour before
//! Kafka 3.8) is the control: its record written after the redeployment
//! fails at its delivery timeout, and it never rebootstraps.
//!
//! CI size: 20,000 records over 20 s; `KAFKIT_RELIABILITY_FULL=1`: 300,000
//! over 120 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_conn::{MetadataRecovery, Transport, TransportConfig};
use kafkit_tests::{
    ClusterScenario, GroupRun, Pacing, check_consumed, check_written, unique_topic, write_paced,
};
use kafkit_writer::{Message, Writer};

const PARTITIONS: usize = 6;
/// The group has stopped when no record was processed for this long: the
/// cluster is away while three JVMs start on a loaded machine.
const STALL: Duration = Duration::from_secs(180);

fn pacing() -> Pacing {
    Pacing::sized(
        Pacing {
            records: 20_000,
            span: Duration::from_secs(20),
        },
        Pacing {
            records: 300_000,
            span: Duration::from_secs(120),
        },
    )
}

async fn transport(bootstrap: &str) -> Transport {
    Transport::connect(TransportConfig::new(bootstrap.split(',')))
        .await
        .expect("the transport bootstraps")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_groups_follow_a_cluster_whose_brokers_all_moved() {
    // The client's logs only on request (say RUST_LOG=kafkit_conn=debug).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let start = Instant::now();
    let cluster = Arc::new(tokio::task::block_in_place(|| ClusterScenario::start(&[])));
    eprintln!("cluster up after {:?}", start.elapsed());
    let bootstrap = format!("{},{}", cluster.bootstrap(), cluster.redeployed_bootstrap());
    let topic = unique_topic("rebootstrap");
    // The control writer's own topic: the checkers read ids only.
    let control = unique_topic("rebootstrap-control");
    tokio::task::block_in_place(|| {
        cluster.create_topic(&topic, PARTITIONS);
        cluster.create_topic(&control, 1);
    });

    let group = Arc::new(GroupRun::new(&bootstrap, &topic, pacing().records));
    group.spawn_member(None);
    group.spawn_member(None);

    let stuck = Writer::builder(bootstrap.split(','))
        .metadata_recovery(MetadataRecovery::None)
        .topic(&control)
        .delivery_timeout(Duration::from_secs(20))
        .build()
        .await
        .expect("the control writer builds");
    stuck
        .send(Message::new("before"))
        .await
        .expect("buffered")
        .await
        .expect("the control writer delivers before the redeployment");

    let moving = transport(&bootstrap).await;
    let for_fault = cluster.clone();
    let written = write_paced(
        Writer::with_transport(moving.clone()),
        &topic,
        pacing(),
        move || {
            eprintln!("redeploying every node");
            let away = for_fault.redeploy();
            eprintln!("the cluster was away for {away:?}");
        },
    )
    .await;
    tokio::task::block_in_place(|| check_written(&cluster, "redeploy", &topic, pacing(), &written));
    assert!(
        moving.rebootstraps() >= 1,
        "the writer's transport found the cluster without its bootstrap list"
    );

    let consumed = group.finish(STALL).await;
    check_consumed("redeploy_group", pacing().records, &consumed);

    let after = stuck
        .send(Message::new("after"))
        .await
        .expect("buffered")
        .await;
    assert!(
        after.is_err(),
        "a writer that may not rebootstrap delivered to a cluster it cannot know: {after:?}"
    );
    assert_eq!(stuck.transport().rebootstraps(), 0);
    let _ = stuck.close().await;
    eprintln!("done in {:?}", start.elapsed());
}
