//! [`WriterBuilder`]: `Writer::builder(bootstrap)` or
//! `Writer::with_transport(transport)`, settings, then `build`.

use std::sync::Arc;
use std::time::Duration;

use kafkit_conn::{Compression, RequiredAcks, Transport, TransportConfig};

use crate::balancer::Balancer;
use crate::{DeliveryReport, Error, Writer, WriterConfig};

/// Builds a [`Writer`]: `Writer::builder(bootstrap)`, settings, then
/// [`build`](WriterBuilder::build).
#[derive(Debug)]
pub struct WriterBuilder {
    pub(crate) config: WriterConfig,
    pub(crate) transport: TransportSource,
}

/// Where a built writer's transport comes from.
#[derive(Debug)]
pub(crate) enum TransportSource {
    /// One the caller made, perhaps shared with readers and admin clients.
    Given(Transport),
    /// One `build` connects, with these settings (boxed: they are large,
    /// and a builder is moved through every setter).
    New(Box<TransportConfig>),
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.config.$name = $name;
            self
        }
    };
}

impl WriterBuilder {
    pub(crate) fn new(transport: TransportSource) -> Self {
        WriterBuilder {
            config: WriterConfig::default(),
            transport,
        }
    }

    /// Connection settings (TLS, SASL, timeouts) for the connections of the
    /// transport `build` creates. Default [`kafkit_conn::ConnConfig::default`]. A writer
    /// made with [`Writer::with_transport`](crate::Writer::with_transport)
    /// uses that transport's settings, and this does nothing.
    pub fn conn(mut self, conn: kafkit_conn::ConnConfig) -> Self {
        if let TransportSource::New(transport) = &mut self.transport {
            transport.conn = conn;
        }
        self
    }

    /// The client [`Hook`](kafkit_conn::Hook) (metrics, traces: see
    /// `kafkit-otel`), set in the connection settings of the transport
    /// `build` creates. A writer made with
    /// [`Writer::with_transport`](crate::Writer::with_transport) calls its
    /// transport's hook ([`kafkit_conn::ConnConfig::hooks`]), and this does
    /// nothing.
    pub fn hooks(mut self, hooks: kafkit_conn::Hooks) -> Self {
        if let TransportSource::New(transport) = &mut self.transport {
            transport.conn.hooks = hooks;
        }
        self
    }

    /// What the transport `build` creates does when the brokers it knows
    /// fail it: by default it goes back to the bootstrap list
    /// (rebootstrap, KIP-899); see [`kafkit_conn::MetadataRecovery`]. Like
    /// [`conn`](Self::conn), nothing for a writer made with
    /// [`Writer::with_transport`](crate::Writer::with_transport).
    pub fn metadata_recovery(mut self, recovery: kafkit_conn::MetadataRecovery) -> Self {
        if let TransportSource::New(transport) = &mut self.transport {
            transport.metadata_recovery = recovery;
        }
        self
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: WriterConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the writer-wide topic ([`WriterConfig::topic`]).
    pub fn topic(mut self, topic: impl AsRef<str>) -> Self {
        self.config.topic = Some(Arc::from(topic.as_ref()));
        self
    }

    /// Sets the balancer ([`WriterConfig::balancer`]); closures
    /// `Fn(&str, &Message, usize) -> i32` are balancers too.
    pub fn balancer(mut self, balancer: impl Balancer) -> Self {
        self.config.balancer = Arc::new(balancer);
        self
    }

    /// Turns idempotence on or off ([`WriterConfig::idempotent`]).
    pub fn idempotent(mut self, on: bool) -> Self {
        self.config.idempotent = Some(on);
        self
    }

    /// Sets the delivery callback ([`WriterConfig::on_delivery`]).
    pub fn on_delivery(
        mut self,
        callback: impl Fn(DeliveryReport) + Send + Sync + 'static,
    ) -> Self {
        self.config.on_delivery = Some(Arc::new(callback));
        self
    }

    /// Makes the writer transactional ([`WriterConfig::transactional_id`]);
    /// implies idempotence with acks=all.
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.config.transactional_id = Some(Arc::from(id.into()));
        self
    }

    setter!(/// [`WriterConfig::transaction_timeout`].
        transaction_timeout: Duration);
    setter!(/// [`WriterConfig::metrics_push`].
        metrics_push: bool);
    setter!(/// [`WriterConfig::required_acks`].
        required_acks: RequiredAcks);
    setter!(/// [`WriterConfig::batch_size`].
        batch_size: usize);
    setter!(/// [`WriterConfig::batch_bytes`].
        batch_bytes: usize);
    setter!(/// [`WriterConfig::linger`].
        linger: Duration);
    setter!(/// [`WriterConfig::max_in_flight`].
        max_in_flight: usize);
    setter!(/// [`WriterConfig::compression`].
        compression: Compression);
    setter!(/// [`WriterConfig::max_attempts`].
        max_attempts: u32);
    setter!(/// [`WriterConfig::backoff`].
        backoff: Duration);
    setter!(/// [`WriterConfig::allow_auto_topic_creation`].
        allow_auto_topic_creation: bool);
    setter!(/// [`WriterConfig::request_timeout`].
        request_timeout: Duration);
    setter!(/// [`WriterConfig::delivery_timeout`].
        delivery_timeout: Duration);
    setter!(/// [`WriterConfig::buffer_bytes`].
        buffer_bytes: usize);
    setter!(/// [`WriterConfig::max_buffered_records`].
        max_buffered_records: usize);
    setter!(/// [`WriterConfig::max_message_bytes`].
        max_message_bytes: usize);

    /// Checks the settings, connects (unless given a [`Transport`]), gets
    /// a producer id when idempotent, and starts the writer's task.
    ///
    /// A transactional writer finds its transaction coordinator
    /// (FindCoordinator) and asks it for the producer id of its
    /// `transactional_id` (InitProducerId), retrying
    /// `CONCURRENT_TRANSACTIONS`, `COORDINATOR_LOAD_IN_PROGRESS` and
    /// `NOT_COORDINATOR` (after finding the coordinator again). This
    /// fences older writers with the same id and aborts their open
    /// transaction.
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn build(self) -> Result<Writer, Error> {
        self.config.validate()?;
        let transport = match self.transport {
            TransportSource::Given(t) => t,
            TransportSource::New(mut tc) => {
                tc.allow_auto_topic_creation |= self.config.allow_auto_topic_creation;
                if tc.conn.request_timeout.is_some() {
                    // The broker's own timeout plus a margin for the network.
                    tc.conn.request_timeout =
                        Some(self.config.request_timeout + Duration::from_secs(5));
                }
                Transport::connect(*tc).await?
            }
        };
        Writer::start(transport, self.config).await
    }
}
