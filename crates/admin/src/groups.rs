//! Consumer groups: list (every broker), describe and delete (each group's
//! coordinator). Offsets of a group are in `group_offsets.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::future::join_all;
use kafkit_conn::{ApiKey, CoordinatorKey, ErrorKind};
use kafkit_protocol::messages::{DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest};

use crate::Admin;
use crate::error::{Error, Result, check, invalid};
use crate::route::refused;
use kafkit_protocol::consumer_protocol::{Assignment, Subscription};

/// A group as [`Admin::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type ("consumer" for consumer groups, empty for a
    /// group that only commits offsets).
    pub protocol_type: String,
    /// The state (ListGroups v4+): "Stable", "Empty", "PreparingRebalance"...
    pub state: Option<String>,
    /// The group type (ListGroups v5+): "classic", "consumer", "share".
    pub group_type: Option<String>,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// What [`Admin::list_groups`] found: the groups of every broker that
/// answered, and the error of each broker that did not.
#[derive(Debug, Clone, Default)]
pub struct GroupListings {
    /// The groups, sorted by id.
    pub groups: Vec<GroupListing>,
    /// Brokers that failed, by id; their groups are missing.
    pub errors: BTreeMap<i32, Error>,
}

/// A member of a described group.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The static member id (KIP-345), if any.
    pub group_instance_id: Option<String>,
    /// The client id it sent.
    pub client_id: String,
    /// The host it connected from.
    pub client_host: String,
    /// Its metadata as sent.
    pub metadata: Bytes,
    /// Its assignment as sent.
    pub assignment_bytes: Bytes,
    /// The metadata decoded with the consumer protocol (consumer groups
    /// only; `Err` if it does not decode).
    pub subscription: Option<Result<Subscription>>,
    /// The assignment decoded with the consumer protocol (consumer groups
    /// only, once assigned; `Err` if it does not decode).
    pub assignment: Option<Result<Assignment>>,
}

/// A group as [`Admin::describe_groups`] describes it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The state: "Stable", "Empty", "Dead"...
    pub state: String,
    /// The protocol type ("consumer"...).
    pub protocol_type: String,
    /// The chosen protocol (the assignor: "range", "cooperative-sticky"...).
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The operations the client may perform, as a bit set (asked for
    /// with `include_authorized_operations`; `None` if not sent).
    pub authorized_operations: Option<i32>,
    /// The coordinator's broker address.
    pub coordinator: String,
}

