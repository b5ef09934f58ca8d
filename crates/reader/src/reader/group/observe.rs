//! What a group member shows of itself: its rebalances, told to the
//! client hook ([`Hook::on_rebalance`](kafkit_conn::Hook::on_rebalance)),
//! and its [`GroupStats`].

use kafkit_conn::hooks::RebalanceEvent;
use tokio::time::Instant;

use super::GroupReader;
use crate::TopicPartition;
use crate::group::RebalanceKind;

/// A group member's state, in [`ReaderStats::group`](crate::ReaderStats::group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct GroupStats {
    /// The group.
    pub group_id: String,
    /// The member id the coordinator named ("" before it did).
    pub member_id: String,
    /// The generation of the assignment read now (-1 before the first).
    pub generation: i32,
    /// `stable` (reading its assignment), `rebalancing` (a rebalance
    /// event waits to be applied or a JoinGroup is in flight) or `failed`
    /// (out of the group for good).
    pub state: &'static str,
    /// Why the member last (re)joined: `first join`, `the group is
    /// rebalancing`, `subscribed topics changed`, `fenced from the group`
    /// or `no heartbeat within the session timeout`.
    pub last_rebalance_reason: &'static str,
    /// Assignments received.
    pub rebalances: u64,
    /// Partitions assigned now.
    pub assigned: usize,
}

impl GroupReader {
    /// The member's [`GroupStats`].
    pub(crate) fn stats(&self) -> GroupStats {
        let joining = self.joining.borrow();
        let state = if self.fatal.is_some() {
            "failed"
        } else if joining.in_flight || !self.is_settled() || self.generation_id < 0 {
            "rebalancing"
        } else {
            "stable"
        };
        GroupStats {
            group_id: self.commits.client().group_id().to_owned(),
            member_id: joining.member_id.clone(),
            generation: self.generation_id,
            state,
            last_rebalance_reason: joining.reason,
            rebalances: self.rebalances,
            assigned: self.assignment.len(),
        }
    }

    /// Tells the hook, if any, that `partitions` were assigned, revoked or
    /// lost in `generation`. The duration runs from the previous revocation
    /// (or the member's start) to an assignment, and is zero for a
    /// revocation, which starts the next one.
    pub(super) fn report_rebalance(
        &mut self,
        kind: RebalanceKind,
        partitions: &[TopicPartition],
        generation: i32,
    ) {
        let now = Instant::now();
        let started = std::mem::replace(&mut self.rebalance_started, now);
        let client = self.commits.client();
        let Some(hook) = client.transport().hooks().get() else {
            return;
        };
        let named: Vec<(&str, i32)> = partitions
            .iter()
            .map(|tp| (&*tp.topic, tp.partition))
            .collect();
        let member_id = self
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .member_id
            .clone();
        let (assigned, revoked, reason, duration): (&[_], &[_], _, _) = match kind {
            RebalanceKind::Assigned => (&named, &[], "assigned", now - started),
            RebalanceKind::Revoked => (&[], &named, "revoked", Default::default()),
            RebalanceKind::Lost => (&[], &named, "lost", Default::default()),
        };
        hook.on_rebalance(&RebalanceEvent {
            group: client.group_id(),
            member_id: &member_id,
            generation,
            assigned,
            revoked,
            reason,
            duration,
        });
    }
}
