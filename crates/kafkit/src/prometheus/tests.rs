use std::time::Duration;

use kafkit_conn::latency::LatencyRecorder;
use kafkit_conn::{BrokerStats, Stats};
use kafkit_reader::{GroupStats, PartitionStats};
use prometheus_client::registry::Registry;

use super::*;

fn encoded(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn broker() -> TransportStats {
    let rtt = LatencyRecorder::default();
    rtt.record(Duration::from_micros(700));
    rtt.record(Duration::from_millis(3));
    let mut stats = Stats::default();
    stats.requests = 12;
    stats.in_flight = 2;
    stats.rtt = rtt.snapshot();
    let mut broker = BrokerStats::default();
    broker.addr = "kafka-1:9092".to_owned();
    broker.connections = 2;
    broker.stats = stats;
    let mut transport = TransportStats::default();
    transport.brokers = vec![broker];
    transport
}

#[test]
fn a_writer_scrape_has_its_counters_buffer_latency_and_brokers() {
    let mut stats = WriterStats::default();
    stats.records = 1000;
    stats.buffered_bytes = 4096;
    let latency = LatencyRecorder::default();
    latency.record_n(Duration::from_micros(1500), 10);
    stats.latency = latency.snapshot();
    stats.transport = broker();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector::writer(move || {
        Some(stats.clone())
    })));
    let text = encoded(&registry);
    for line in [
        "kafkit_writer_records_total 1000",
        "kafkit_writer_buffered_bytes 4096",
        "kafkit_writer_latency_seconds_count 10",
        // 1.5 ms falls in the bucket below 2048 us: cumulative from there.
        "kafkit_writer_latency_seconds_bucket{le=\"0.001024\"} 0",
        "kafkit_writer_latency_seconds_bucket{le=\"0.002048\"} 10",
        "kafkit_writer_latency_seconds_bucket{le=\"+Inf\"} 10",
        "kafkit_broker_requests_total{broker=\"kafka-1:9092\"} 12",
        "kafkit_broker_requests_in_flight{broker=\"kafka-1:9092\"} 2",
        "kafkit_broker_connections{broker=\"kafka-1:9092\"} 2",
        "kafkit_broker_rtt_seconds_count{broker=\"kafka-1:9092\"} 2",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

#[test]
fn a_reader_scrape_has_partitions_and_the_group_once_a_snapshot_is_stored() {
    let cell = StatsCell::default();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector::reader(cell.clone())));
    assert!(
        !encoded(&registry).contains("kafkit_reader"),
        "nothing before a snapshot"
    );

    let mut partition = PartitionStats::default();
    partition.topic = "orders".to_owned();
    partition.partition = 3;
    partition.position = Some(90);
    partition.high_watermark = Some(100);
    partition.lag = Some(10);
    let mut group = GroupStats::default();
    group.group_id = "billing".to_owned();
    group.state = "stable";
    group.generation = 4;
    let mut stats = ReaderStats::default();
    stats.messages = 90;
    stats.lag = 10;
    stats.partition_stats = vec![partition];
    stats.group = Some(group);
    cell.set(stats);
    let text = encoded(&registry);
    for line in [
        "kafkit_reader_messages_total 90",
        "kafkit_reader_lag 10",
        "kafkit_reader_partition_lag{topic=\"orders\",partition=\"3\"} 10",
        "kafkit_reader_partition_position{topic=\"orders\",partition=\"3\"} 90",
        "kafkit_reader_partition_high_watermark{topic=\"orders\",partition=\"3\"} 100",
        "kafkit_reader_group_state{group=\"billing\",state=\"stable\"} 1",
        "kafkit_reader_group_generation 4",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}
