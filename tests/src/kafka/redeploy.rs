//! Redeploying a [`KafkaCluster`]: every node stopped, then started again
//! at once, advertised at new client addresses, as when a deployment
//! replaces every broker's host (the rebootstrap scenario of KIP-899).

use std::fs;
use std::net::SocketAddr;

use super::KafkaCluster;

impl KafkaCluster {
    /// From its next start, node `id` advertises its plaintext listener at
    /// `addr` (a proxy in front of it) instead of where it advertised it
    /// before. The node listens where it did.
    ///
    /// # Panics
    ///
    /// If the node runs (it reads its settings only at start), or its
    /// settings cannot be rewritten.
    pub fn advertise(&mut self, id: u32, addr: SocketAddr) {
        let node = self.node(id);
        assert!(node.process.is_none(), "Kafka node {id} is running");
        let text = fs::read_to_string(&node.config).expect("the node's settings");
        let rewritten: Vec<String> = text
            .lines()
            .map(|line| match line.strip_prefix("advertised.listeners=") {
                Some(value) => {
                    let listeners: Vec<String> = value
                        .split(',')
                        .map(|l| {
                            if l.starts_with("PLAINTEXT://") {
                                format!("PLAINTEXT://{addr}")
                            } else {
                                l.to_owned()
                            }
                        })
                        .collect();
                    format!("advertised.listeners={}", listeners.join(","))
                }
                None => line.to_owned(),
            })
            .collect();
        fs::write(&node.config, rewritten.join("\n") + "\n").expect("the node's settings");
    }

    /// Starts the stopped nodes `ids` together (a quorum of controllers
    /// must be up before any of them serves) and waits until each serves.
    ///
    /// # Panics
    ///
    /// If one runs already, or one does not serve in time.
    pub fn restart_all(&mut self, ids: &[u32]) {
        for &id in ids {
            let index = self.index(id);
            assert!(
                self.nodes[index].process.is_none(),
                "Kafka node {id} is running"
            );
            if let Err(e) = self.spawn(index) {
                panic!("could not restart Kafka node {id}: {e}");
            }
        }
        for &id in ids {
            let index = self.index(id);
            if let Err(e) = self.wait_serving(index) {
                panic!("could not restart Kafka node {id}: {e}");
            }
        }
    }
}
