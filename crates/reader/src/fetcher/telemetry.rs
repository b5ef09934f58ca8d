//! What a reader reports in client telemetry (KIP-714), named as the
//! Java consumer names its metrics: fetches answered, record bytes
//! fetched, each fetch's round trip (average and maximum in
//! milliseconds) and, for a group member, its assigned partitions. The
//! transport's connection and round-trip metrics are added by the
//! telemetry task; `group_id` and `group_instance_id` are the resource
//! labels of a group member.

use std::sync::Arc;

use kafkit_conn::telemetry::{MetricsSource, Sample, push_window};
use kafkit_protocol::telemetry::{Attribute, NumberValue};

use super::Fetcher;
use super::state::Shared;

const PREFIX: &str = "org.apache.kafka.consumer.";

/// A group member's labels.
#[derive(Debug, Clone)]
pub(crate) struct GroupLabels {
    pub(crate) group_id: String,
    pub(crate) instance_id: Option<String>,
}

/// A reader's [`MetricsSource`], over its fetcher's shared state.
pub(crate) struct ReaderMetrics {
    shared: Arc<Shared>,
    group: Option<GroupLabels>,
}

impl Fetcher {
    /// The metrics of a reader reading through this fetcher, a member of
    /// `group` if it has one.
    pub(crate) fn metrics_source(&self, group: Option<GroupLabels>) -> ReaderMetrics {
        ReaderMetrics {
            shared: self.shared.clone(),
            group,
        }
    }
}

impl MetricsSource for ReaderMetrics {
    fn collect(&self, out: &mut Vec<Sample>) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (counters, assigned) = {
            let st = self.shared.lock();
            (st.counters, st.parts.len())
        };
        out.push(Sample::counter(
            format!("{PREFIX}fetch.manager.fetch.total"),
            count(counters.fetches),
        ));
        out.push(Sample::counter(
            format!("{PREFIX}fetch.manager.bytes.consumed.total"),
            count(counters.bytes),
        ));
        let latency = self.shared.fetch_latency.take();
        push_window(
            out,
            &format!("{PREFIX}fetch.manager.fetch.latency"),
            latency,
            1000.0,
        );
        if self.group.is_some() {
            let assigned = i64::try_from(assigned).unwrap_or(i64::MAX);
            out.push(Sample::gauge(
                format!("{PREFIX}coordinator.assigned.partitions"),
                NumberValue::Int(assigned),
            ));
        }
    }

    fn resource(&self, out: &mut Vec<Attribute>) {
        if let Some(group) = &self.group {
            out.push(Attribute::string("group_id", group.group_id.clone()));
            if let Some(id) = &group.instance_id {
                out.push(Attribute::string("group_instance_id", id.clone()));
            }
        }
    }
}
