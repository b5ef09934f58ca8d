//! The path every request takes through a [`Conn`]: an in-flight permit,
//! a correlation id, the encoded frame handed to the driver, the wait for
//! the answer (with its timeout), tracing and counters; and decoding, where
//! a response that does not decode kills the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kafkit_protocol::{ApiKey, Request, frame};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::driver::Command;
use crate::hooks::RequestEvent;
use crate::{Conn, Error, ErrorKind};

impl Conn {
    /// Sends a typed request with `extra` added to the request timeout and
    /// decodes the answer; a response that does not decode kills the
    /// connection (the stream can no longer be trusted).
    pub(crate) async fn send<R: Request>(
        &self,
        version: i16,
        body: &R,
        extra: Duration,
    ) -> Result<R::Response, Error> {
        let timeout = self.shared.config.request_timeout.map(|t| t + extra);
        let frame = self.roundtrip_typed(version, body, timeout).await?;
        if frame.is_empty() {
            return Ok(R::Response::default());
        }
        frame::decode_response::<R::Response>(frame, R::API_KEY, version)
            .map(|(_, response)| response)
            .map_err(|e| {
                let e = Error::from(e).with_api(R::API_KEY);
                self.poison(e.clone());
                e.with_broker(self.addr())
            })
    }

    /// Encodes `body` and exchanges it for its raw response frame.
    pub(crate) async fn roundtrip_typed<R: Request>(
        &self,
        version: i16,
        body: &R,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let expects_response = body.expects_response();
        let client_id = self.shared.config.client_id.as_deref();
        let encode = |id| frame::encode_request_chunks(id, client_id, version, body);
        self.roundtrip(R::API_KEY, version, expects_response, timeout, encode)
            .await
    }

    /// The one path every request takes: permit, correlation id, encode,
    /// hand to the driver, wait. Traced and counted.
    async fn roundtrip(
        &self,
        api: ApiKey,
        version: i16,
        expects_response: bool,
        timeout: Option<Duration>,
        encode: impl FnOnce(i32) -> Result<Vec<Bytes>, kafkit_protocol::EncodeError>,
    ) -> Result<Bytes, Error> {
        let counters = &self.shared.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!(
            "kafka_request",
            api = %api,
            version,
            broker = %self.shared.addr,
            correlation_id = tracing::field::Empty,
            latency_us = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        let result = self
            .exchange(api, expects_response, deadline, encode)
            .instrument(span.clone())
            .await;
        let elapsed = start.elapsed();
        if let Some(hook) = self.shared.config.hooks.get() {
            hook.on_request(&RequestEvent {
                broker: &self.shared.addr,
                api,
                version,
                duration: elapsed,
                response_bytes: result.as_ref().map_or(0, Bytes::len),
                // This request's permit is already given back.
                in_flight: self.in_flight() + 1,
                error: result.as_ref().err(),
            });
        }
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        span.record("latency_us", latency_us);
        let _entered = span.enter();
        match &result {
            Ok(frame) => {
                counters.latency.record(latency_us);
                counters.rtt.record(elapsed);
                tracing::debug!(latency_us, bytes = frame.len(), "response")
            }
            Err(error) => {
                span.record("error", tracing::field::display(error));
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if matches!(error.kind(), ErrorKind::Timeout) {
                    counters.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(latency_us, %error, "request failed");
            }
        }
        result.map_err(|e| e.with_api(api).with_broker(&self.shared.addr))
    }

    async fn exchange(
        &self,
        api: ApiKey,
        expects_response: bool,
        deadline: Option<Instant>,
        encode: impl FnOnce(i32) -> Result<Vec<Bytes>, kafkit_protocol::EncodeError>,
    ) -> Result<Bytes, Error> {
        if self.shared.is_closed() {
            return Err(self.shared.closed_error());
        }
        let within = |what: &'static str| {
            move |_| {
                Error::new(ErrorKind::Timeout).with_message(format!("no response to {api} {what}"))
            }
        };
        let permit = self.shared.in_flight.clone().acquire_owned();
        let waiting = Waiting::count(&self.shared.counters.waiting);
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d, permit)
                .await
                .map_err(within("while waiting for an in-flight slot"))?,
            None => permit.await,
        }
        .map_err(|_| self.shared.closed_error())?;
        drop(waiting);
        let correlation_id = self.shared.correlation_id();
        tracing::Span::current().record("correlation_id", correlation_id);
        let frame = encode(correlation_id)?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Request {
            correlation_id,
            frame,
            expects_response,
            reply,
            permit,
        };
        if self.commands.send(command).is_err() {
            return Err(self.shared.closed_error());
        }
        // On timeout the driver keeps the correlation entry (and the
        // in-flight slot): a late response is read and discarded, which
        // keeps the stream in step. A broker that never answers at all
        // eventually uses up `max_in_flight` and every request times out,
        // which is the signal to dial again.
        let answer = match deadline {
            Some(d) => tokio::time::timeout_at(d, answer)
                .await
                .map_err(within("in time"))?,
            None => answer.await,
        };
        match answer {
            Ok(result) => result,
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Kills the connection with `error` (a response failed to decode).
    pub(crate) fn poison(&self, error: Error) {
        self.shared.mark_closed(error.clone());
        let _ = self.commands.send(Command::Fail(error));
    }
}

/// Counts a request waiting for an in-flight slot while it lives (a
/// cancelled wait uncounts itself too).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn count(counter: &'a AtomicU64) -> Waiting<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnConfig;
    use crate::fake_broker::*;
    use bytes::BytesMut;

