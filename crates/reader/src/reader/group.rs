//! The reader's side of a consumer group: starts the membership task and
//! the interval committer, and applies the membership's events to the
//! fetcher (assign with committed offsets, revoke with a synchronous
//! commit, lose without one), running the rebalance listener in between.
//!
//! Events are applied inside the reader's own calls. An event being
//! applied sits in `current` until it is done, so a call cancelled halfway
//! (dropped `fetch_message` future) resumes it on the next call instead of
//! losing it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkit_conn::{ErrorCode, Transport};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::commit::{Commits, Parked, spawn_interval};
use crate::group::client::{Generation, GroupClient};
use crate::group::membership::{GroupEvent, Joining, Membership, MembershipConfig};
use crate::group::{Rebalance, RebalanceKind, RebalanceListener};
use crate::{Error, Fetcher, IsolationLevel, ReaderConfig, StartOffset, TopicPartition};

mod observe;

pub use kafkit_conn::ConsumerGroupMetadata;
pub use observe::GroupStats;

/// How long `close()` keeps retrying its final commit, and then its
/// LeaveGroup, through retriable errors: 30 s, the Java consumer's default
/// close timeout. Enough for a killed coordinator's successor to take over
/// (the broker session, 9 s on Kafka, then the offsets partition's load).
pub(crate) const CLOSE_PATIENCE: Duration = Duration::from_secs(30);

/// What a listener asked for: commits, then seeks.
type ListenerAsks = (
    Vec<(TopicPartition, i64)>,
    Vec<(TopicPartition, StartOffset)>,
);

pub(crate) struct GroupReader {
    events: mpsc::UnboundedReceiver<GroupEvent>,
    queued: VecDeque<GroupEvent>,
    /// The event being applied, and whether its listener already ran.
    current: Option<(GroupEvent, bool)>,
    pub(crate) commits: Arc<Commits>,
    generation: Arc<Mutex<Generation>>,
    /// The member id as soon as a JoinGroup named it (`generation` has it
    /// from the SyncGroup on), what `close` leaves with; and whether a
    /// JoinGroup is in flight.
    joining: watch::Receiver<Joining>,
    /// How long `close` waits for a JoinGroup in flight to name the
    /// member: the session timeout, after which the coordinator would
    /// drop it anyway.
    leave_wait: Duration,
    /// In a mutex only so that the reader is `Sync` (it is only used
    /// through `&mut self`, with `get_mut`).
    listener: Option<Mutex<Box<dyn RebalanceListener>>>,
    membership: JoinHandle<()>,
    interval: Option<JoinHandle<()>>,
    pub(crate) assignment: Vec<TopicPartition>,
    pub(crate) generation_id: i32,
    pub(crate) rebalances: u64,
    /// When the rebalance under way started (the last revocation, or the
    /// member's start), for the hook.
    rebalance_started: Instant,
    reset: StartOffset,
    fatal: Option<Error>,
    static_member: bool,
}

impl std::fmt::Debug for GroupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupReader")
            .field("group", &self.commits.client().group_id())
            .field("generation", &self.generation_id)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

