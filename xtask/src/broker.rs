//! Running a tansu broker from xtask: `cargo xtask broker` for manual use,
//! and the shared broker that `cargo xtask test-kafka` runs the suite against.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::tansu;

/// How long tansu gets to accept connections (it usually needs about 0.1 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A tansu broker child process, killed and reaped on drop, so that it
/// stops even when the tests that used it fail or xtask returns early.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    addr: SocketAddr,
}

impl Broker {
    /// Starts tansu with in-memory storage on `port` (0 picks a free one)
    /// and waits until it accepts connections.
    pub fn start(binary: &Path, port: u16, quiet: bool) -> Result<Broker> {
        let port = if port == 0 { free_port()? } else { port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let url = format!("tcp://{addr}");
        let mut cmd = Command::new(binary);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null());
        if quiet {
            cmd.arg("--silent")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut broker = Broker { child, addr };
        broker.wait_until_accepting()?;
        Ok(broker)
    }

    /// The broker's listener address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn wait_until_accepting(&mut self) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tansu exited during startup ({status}); is port {} taken?",
                    self.addr.port()
                );
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "tansu did not accept connections on {} within {STARTUP_TIMEOUT:?}",
                    self.addr
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the broker to exit (it runs until interrupted).
    pub fn wait(mut self) -> Result<()> {
        let status = self.child.wait()?;
        bail!("tansu exited: {status}")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `cargo xtask broker [--port PORT]`: start tansu (installing it first if
/// needed) on 127.0.0.1:PORT (default 9092) and leave it running in the
/// foreground until interrupted.
pub fn run_command(args: &[String]) -> Result<()> {
    let (port, kafka_nodes) = match args {
        [] => (9092, None),
        [flag, port] if flag == "--port" => {
            (port.parse().context("--port takes a port number")?, None)
        }
        [flag] if flag == "--kafka" => (0, Some(1)),
        [flag, nodes_flag, nodes] if flag == "--kafka" && nodes_flag == "--nodes" => {
            (0, Some(nodes.parse().context("--nodes takes a count")?))
        }
        _ => bail!("usage: cargo xtask broker [--port PORT] | --kafka [--nodes N]"),
    };
    if let Some(nodes) = kafka_nodes {
        crate::kafka::ensure()?;
        let kafka = crate::kafka_run::KafkaRun::start(nodes, &[])?;
        println!(
            "Apache Kafka {} is serving at {} (Ctrl-C stops it)",
            crate::kafka::VERSION,
            kafka.bootstrap()
        );
        println!(
            "in another shell:  export KAFKIT_BROKERS={}",
            kafka.bootstrap()
        );
        return kafka.wait();
    }
    let binary = tansu::ensure()?;
    let broker = Broker::start(&binary, port, false)?;
    println!(
        "tansu is listening on {} (in-memory storage; Ctrl-C stops it)",
        broker.addr()
    );
    println!("in another shell:  export KAFKIT_BROKERS={}", broker.addr());
    broker.wait()
}