    #[tokio::test]
    async fn an_undecodable_response_kills_the_connection() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("x")).await }
        });
        let (header, _) = broker.next().await;
        // The right correlation id, then a body too short to be Metadata.
        let mut bad = BytesMut::new();
        bad.extend_from_slice(&6i32.to_be_bytes());
        bad.extend_from_slice(&header.correlation_id.to_be_bytes());
        bad.extend_from_slice(&[0, 0]);
        broker.replies.send(bad.to_vec()).unwrap();
        let e = pending.await.unwrap().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Protocol(_)), "{e:?}");
        assert_eq!(e.api(), Some(ApiKey::Metadata));
        assert!(conn.is_closed());
        let later = conn.request(metadata_request("y")).await.unwrap_err();
        assert!(matches!(later.kind(), ErrorKind::Protocol(_)), "{later:?}");
    }

    #[tokio::test]
    async fn an_unknown_correlation_id_is_desynchronization() {
        let mut broker = FakeBroker::start().await;
        let conn = Conn::dial(&broker.addr).await.unwrap();
        let pending = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("x")).await }
        });
        let (mut header, body) = broker.next().await;
        header.correlation_id += 1000;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        let e = pending.await.unwrap().unwrap_err();
        let expected = ErrorKind::Desynchronized {
            correlation_id: header.correlation_id,
        };
        assert_eq!(e.kind(), &expected);
        assert!(!e.is_retriable() && e.is_connection_error());
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn a_timed_out_request_keeps_the_connection() {
        let mut broker = FakeBroker::start().await;
        let config = ConnConfig {
            request_timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let conn = Conn::dial_with(&broker.addr, config).await.unwrap();
        let e = conn.request(metadata_request("slow")).await.unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Timeout);
        assert_eq!(e.api(), Some(ApiKey::Metadata));
        // The late answer is read and dropped; the next one is matched.
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        let next = tokio::spawn({
            let conn = conn.clone();
            async move { conn.request(metadata_request("next")).await }
        });
        let (header, body) = broker.next().await;
        broker
            .replies
            .send(metadata_answer(&header, &body))
            .unwrap();
        assert_eq!(topic_of(&next.await.unwrap().unwrap()), "next");
        assert!(!conn.is_closed());
    }
}