impl GroupReader {
    pub(crate) fn start(
        transport: &Transport,
        config: &ReaderConfig,
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> GroupReader {
        let group_id = config.group_id.clone().expect("group mode");
        let client = GroupClient::new(transport.clone(), group_id)
            .require_stable(config.fetch.isolation_level == IsolationLevel::ReadCommitted);
        let generation = Arc::new(Mutex::new(Generation::new(
            config.group_instance_id.clone(),
        )));
        let commits = Arc::new(Commits::new(
            client.clone(),
            generation.clone(),
            config.commit_interval.is_none(),
            config.rebalance_timeout,
        ));
        let (tx, events) = mpsc::unbounded_channel();
        let (joining_tx, joining) = watch::channel(Joining {
            reason: "first join",
            ..Joining::default()
        });
        let membership = Membership::new(
            client,
            MembershipConfig {
                topics: config.subscribed_topics(),
                session_timeout: config.session_timeout,
                rebalance_timeout: config.rebalance_timeout,
                heartbeat_interval: config.heartbeat_interval,
                retry_backoff: config.retry_backoff,
                assignors: config.assignors.clone(),
                rack: config.fetch.rack.clone(),
            },
            config.group_instance_id.clone(),
            generation.clone(),
            joining_tx,
            tx,
        );
        let interval = config.commit_interval.map(|d| spawn_interval(&commits, d));
        GroupReader {
            events,
            queued: VecDeque::new(),
            current: None,
            commits,
            generation,
            joining,
            leave_wait: config.session_timeout,
            listener: listener.map(Mutex::new),
            membership: tokio::spawn(membership.run()),
            interval,
            assignment: Vec::new(),
            generation_id: -1,
            rebalances: 0,
            rebalance_started: Instant::now(),
            reset: config
                .auto_offset_reset
                .start()
                .unwrap_or(StartOffset::Earliest),
            fatal: None,
            static_member: config.group_instance_id.is_some(),
        }
    }

    /// Whether no rebalance event waits to be applied. A stale answer is
    /// harmless: an event arriving right after is applied by the next call,
    /// as it would be had it arrived after this one.
    pub(crate) fn is_settled(&self) -> bool {
        self.current.is_none()
            && self.queued.is_empty()
            && self.fatal.is_none()
            && self.events.is_empty()
    }

    /// Waits for the next event and queues it. Cancel safe.
    pub(crate) async fn wait_event(&mut self) -> Result<(), Error> {
        match self.events.recv().await {
            Some(ev) => {
                self.queued.push_back(ev);
                Ok(())
            }
            None => Err(self
                .fatal
                .clone()
                .unwrap_or_else(|| Error::closed("the group membership stopped"))),
        }
    }

    /// Applies every event that is ready. True when one was applied.
    pub(crate) async fn pump(
        &mut self,
        fetcher: &mut Fetcher,
        pending: &mut Option<Parked>,
    ) -> Result<bool, Error> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        while let Ok(ev) = self.events.try_recv() {
            self.queued.push_back(ev);
        }
        let mut any = false;
        loop {
            if self.current.is_none() {
                match self.queued.pop_front() {
                    Some(ev) => self.current = Some((ev, false)),
                    None => return Ok(any),
                }
            }
            any = true;
            self.apply_current(fetcher, pending).await?;
        }
    }

    fn run_listener(
        &mut self,
        kind: RebalanceKind,
        partitions: &[TopicPartition],
        assignment: &[TopicPartition],
    ) -> ListenerAsks {
        let Some(listener) = self
            .listener
            .as_mut()
            .map(|l| l.get_mut().unwrap_or_else(|e| e.into_inner()))
        else {
            return (Vec::new(), Vec::new());
        };
        let mut r = Rebalance {
            kind,
            partitions,
            assignment,
            generation: self.generation_id,
            committed: partitions
                .iter()
                .map(|tp| (tp.clone(), self.commits.committed(tp)))
                .collect(),
            commits: Vec::new(),
            seeks: Vec::new(),
        };
        listener.on_rebalance(&mut r);
        (r.commits, r.seeks)
    }

