//! Which brokers a metadata refresh asks, in which order, and
//! rebootstrapping (KIP-899, KIP-1102): going back to the bootstrap list
//! when the brokers of the metadata fail.
//!
//! [`ask_order`] decides, without IO; [`Inner::fetch_metadata`] asks down
//! the list until one answers. With [`MetadataRecovery::Rebootstrap`] (the
//! default) the bootstrap addresses follow the known brokers, so a
//! refresh that every known broker fails goes on to them; after
//! `rebootstrap_trigger` of failed refreshes they come first; and a broker
//! that answers `REBOOTSTRAP_REQUIRED` sends the refresh on to them at
//! once. Each address is dialled by name, so a host name is resolved anew
//! on every dial: a rebootstrap follows DNS. The cluster the answer
//! describes replaces the known one in the merge, and brokers that left
//! or moved are evicted from the pool.

use std::sync::atomic::Ordering;
use std::time::Duration;

use kafkit_protocol::ErrorCode;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::{MetadataRequest, MetadataResponse};

use super::{Inner, MetadataRecovery, Purpose};
use crate::{Broker, Error};

/// Where an address of an [`AskOrder`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A broker of the current metadata.
    Known,
    /// The bootstrap list: an answer from here after the first metadata is
    /// a rebootstrap.
    Bootstrap,
}

/// The addresses a refresh asks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AskOrder {
    pub(super) addrs: Vec<(String, Source)>,
}

/// The order for one refresh: `known` are the current metadata's brokers,
/// least loaded first; `failing_for` is how long refreshes have failed in
/// a row (`None`: the last one succeeded).
pub(super) fn ask_order(
    known: Vec<String>,
    bootstrap: &[String],
    recovery: MetadataRecovery,
    failing_for: Option<Duration>,
    trigger: Duration,
) -> AskOrder {
    if known.is_empty() {
        return AskOrder {
            addrs: tagged(bootstrap, Source::Bootstrap),
        };
    }
    let mut addrs: Vec<(String, Source)> = match recovery {
        MetadataRecovery::None => {
            return AskOrder {
                addrs: tagged(&known, Source::Known),
            };
        }
        MetadataRecovery::Rebootstrap if failing_for.is_some_and(|f| f >= trigger) => {
            tagged(bootstrap, Source::Bootstrap)
        }
        MetadataRecovery::Rebootstrap => tagged(&known, Source::Known),
    };
    for addr in known.iter().chain(bootstrap) {
        if !addrs.iter().any(|(a, _)| a == addr) {
            let source = if known.contains(addr) {
                Source::Known
            } else {
                Source::Bootstrap
            };
            addrs.push((addr.clone(), source));
        }
    }
    AskOrder { addrs }
}

fn tagged(addrs: &[String], source: Source) -> Vec<(String, Source)> {
    addrs.iter().map(|a| (a.clone(), source)).collect()
}

impl Inner {
    /// Known brokers' addresses, least loaded first, as Java's
    /// `leastLoadedNode`: an idle live connection, then a broker to dial,
    /// then brokers with requests in flight, fewest first. A broker that
    /// stopped answering (a long GC pause, a network partition) holds its
    /// unanswered requests, so it is asked last, instead of holding a
    /// refresh for a whole request timeout while its partitions' new
    /// leaders are known elsewhere.
    pub(super) fn least_loaded_first(&self) -> Vec<String> {
        let mut known: Vec<Broker> = self
            .metadata
            .snapshot()
            .brokers()
            .values()
            .cloned()
            .collect();
        known.sort_by_cached_key(|b| {
            let addr = b.addr();
            (self.in_flight_to(&addr), !self.has_live_conn(&addr), b.id)
        });
        known.iter().map(Broker::addr).collect()
    }

    /// The addresses the next refresh asks, in order.
    pub(super) fn metadata_ask_order(&self) -> AskOrder {
        ask_order(
            self.least_loaded_first(),
            &self.config.bootstrap,
            self.config.metadata_recovery,
            self.metadata.failing_for(),
            self.config.rebootstrap_trigger,
        )
    }

