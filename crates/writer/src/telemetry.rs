//! What a writer reports in client telemetry (KIP-714), named as the
//! Java producer names its metrics: acknowledged and failed records,
//! batches' queue time (creation to first send, as Java measures it per
//! batch) and produce answers' throttle times, in milliseconds. The
//! transport's connection and round-trip metrics are added by the
//! telemetry task; `transactional_id` is the resource label of a
//! transactional writer.

use std::sync::Arc;

use kafkit_conn::telemetry::{MetricsSource, Sample, push_window};
use kafkit_protocol::telemetry::Attribute;

use crate::sender::Shared;

const PREFIX: &str = "org.apache.kafka.producer.";

/// The writer's [`MetricsSource`].
pub(crate) struct WriterMetrics(pub(crate) Arc<Shared>);

impl MetricsSource for WriterMetrics {
    fn collect(&self, out: &mut Vec<Sample>) {
        let stats = &self.0.stats;
        let snapshot = stats.snapshot();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        out.push(Sample::counter(
            format!("{PREFIX}record.send.total"),
            count(snapshot.records),
        ));
        out.push(Sample::counter(
            format!("{PREFIX}record.error.total"),
            count(snapshot.errors),
        ));
        let queued = stats.queue_time.take();
        push_window(out, &format!("{PREFIX}record.queue.time"), queued, 1000.0);
        let throttled = stats.throttle.take();
        push_window(
            out,
            &format!("{PREFIX}produce.throttle.time"),
            throttled,
            1.0,
        );
    }

    fn resource(&self, out: &mut Vec<Attribute>) {
        if let Some(id) = &self.0.config.transactional_id {
            out.push(Attribute::string("transactional_id", id.to_string()));
        }
    }
}
