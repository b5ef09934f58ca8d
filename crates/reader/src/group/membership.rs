//! The membership state machine, run as one background task per group
//! reader: join (with the member-id-required retry of KIP-394), let the
//! leader assign, sync, then heartbeat every `heartbeat_interval` until the
//! coordinator asks for a rebalance, the subscribed topics change, or the
//! member is fenced. It owns no partitions itself: it tells the reader what
//! to revoke and assign through [`GroupEvent`]s and waits for the reader to
//! finish a revocation (commit, stop fetching) before moving on, still
//! heartbeating meanwhile so a slow reader does not lose its session.
//!
//! Eager assignors: everything is revoked before joining. Cooperative
//! (KIP-429): members keep what they own while rejoining; after SyncGroup
//! only the partitions that moved away are revoked, and a member that lost
//! some rejoins at once so the next rebalance can hand them on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_conn::ErrorCode;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::assignor::{Assignor, RebalanceProtocol};
use super::client::{Generation, GroupClient};
use super::leader;
use super::protocol::{Assignment, Subscription};
use crate::{Error, TopicPartition};

/// What the membership tells the reader.
#[derive(Debug)]
pub(crate) enum GroupEvent {
    /// Stop fetching these, committing first unless `lost`; then answer.
    Revoke {
        partitions: Vec<TopicPartition>,
        lost: bool,
        done: oneshot::Sender<()>,
    },
    /// Start fetching `added`; `assignment` is the whole new assignment.
    Assign {
        added: Vec<TopicPartition>,
        assignment: Vec<TopicPartition>,
        generation: i32,
    },
    /// The member cannot continue (fenced static member, bad config).
    Fatal(Error),
}

/// The membership's settings.
#[derive(Clone)]
pub(crate) struct MembershipConfig {
    pub topics: Vec<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub retry_backoff: Duration,
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// The member's rack, named in its subscription (KIP-881).
    pub rack: Option<String>,
}

/// What `close` needs to leave the group mid-rebalance.
#[derive(Debug, Default, Clone)]
pub(crate) struct Joining {
    /// The id the coordinator last named this member by ("" for none).
    pub member_id: String,
    /// A JoinGroup is waiting for its answer: with no member id yet, the
    /// coordinator may already count this member without us knowing its id.
    pub in_flight: bool,
    /// Why the member last (re)joined: "first join" until a rebalance.
    pub reason: &'static str,
}

/// Why the stable phase ended.
enum Next {
    /// Rejoin, for this reason.
    Rejoin(&'static str),
    Stop,
}

pub(crate) struct Membership {
    client: GroupClient,
    config: MembershipConfig,
    protocol: RebalanceProtocol,
    generation: Generation,
    shared: Arc<Mutex<Generation>>,
    /// The member id the coordinator knows this member by, as soon as a
    /// JoinGroup answer names it, and whether a JoinGroup is in flight:
    /// `shared` has the id only from the SyncGroup on, but a member that
    /// closes mid-rebalance must still leave (a member the coordinator
    /// waits for, or made leader, stalls the whole group).
    joining: watch::Sender<Joining>,
    events: mpsc::UnboundedSender<GroupEvent>,
    /// What the reader owns now.
    owned: Vec<TopicPartition>,
    /// The last assignment and its generation, for sticky user data.
    last: (Vec<TopicPartition>, i32),
    /// Partition counts of the subscribed topics when we last synced;
    /// None when the metadata could not be had then.
    counts: Option<BTreeMap<String, usize>>,
}

impl Membership {
    pub(crate) fn new(
        client: GroupClient,
        config: MembershipConfig,
        instance_id: Option<String>,
        shared: Arc<Mutex<Generation>>,
        joining: watch::Sender<Joining>,
        events: mpsc::UnboundedSender<GroupEvent>,
    ) -> Membership {
        // Cooperative only when every assignor offered is: the group may
        // pick any of them.
        let protocol = if config
            .assignors
            .iter()
            .all(|a| a.protocol() == RebalanceProtocol::Cooperative)
        {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        };
        Membership {
            client,
            config,
            protocol,
            generation: Generation::new(instance_id),
            shared,
            joining,
            events,
            owned: Vec::new(),
            last: (Vec::new(), -1),
            counts: None,
        }
    }

    /// Runs until the reader goes away or a fatal error.
    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!("kafka_group", group = %self.client.group_id());
        async move {
            loop {
                if !self.join_and_sync().await {
                    return;
                }
                match self.stable().await {
                    Next::Stop => return,
                    Next::Rejoin(reason) => self.joining.send_modify(|j| j.reason = reason),
                }
            }
        }
        .instrument(span)
        .await
    }

    fn publish(&self) {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = self.generation.clone();
    }

    /// The coordinator named (or, with an empty id, forgot) this member.
    fn set_member_id(&mut self, id: &str) {
        self.generation.member_id = id.to_owned();
        self.joining.send_modify(|j| j.member_id = id.to_owned());
    }

