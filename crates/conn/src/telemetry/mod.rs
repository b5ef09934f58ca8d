//! Client telemetry (KIP-714): a client's metrics pushed to the cluster,
//! where an operator's metrics plugin on the brokers receives them. The
//! Java client and librdkafka push by default, as kafkit's writer and
//! reader do (`metrics_push` turns it off).
//!
//! A [`ClientTelemetry`] runs one task per client (a writer or a reader):
//! it asks a broker what to send (GetTelemetrySubscriptions), then pushes
//! the selected metrics once per interval (PushTelemetry) as OTLP
//! ([`kafkit_protocol::telemetry::otlp`]), compressed with the first codec
//! the broker accepts, and sends a last, terminating push at close. A
//! cluster whose brokers do not advertise the two APIs (no metrics plugin)
//! gets nothing, and the task ends.
//!
//! `state.rs` decides (sans-IO, time passed in), `samples.rs` turns the
//! samples into OTLP metrics (deltas for counters), `task.rs` performs.
//! The client supplies its samples through a [`MetricsSource`]; the task
//! adds the transport's own: connections created and, per broker, the
//! round trips of answered requests.

use std::sync::{Arc, Mutex};

use kafkit_protocol::Uuid;
use kafkit_protocol::telemetry::Attribute;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Transport;

mod samples;
mod state;
mod task;
mod window;

pub use samples::{Sample, SampleKind, push_window};
pub use window::{Window, WindowTotals};

/// The kind of client, which names its metrics
/// (`org.apache.kafka.producer.*` or `org.apache.kafka.consumer.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A writer.
    Producer,
    /// A reader.
    Consumer,
}

impl ClientKind {
    /// The prefix of this kind's metric names.
    pub fn prefix(self) -> &'static str {
        match self {
            ClientKind::Producer => "org.apache.kafka.producer.",
            ClientKind::Consumer => "org.apache.kafka.consumer.",
        }
    }
}

/// What a client reports at each push.
pub trait MetricsSource: Send + Sync + 'static {
    /// Appends the client's samples. Gauges that average or maximise over
    /// time cover the time since the previous call.
    fn collect(&self, out: &mut Vec<Sample>);

    /// Appends the client's resource attributes, such as `group_id` or
    /// `transactional_id` (KIP-714's standard client labels).
    fn resource(&self, out: &mut Vec<Attribute>) {
        let _ = out;
    }
}

/// What a client's telemetry did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    /// The instance id the cluster assigned, once one was.
    pub instance_id: Option<Uuid>,
    /// Subscriptions received.
    pub subscriptions: u64,
    /// Pushes answered without error (the terminating one included).
    pub pushes: u64,
    /// Why telemetry stopped for good, if it did (an unsupported cluster,
    /// an error code the client cannot recover from).
    pub stopped: Option<String>,
}

/// The telemetry of one client: a task that pushes its metrics until
/// [`close`](ClientTelemetry::close) or drop.
#[derive(Debug)]
pub struct ClientTelemetry {
    closing: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    stats: Arc<Mutex<TelemetryStats>>,
}

impl ClientTelemetry {
    /// Starts pushing `source`'s metrics, and the transport's, as a client
    /// of `kind`, through `transport`.
    pub fn start(transport: &Transport, kind: ClientKind, source: Arc<dyn MetricsSource>) -> Self {
        let (closing, closed) = watch::channel(false);
        let stats = Arc::new(Mutex::new(TelemetryStats::default()));
        let run = task::Run::new(transport.clone(), kind, source, stats.clone());
        let task = tokio::spawn(run.run(closed));
        ClientTelemetry {
            closing,
            task: Some(task),
            stats,
        }
    }

    /// A snapshot of what the telemetry did.
    pub fn stats(&self) -> TelemetryStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends the terminating push (if a subscription asked for metrics)
    /// and waits for the task to end: at most one second for the
    /// push's answer. Telemetry is best effort: nothing to report.
    ///
    /// Cancel safety: safe; the task finishes on its own.
    pub async fn close(&mut self) {
        let _ = self.closing.send(true);
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }
}

impl Drop for ClientTelemetry {
    fn drop(&mut self) {
        // The task sends the terminating push on its own and ends.
        let _ = self.closing.send(true);
    }
}
