//! Prometheus exposition of the clients' statistics snapshots, with the
//! `prometheus-client` crate (feature `prometheus`).
//!
//! A [`StatsCollector`] registered in a `prometheus_client` registry takes
//! a snapshot on every scrape: a writer's ([`WriterStats`]), a reader's
//! ([`ReaderStats`]) or a bare transport's ([`TransportStats`]). A writer is
//! shared, so the collector reads it directly; a reader is driven through
//! `&mut` by its owner, who stores snapshots in a [`StatsCell`] (every few
//! seconds, say) for the collector to read.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kafkit::prometheus::{StatsCell, StatsCollector};
//! use kafkit::{Reader, Writer};
//! use prometheus_client::registry::Registry;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::default();
//! let writer = Arc::new(Writer::builder(["localhost:9092"]).topic("orders").build().await?);
//! let w = writer.clone();
//! registry.register_collector(Box::new(StatsCollector::writer(move || Some(w.stats()))));
//!
//! let mut reader = Reader::builder(["localhost:9092"]).group_id("billing").topics(["orders"]).build().await?;
//! let cell = StatsCell::default();
//! registry.register_collector(Box::new(StatsCollector::reader(cell.clone())));
//! loop {
//!     let message = reader.fetch_message().await?;
//!     // ... process ...
//!     cell.set(reader.stats()); // or on a timer
//! #   break;
//! }
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! # Ok(())
//! # }
//! ```
//!
//! Metric names start with `kafkit_`; per-broker series carry a `broker`
//! label (`host:port`), per-partition ones `topic` and `partition`. Give
//! each client its own label with `Registry::sub_registry_with_label`.

use std::fmt;
use std::sync::{Arc, Mutex};

use kafkit_conn::TransportStats;
use kafkit_reader::ReaderStats;
use kafkit_writer::WriterStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

mod encode;
mod families;

use families::{reader, transport, writer};

/// The latest snapshot a reader's owner stored, for a [`StatsCollector`]:
/// a cheap `Clone` (an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct StatsCell(Arc<Mutex<Option<ReaderStats>>>);

impl StatsCell {
    /// Stores `stats`, replacing the previous snapshot.
    pub fn set(&self, stats: ReaderStats) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// The latest snapshot, `None` before the first.
    pub fn get(&self) -> Option<ReaderStats> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

type Snapshot<T> = Box<dyn Fn() -> Option<T> + Send + Sync>;

enum Source {
    Writer(Snapshot<WriterStats>),
    Reader(StatsCell),
    Transport(Snapshot<TransportStats>),
}

/// A `prometheus_client` [`Collector`] over one client's snapshots; see
/// the [module docs](self).
pub struct StatsCollector {
    source: Source,
}

impl fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            Source::Writer(_) => "writer",
            Source::Reader(_) => "reader",
            Source::Transport(_) => "transport",
        };
        f.debug_struct("StatsCollector")
            .field("source", &kind)
            .finish()
    }
}

impl StatsCollector {
    /// Exposes the writer snapshots `snapshot` takes (`None`: nothing this
    /// scrape).
    pub fn writer(snapshot: impl Fn() -> Option<WriterStats> + Send + Sync + 'static) -> Self {
        StatsCollector {
            source: Source::Writer(Box::new(snapshot)),
        }
    }

    /// Exposes the reader snapshots stored in `cell`.
    pub fn reader(cell: StatsCell) -> Self {
        StatsCollector {
            source: Source::Reader(cell),
        }
    }

    /// Exposes the transport snapshots `snapshot` takes (an admin client's
    /// transport, say).
    pub fn transport(
        snapshot: impl Fn() -> Option<TransportStats> + Send + Sync + 'static,
    ) -> Self {
        StatsCollector {
            source: Source::Transport(Box::new(snapshot)),
        }
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        match &self.source {
            Source::Writer(snapshot) => match snapshot() {
                Some(stats) => writer(&mut encoder, &stats),
                None => Ok(()),
            },
            Source::Reader(cell) => match cell.get() {
                Some(stats) => reader(&mut encoder, &stats),
                None => Ok(()),
            },
            Source::Transport(snapshot) => match snapshot() {
                Some(stats) => transport(&mut encoder, &stats),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests;