impl Admin {
    /// Lists the groups of every broker, optionally only those in one of
    /// `states` ("Stable", "Empty"...; ListGroups v4+, Kafka 2.6+). A broker
    /// that fails is reported in [`GroupListings::errors`].
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for group in admin.list_groups(&["Stable"]).await?.groups {
    ///     println!("{} ({:?})", group.group_id, group.state);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.list_groups", skip(self))]
    pub async fn list_groups(&self, states: &[&str]) -> Result<GroupListings> {
        let mut out = GroupListings::default();
        let answers = join_all(self.broker_ids().await?.into_iter().map(|id| async move {
            let answer = self
                .read_broker(id, |conn| async move {
                    let version = conn.version_for(ApiKey::ListGroups)?;
                    if version < 4 && !states.is_empty() {
                        return Err(invalid(
                            "filtering groups by state needs ListGroups v4 (Kafka 2.6+)",
                        ));
                    }
                    let request = ListGroupsRequest {
                        states_filter: states.iter().map(|s| s.to_string()).collect(),
                        ..Default::default()
                    };
                    let response = conn.request_at(version, request).await?;
                    check(response.error_code, None)?;
                    Ok((version, response.groups))
                })
                .await;
            (id, answer)
        }))
        .await;
        for (id, answer) in answers {
            match answer {
                Ok((version, groups)) => {
                    out.groups.extend(groups.into_iter().map(|g| GroupListing {
                        group_id: g.group_id,
                        protocol_type: g.protocol_type,
                        state: (version >= 4).then_some(g.group_state),
                        group_type: (version >= 5).then_some(g.group_type),
                        coordinator: id,
                    }))
                }
                Err(e) => {
                    out.errors.insert(id, e);
                }
            }
        }
        out.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes `groups` on their coordinators: state, protocol, members
    /// with their subscriptions and assignments decoded. One result per
    /// group. A group that does not exist is an `Err` with
    /// `GROUP_ID_NOT_FOUND` from Kafka 4 (DescribeGroups v6, KIP-1043);
    /// older brokers describe it in state "Dead".
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (id, group) in admin.describe_groups(&["billing"]).await? {
    ///     for member in group?.members {
    ///         if let Some(Ok(assignment)) = member.assignment {
    ///             println!("{id}: {} has {:?}", member.member_id, assignment.partitions);
    ///         }
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_groups", skip(self))]
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<BTreeMap<String, Result<GroupDescription>>> {
        let mut out = BTreeMap::new();
        let answers = join_all(groups.iter().map(|&group| async move {
            let key = CoordinatorKey::Group(group.to_owned());
            let answer = self
                .read_coordinator(&key, |conn| async move {
                    let request = DescribeGroupsRequest {
                        groups: vec![group.to_owned()],
                        ..Default::default()
                    };
                    let response = conn.request(request).await?;
                    let described = response
                        .groups
                        .into_iter()
                        .find(|g| g.group_id == group)
                        .ok_or_else(|| {
                            invalid(format!("the coordinator did not describe group {group}"))
                        })?;
                    // A coordinator that moved: look it up again.
                    if refused(described.error_code) {
                        check(described.error_code, described.error_message.as_deref())?;
                    }
                    Ok((conn.addr().to_owned(), described))
                })
                .await;
            (group, answer)
        }))
        .await;
        for (group, answer) in answers {
            let result = match answer {
                Ok((coordinator, g)) => check(g.error_code, g.error_message.as_deref()).map(|()| {
                    let consumer = g.protocol_type == "consumer";
                    GroupDescription {
                        members: g.members.into_iter().map(|m| member(m, consumer)).collect(),
                        group_id: g.group_id,
                        state: g.group_state,
                        protocol_type: g.protocol_type,
                        protocol: g.protocol_data,
                        authorized_operations: (g.authorized_operations != i32::MIN)
                            .then_some(g.authorized_operations),
                        coordinator,
                    }
                }),
                Err(e) => Err(per_group(e)?),
            };
            out.insert(group.to_owned(), result);
        }
        Ok(out)
    }

    /// Deletes `groups` (each must be empty) on their coordinators. One
    /// result per group.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (group, result) in admin.delete_groups(&["old-app"]).await? {
    ///     if let Err(e) = result { eprintln!("{group}: {e}"); }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some groups may have been deleted.
    #[tracing::instrument(name = "admin.delete_groups", skip(self))]
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<BTreeMap<String, Result<()>>> {
        let mut out = BTreeMap::new();
        let answers = join_all(groups.iter().map(|&group| async move {
            let key = CoordinatorKey::Group(group.to_owned());
            let answer = self
                .write(
                    || {
                        self.transport
                            .coordinator(&key, kafkit_conn::Purpose::Admin)
                    },
                    |conn| async move {
                        let request = DeleteGroupsRequest {
                            groups_names: vec![group.to_owned()],
                            ..Default::default()
                        };
                        let response = conn.request(request).await?;
                        let code = response
                            .results
                            .iter()
                            .find(|r| r.group_id == group)
                            .map(|r| r.error_code)
                            .ok_or_else(|| {
                                invalid(format!("the coordinator did not answer for group {group}"))
                            })?;
                        check(code, None)
                    },
                )
                .await;
            (group, answer)
        }))
        .await;
        for (group, answer) in answers {
            let result = match answer {
                Ok(()) => Ok(()),
                Err(e) => Err(per_group(e)?),
            };
            out.insert(group.to_owned(), result);
        }
        Ok(out)
    }
}

/// A broker's error about one group stays with that group; anything else
/// (the network, no coordinator reachable) fails the whole call.
pub(crate) fn per_group(e: Error) -> Result<Error> {
    match e.kind() {
        ErrorKind::Broker(_) => Ok(e),
        _ => Err(e),
    }
}

fn member(
    m: kafkit_protocol::messages::describe_groups_response::DescribedGroupMember,
    consumer: bool,
) -> MemberDescription {
    MemberDescription {
        subscription: (consumer && !m.member_metadata.is_empty())
            .then(|| Subscription::decode(&m.member_metadata).map_err(Error::from)),
        assignment: (consumer && !m.member_assignment.is_empty())
            .then(|| Assignment::decode(&m.member_assignment).map_err(Error::from)),
        member_id: m.member_id,
        group_instance_id: m.group_instance_id,
        client_id: m.client_id,
        client_host: m.client_host,
        metadata: m.member_metadata,
        assignment_bytes: m.member_assignment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopicPartition;
    use kafkit_conn::ErrorCode;
    use kafkit_protocol::messages::describe_groups_response::DescribedGroupMember;

    #[test]
    fn consumer_members_are_decoded_and_others_left_raw() {
        let subscription = Subscription {
            version: 1,
            topics: vec!["t".into()],
            ..Default::default()
        };
        let assignment = Assignment {
            version: 1,
            partitions: vec![TopicPartition::new("t", 0)],
            user_data: None,
        };
        let raw = DescribedGroupMember {
            member_id: "m-1".into(),
            member_metadata: subscription.encode().unwrap(),
            member_assignment: assignment.encode().unwrap(),
            ..Default::default()
        };
        let m = member(raw.clone(), true);
        assert_eq!(m.subscription.unwrap().unwrap().topics, ["t"]);
        assert_eq!(
            m.assignment.unwrap().unwrap().partitions,
            [TopicPartition::new("t", 0)]
        );
        let m = member(raw, false);
        assert!(m.subscription.is_none() && m.assignment.is_none());
        assert!(!m.metadata.is_empty());
    }

    #[test]
    fn broker_errors_stay_per_group_and_others_fail_the_call() {
        let broker = Error::check(ErrorCode::NON_EMPTY_GROUP, None).unwrap_err();
        assert!(per_group(broker).is_ok());
        assert!(per_group(Error::new(ErrorKind::Timeout)).is_err());
        assert!(per_group(invalid("x")).is_err());
    }
}