    async fn apply_current(
        &mut self,
        fetcher: &mut Fetcher,
        pending: &mut Option<Parked>,
    ) -> Result<(), Error> {
        let (event, listened) = self.current.take().expect("an event to apply");
        match event {
            GroupEvent::Fatal(e) => {
                self.fatal = Some(e.clone());
                Err(e)
            }
            GroupEvent::Revoke {
                partitions,
                lost,
                done,
            } => {
                let kind = if lost {
                    RebalanceKind::Lost
                } else {
                    RebalanceKind::Revoked
                };
                if !listened {
                    let remaining: Vec<TopicPartition> = self
                        .assignment
                        .iter()
                        .filter(|tp| !partitions.contains(tp))
                        .cloned()
                        .collect();
                    let (commits, _) = self.run_listener(kind, &partitions, &remaining);
                    for (tp, next) in commits {
                        self.commits.mark(&tp, next, None);
                    }
                }
                // Stop handing out their messages before anything awaits.
                fetcher.unassign(&partitions);
                if let Some(parked) = pending.take_if(|p| partitions.contains(p.partition())) {
                    self.commits.unpark(parked);
                }
                if !lost {
                    self.current = Some((
                        GroupEvent::Revoke {
                            partitions: partitions.clone(),
                            lost,
                            done,
                        },
                        true,
                    ));
                    // A refused commit does not fail the read: the
                    // partitions go all the same (retrying would hold up the
                    // rebalance that waits for us), and their new owner
                    // starts from the last commit: at-least-once. It shows
                    // in the stats' `commit_errors`; `close` does return it.
                    if let Err(e) = self.commits.commit_marked(Some(&partitions)).await {
                        tracing::warn!(error = %e, "commit on revocation failed; its records will be read again by the next owner");
                    }
                    let Some((GroupEvent::Revoke { done: d, .. }, _)) = self.current.take() else {
                        unreachable!("the revocation was parked in current")
                    };
                    let _ = d.send(());
                } else {
                    let _ = done.send(());
                }
                self.commits.untrack(&partitions);
                self.assignment.retain(|tp| !partitions.contains(tp));
                self.report_rebalance(kind, &partitions, self.generation_id);
                tracing::info!(count = partitions.len(), ?kind, "partitions revoked");
                Ok(())
            }
            GroupEvent::Assign {
                added,
                assignment,
                generation,
            } => {
                let committed = if added.is_empty() {
                    Default::default()
                } else {
                    // Parked while the committed offsets are fetched: a
                    // cancelled call (or a failed fetch) leaves the
                    // assignment for the next call instead of dropping it,
                    // which would leave the member owning partitions it
                    // never reads.
                    self.current = Some((
                        GroupEvent::Assign {
                            added: added.clone(),
                            assignment: assignment.clone(),
                            generation,
                        },
                        false,
                    ));
                    let client = self.commits.client().clone();
                    let fetched = client
                        .transport()
                        .retry(|| client.fetch_offsets(&added))
                        .await;
                    let committed = fetched?;
                    self.current = None;
                    committed
                };
                self.generation_id = generation;
                self.rebalances += 1;
                let mut starts: Vec<(TopicPartition, StartOffset)> = Vec::new();
                let mut epochs = Vec::new();
                for tp in &added {
                    let at = committed.get(tp).copied().flatten();
                    let offset = at.map(|c| c.offset);
                    self.commits.track(tp.clone(), offset);
                    starts.push((tp.clone(), offset.map_or(self.reset, StartOffset::Offset)));
                    if let Some(c) = at {
                        if let Some(epoch) = c.leader_epoch {
                            epochs.push((tp.clone(), c.offset, epoch));
                        }
                    }
                }
                self.assignment = assignment.clone();
                let (commits, seeks) =
                    self.run_listener(RebalanceKind::Assigned, &added, &assignment);
                for (tp, start) in seeks {
                    if let Some(s) = starts.iter_mut().find(|(t, _)| *t == tp) {
                        s.1 = start;
                    } else if self.assignment.contains(&tp) {
                        fetcher.seek(&tp, start);
                    }
                }
                tracing::info!(
                    added = added.len(),
                    total = assignment.len(),
                    generation,
                    "partitions assigned"
                );
                // A committed position is validated against its leader
                // epoch before the first fetch (KIP-320), unless the
                // listener moved it.
                fetcher.assign_committed(starts, &epochs);
                for (tp, next) in commits {
                    self.commits.mark(&tp, next, None);
                }
                self.report_rebalance(RebalanceKind::Assigned, &added, generation);
                Ok(())
            }
        }
    }

