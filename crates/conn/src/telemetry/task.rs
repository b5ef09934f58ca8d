//! The telemetry task: performs the steps of [`Telemetry`] (state.rs)
//! against one broker, chosen once (the least loaded) and kept while it
//! answers, as KIP-714 asks; collects and encodes each push.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafkit_protocol::compression::{self, Compression};
use kafkit_protocol::messages::{GetTelemetrySubscriptionsRequest, PushTelemetryRequest};
use kafkit_protocol::telemetry::otlp::{self, Scope};
use kafkit_protocol::telemetry::{Attribute, NumberValue};
use kafkit_protocol::{Request, Uuid};
use tokio::sync::watch;
use tokio::time::Instant;

use super::samples::{Sample, Sums};
use super::state::{Answer, Step, Telemetry};
use super::{ClientKind, MetricsSource, TelemetryStats};
use crate::{CLIENT_SOFTWARE_NAME, CLIENT_SOFTWARE_VERSION, ErrorKind, Purpose, Transport};

/// How long a close waits for the terminating push's answer, as
/// librdkafka and franz-go do: telemetry must not hold a close up.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// One client's telemetry task.
pub(crate) struct Run {
    transport: Transport,
    kind: ClientKind,
    source: Arc<dyn MetricsSource>,
    stats: Arc<Mutex<TelemetryStats>>,
    state: Telemetry,
    sums: Sums,
    /// The broker asked last, kept while it answers.
    broker: Option<String>,
    /// Connections created at the previous push, and when it was.
    created_at_push: (u64, Instant),
}

/// Why the task stops for good.
type Stop = String;

impl Run {
    pub(crate) fn new(
        transport: Transport,
        kind: ClientKind,
        source: Arc<dyn MetricsSource>,
        stats: Arc<Mutex<TelemetryStats>>,
    ) -> Run {
        let now = Instant::now();
        let created = transport.connections_created();
        Run {
            transport,
            kind,
            source,
            stats,
            state: Telemetry::new(now),
            sums: Sums::new(unix_nanos()),
            broker: None,
            created_at_push: (created, now),
        }
    }

