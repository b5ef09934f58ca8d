//! [`TransportStats`]: what a [`Transport`]'s connections did, per broker,
//! in the spirit of librdkafka's statistics (`brokers` with their round
//! trip percentiles, in-flight and waiting requests).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Transport, lock};
use crate::Stats;

/// A snapshot of a [`Transport`], from [`Transport::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TransportStats {
    /// One entry per broker address with a live pooled connection, in
    /// address order.
    pub brokers: Vec<BrokerStats>,
    /// Connections dialled so far.
    pub connections_created: u64,
    /// Metadata requests sent so far.
    pub metadata_requests: u64,
    /// Times a refresh went back to the bootstrap list (KIP-899).
    pub rebootstraps: u64,
    /// How old the metadata is.
    pub metadata_age: Duration,
}

/// One broker's connections, summed over the pool's purposes (produce,
/// fetch, group, admin). Counters run from each connection's dial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BrokerStats {
    /// `host:port`.
    pub addr: String,
    /// Its node id, when the metadata names it.
    pub node_id: Option<i32>,
    /// Live pooled connections to it.
    pub connections: usize,
    /// The connections' counters, round trips and in-flight requests,
    /// summed.
    pub stats: Stats,
}

impl Transport {
    /// A snapshot of the live connections' counters, per broker, and of
    /// the metadata's.
    pub fn stats(&self) -> TransportStats {
        let cluster = self.snapshot();
        let node_ids: BTreeMap<String, i32> = cluster
            .brokers()
            .values()
            .map(|b| (b.addr(), b.id))
            .collect();
        let mut brokers: BTreeMap<String, BrokerStats> = BTreeMap::new();
        for ((addr, _), conn) in lock(&self.inner.pool).iter() {
            if conn.is_closed() {
                continue;
            }
            let entry = brokers.entry(addr.clone()).or_insert_with(|| BrokerStats {
                addr: addr.clone(),
                node_id: node_ids.get(addr).copied(),
                ..BrokerStats::default()
            });
            entry.connections += 1;
            add(&mut entry.stats, &conn.stats());
        }
        let inner = &self.inner;
        TransportStats {
            brokers: brokers.into_values().collect(),
            connections_created: inner.connections_created.load(Ordering::Relaxed),
            metadata_requests: inner.metadata_requests.load(Ordering::Relaxed),
            rebootstraps: inner.rebootstraps.load(Ordering::Relaxed),
            metadata_age: cluster.age(),
        }
    }
}

/// Adds one connection's counters to a broker's.
fn add(sum: &mut Stats, one: &Stats) {
    sum.in_flight += one.in_flight;
    sum.waiting += one.waiting;
    sum.rtt.merge(&one.rtt);
    sum.requests += one.requests;
    sum.responses += one.responses;
    sum.errors += one.errors;
    sum.timeouts += one.timeouts;
    sum.bytes_written += one.bytes_written;
    sum.bytes_read += one.bytes_read;
}