    /// Tells the reader to drop `partitions` and waits until it has,
    /// heartbeating meanwhile. False when the reader is gone.
    async fn revoke(&mut self, partitions: Vec<TopicPartition>, lost: bool) -> bool {
        if partitions.is_empty() {
            return true;
        }
        tracing::info!(count = partitions.len(), lost, "revoking partitions");
        let gone: BTreeSet<&TopicPartition> = partitions.iter().collect();
        let keep: Vec<TopicPartition> = self
            .owned
            .iter()
            .filter(|tp| !gone.contains(tp))
            .cloned()
            .collect();
        let (done, mut acked) = oneshot::channel();
        if self
            .events
            .send(GroupEvent::Revoke {
                partitions,
                lost,
                done,
            })
            .is_err()
        {
            return false;
        }
        self.owned = keep;
        loop {
            tokio::select! {
                _ = &mut acked => return true,
                () = tokio::time::sleep(self.config.heartbeat_interval), if !lost => {
                    // The answer does not matter here: a rebalance is already
                    // on its way, and the coming join tells us if we are out.
                    let _ = self.client.heartbeat(&self.generation).await;
                }
            }
        }
    }

    /// Everything is lost (fenced or expired): no commit is possible.
    async fn lose_all(&mut self) -> bool {
        self.generation.generation_id = -1;
        self.publish();
        // Nothing is ours any more, and the next subscription must not
        // claim the old assignment through sticky user data: a leader
        // honouring that stale claim would hold the partitions back from
        // their new owner for a revocation that never comes (KIP-429).
        self.last = (Vec::new(), -1);
        let owned = std::mem::take(&mut self.owned);
        self.revoke(owned, true).await
    }

    fn fatal(&self, e: Error) -> bool {
        tracing::error!(error = %e, "leaving the group for good");
        let _ = self.events.send(GroupEvent::Fatal(e));
        false
    }

