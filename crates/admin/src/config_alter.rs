//! Changing configs: IncrementalAlterConfigs (KIP-339: set, delete,
//! append, subtract one config at a time) and the legacy AlterConfigs
//! (replaces a resource's whole set). Broker resources go to that broker,
//! the others to any broker.

use std::collections::BTreeMap;

use kafkit_conn::{Conn, Purpose};
use kafkit_protocol::messages::{
    AlterConfigsRequest, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    alter_configs_request, incremental_alter_configs_request,
};

use crate::Admin;
use crate::configs::{ConfigResource, PerResource, split};
use crate::error::{Result, check};

/// One change for [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq)]
pub enum AlterConfigOp {
    /// Sets `name` to a value.
    Set(String, String),
    /// Removes `name`'s setting (back to the default).
    Delete(String),
    /// Appends values to a list config.
    Append(String, String),
    /// Removes values from a list config.
    Subtract(String, String),
}

impl AlterConfigOp {
    fn wire(&self) -> incremental_alter_configs_request::AlterableConfig {
        let (name, op, value) = match self {
            AlterConfigOp::Set(n, v) => (n, 0, Some(v.clone())),
            AlterConfigOp::Delete(n) => (n, 1, None),
            AlterConfigOp::Append(n, v) => (n, 2, Some(v.clone())),
            AlterConfigOp::Subtract(n, v) => (n, 3, Some(v.clone())),
        };
        incremental_alter_configs_request::AlterableConfig {
            name: name.clone(),
            config_operation: op,
            value,
            ..Default::default()
        }
    }
}

impl Admin {
    /// Changes configs one by one (set, delete, append, subtract; KIP-339,
    /// Kafka 2.3+), leaving the others as they are; with `validate_only`
    /// the broker only checks. One result per resource.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::{AlterConfigOp, ConfigResource};
    /// let ops = vec![AlterConfigOp::Set("retention.ms".into(), "3600000".into())];
    /// admin.incremental_alter_configs(&[(ConfigResource::Topic("events".into()), ops)], false).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some resources may have changed.
    #[tracing::instrument(name = "admin.incremental_alter_configs", skip(self))]
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
        validate_only: bool,
    ) -> Result<PerResource<()>> {
        let mut out = BTreeMap::new();
        let resources: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        for (broker, group) in split(&resources) {
            let request = IncrementalAlterConfigsRequest {
                resources: changes
                    .iter()
                    .filter(|(r, _)| group.contains(r))
                    .map(|(r, ops)| {
                        let (resource_type, resource_name) = r.wire();
                        incremental_alter_configs_request::AlterConfigsResource {
                            resource_type,
                            resource_name,
                            configs: ops.iter().map(AlterConfigOp::wire).collect(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                validate_only,
                ..Default::default()
            };
            let response: Result<IncrementalAlterConfigsResponse> = self
                .write(
                    || self.conn_for(broker),
                    |c| {
                        let request = request.clone();
                        async move { c.request(request).await }
                    },
                )
                .await;
            match response {
                Ok(r) => out.extend(r.responses.into_iter().filter_map(|r| {
                    let resource = ConfigResource::from_wire(r.resource_type, &r.resource_name)?;
                    Some((resource, check(r.error_code, r.error_message.as_deref())))
                })),
                Err(e) if broker.is_some() => {
                    out.extend(group.into_iter().map(|r| (r, Err(e.clone()))))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Replaces the whole set of dynamic configs of each resource with
    /// `configs` (the legacy AlterConfigs: configs left out are reset).
    /// Prefer [`incremental_alter_configs`](Admin::incremental_alter_configs).
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::ConfigResource;
    /// let configs = BTreeMap::from([("retention.ms".to_string(), "3600000".to_string())]);
    /// admin.alter_configs(&[(ConfigResource::Topic("events".into()), configs)], false).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some resources may have changed.
    #[tracing::instrument(name = "admin.alter_configs", skip(self))]
    pub async fn alter_configs(
        &self,
        changes: &[(ConfigResource, BTreeMap<String, String>)],
        validate_only: bool,
    ) -> Result<PerResource<()>> {
        let mut out = BTreeMap::new();
        let resources: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        for (broker, group) in split(&resources) {
            let request = AlterConfigsRequest {
                resources: changes
                    .iter()
                    .filter(|(r, _)| group.contains(r))
                    .map(|(r, configs)| {
                        let (resource_type, resource_name) = r.wire();
                        alter_configs_request::AlterConfigsResource {
                            resource_type,
                            resource_name,
                            configs: configs
                                .iter()
                                .map(|(name, value)| alter_configs_request::AlterableConfig {
                                    name: name.clone(),
                                    value: Some(value.clone()),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                validate_only,
                ..Default::default()
            };
            let response = self
                .write(
                    || self.conn_for(broker),
                    |c| {
                        let request = request.clone();
                        async move { c.request(request).await }
                    },
                )
                .await;
            match response {
                Ok(r) => out.extend(r.responses.into_iter().filter_map(|r| {
                    let resource = ConfigResource::from_wire(r.resource_type, &r.resource_name)?;
                    Some((resource, check(r.error_code, r.error_message.as_deref())))
                })),
                Err(e) if broker.is_some() => {
                    out.extend(group.into_iter().map(|r| (r, Err(e.clone()))))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A connection to `broker`, or to any broker for `None`.
    async fn conn_for(&self, broker: Option<i32>) -> Result<Conn> {
        match broker {
            Some(id) => self.transport.broker(id, Purpose::Admin).await,
            None => self.any_conn().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_ops_have_kip_339_codes() {
        let codes: Vec<i8> = [
            AlterConfigOp::Set("a".into(), "1".into()),
            AlterConfigOp::Delete("a".into()),
            AlterConfigOp::Append("a".into(), "x".into()),
            AlterConfigOp::Subtract("a".into(), "x".into()),
        ]
        .iter()
        .map(|op| op.wire().config_operation)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(AlterConfigOp::Delete("a".into()).wire().value, None);
    }
}
