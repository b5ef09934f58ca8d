//! [`TlsConfig`]: TLS for broker connections, with rustls (ring provider).
//!
//! The certificates and keys are read and checked once, in
//! [`TlsConfigBuilder::build`], so a bad CA file is a configuration error at
//! start-up rather than at the first connection. Dialling then only runs the
//! handshake ([`connect`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Error, ErrorKind, TlsErrorKind};

/// TLS settings for broker connections: which roots to trust, an optional
/// client certificate (mutual TLS), and the name to verify.
///
/// Built with [`TlsConfig::builder`]; cheap to clone. Verification is on
/// unless [`TlsConfigBuilder::danger_accept_invalid_certs`] turns it off.
/// `Debug` names the sources, never key material.
///
/// ```no_run
/// use kafkit_conn::{ConnConfig, TlsConfig};
/// # fn example() -> Result<(), kafkit_conn::Error> {
/// let tls = TlsConfig::builder()
///     .ca_file("/etc/kafka/ca.pem")
///     .client_cert_files("/etc/kafka/client.pem", "/etc/kafka/client.key")
///     .build()?;
/// let config = ConnConfig { tls: Some(tls), ..Default::default() };
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    summary: Arc<Summary>,
}

/// What `Debug` shows: sources, not contents.
#[derive(Debug)]
struct Summary {
    roots: String,
    client_cert: Option<String>,
    danger_accept_invalid_certs: bool,
}

/// Builds a [`TlsConfig`]. The defaults trust the system's root
/// certificates, send no client certificate, verify the host part of the
/// dialled address, and verify the certificate.
#[derive(Clone, Default)]
pub struct TlsConfigBuilder {
    roots: Roots,
    client_cert: Option<ClientCert>,
    server_name: Option<String>,
    danger_accept_invalid_certs: bool,
}

#[derive(Clone, Default)]
enum Roots {
    #[default]
    System,
    File(PathBuf),
    Pem(Vec<u8>),
}

#[derive(Clone)]
enum ClientCert {
    Files { cert: PathBuf, key: PathBuf },
    Pem { cert: Vec<u8>, key: Vec<u8> },
}

impl TlsConfig {
    /// A builder with the defaults (system roots, no client certificate).
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// The name verified against the broker's certificate and sent as SNI
    /// when dialling `addr` (`host:port`): the override, else the host.
    fn server_name_for(&self, addr: &str) -> Result<ServerName<'static>, Error> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = match addr.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => addr,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|e| {
            tls_error(TlsErrorKind::InvalidServerName)
                .with_message(format!("{host:?} from the address: {e}; set a server name"))
        })
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.summary.roots)
            .field("client_cert", &self.summary.client_cert)
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certs",
                &self.summary.danger_accept_invalid_certs,
            )
            .finish()
    }
}