    /// One rebalance; false when the task should end.
    async fn join_and_sync(&mut self) -> bool {
        if self.protocol == RebalanceProtocol::Eager {
            let owned = self.owned.clone();
            if !self.revoke(owned, false).await {
                return false;
            }
        }
        loop {
            let protocols = self
                .config
                .assignors
                .iter()
                .map(|a| {
                    let sub = Subscription {
                        topics: self.config.topics.clone(),
                        user_data: a.user_data(&self.last.0, self.last.1),
                        owned_partitions: self.owned.clone(),
                        generation_id: self.last.1,
                        rack_id: self.config.rack.clone(),
                        ..Subscription::default()
                    };
                    let bytes = sub.encode().expect("a subscription encodes at v3");
                    (a.name().to_owned(), bytes)
                })
                .collect();
            self.joining.send_modify(|j| j.in_flight = true);
            let joined = self
                .client
                .join(
                    &self.generation,
                    self.config.session_timeout,
                    self.config.rebalance_timeout,
                    protocols,
                )
                .await;
            self.joining.send_modify(|j| j.in_flight = false);
            let joined = match joined {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "JoinGroup failed; retrying");
                    tokio::time::sleep(self.config.retry_backoff).await;
                    continue;
                }
            };
            match joined.error_code {
                ErrorCode::NONE => {}
                ErrorCode::MEMBER_ID_REQUIRED => {
                    // KIP-394: rejoin at once with the id the broker chose.
                    self.set_member_id(&joined.member_id);
                    continue;
                }
                ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                    self.set_member_id("");
                    if !self.lose_all().await {
                        return false;
                    }
                    continue;
                }
                code @ (ErrorCode::FENCED_INSTANCE_ID
                | ErrorCode::GROUP_AUTHORIZATION_FAILED
                | ErrorCode::INVALID_SESSION_TIMEOUT
                | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
                | ErrorCode::GROUP_MAX_SIZE_REACHED
                | ErrorCode::INVALID_GROUP_ID) => {
                    let e = kafkit_conn::Error::from_code(code);
                    return self.fatal(e.into());
                }
                code => {
                    tracing::debug!(?code, "JoinGroup answered an error; retrying");
                    tokio::time::sleep(self.config.retry_backoff).await;
                    continue;
                }
            }
            self.set_member_id(&joined.member_id);
            self.generation.generation_id = joined.generation_id;
            let protocol_name = joined.protocol_name.clone();
            let is_leader = joined.leader == joined.member_id;
            tracing::info!(
                generation = joined.generation_id,
                member = %joined.member_id,
                leader = is_leader,
                leader_id = %joined.leader,
                protocol = protocol_name.as_deref().unwrap_or(""),
                "joined the group"
            );
            let mut assignments = Vec::new();
            if is_leader {
                let name = protocol_name.as_deref().unwrap_or("");
                let Some(assignor) = self.config.assignors.iter().find(|a| a.name() == name) else {
                    return self.fatal(Error::group(format!(
                        "the group chose assignor {name:?}, which this reader does not offer"
                    )));
                };
                match leader::assign(self.client.transport(), assignor, &joined.members).await {
                    Ok(a) => assignments = a,
                    Err(e) => {
                        tracing::warn!(error = %e, "assignment failed; rejoining");
                        tokio::time::sleep(self.config.retry_backoff).await;
                        continue;
                    }
                }
            }
            let bytes = match self
                .client
                .sync(&self.generation, protocol_name, assignments)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(error = %e, "SyncGroup failed; rejoining");
                    if matches!(
                        e.code(),
                        Some(ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION)
                    ) {
                        if e.code() == Some(ErrorCode::UNKNOWN_MEMBER_ID) {
                            self.set_member_id("");
                        }
                        if !self.lose_all().await {
                            return false;
                        }
                    } else if e.code() != Some(ErrorCode::REBALANCE_IN_PROGRESS) {
                        tokio::time::sleep(self.config.retry_backoff).await;
                    }
                    continue;
                }
            };
            let assignment = match Assignment::decode(&bytes) {
                Ok(a) => a.partitions,
                Err(e) => return self.fatal(Error::group(format!("undecodable assignment: {e}"))),
            };
            self.publish();
            self.remember_counts().await;
            let new: BTreeSet<&TopicPartition> = assignment.iter().collect();
            let old: BTreeSet<&TopicPartition> = self.owned.iter().collect();
            let revoked: Vec<TopicPartition> =
                old.difference(&new).map(|tp| (*tp).clone()).collect();
            let added: Vec<TopicPartition> = new.difference(&old).map(|tp| (*tp).clone()).collect();
            let must_rejoin = !revoked.is_empty();
            if !self.revoke(revoked, false).await {
                return false;
            }
            self.owned = assignment.clone();
            self.last = (assignment.clone(), self.generation.generation_id);
            let event = GroupEvent::Assign {
                added,
                assignment,
                generation: self.generation.generation_id,
            };
            if self.events.send(event).is_err() {
                return false;
            }
            if must_rejoin && self.protocol == RebalanceProtocol::Cooperative {
                // KIP-429: what we gave up can now go to its new owner.
                continue;
            }
            return true;
        }
    }

    /// The partition counts of the subscribed topics, from metadata that
    /// is fetched when it is older than its max age (a follower has not
    /// looked the topics up before its first fetch, so the cached
    /// snapshot alone would show them as missing and trigger a needless
    /// rejoin). None when the metadata cannot be had.
    async fn current_counts(&self) -> Option<BTreeMap<String, usize>> {
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        // Bounded, so that a slow metadata refresh never delays the next
        // heartbeat past the session timeout.
        let lookup = self.client.transport().cluster_for(&topics);
        match tokio::time::timeout(self.config.heartbeat_interval, lookup).await {
            Err(_) => {
                tracing::debug!("metadata for the subscribed topics is slow; checked later");
                None
            }
            Ok(Ok(cluster)) => Some(
                topics
                    .iter()
                    .map(|t| ((*t).to_owned(), cluster.partition_count(t)))
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no metadata for the subscribed topics");
                None
            }
        }
    }

    async fn remember_counts(&mut self) {
        self.counts = self.current_counts().await;
    }

    /// Whether the subscribed topics gained or lost partitions (or came
    /// into being) since the last sync.
    async fn topics_changed(&mut self) -> bool {
        let Some(now) = self.current_counts().await else {
            return false;
        };
        match &self.counts {
            Some(then) => *then != now,
            None => {
                self.counts = Some(now);
                false
            }
        }
    }

    /// Heartbeats until a rebalance is due.
    async fn stable(&mut self) -> Next {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.config.heartbeat_interval).await;
            if self.events.is_closed() {
                return Next::Stop;
            }
            if self.topics_changed().await {
                tracing::info!("subscribed topics changed; rejoining");
                return Next::Rejoin("subscribed topics changed");
            }
            let Err(e) = self.client.heartbeat(&self.generation).await else {
                last_ok = Instant::now();
                continue;
            };
            match e.code() {
                Some(ErrorCode::REBALANCE_IN_PROGRESS) => {
                    tracing::info!("the group is rebalancing");
                    return Next::Rejoin("the group is rebalancing");
                }
                Some(ErrorCode::FENCED_INSTANCE_ID) => {
                    self.lose_all().await;
                    self.fatal(e.into());
                    return Next::Stop;
                }
                Some(code @ (ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION)) => {
                    tracing::warn!(?code, "fenced from the group; partitions lost");
                    if code == ErrorCode::UNKNOWN_MEMBER_ID {
                        self.set_member_id("");
                    }
                    return if self.lose_all().await {
                        Next::Rejoin("fenced from the group")
                    } else {
                        Next::Stop
                    };
                }
                _ if last_ok.elapsed() > self.config.session_timeout => {
                    tracing::warn!(error = %e, "no heartbeat within the session timeout");
                    return if self.lose_all().await {
                        Next::Rejoin("no heartbeat within the session timeout")
                    } else {
                        Next::Stop
                    };
                }
                _ => tracing::debug!(error = %e, "heartbeat failed; retrying"),
            }
        }
    }
}