    /// The membership's latest generation (it may be ahead of the
    /// assignment applied so far, which is what the coordinator checks).
    pub(crate) fn metadata(&self) -> ConsumerGroupMetadata {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ConsumerGroupMetadata {
            group_id: self.commits.client().group_id().to_owned(),
            generation_id: generation.generation_id,
            member_id: generation.member_id,
            group_instance_id: generation.instance_id,
        }
    }

    /// Commits what is marked for `tp`.
    pub(crate) async fn commit_partition(&self, tp: TopicPartition) -> Result<(), Error> {
        self.commits
            .commit_marked_across_rebalance(Some(&[tp]))
            .await
    }

    pub(crate) fn commit_counts(&self) -> (u64, u64) {
        (
            self.commits.commits.load(Ordering::Relaxed),
            self.commits.errors.load(Ordering::Relaxed),
        )
    }

    /// Stops the membership, revokes everything (listener, then a
    /// synchronous commit of what is marked) and leaves the group (static
    /// members stay, KIP-345). The commit and the LeaveGroup each retry
    /// retriable errors for up to [`CLOSE_PATIENCE`], so a coordinator
    /// that moves meanwhile (its broker killed) gets them from its
    /// successor. Returns the commit error first, else the leave error.
    pub(crate) async fn close(&mut self, fetcher: &mut Fetcher) -> Result<(), Error> {
        // A first JoinGroup still in flight: the coordinator may count this
        // member already, under an id we have not heard. Wait (bounded) for
        // the answer that names it, so that we can leave.
        let named = |j: &Joining| !j.in_flight || !j.member_id.is_empty();
        if !self.static_member && !named(&self.joining.borrow()) {
            let wait = self.joining.wait_for(named);
            let _ = tokio::time::timeout(self.leave_wait, wait).await;
        }
        self.membership.abort();
        let mut result = Ok(());
        if self.fatal.is_none() && !self.assignment.is_empty() {
            let assignment = self.assignment.clone();
            let (commits, _) = self.run_listener(RebalanceKind::Revoked, &assignment, &[]);
            for (tp, next) in commits {
                self.commits.mark(&tp, next, None);
            }
            fetcher.unassign(&assignment);
            result = self
                .commits
                .commit_marked_within(None, Some(CLOSE_PATIENCE))
                .await;
        }
        if let Some(interval) = self.interval.take() {
            interval.abort();
        }
        // The member id as soon as a JoinGroup named it: a member closing
        // in the middle of a rebalance leaves too, or the coordinator
        // would wait for it (or make it the leader) until its session
        // expires.
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        generation.member_id = self.joining.borrow().member_id.clone();
        if !self.static_member && generation.member_id.is_empty() {
            tracing::debug!("closing without LeaveGroup: the coordinator never named this member");
        } else if !self.static_member {
            let client = self.commits.client();
            let left = client
                .transport()
                .retry_for(CLOSE_PATIENCE, || client.leave(&generation))
                .await
                // A coordinator that does not know the member has it out
                // of the group already: what leaving is for. (A successor
                // coordinator knows only the members of the last
                // generation written to the offsets topic.)
                .or_else(|e| match e.code() {
                    Some(ErrorCode::UNKNOWN_MEMBER_ID) => Ok(()),
                    _ => Err(e),
                });
            tracing::debug!(member = %generation.member_id, ok = left.is_ok(), "left the group");
            if let (Ok(()), Err(e)) = (&result, left) {
                tracing::debug!(error = %e, "LeaveGroup failed");
                result = Err(e.into());
            }
        }
        let gone: BTreeSet<TopicPartition> = self.assignment.drain(..).collect();
        self.commits.untrack(&gone.into_iter().collect::<Vec<_>>());
        result
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        // No LeaveGroup here (it would block): the coordinator notices
        // after the session timeout. close() leaves at once.
        self.membership.abort();
        if let Some(interval) = &self.interval {
            interval.abort();
        }
    }
}
