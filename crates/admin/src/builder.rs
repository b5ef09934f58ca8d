//! [`AdminBuilder`]: `Admin::builder(bootstrap)`, settings, then `build`,
//! as the writer's, the reader's and the processor's builders end.

use std::time::Duration;

use kafkit_conn::{ConnConfig, MetadataRecovery, Transport, TransportConfig};

use crate::{Admin, AdminConfig, Result};

/// Builds an [`Admin`] that connects a transport of its own. An admin
/// client over an existing transport (shared with readers and writers) is
/// [`Admin::new`].
#[derive(Debug)]
pub struct AdminBuilder {
    transport: TransportConfig,
    config: AdminConfig,
}

impl AdminBuilder {
    pub(crate) fn new(transport: TransportConfig) -> AdminBuilder {
        AdminBuilder {
            transport,
            config: AdminConfig::default(),
        }
    }

    /// Connection settings (TLS, SASL, timeouts, the client hook).
    /// Default [`ConnConfig::default`].
    pub fn conn(mut self, conn: ConnConfig) -> Self {
        self.transport.conn = conn;
        self
    }

    /// What the transport does when the brokers it knows fail it (see
    /// [`MetadataRecovery`]); by default it goes back to the bootstrap
    /// list (KIP-899).
    pub fn metadata_recovery(mut self, recovery: MetadataRecovery) -> Self {
        self.transport.metadata_recovery = recovery;
        self
    }

    /// [`AdminConfig::operation_timeout`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.config.operation_timeout = timeout;
        self
    }

    /// Replaces the admin settings at once.
    pub fn config(mut self, config: AdminConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks the settings and connects.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kafkit_admin::Error> {
    /// use std::time::Duration;
    /// let admin = kafkit_admin::Admin::builder(["kafka-1:9092,kafka-2:9092"])
    ///     .operation_timeout(Duration::from_secs(60))
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe; nothing is shared until it returns.
    pub async fn build(self) -> Result<Admin> {
        let transport = Transport::connect(self.transport).await?;
        Ok(Admin::with_config(transport, self.config))
    }
}