    /// Asks down [`metadata_ask_order`](Inner::metadata_ask_order) until
    /// one answers. An answer `REBOOTSTRAP_REQUIRED` from a known broker
    /// skips the other known brokers.
    pub(super) async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, Error> {
        let order = self.metadata_ask_order();
        let bootstrapped = self.metadata.is_bootstrapped();
        let request = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: self.config.allow_auto_topic_creation,
            ..Default::default()
        };
        let mut last = Error::config("no broker to ask for metadata");
        let mut skip_known = false;
        for (addr, source) in order.addrs {
            if skip_known && source == Source::Known {
                continue;
            }
            let attempt = async {
                let conn = self.conn(&addr, Purpose::Admin).await?;
                self.metadata_requests.fetch_add(1, Ordering::Relaxed);
                conn.request(request.clone()).await
            };
            match attempt.await {
                Ok(response) if response.error_code == ErrorCode::REBOOTSTRAP_REQUIRED => {
                    tracing::info!(broker = %addr, "the broker asks for a rebootstrap");
                    skip_known = self.config.metadata_recovery == MetadataRecovery::Rebootstrap;
                    last = Error::check(response.error_code, None)
                        .err()
                        .unwrap_or(last)
                        .with_broker(&addr);
                }
                Ok(response) => {
                    if bootstrapped && source == Source::Bootstrap {
                        self.rebootstraps.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(broker = %addr, "rebootstrapped: a bootstrap address answered");
                    }
                    tracing::debug!(broker = %addr, "metadata answered");
                    return Ok(response);
                }
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "metadata request failed");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIGGER: Duration = Duration::from_secs(300);

    fn addrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    fn order(
        known: &[&str],
        recovery: MetadataRecovery,
        failing_for: Option<Duration>,
    ) -> Vec<(String, Source)> {
        let bootstrap = addrs(&["b1:9092", "k2:9092", "b3:9092"]);
        ask_order(addrs(known), &bootstrap, recovery, failing_for, TRIGGER).addrs
    }

    fn listed(list: &[(&str, Source)]) -> Vec<(String, Source)> {
        list.iter().map(|(a, s)| ((*a).to_owned(), *s)).collect()
    }

    use MetadataRecovery::{None as Never, Rebootstrap};
    use Source::{Bootstrap, Known};

    #[test]
    fn the_first_refresh_asks_the_bootstrap_list_in_order() {
        for recovery in [Rebootstrap, Never] {
            assert_eq!(
                order(&[], recovery, None),
                listed(&[
                    ("b1:9092", Bootstrap),
                    ("k2:9092", Bootstrap),
                    ("b3:9092", Bootstrap)
                ])
            );
        }
    }

    #[test]
    fn known_brokers_come_first_then_the_bootstrap_addresses_they_lack() {
        let fresh = order(&["k1:9092", "k2:9092"], Rebootstrap, None);
        let failing = order(
            &["k1:9092", "k2:9092"],
            Rebootstrap,
            Some(TRIGGER - Duration::from_millis(1)),
        );
        let expected = listed(&[
            ("k1:9092", Known),
            ("k2:9092", Known),
            ("b1:9092", Bootstrap),
            ("b3:9092", Bootstrap),
        ]);
        assert_eq!(fresh, expected);
        assert_eq!(failing, expected);
    }

    #[test]
    fn after_the_trigger_the_bootstrap_list_comes_first() {
        assert_eq!(
            order(&["k1:9092", "k2:9092"], Rebootstrap, Some(TRIGGER)),
            listed(&[
                ("b1:9092", Bootstrap),
                ("k2:9092", Bootstrap),
                ("b3:9092", Bootstrap),
                ("k1:9092", Known),
            ])
        );
    }

    #[test]
    fn without_recovery_only_known_brokers_are_asked() {
        for failing_for in [None, Some(TRIGGER), Some(TRIGGER * 10)] {
            assert_eq!(
                order(&["k1:9092", "k2:9092"], Never, failing_for),
                listed(&[("k1:9092", Known), ("k2:9092", Known)])
            );
        }
    }
}