impl TlsConfigBuilder {
    /// Trusts only the CA certificates in the PEM file at `path`, instead of
    /// the system roots: the usual setup for a cluster with its own CA.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.roots = Roots::File(path.into());
        self
    }

    /// Trusts only the CA certificates in `pem` (PEM text).
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots = Roots::Pem(pem.into());
        self
    }

    /// Trusts the operating system's root certificates (the default).
    pub fn system_roots(mut self) -> Self {
        self.roots = Roots::System;
        self
    }

    /// Presents the certificate chain in the PEM file `cert` with the
    /// private key in the PEM file `key` (PKCS#8, PKCS#1 or SEC1), for
    /// brokers that require mutual TLS (`ssl.client.auth=required`).
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(ClientCert::Files {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// [`client_cert_files`](Self::client_cert_files) from PEM text.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_cert = Some(ClientCert::Pem {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Verifies the broker's certificate against `name` (and sends it as
    /// SNI) instead of the host part of the dialled address: for brokers
    /// reached through an IP address, a tunnel or a load balancer whose
    /// certificate names another host. A DNS name or an IP address.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Disables certificate verification**: any certificate, from anyone,
    /// is accepted, so an attacker on the path can read and change all
    /// traffic. Only for tests and throwaway clusters. Signatures in the
    /// handshake are still checked. Default `false`.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Reads the certificates and keys and checks them.
    ///
    /// Errors: [`ErrorKind::Tls`] with [`TlsErrorKind::BadCa`],
    /// [`TlsErrorKind::BadClientCertificate`] or
    /// [`TlsErrorKind::InvalidServerName`], naming the file and the reason.
    pub fn build(self) -> Result<TlsConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(TlsErrorKind::Handshake).with_message(e.to_string()))?;
        let (builder, roots) = if self.danger_accept_invalid_certs {
            let verifier = AcceptAnyCert(provider.signature_verification_algorithms);
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier));
            (builder, "none: verification disabled".to_owned())
        } else {
            let (store, roots) = self.roots.load()?;
            (builder.with_root_certificates(store), roots)
        };
        let (client, client_cert) = match &self.client_cert {
            None => (builder.with_no_client_auth(), None),
            Some(cert) => {
                let (chain, key, source) = cert.load()?;
                let client = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    tls_error(TlsErrorKind::BadClientCertificate)
                        .with_message(format!("{source}: {e}"))
                })?;
                (client, Some(source))
            }
        };
        let server_name = self
            .server_name
            .map(|name| {
                ServerName::try_from(name.clone()).map_err(|e| {
                    tls_error(TlsErrorKind::InvalidServerName)
                        .with_message(format!("{name:?}: {e}"))
                })
            })
            .transpose()?;
        Ok(TlsConfig {
            client: Arc::new(client),
            server_name,
            summary: Arc::new(Summary {
                roots,
                client_cert,
                danger_accept_invalid_certs: self.danger_accept_invalid_certs,
            }),
        })
    }
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match &self.roots {
            Roots::System => "system".to_owned(),
            Roots::File(path) => path.display().to_string(),
            Roots::Pem(_) => "PEM".to_owned(),
        };
        let client_cert = self.client_cert.as_ref().map(|c| match c {
            ClientCert::Files { cert, .. } => cert.display().to_string(),
            ClientCert::Pem { .. } => "PEM".to_owned(),
        });
        f.debug_struct("TlsConfigBuilder")
            .field("roots", &roots)
            .field("client_cert", &client_cert)
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .finish()
    }
}

impl Roots {
    /// The trusted roots and a description of where they came from.
    fn load(&self) -> Result<(RootCertStore, String), Error> {
        let bad_ca = |why: String| tls_error(TlsErrorKind::BadCa).with_message(why);
        let (certs, source) = match self {
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    let why = found.errors.first().map(|e| e.to_string());
                    return Err(bad_ca(format!(
                        "no system root certificates found{}; set a CA file",
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    )));
                }
                (found.certs, "system".to_owned())
            }
            Roots::File(path) => (read_certs_file(path, bad_ca)?, path.display().to_string()),
            Roots::Pem(pem) => (
                read_certs(CertificateDer::pem_slice_iter(pem), "CA PEM", bad_ca)?,
                "PEM".to_owned(),
            ),
        };
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad_ca(format!("{source}: no usable CA certificate")));
        }
        Ok((store, source))
    }
}

impl ClientCert {
    fn load(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), Error> {
        let bad = |why: String| tls_error(TlsErrorKind::BadClientCertificate).with_message(why);
        match self {
            ClientCert::Files { cert, key } => {
                let chain = read_certs_file(cert, bad)?;
                // The key's parse error never quotes the key.
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad(format!("key file {}: {e}", key.display())))?;
                Ok((chain, key, cert.display().to_string()))
            }
            ClientCert::Pem { cert, key } => {
                let chain =
                    read_certs(CertificateDer::pem_slice_iter(cert), "certificate PEM", bad)?;
                let key =
                    PrivateKeyDer::from_pem_slice(key).map_err(|e| bad(format!("key PEM: {e}")))?;
                Ok((chain, key, "PEM".to_owned()))
            }
        }
    }
}

fn read_certs_file(
    path: &Path,
    error: impl Fn(String) -> Error,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(format!("{}: {e}", path.display())))?;
    read_certs(iter, &path.display().to_string(), error)
}

fn read_certs(
    iter: impl Iterator<Item = Result<CertificateDer<'static>, rustls_pki_types::pem::Error>>,
    source: &str,
    error: impl Fn(String) -> Error,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("{source}: {e}")))?;
    if certs.is_empty() {
        return Err(error(format!("{source}: no PEM certificate found")));
    }
    Ok(certs)
}

