//! Trace context in record headers: the propagator reads them through
//! [`HeaderLookup`] and writes them into [`SetHeaders`].

use bytes::Bytes;
use kafkit_conn::hooks::{HeaderLookup, SetHeaders};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

/// The propagator's headers present on a record, looked up once each.
///
/// `Extractor::get` lends a `&str`, while `HeaderLookup` hands out owned
/// `Bytes`; the values are kept here for the propagator to borrow.
struct HeaderExtractor<'p> {
    found: Vec<(&'p str, Bytes)>,
}

impl<'p> HeaderExtractor<'p> {
    fn new(propagator: &'p dyn TextMapPropagator, headers: &dyn HeaderLookup) -> Self {
        // No allocation unless a header is there.
        let mut found = Vec::new();
        for field in propagator.fields() {
            if let Some(value) = headers.header(field) {
                found.push((field, value));
            }
        }
        HeaderExtractor { found }
    }
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let (_, value) = self
            .found
            .iter()
            .rev()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))?;
        std::str::from_utf8(value).ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.found.iter().map(|(name, _)| *name).collect()
    }
}

/// Extracts the trace context in `headers` onto `base` (its other entries,
/// baggage for example, are kept). Returns `None` when the record carries
/// none of the propagator's headers, without calling it.
pub(crate) fn extract_onto(
    propagator: &dyn TextMapPropagator,
    base: &Context,
    headers: &dyn HeaderLookup,
) -> Option<Context> {
    let extractor = HeaderExtractor::new(propagator, headers);
    if extractor.found.is_empty() {
        return None;
    }
    Some(propagator.extract_with_context(base, &extractor))
}

/// The producer's span context carried in `headers`, when one is there
/// and valid (for links).
pub(crate) fn remote_span_context(
    propagator: &dyn TextMapPropagator,
    headers: &dyn HeaderLookup,
) -> Option<SpanContext> {
    let cx = extract_onto(propagator, &Context::new(), headers)?;
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Writes a propagator's fields as record headers.
///
/// An empty value (W3C `tracestate` when the trace has no state) is
/// skipped, unless the record already has that header: then it is set
/// empty, so that a stale value copied from an input record does not ride
/// along with the new `traceparent`.
struct HeaderInjector<'a> {
    set: &'a mut SetHeaders,
    existing: &'a dyn HeaderLookup,
}

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() && self.existing.header(key).is_none() {
            return;
        }
        self.set.set(key, value);
    }
}

/// Injects `cx` into the headers of the record being buffered.
pub(crate) fn inject(
    propagator: &dyn TextMapPropagator,
    cx: &Context,
    set: &mut SetHeaders,
    existing: &dyn HeaderLookup,
) {
    propagator.inject_context(cx, &mut HeaderInjector { set, existing });
}