    /// Runs until the telemetry is terminated (after `closed` turns true,
    /// or its sender is dropped) or disabled.
    pub(crate) async fn run(mut self, mut closed: watch::Receiver<bool>) {
        loop {
            if *closed.borrow() {
                self.state.close();
            }
            let stop = match self.state.next(Instant::now()) {
                Step::Wait(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        changed = closed.changed() => {
                            if changed.is_err() {
                                self.state.close();
                            }
                        }
                    }
                    None
                }
                Step::Subscribe(instance) => self.subscribe(instance, &mut closed).await,
                Step::Push {
                    instance,
                    terminating,
                } => self.push(instance, terminating, &mut closed).await,
                // Every request is answered before the next step.
                Step::Answer | Step::Done => break,
            };
            if let Some(reason) = stop {
                self.stopped(reason);
                return;
            }
        }
        if self.state.is_disabled() {
            self.stopped("the cluster answered with an error that ends telemetry".into());
        }
    }

    async fn subscribe(
        &mut self,
        instance: Uuid,
        closed: &mut watch::Receiver<bool>,
    ) -> Option<Stop> {
        let request = GetTelemetrySubscriptionsRequest {
            client_instance_id: instance,
            ..Default::default()
        };
        let answer = match self.exchange(request, false, closed).await {
            Ok(answer) => answer,
            Err(stop) => return Some(stop),
        };
        let jitter = crate::transport::random_unit();
        self.state
            .on_subscription(Instant::now(), answer.as_ref(), jitter);
        if let Answer::Answered(a) = &answer {
            tracing::debug!(
                error = ?a.error_code,
                subscription = a.subscription_id,
                interval_ms = a.push_interval_ms,
                metrics = ?a.requested_metrics,
                "telemetry subscription"
            );
            let mut stats = self.lock_stats();
            stats.subscriptions += 1;
            stats.instance_id = Some(self.state.instance()).filter(|id| !id.is_zero());
        }
        None
    }

    async fn push(
        &mut self,
        instance: Uuid,
        terminating: bool,
        closed: &mut watch::Receiver<bool>,
    ) -> Option<Stop> {
        let Some(subscription) = self.state.subscription().cloned() else {
            return Some("a push without a subscription".into());
        };
        let samples = self.samples();
        let metrics = self.sums.metrics(
            samples,
            &subscription.selector,
            subscription.delta,
            unix_nanos(),
        );
        let mut resource = Vec::new();
        self.source.resource(&mut resource);
        let scope = Scope {
            name: CLIENT_SOFTWARE_NAME,
            version: CLIENT_SOFTWARE_VERSION,
        };
        let mut raw = BytesMut::new();
        otlp::encode(&resource, scope, &metrics, &mut raw);
        let (codec, payload) = compressed(subscription.codec, raw);
        if subscription.max_bytes > 0 && payload.len() > subscription.max_bytes {
            tracing::debug!(
                bytes = payload.len(),
                max = subscription.max_bytes,
                "telemetry push larger than the broker takes"
            );
        }
        let request = PushTelemetryRequest {
            client_instance_id: instance,
            subscription_id: subscription.id,
            terminating,
            compression_type: codec.id() as i8,
            metrics: payload.freeze(),
            ..Default::default()
        };
        let answer = match self.exchange(request, terminating, closed).await {
            Ok(answer) => answer,
            Err(stop) => return Some(stop),
        };
        let code = match answer {
            Answer::Answered(a) => {
                if a.error_code.is_ok() {
                    self.lock_stats().pushes += 1;
                }
                tracing::debug!(error = ?a.error_code, terminating, "telemetry pushed");
                Answer::Answered(a.error_code)
            }
            Answer::Failed => Answer::Failed,
        };
        self.state.on_push(Instant::now(), code);
        None
    }

    /// The client's samples and the transport's: connections created
    /// (a count, and a rate since the previous push) and each broker's
    /// request round trips (average and maximum, in milliseconds).
    fn samples(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        self.source.collect(&mut out);
        let prefix = self.kind.prefix();
        let now = Instant::now();
        let created = self.transport.connections_created();
        let (before, since) = std::mem::replace(&mut self.created_at_push, (created, now));
        let seconds = now.duration_since(since).as_secs_f64();
        let rate = if seconds > 0.0 {
            created.saturating_sub(before) as f64 / seconds
        } else {
            0.0
        };
        let total = i64::try_from(created).unwrap_or(i64::MAX);
        out.push(Sample::counter(
            format!("{prefix}connection.creation.total"),
            total,
        ));
        out.push(Sample::gauge(
            format!("{prefix}connection.creation.rate"),
            NumberValue::Double(rate),
        ));
        let snapshot = self.transport.snapshot();
        let mut latencies: Vec<_> = self.transport.take_latencies().into_iter().collect();
        latencies.sort_by(|a, b| a.0.cmp(&b.0));
        for (addr, window) in latencies.into_iter().filter(|(_, w)| w.count > 0) {
            let node = snapshot
                .brokers()
                .values()
                .find(|b| b.addr() == addr)
                .map_or(-1, |b| i64::from(b.id));
            let avg_ms = window.mean().unwrap_or(0.0) / 1000.0;
            let max_ms = i64::try_from(window.max.div_ceil(1000)).unwrap_or(i64::MAX);
            let name = |what: &str| format!("{prefix}node.request.latency.{what}");
            out.push(
                Sample::gauge(name("avg"), NumberValue::Double(avg_ms))
                    .with(Attribute::int("node_id", node)),
            );
            out.push(
                Sample::gauge(name("max"), NumberValue::Int(max_ms))
                    .with(Attribute::int("node_id", node)),
            );
        }
        out
    }

    /// Sends `request` to the kept broker, or to the least loaded one
    /// that can be reached. A terminating push waits at most
    /// [`CLOSE_WAIT`]; any other request is given up when the client
    /// closes. `Err` when the cluster cannot take telemetry at all.
    async fn exchange<R: Request + Clone>(
        &mut self,
        request: R,
        terminating: bool,
        closed: &mut watch::Receiver<bool>,
    ) -> Result<Answer<R::Response>, Stop> {
        let candidates = match &self.broker {
            Some(addr) => vec![addr.clone()],
            None => self.transport.brokers_least_loaded_first(),
        };
        for addr in candidates {
            let Ok(conn) = self.transport.conn(&addr, Purpose::Admin).await else {
                continue;
            };
            let sent = conn.request(request.clone());
            let result = if terminating {
                match tokio::time::timeout(CLOSE_WAIT, sent).await {
                    Ok(result) => result,
                    Err(_) => return Ok(Answer::Failed),
                }
            } else {
                let mut watching = closed.clone();
                tokio::select! {
                    result = sent => result,
                    _ = watching.wait_for(|closing| *closing) => return Ok(Answer::Failed),
                }
            };
            return match result {
                Ok(answer) => {
                    self.broker = Some(addr);
                    Ok(Answer::Answered(answer))
                }
                Err(e) if matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }) => {
                    Err(format!("the broker does not take client telemetry: {e}"))
                }
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "telemetry request failed");
                    self.broker = None;
                    Ok(Answer::Failed)
                }
            };
        }
        self.broker = None;
        Ok(Answer::Failed)
    }

    fn stopped(&self, reason: String) {
        tracing::debug!(reason = %reason, "client telemetry stopped");
        self.lock_stats().stopped = Some(reason);
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, TelemetryStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `raw` compressed with `codec`, or sent as it is if that fails.
fn compressed(codec: Compression, raw: BytesMut) -> (Compression, BytesMut) {
    if codec == Compression::None {
        return (codec, raw);
    }
    let mut out = BytesMut::new();
    match compression::compress(codec, None, &raw, &mut out) {
        Ok(()) => (codec, out),
        Err(e) => {
            tracing::debug!(%codec, error = %e, "telemetry sent uncompressed");
            (Compression::None, raw)
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