pub(crate) fn tls_error(kind: TlsErrorKind) -> Error {
    Error::new(ErrorKind::Tls(kind))
}

/// Runs the TLS handshake over `tcp` to the broker at `addr`. The caller
/// bounds it by the connect timeout.
pub(crate) async fn connect(
    config: &TlsConfig,
    tcp: TcpStream,
    addr: &str,
) -> Result<TlsStream<TcpStream>, Error> {
    let name = config.server_name_for(addr)?;
    TlsConnector::from(config.client.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| classify_io(e).unwrap_or_else(|e| Error::io(e).with_message("TLS handshake")))
}

/// Turns an IO error that carries a rustls error into a typed TLS error;
/// other IO errors come back unchanged.
pub(crate) fn classify_io(e: io::Error) -> Result<Error, io::Error> {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return Err(e);
    };
    let kind = match tls {
        rustls::Error::InvalidCertificate(_) => TlsErrorKind::CertificateRejected,
        _ => TlsErrorKind::Handshake,
    };
    let hint = match tls {
        rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::HandshakeFailure,
        ) => "; the broker may require a client certificate it trusts",
        _ => "",
    };
    Ok(tls_error(kind).with_message(format!("{tls}{hint}")))
}

/// Classifies the error that ended a TLS connection while it opened
/// (ApiVersions): with TLS 1.3 the broker rejects a client certificate only
/// after the client considers the handshake done, so the rejection surfaces
/// on the first read.
pub(crate) fn classify(e: Error) -> Error {
    let Some(io) = e.io_source() else {
        return e;
    };
    let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return e;
    };
    let rebuilt = io::Error::new(io.kind(), tls.clone());
    match classify_io(rebuilt) {
        Ok(typed) => match e.broker() {
            Some(b) => typed.with_broker(b),
            None => typed,
        },
        Err(_) => e,
    }
}

/// The verifier behind `danger_accept_invalid_certs`: trusts any chain,
/// still checks handshake signatures so the session keys are the peer's.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &Error) -> TlsErrorKind {
        match e.kind() {
            ErrorKind::Tls(k) => *k,
            other => panic!("not a TLS error: {other:?}"),
        }
    }

    #[test]
    fn a_missing_ca_file_is_a_typed_error_naming_it() {
        let e = TlsConfig::builder()
            .ca_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert_eq!(kind(&e), TlsErrorKind::BadCa);
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn pem_without_certificates_is_a_bad_ca() {
        let e = TlsConfig::builder()
            .ca_pem("not a certificate")
            .build()
            .unwrap_err();
        assert_eq!(kind(&e), TlsErrorKind::BadCa);
    }

    #[test]
    fn a_bad_server_name_is_rejected_at_build() {
        let e = TlsConfig::builder()
            .danger_accept_invalid_certs(true)
            .server_name("not a name!")
            .build()
            .unwrap_err();
        assert_eq!(kind(&e), TlsErrorKind::InvalidServerName);
    }

    #[test]
    fn the_server_name_defaults_to_the_host_of_the_address() {
        let tls = TlsConfig::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let name = |addr| tls.server_name_for(addr).unwrap().to_str().into_owned();
        assert_eq!(name("broker.example:9093"), "broker.example");
        assert_eq!(name("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(name("[::1]:9093"), "::1");
        let tls = TlsConfig::builder()
            .danger_accept_invalid_certs(true)
            .server_name("kafka.internal")
            .build()
            .unwrap();
        assert!(
            format!("{:?}", tls.server_name_for("10.0.0.1:9093").unwrap())
                .contains("kafka.internal")
        );
    }

    #[test]
    fn debug_names_sources_and_never_key_material() {
        let key = "-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n";
        let builder = TlsConfig::builder()
            .ca_file("/etc/ca.pem")
            .client_cert_pem("cert", key);
        let text = format!("{builder:?}");
        assert!(
            text.contains("/etc/ca.pem") && !text.contains("U0VDUkVU"),
            "{text}"
        );
        let e = TlsConfig::builder()
            .danger_accept_invalid_certs(true)
            .client_cert_pem("garbage", key)
            .build()
            .unwrap_err();
        assert_eq!(kind(&e), TlsErrorKind::BadClientCertificate);
        assert!(!format!("{e} {e:?}").contains("U0VDUkVU"));
    }
}
