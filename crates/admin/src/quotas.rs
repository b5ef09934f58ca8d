//! Client quotas (KIP-546): DescribeClientQuotas and AlterClientQuotas,
//! sent to any broker.

use std::collections::BTreeMap;

use kafkit_protocol::messages::describe_client_quotas_request::ComponentData;
use kafkit_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, alter_client_quotas_request,
};

use crate::Admin;
use crate::error::{Result, check};

/// A quota entity: entity type (`user`, `client-id`, `ip`) to name, where
/// `None` is the type's default entity.
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// How a [`QuotaFilter`] matches an entity type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// Exactly this name.
    Exact(String),
    /// The default entity of the type.
    Default,
    /// Any name, the default included.
    Any,
}

/// One component of a quota filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    /// The entity type (`user`, `client-id`, `ip`).
    pub entity_type: String,
    /// How its name matches.
    pub matching: QuotaMatch,
}

impl QuotaFilter {
    fn wire(&self) -> ComponentData {
        let (match_type, name) = match &self.matching {
            QuotaMatch::Exact(n) => (0, Some(n.clone())),
            QuotaMatch::Default => (1, None),
            QuotaMatch::Any => (2, None),
        };
        ComponentData {
            entity_type: self.entity_type.clone(),
            match_type,
            r#match: name,
            ..Default::default()
        }
    }
}

/// Changes to one entity's quotas.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaAlteration {
    /// The entity.
    pub entity: QuotaEntity,
    /// Quota key (`producer_byte_rate`...) to the new value; `None` removes it.
    pub ops: BTreeMap<String, Option<f64>>,
}

impl Admin {
    /// The quotas of the entities matching every component of `filter`;
    /// with `strict`, only entities with no other entity types. A map from
    /// entity to quota key to value.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::{QuotaFilter, QuotaMatch};
    /// let users = QuotaFilter { entity_type: "user".into(), matching: QuotaMatch::Any };
    /// for (entity, quotas) in admin.describe_client_quotas(&[users], false).await? {
    ///     println!("{entity:?}: {quotas:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_client_quotas", skip(self))]
    pub async fn describe_client_quotas(
        &self,
        filter: &[QuotaFilter],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, BTreeMap<String, f64>)>> {
        let request = DescribeClientQuotasRequest {
            components: filter.iter().map(QuotaFilter::wire).collect(),
            strict,
            ..Default::default()
        };
        let response = self
            .read_any(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    check(response.error_code, response.error_message.as_deref())?;
                    Ok(response)
                }
            })
            .await?;
        Ok(response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let entity = e
                    .entity
                    .into_iter()
                    .map(|d| (d.entity_type, d.entity_name))
                    .collect();
                let values = e.values.into_iter().map(|v| (v.key, v.value)).collect();
                (entity, values)
            })
            .collect())
    }

    /// Sets or removes quotas; with `validate_only` the broker only
    /// checks. One result per entity, in the broker's order (Kafka answers
    /// in its own order, not the request's): look results up by entity.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use std::collections::BTreeMap;
    /// use kafkit_admin::QuotaAlteration;
    /// let alice = BTreeMap::from([("user".to_string(), Some("alice".to_string()))]);
    /// let ops = BTreeMap::from([("producer_byte_rate".to_string(), Some(1_048_576.0))]);
    /// admin.alter_client_quotas(&[QuotaAlteration { entity: alice, ops }], false).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some quotas may have changed.
    #[tracing::instrument(name = "admin.alter_client_quotas", skip(self))]
    pub async fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<(QuotaEntity, Result<()>)>> {
        let request = AlterClientQuotasRequest {
            entries: alterations
                .iter()
                .map(|a| alter_client_quotas_request::EntryData {
                    entity: a
                        .entity
                        .iter()
                        .map(|(t, n)| alter_client_quotas_request::EntityData {
                            entity_type: t.clone(),
                            entity_name: n.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ops: a
                        .ops
                        .iter()
                        .map(|(key, value)| alter_client_quotas_request::OpData {
                            key: key.clone(),
                            value: value.unwrap_or(0.0),
                            remove: value.is_none(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            validate_only,
            ..Default::default()
        };
        let response = self
            .write(
                || self.any_conn(),
                |conn| {
                    let request = request.clone();
                    async move { conn.request(request).await }
                },
            )
            .await?;
        Ok(response
            .entries
            .into_iter()
            .map(|e| {
                let entity = e
                    .entity
                    .into_iter()
                    .map(|d| (d.entity_type, d.entity_name))
                    .collect();
                (entity, check(e.error_code, e.error_message.as_deref()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_use_kip_546_match_types() {
        let filter = |matching| {
            QuotaFilter {
                entity_type: "user".into(),
                matching,
            }
            .wire()
        };
        let exact = filter(QuotaMatch::Exact("alice".into()));
        assert_eq!(
            (exact.match_type, exact.r#match.as_deref()),
            (0, Some("alice"))
        );
        let default = filter(QuotaMatch::Default);
        assert_eq!((default.match_type, default.r#match), (1, None));
        assert_eq!(filter(QuotaMatch::Any).match_type, 2);
        assert_eq!(exact.entity_type, "user");
    }
}
