//! What the transport counts for tests and client telemetry: Metadata
//! requests sent, rebootstraps, connections dialled, and each broker's round trips
//! (from the pooled connections' windows); and the brokers ordered as a
//! metadata refresh asks them, for telemetry's choice of broker.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::{Inner, Transport, lock};
use crate::telemetry::WindowTotals;

impl Transport {
    /// Metadata requests sent so far (bootstrap, refreshes and lookups),
    /// failed ones included: how a test tells that a leader change was
    /// followed without a metadata round trip (KIP-951).
    pub fn metadata_requests(&self) -> u64 {
        self.inner.metadata_requests.load(Ordering::Relaxed)
    }

    /// Connections dialled so far (client telemetry).
    pub(crate) fn connections_created(&self) -> u64 {
        self.inner.connections_created.load(Ordering::Relaxed)
    }

    /// Round trips answered since the previous call, per broker address
    /// (client telemetry).
    pub(crate) fn take_latencies(&self) -> HashMap<String, WindowTotals> {
        self.inner.take_latencies()
    }

    /// Refreshes answered by a bootstrap address after the first metadata
    /// (KIP-899, KIP-1102): how a test tells that the transport found a
    /// moved cluster again through its bootstrap list.
    pub fn rebootstraps(&self) -> u64 {
        self.inner.rebootstraps.load(Ordering::Relaxed)
    }

    /// The addresses in the order a metadata refresh asks them: known
    /// brokers, least loaded first, and the bootstrap addresses (see
    /// `rebootstrap.rs`).
    pub(crate) fn brokers_least_loaded_first(&self) -> Vec<String> {
        self.inner
            .metadata_ask_order()
            .addrs
            .into_iter()
            .map(|(addr, _)| addr)
            .collect()
    }
}

impl Inner {
    /// The round trips answered on each pooled connection since the
    /// previous call, merged per broker address.
    fn take_latencies(&self) -> HashMap<String, WindowTotals> {
        let mut out: HashMap<String, WindowTotals> = HashMap::new();
        for ((addr, _), conn) in lock(&self.pool).iter() {
            let window = conn.shared.counters.latency.take();
            let merged = out.get(addr).copied().unwrap_or_default().merge(window);
            out.insert(addr.clone(), merged);
        }
        out
    }
}
