//! The `server.properties` of each KRaft node of a [`KafkaCluster`](super::KafkaCluster).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The SASL user every ACL allows: a super user, like the plaintext listener's
/// anonymous principal and the client certificate's subject.
pub const SASL_ADMIN: (&str, &str) = ("admin", "admin-secret");
/// A SASL/PLAIN user with no ACLs: the authorizer denies it what no ACL allows.
pub const SASL_USER: (&str, &str) = ("alice", "alice-secret");
/// The subject of [`TestPki`](crate::TestPki)'s client certificate, as the
/// broker names its principal (a super user).
pub const CLIENT_CERT_PRINCIPAL: &str = "User:CN=kafkit-client";

/// A client-facing listener of a node. Inter-broker and controller traffic
/// have listeners of their own, so a proxy in front of a client listener
/// (see [`KafkaOptions::advertise`](super::KafkaOptions)) sees only clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// No TLS, no authentication: the anonymous principal, a super user.
    Plaintext,
    /// One-way TLS: the broker presents its certificate, the client none.
    Ssl,
    /// Mutual TLS: the client must present a certificate the CA signed.
    Mtls,
    /// SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 without TLS.
    SaslPlaintext,
    /// SASL over one-way TLS (no client certificate).
    SaslSsl,
}

impl Listener {
    /// Every client listener, in the order a node's client ports are kept.
    pub const ALL: [Listener; 5] = [
        Listener::Plaintext,
        Listener::Ssl,
        Listener::Mtls,
        Listener::SaslPlaintext,
        Listener::SaslSsl,
    ];

    /// The listener's name in `listeners`.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::Ssl => "SSL",
            Listener::Mtls => "MTLS",
            Listener::SaslPlaintext => "SASL_PLAINTEXT",
            Listener::SaslSsl => "SASL_SSL",
        }
    }

    /// The environment variable through which `cargo xtask test-kafka`
    /// passes this listener's bootstrap list to the tests.
    pub fn env_var(self) -> &'static str {
        match self {
            Listener::Plaintext => "KAFKIT_BROKERS",
            Listener::Ssl => "KAFKIT_BROKERS_SSL",
            Listener::Mtls => "KAFKIT_BROKERS_MTLS",
            Listener::SaslPlaintext => "KAFKIT_BROKERS_SASL_PLAINTEXT",
            Listener::SaslSsl => "KAFKIT_BROKERS_SASL_SSL",
        }
    }
}

/// The loopback ports of one node.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ports {
    /// One per [`Listener::ALL`].
    pub client: [u16; 5],
    /// Inter-broker replication and transaction markers.
    pub internal: u16,
    /// The KRaft quorum.
    pub controller: u16,
}

impl Ports {
    /// Seven ports that were free a moment ago. Another process may take one
    /// before the broker binds it; the cluster start then retries.
    pub fn free() -> std::io::Result<Ports> {
        // Held together, so the seven are distinct.
        let held: Vec<TcpListener> = (0..7)
            .map(|_| TcpListener::bind(("127.0.0.1", 0)))
            .collect::<Result<_, _>>()?;
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?;
        Ok(Ports {
            client: [ports[0], ports[1], ports[2], ports[3], ports[4]],
            internal: ports[5],
            controller: ports[6],
        })
    }

    pub fn addr(&self, listener: Listener) -> SocketAddr {
        let index = Listener::ALL
            .iter()
            .position(|l| *l == listener)
            .expect("a client listener");
        SocketAddr::from(([127, 0, 0, 1], self.client[index]))
    }
}

/// What one node's `server.properties` says.
#[derive(Debug)]
pub(super) struct NodeConfig<'a> {
    pub node_id: u32,
    pub ports: Ports,
    /// Every node's id and controller port: the static quorum.
    pub voters: &'a [(u32, u16)],
    /// The plaintext address advertised to clients, when not its own.
    pub advertised: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// The PEM key store (key and certificate) and trust store (the CA).
    pub keystore: &'a Path,
    pub truststore: &'a Path,
    /// Extra `name=value` settings, last, so they override the defaults.
    pub overrides: &'a [(String, String)],
}

