//! The flags every command shares: where the cluster is and how to reach it
//! (TLS, SASL), mapped onto kafkit-conn's [`ConnConfig`], and the one
//! [`Transport`] each command runs on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kafkit_conn::sasl::{Plain, Scram};
use kafkit_conn::{ConnConfig, TlsConfig, Transport, TransportConfig};

use crate::error::{Failure, Result};

/// The default bootstrap broker when neither `--brokers` nor
/// `KAFKIT_BROKERS` names one.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// A SASL mechanism the tool can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    /// PLAIN: username and password in clear (use it with --tls).
    Plain,
    /// SCRAM-SHA-256 (RFC 7677).
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "scram-sha-512")]
    ScramSha512,
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(
        short = 'b',
        long,
        global = true,
        env = "KAFKIT_BROKERS",
        default_value = DEFAULT_BROKERS,
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,

    /// The client id sent to the brokers (their logs and quotas name it).
    #[arg(long, global = true, default_value = "kafkit-cli", value_name = "ID")]
    pub client_id: String,

    /// How long one request may wait for its answer.
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Connect with TLS (implied by any other TLS flag).
    #[arg(long, global = true, help_heading = "TLS")]
    pub tls: bool,

    /// Trust only the CA certificates in this PEM file (default: the
    /// system's roots).
    #[arg(long, global = true, value_name = "PEM", help_heading = "TLS")]
    pub ca_file: Option<PathBuf>,

    /// Present this client certificate chain (PEM) for mutual TLS; needs
    /// --key-file.
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        requires = "key_file",
        help_heading = "TLS"
    )]
    pub cert_file: Option<PathBuf>,

    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        requires = "cert_file",
        help_heading = "TLS"
    )]
    pub key_file: Option<PathBuf>,

    /// Verify the broker's certificate against this name instead of the
    /// host part of the broker address.
    #[arg(long, global = true, value_name = "NAME", help_heading = "TLS")]
    pub tls_server_name: Option<String>,

    /// DANGER: accept any broker certificate. Anyone on the path can then
    /// read and change the traffic; for tests only.
    #[arg(long, global = true, help_heading = "TLS")]
    pub insecure_skip_verify: bool,

    /// Authenticate with SASL using this mechanism.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "MECHANISM",
        help_heading = "SASL"
    )]
    pub sasl_mechanism: Option<SaslMechanism>,

    /// The SASL username.
    #[arg(long, global = true, value_name = "USER", help_heading = "SASL")]
    pub sasl_username: Option<String>,

    /// The SASL password (prefer the environment variable: command lines
    /// show up in process lists).
    #[arg(
        long,
        global = true,
        env = "KAFKIT_SASL_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        help_heading = "SASL"
    )]
    pub sasl_password: Option<String>,
}

impl ConnectArgs {
    /// The bootstrap addresses.
    pub fn bootstrap(&self) -> Vec<String> {
        TransportConfig::new([self.brokers.as_str()]).bootstrap
    }

    /// True when any TLS flag is set.
    fn wants_tls(&self) -> bool {
        self.tls
            || self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.tls_server_name.is_some()
            || self.insecure_skip_verify
    }

    /// The connection settings the flags describe. Certificates and keys
    /// are read here, so a bad file fails before anything is dialled.
    pub fn conn_config(&self) -> Result<ConnConfig> {
        let mut config = ConnConfig {
            client_id: Some(self.client_id.clone()),
            request_timeout: Some(self.request_timeout),
            ..ConnConfig::default()
        };
        if self.wants_tls() {
            let mut tls = TlsConfig::builder();
            if let Some(ca) = &self.ca_file {
                tls = tls.ca_file(ca);
            }
            if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
                tls = tls.client_cert_files(cert, key);
            }
            if let Some(name) = &self.tls_server_name {
                tls = tls.server_name(name);
            }
            tls = tls.danger_accept_invalid_certs(self.insecure_skip_verify);
            config.tls = Some(tls.build()?);
        }
        config.sasl = match self.sasl_mechanism {
            None => {
                if self.sasl_username.is_some() {
                    return Err(Failure::usage("--sasl-username needs --sasl-mechanism"));
                }
                None
            }
            Some(mechanism) => {
                let (Some(user), Some(password)) = (&self.sasl_username, &self.sasl_password)
                else {
                    return Err(Failure::usage(
                        "--sasl-mechanism needs --sasl-username and --sasl-password \
                         (or KAFKIT_SASL_PASSWORD)",
                    ));
                };
                Some(match mechanism {
                    SaslMechanism::Plain => Arc::new(Plain::new(user, password)) as _,
                    SaslMechanism::ScramSha256 => Arc::new(Scram::sha256(user, password)) as _,
                    SaslMechanism::ScramSha512 => Arc::new(Scram::sha512(user, password)) as _,
                })
            }
        };
        Ok(config)
    }

    /// The transport settings: the bootstrap list and [`Self::conn_config`].
    pub fn transport_config(&self) -> Result<TransportConfig> {
        let bootstrap = self.bootstrap();
        if bootstrap.is_empty() {
            return Err(Failure::usage("--brokers names no broker"));
        }
        let mut config = TransportConfig::new(bootstrap);
        config.conn = self.conn_config()?;
        Ok(config)
    }

    /// Connects to the cluster (fetches its metadata from the first
    /// bootstrap broker that answers).
    pub async fn connect(&self) -> Result<Transport> {
        let config = self.transport_config()?;
        Transport::connect(config)
            .await
            .map_err(|e| Failure::from(e).context(format!("cannot reach {}", self.brokers)))
    }
}

/// Parses `1500ms`, `2s`, `1.5s`, `3m`, `250us`; a bare number is
/// milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 500ms, 2s or 1m"))?;
    let scale = match unit.trim() {
        "" | "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Test {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    fn parse(args: &[&str]) -> ConnectArgs {
        Test::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .connect
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5ms").unwrap(), Duration::from_millis(5));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn brokers_split_on_commas() {
        let args = parse(&["-b", "a:1, b:2,,"]);
        assert_eq!(args.bootstrap(), ["a:1", "b:2"]);
        assert_eq!(args.transport_config().unwrap().bootstrap, ["a:1", "b:2"]);
        assert!(parse(&["-b", " , "]).transport_config().is_err());
    }

    #[test]
    fn sasl_flags_map_to_a_mechanism() {
        let args = parse(&[
            "--sasl-mechanism",
            "scram-sha-512",
            "--sasl-username",
            "alice",
            "--sasl-password",
            "secret",
        ]);
        let config = args.conn_config().unwrap();
        assert_eq!(config.sasl.unwrap().name(), "SCRAM-SHA-512");
        assert!(config.tls.is_none());
        let missing = parse(&["--sasl-mechanism", "plain", "--sasl-username", "alice"]);
        // The password may come from the environment; without it, a usage error.
        if std::env::var_os("KAFKIT_SASL_PASSWORD").is_none() {
            assert_eq!(
                missing.conn_config().unwrap_err().exit,
                crate::error::Exit::Usage
            );
        }
    }

    #[test]
    fn tls_flags_imply_tls_and_bad_files_fail_early() {
        let args = parse(&["--insecure-skip-verify"]);
        assert!(args.conn_config().unwrap().tls.is_some());
        let args = parse(&["--ca-file", "/nonexistent/ca.pem"]);
        let e = args.conn_config().unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Auth, "{e}");
        assert!(Test::try_parse_from(["t", "--cert-file", "c.pem"]).is_err());
    }
}
