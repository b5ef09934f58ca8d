//! [`TlsProxy`]: TLS in front of a plaintext broker, for tansu, which has no
//! TLS of its own. `socat` terminates TLS (optionally requiring a client
//! certificate) and forwards the bytes to the broker. [`TestPki`] makes the
//! certificates, fresh for each test, with `rcgen`.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// How long socat gets to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to tell a developer whose machine lacks socat.
const INSTALL_HINT: &str = "socat is not installed: the TLS tests put it in front of tansu \
     (which has no TLS). Install it with `apt-get install socat` (Debian/Ubuntu); \
     `cargo xtask test-kafka` installs it itself when run as root";

/// The `socat` binary, `None` when the tests should skip TLS: socat is
/// missing and `KAFKIT_BROKERS` names an external cluster that is not tansu
/// (which may have TLS listeners of its own, but not ones this harness knows).
///
/// # Panics
///
/// When socat is missing and the tests run against tansu, with how to
/// install it.
pub fn socat_or_skip() -> Option<PathBuf> {
    if let Some(path) = find_socat() {
        return Some(path);
    }
    let external = std::env::var("KAFKIT_BROKERS").is_ok_and(|l| !l.trim().is_empty());
    let tansu = std::env::var("KAFKIT_BROKERS_TANSU").is_ok_and(|v| v == "1");
    if external && !tansu {
        eprintln!("skipping a TLS test: {INSTALL_HINT}");
        return None;
    }
    panic!("{INSTALL_HINT}");
}

fn find_socat() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("socat"))
        .find(|candidate| candidate.is_file())
}

/// A CA, a server certificate it signed, and a client certificate it
/// signed, as PEM files in a directory of their own (removed on drop).
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    /// False for a directory made by another process (see [`TestPki::existing`]).
    owned: bool,
}

impl TestPki {
    /// A fresh CA; a server certificate for `server_names` (DNS names or IP
    /// addresses, such as `["localhost", "127.0.0.1"]`); and a client
    /// certificate for `kafkit-client`.
    pub fn generate(server_names: &[&str]) -> TestPki {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("kafkit-tls-{id}"));
        fs::create_dir_all(&dir).expect("create the certificate directory");

        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own, so that another test's CA is a stranger to
        // verifiers rather than a namesake with the wrong key.
        ca.distinguished_name
            .push(DnType::CommonName, format!("kafkit test CA {id}"));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();

        let names: Vec<String> = server_names.iter().map(|n| (*n).to_owned()).collect();
        let mut server = CertificateParams::new(names).unwrap();
        server.distinguished_name.push(
            DnType::CommonName,
            server_names.first().copied().unwrap_or("broker"),
        );
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
        fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
        fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();

        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "kafkit-client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
        fs::write(dir.join("client.pem"), client_cert.pem()).unwrap();
        fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
        TestPki { dir, owned: true }
    }

    /// The certificates another process generated in `dir` (the broker that
    /// `cargo xtask test-kafka` started), left in place on drop.
    pub fn existing(dir: PathBuf) -> TestPki {
        TestPki { dir, owned: false }
    }

    /// The directory that holds the PEM files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The client certificate (PEM).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client's private key (PEM).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `socat` terminating TLS on a free loopback port and forwarding to a
/// plaintext broker. Killed and reaped on drop.
#[derive(Debug)]
pub struct TlsProxy {
    child: Child,
    addr: SocketAddr,
}

impl TlsProxy {
    /// Listens with `pki`'s server certificate and forwards to `upstream`.
    /// With `require_client_cert`, a client must present a certificate
    /// signed by `pki`'s CA (mutual TLS).
    ///
    /// # Panics
    ///
    /// If socat cannot start or does not accept connections within 10 s.
    pub fn start(
        socat: &Path,
        pki: &TestPki,
        upstream: SocketAddr,
        require_client_cert: bool,
    ) -> TlsProxy {
        // A port found free can be taken before socat binds it; socat then
        // exits at once and we try another.
        let mut last = String::new();
        for _ in 0..3 {
            match TlsProxy::try_start(socat, pki, upstream, require_client_cert) {
                Ok(proxy) => return proxy,
                Err(e) => last = e,
            }
        }
        panic!("could not start socat as a TLS proxy: {last}");
    }

    fn try_start(
        socat: &Path,
        pki: &TestPki,
        upstream: SocketAddr,
        require_client_cert: bool,
    ) -> Result<TlsProxy, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify={}",
            pki.server_cert().display(),
            pki.server_key().display(),
            pki.ca().display(),
            u8::from(require_client_cert),
        );
        let mut child = Command::new(socat)
            .arg(listen)
            .arg(format!("TCP:{upstream}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Rejected handshakes are the point of some tests: keep quiet.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", socat.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("socat exited at start-up ({status})"));
            }
            // Probing makes socat fork a child whose handshake fails at
            // once: harmless.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(TlsProxy { child, addr });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "socat did not listen on {addr} within {STARTUP_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TLS address to dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        // Forked children serving a connection exit when it closes.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