impl NodeConfig<'_> {
    /// The properties file's text.
    pub fn render(&self) -> String {
        let nodes = self.voters.len();
        // Replication as users run it on three nodes: factor 3, and an
        // acks=all write needs two in sync. A single node can only have one.
        let min_isr = if nodes >= 3 { 2 } else { 1 };
        let voters: Vec<String> = self
            .voters
            .iter()
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect();
        let listeners: Vec<String> = Listener::ALL
            .iter()
            .map(|l| format!("{}://{}", l.name(), self.ports.addr(*l)))
            .chain([
                format!("INTERNAL://127.0.0.1:{}", self.ports.internal),
                format!("CONTROLLER://127.0.0.1:{}", self.ports.controller),
            ])
            .collect();
        let advertised: Vec<String> = Listener::ALL
            .iter()
            .map(|l| match (l, self.advertised) {
                (Listener::Plaintext, Some(addr)) => format!("PLAINTEXT://{addr}"),
                _ => format!("{}://{}", l.name(), self.ports.addr(*l)),
            })
            .chain([format!("INTERNAL://127.0.0.1:{}", self.ports.internal)])
            .collect();
        let mut out = String::new();
        let mut set = |name: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{name}={value}");
        };
        set("process.roles", &"broker,controller");
        set("node.id", &self.node_id);
        set("controller.quorum.voters", &voters.join(","));
        set("controller.listener.names", &"CONTROLLER");
        set("inter.broker.listener.name", &"INTERNAL");
        set("listeners", &listeners.join(","));
        set("advertised.listeners", &advertised.join(","));
        set(
            "listener.security.protocol.map",
            &"PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,\
              SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        );
        set("log.dirs", &self.data_dir.display());
        set("num.partitions", &1);
        set("default.replication.factor", &nodes);
        set("min.insync.replicas", &min_isr);
        set("offsets.topic.replication.factor", &nodes);
        set("offsets.topic.num.partitions", &10);
        set("transaction.state.log.replication.factor", &nodes);
        set("transaction.state.log.min.isr", &min_isr);
        set("transaction.state.log.num.partitions", &10);
        set("share.coordinator.state.topic.replication.factor", &nodes);
        set("share.coordinator.state.topic.min.isr", &min_isr);
        // Tests join groups with short session timeouts and without the
        // 3 s wait for more members that the default adds to a first join.
        set("group.initial.rebalance.delay.ms", &0);
        set("group.min.session.timeout.ms", &500);
        set("group.consumer.min.session.timeout.ms", &1000);
        set("group.consumer.min.heartbeat.interval.ms", &250);
        set("group.consumer.heartbeat.interval.ms", &500);
        set("group.share.min.record.lock.duration.ms", &1000);
        set("group.share.min.session.timeout.ms", &1000);
        set("group.share.min.heartbeat.interval.ms", &250);
        set("replica.lag.time.max.ms", &10_000);
        // Security: TLS with PEM stores, SASL, and an authorizer that denies
        // for real (everything for principals without ACLs but the super users).
        set("ssl.keystore.type", &"PEM");
        set("ssl.keystore.location", &self.keystore.display());
        set("ssl.truststore.type", &"PEM");
        set("ssl.truststore.location", &self.truststore.display());
        set("listener.name.mtls.ssl.client.auth", &"required");
        set(
            "sasl.enabled.mechanisms",
            &"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        );
        for listener in ["sasl_plaintext", "sasl_ssl"] {
            set(
                &format!("listener.name.{listener}.plain.sasl.jaas.config"),
                &format!(
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     user_{}=\"{}\" user_{}=\"{}\";",
                    SASL_ADMIN.0, SASL_ADMIN.1, SASL_USER.0, SASL_USER.1
                ),
            );
            for scram in ["scram-sha-256", "scram-sha-512"] {
                set(
                    &format!("listener.name.{listener}.{scram}.sasl.jaas.config"),
                    &"org.apache.kafka.common.security.scram.ScramLoginModule required;",
                );
            }
        }
        set(
            "authorizer.class.name",
            &"org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        set(
            "super.users",
            &format!(
                "User:ANONYMOUS;User:{};{CLIENT_CERT_PRINCIPAL}",
                SASL_ADMIN.0
            ),
        );
        for (name, value) in self.overrides {
            set(name, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(voters: &[(u32, u16)], advertised: Option<SocketAddr>) -> String {
        let ports = Ports {
            client: [9092, 9093, 9094, 9095, 9098],
            internal: 9096,
            controller: 9097,
        };
        NodeConfig {
            node_id: 1,
            ports,
            voters,
            advertised,
            data_dir: "/d".into(),
            keystore: Path::new("/k.pem"),
            truststore: Path::new("/ca.pem"),
            overrides: &[("num.partitions".into(), "3".into())],
        }
        .render()
    }

    #[test]
    fn a_three_node_quorum_replicates_three_ways_with_two_in_sync() {
        let text = config(&[(1, 9097), (2, 9197), (3, 9297)], None);
        assert!(text.contains(
            "controller.quorum.voters=1@127.0.0.1:9097,2@127.0.0.1:9197,3@127.0.0.1:9297\n"
        ));
        assert!(text.contains("default.replication.factor=3\n"));
        assert!(text.contains("min.insync.replicas=2\n"));
        assert!(text.contains("transaction.state.log.min.isr=2\n"));
    }

    #[test]
    fn only_the_plaintext_client_listener_is_advertised_elsewhere() {
        let text = config(&[(1, 9097)], Some("127.0.0.1:7000".parse().unwrap()));
        assert!(text.contains(
            "advertised.listeners=PLAINTEXT://127.0.0.1:7000,SSL://127.0.0.1:9093,\
             MTLS://127.0.0.1:9094,SASL_PLAINTEXT://127.0.0.1:9095,SASL_SSL://127.0.0.1:9098,\
             INTERNAL://127.0.0.1:9096\n"
        ));
        assert!(text.contains("inter.broker.listener.name=INTERNAL\n"));
        assert!(text.contains("min.insync.replicas=1\n"));
    }

    #[test]
    fn overrides_come_last() {
        let text = config(&[(1, 9097)], None);
        let first = text.find("num.partitions=1").unwrap();
        let last = text.rfind("num.partitions=3").unwrap();
        assert!(first < last);
    }
}
