//! [`ConnConfig`]: how one broker connection behaves.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use crate::TlsConfig;
use crate::sasl::Mechanism;
use crate::{Error, Hooks};

/// Settings for one broker connection. Every field documents its default
/// and why; [`ConnConfig::validate`] checks them when a connection opens.
///
/// ```
/// use std::time::Duration;
/// let config = kafkit_conn::ConnConfig {
///     request_timeout: Some(Duration::from_secs(5)),
///     ..Default::default()
/// };
/// assert_eq!(config.client_id.as_deref(), Some("kafkit"));
/// ```
///
/// `ConnConfig` is not `PartialEq`: a SASL [`Mechanism`] is a trait object
/// (it may hold a token provider), and comparing configurations is not
/// something a client needs. `Debug` never prints a password, token or key.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The `client_id` sent in every request header. Default `Some("kafkit")`:
    /// brokers use it in logs, metrics and quotas, so it should name the
    /// application; `None` sends a null client id.
    pub client_id: Option<String>,
    /// How long the TCP connect may take. Default 10 s: long enough for a
    /// slow DNS answer or a distant data centre, short enough that a dead
    /// bootstrap address does not stall start-up (Java's
    /// `socket.connection.setup.timeout.max.ms` is 30 s, but it retries
    /// other brokers in the meantime; a single `Conn` does not).
    pub connect_timeout: Duration,
    /// How long a request may wait for its response, counted from the call
    /// (so it includes waiting for an in-flight slot). Default 30 s, Java's
    /// `request.timeout.ms`. `None` waits forever. Fetches add their own
    /// `max_wait` on top, since the broker holds them that long on purpose.
    pub request_timeout: Option<Duration>,
    /// Close the connection after this long with no request in flight.
    /// Default 9 minutes, Java's `connections.max.idle.ms`: brokers close
    /// idle connections after 10 minutes, and closing first means we never
    /// send on a socket the broker is about to drop. `None` never closes.
    pub idle_timeout: Option<Duration>,
    /// How many requests may wait for a response at once; further requests
    /// wait in the client. Default 100: Kafka brokers read one request per
    /// connection at a time and answer in order, so depth beyond that only
    /// fills socket buffers, but a deep pipeline hides round-trip latency
    /// for many small requests (metadata, offsets) sent by one client. The
    /// bound keeps the correlation map and buffered bytes small, and
    /// requests still queued in the client can be dropped without touching
    /// the wire. Must be at least 1.
    pub max_in_flight: usize,
    /// The largest response frame accepted. Default 100 MiB, the broker's
    /// own `socket.request.max.bytes`, twice Java's `fetch.max.bytes`.
    /// A larger size prefix is a typed [`Protocol`](crate::ErrorKind::Protocol)
    /// error raised before anything is allocated: it is how a peer that is
    /// not Kafka (an HTTP server answering `HTTP`, read as 1.2 GB) shows up.
    pub max_response_size: usize,
    /// Set `TCP_NODELAY`. Default `true`: requests are whole frames written
    /// at once, and Nagle's algorithm would only delay small requests such
    /// as heartbeats by up to 40 ms.
    pub nodelay: bool,
    /// Connect with TLS. Default `None` (plaintext), as a Kafka listener is
    /// unless configured otherwise. The handshake runs right after the TCP
    /// connect and both must finish within `connect_timeout`.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
    /// Authenticate with this SASL mechanism right after version
    /// negotiation, before the connection is handed out. Default `None`.
    /// When the broker limits the session (KIP-368,
    /// `connections.max.reauth.ms`), the connection stops taking requests at
    /// 85% of the lifetime and closes once the in-flight ones are answered,
    /// so that [`Transport`](crate::Transport) dials (and authenticates) a
    /// fresh one instead of being cut off by the broker.
    pub sasl: Option<Arc<dyn Mechanism>>,
    /// The [`Hook`](crate::hooks::Hook) told of connects, disconnects and
    /// round trips, and (through the writers and readers built on this
    /// configuration) of records, fetches, commits and rebalances.
    /// Default none, which costs nothing.
    pub hooks: Hooks,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            client_id: Some("kafkit".to_owned()),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(9 * 60)),
            max_in_flight: 100,
            max_response_size: 100 << 20,
            nodelay: true,
            #[cfg(feature = "tls")]
            tls: None,
            sasl: None,
            hooks: Hooks::default(),
        }
    }
}

impl ConnConfig {
    /// Checks the rules that span fields; called by
    /// [`Conn::dial_with`](crate::Conn::dial_with).
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_in_flight == 0 {
            return Err(Error::config("max_in_flight must be at least 1"));
        }
        // The semaphore that enforces it holds at most this many permits.
        if self.max_in_flight > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(Error::config("max_in_flight is too large"));
        }
        if self.max_response_size < 8 {
            return Err(Error::config(
                "max_response_size must hold at least a response header",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config("connect_timeout must be positive"));
        }
        if self.request_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config("request_timeout must be positive (or None)"));
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config("idle_timeout must be positive (or None)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = ConnConfig::default();
        c.validate().unwrap();
        assert_eq!(c.client_id.as_deref(), Some("kafkit"));
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(540)));
        assert_eq!(c.max_in_flight, 100);
        assert_eq!(c.max_response_size, 104_857_600);
        assert!(c.nodelay);
    }

    #[test]
    fn invalid_settings_are_config_errors() {
        let bad = [
            ConnConfig {
                max_in_flight: 0,
                ..Default::default()
            },
            ConnConfig {
                max_response_size: 0,
                ..Default::default()
            },
            ConnConfig {
                request_timeout: Some(Duration::ZERO),
                ..Default::default()
            },
            ConnConfig {
                idle_timeout: Some(Duration::ZERO),
                ..Default::default()
            },
            ConnConfig {
                connect_timeout: Duration::ZERO,
                ..Default::default()
            },
        ];
        for config in bad {
            let e = config.validate().unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::Config(_)), "{e}");
        }
        let none = ConnConfig {
            request_timeout: None,
            idle_timeout: None,
            ..Default::default()
        };
        none.validate().unwrap();
    }
}
