//! The metric families of each snapshot: writers', readers' and
//! transports' counters, gauges and histograms.

use std::fmt;

use kafkit_conn::TransportStats;
use kafkit_conn::latency::LatencyHistogram;
use kafkit_reader::ReaderStats;
use kafkit_writer::WriterStats;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::encode::{self, Family};

fn counter(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(v);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(v);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn histogram(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &LatencyHistogram,
) -> Result<(), fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let (sum, count, buckets) = encode::seconds_buckets(h);
    m.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

pub(super) fn writer(e: &mut DescriptorEncoder<'_>, s: &WriterStats) -> Result<(), fmt::Error> {
    counter(
        e,
        "kafkit_writer_records",
        "Records acknowledged.",
        s.records,
    )?;
    counter(
        e,
        "kafkit_writer_bytes",
        "Record bytes acknowledged.",
        s.bytes,
    )?;
    counter(
        e,
        "kafkit_writer_batches",
        "Batches acknowledged.",
        s.batches,
    )?;
    counter(
        e,
        "kafkit_writer_requests",
        "Produce requests sent.",
        s.requests,
    )?;
    counter(e, "kafkit_writer_retries", "Batches sent again.", s.retries)?;
    counter(
        e,
        "kafkit_writer_errors",
        "Records failed for good.",
        s.errors,
    )?;
    counter(
        e,
        "kafkit_writer_epoch_bumps",
        "Producer epoch bumps.",
        s.epoch_bumps,
    )?;
    let (committed, aborted) = (s.transactions_committed, s.transactions_aborted);
    counter(
        e,
        "kafkit_writer_transactions_committed",
        "Transactions committed.",
        committed,
    )?;
    counter(
        e,
        "kafkit_writer_transactions_aborted",
        "Transactions aborted.",
        aborted,
    )?;
    let buffered = i64::try_from(s.buffered_records).unwrap_or(i64::MAX);
    gauge(
        e,
        "kafkit_writer_buffered_records",
        "Records not yet done.",
        buffered,
    )?;
    let buffered = i64::try_from(s.buffered_bytes).unwrap_or(i64::MAX);
    gauge(
        e,
        "kafkit_writer_buffered_bytes",
        "Bytes not yet done.",
        buffered,
    )?;
    gauge(
        e,
        "kafkit_writer_producer_epoch",
        "The producer epoch.",
        i64::from(s.producer_epoch),
    )?;
    let help = "Write-to-acknowledgement latency of records.";
    histogram(e, "kafkit_writer_latency_seconds", help, &s.latency)?;
    transport(e, &s.transport)
}

pub(super) fn reader(e: &mut DescriptorEncoder<'_>, s: &ReaderStats) -> Result<(), fmt::Error> {
    counter(
        e,
        "kafkit_reader_messages",
        "Messages handed out.",
        s.messages,
    )?;
    counter(e, "kafkit_reader_commits", "Offset commits.", s.commits)?;
    counter(
        e,
        "kafkit_reader_commit_errors",
        "Failed offset commits.",
        s.commit_errors,
    )?;
    counter(
        e,
        "kafkit_reader_rebalances",
        "Assignments received.",
        s.rebalances,
    )?;
    counter(
        e,
        "kafkit_reader_fetches",
        "Fetch responses.",
        s.fetch.fetches,
    )?;
    counter(
        e,
        "kafkit_reader_fetch_bytes",
        "Record bytes fetched.",
        s.fetch.bytes,
    )?;
    counter(
        e,
        "kafkit_reader_fetch_errors",
        "Fetch errors.",
        s.fetch.errors,
    )?;
    gauge(
        e,
        "kafkit_reader_lag",
        "Messages behind, over every partition.",
        s.lag,
    )?;
    let mut lag = Family::new(
        "kafkit_reader_partition_lag",
        "Messages behind.",
        MetricType::Gauge,
    );
    let mut position = Family::new(
        "kafkit_reader_partition_position",
        "Next offset handed out.",
        MetricType::Gauge,
    );
    let mut end = Family::new(
        "kafkit_reader_partition_high_watermark",
        "The high watermark.",
        MetricType::Gauge,
    );
    let mut buffered = Family::new(
        "kafkit_reader_partition_buffered_bytes",
        "Fetched bytes waiting.",
        MetricType::Gauge,
    );
    for p in &s.partition_stats {
        let labels = vec![
            ("topic", p.topic.clone()),
            ("partition", p.partition.to_string()),
        ];
        if let Some(v) = p.lag {
            lag.push(labels.clone(), v);
        }
        if let Some(v) = p.position {
            position.push(labels.clone(), v);
        }
        if let Some(v) = p.high_watermark {
            end.push(labels.clone(), v);
        }
        buffered.push(labels, i64::try_from(p.buffered_bytes).unwrap_or(i64::MAX));
    }
    for family in [lag, position, end, buffered] {
        family.encode(e)?;
    }
    if let Some(g) = &s.group {
        let help = "The group member's state (1 for the current one).";
        let mut state = Family::new("kafkit_reader_group_state", help, MetricType::Gauge);
        state.push(
            vec![("group", g.group_id.clone()), ("state", g.state.to_owned())],
            1,
        );
        state.encode(e)?;
        gauge(
            e,
            "kafkit_reader_group_generation",
            "The group generation.",
            i64::from(g.generation),
        )?;
    }
    transport(e, &s.transport)
}

pub(super) fn transport(
    e: &mut DescriptorEncoder<'_>,
    s: &TransportStats,
) -> Result<(), fmt::Error> {
    let families = [
        (
            "kafkit_broker_requests",
            "Requests sent to the broker.",
            MetricType::Counter,
        ),
        (
            "kafkit_broker_errors",
            "Requests that failed.",
            MetricType::Counter,
        ),
        (
            "kafkit_broker_timeouts",
            "Requests that timed out.",
            MetricType::Counter,
        ),
        (
            "kafkit_broker_bytes_written",
            "Bytes written to the broker.",
            MetricType::Counter,
        ),
        (
            "kafkit_broker_bytes_read",
            "Bytes read from the broker.",
            MetricType::Counter,
        ),
        (
            "kafkit_broker_requests_in_flight",
            "Requests awaiting an answer.",
            MetricType::Gauge,
        ),
        (
            "kafkit_broker_requests_waiting",
            "Requests awaiting an in-flight slot.",
            MetricType::Gauge,
        ),
        (
            "kafkit_broker_connections",
            "Live pooled connections.",
            MetricType::Gauge,
        ),
    ];
    let mut out: Vec<Family> = families
        .iter()
        .map(|&(name, help, kind)| Family::new(name, help, kind))
        .collect();
    for b in &s.brokers {
        let st = &b.stats;
        let values = [
            st.requests,
            st.errors,
            st.timeouts,
            st.bytes_written,
            st.bytes_read,
            st.in_flight as u64,
            st.waiting,
            b.connections as u64,
        ];
        for (family, v) in out.iter_mut().zip(values) {
            family.push(
                vec![("broker", b.addr.clone())],
                i64::try_from(v).unwrap_or(i64::MAX),
            );
        }
    }
    for family in out {
        family.encode(e)?;
    }
    let help = "Round trips of answered requests, per broker.";
    let mut rtt = e.encode_descriptor(
        "kafkit_broker_rtt_seconds",
        help,
        None,
        MetricType::Histogram,
    )?;
    for b in &s.brokers {
        let labels = vec![("broker", b.addr.clone())];
        let (sum, count, buckets) = encode::seconds_buckets(&b.stats.rtt);
        rtt.encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    counter(
        e,
        "kafkit_rebootstraps",
        "Refreshes sent back to the bootstrap list.",
        s.rebootstraps,
    )
}
