//! ACLs: DescribeAcls, CreateAcls and DeleteAcls (KIP-140), sent to any
//! broker (which forwards changes to the controller).

use kafkit_protocol::messages::create_acls_request::AclCreation;
use kafkit_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafkit_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};

use crate::Admin;
use crate::error::{Result, check, invalid};
use crate::wire::wire_enum;

wire_enum!(
    /// The kind of resource an ACL is about.
    ResourceType {
        /// In a filter: any kind.
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user.
        User = 7,
    }
);

wire_enum!(
    /// How an ACL's resource name matches (KIP-290).
    PatternType {
        /// In a filter: any pattern type.
        Any = 1,
        /// In a filter: every ACL that applies to the name (literal,
        /// wildcard and prefixes of it).
        Match = 2,
        /// The exact name (or `*` for all).
        Literal = 3,
        /// Names starting with it.
        Prefixed = 4,
    }
);

wire_enum!(
    /// The operation an ACL allows or denies.
    AclOperation {
        /// In a filter: any operation.
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster actions (replication...).
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent produce.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Whether an ACL allows or denies.
    AclPermissionType {
        /// In a filter: either.
        Any = 1,
        /// Denies.
        Deny = 2,
        /// Allows.
        Allow = 3,
    }
);

/// An ACL: who may do what on which resource, from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBinding {
    /// The resource kind.
    pub resource_type: ResourceType,
    /// The resource name (`*` for all, or a prefix).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// The principal (`User:alice`).
    pub principal: String,
    /// The host (`*` for any).
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermissionType,
}

/// A filter over ACLs: `None` fields and `Any` variants match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// The resource kind.
    pub resource_type: ResourceType,
    /// The resource name.
    pub resource_name: Option<String>,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// Matches every ACL.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermissionType::Any,
        }
    }
}

/// An ACL [`Admin::delete_acls`] matched, and whether deleting it worked.
#[derive(Debug, Clone)]
pub struct DeletedAcl {
    /// The ACL.
    pub binding: AclBinding,
    /// Its deletion's result.
    pub result: Result<()>,
}

impl Admin {
    /// The ACLs that match `filter`.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::AclBindingFilter;
    /// for acl in admin.describe_acls(&AclBindingFilter::any()).await? {
    ///     println!("{} may {:?} {}", acl.principal, acl.operation, acl.resource_name);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_acls", skip(self))]
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let request = DescribeAclsRequest {
            resource_type_filter: filter.resource_type.code(),
            resource_name_filter: filter.resource_name.clone(),
            pattern_type_filter: filter.pattern_type.code(),
            principal_filter: filter.principal.clone(),
            host_filter: filter.host.clone(),
            operation: filter.operation.code(),
            permission_type: filter.permission.code(),
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
        let mut out = Vec::new();
        for r in response.resources {
            for a in r.acls {
                out.push(AclBinding {
                    resource_type: ResourceType::from_code(r.resource_type),
                    resource_name: r.resource_name.clone(),
                    pattern_type: PatternType::from_code(r.pattern_type),
                    principal: a.principal,
                    host: a.host,
                    operation: AclOperation::from_code(a.operation),
                    permission: AclPermissionType::from_code(a.permission_type),
                });
            }
        }
        Ok(out)
    }

    /// Creates `acls`. One result per ACL, in order.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::*;
    /// let acl = AclBinding {
    ///     resource_type: ResourceType::Topic, resource_name: "events".into(),
    ///     pattern_type: PatternType::Literal, principal: "User:alice".into(), host: "*".into(),
    ///     operation: AclOperation::Read, permission: AclPermissionType::Allow,
    /// };
    /// admin.create_acls(&[acl]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some ACLs may have been created.
    #[tracing::instrument(name = "admin.create_acls", skip(self))]
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let request = CreateAclsRequest {
            creations: acls
                .iter()
                .map(|a| AclCreation {
                    resource_type: a.resource_type.code(),
                    resource_name: a.resource_name.clone(),
                    resource_pattern_type: a.pattern_type.code(),
                    principal: a.principal.clone(),
                    host: a.host.clone(),
                    operation: a.operation.code(),
                    permission_type: a.permission.code(),
                    ..Default::default()
                })
                .collect(),
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
        if response.results.len() != acls.len() {
            return Err(invalid(format!(
                "{} ACLs sent, {} results received",
                acls.len(),
                response.results.len()
            )));
        }
        Ok(response
            .results
            .into_iter()
            .map(|r| check(r.error_code, r.error_message.as_deref()))
            .collect())
    }

    /// Deletes the ACLs matching each of `filters`. One result per filter,
    /// in order, listing the ACLs it matched.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::AclBindingFilter;
    /// let filter = AclBindingFilter { principal: Some("User:bob".into()), ..AclBindingFilter::any() };
    /// admin.delete_acls(&[filter]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some ACLs may have been deleted.
    #[tracing::instrument(name = "admin.delete_acls", skip(self))]
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<DeletedAcl>>>> {
        let request = DeleteAclsRequest {
            filters: filters
                .iter()
                .map(|f| DeleteAclsFilter {
                    resource_type_filter: f.resource_type.code(),
                    resource_name_filter: f.resource_name.clone(),
                    pattern_type_filter: f.pattern_type.code(),
                    principal_filter: f.principal.clone(),
                    host_filter: f.host.clone(),
                    operation: f.operation.code(),
                    permission_type: f.permission.code(),
                    ..Default::default()
                })
                .collect(),
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
        if response.filter_results.len() != filters.len() {
            return Err(invalid(format!(
                "{} filters sent, {} results received",
                filters.len(),
                response.filter_results.len()
            )));
        }
        Ok(response
            .filter_results
            .into_iter()
            .map(|f| {
                check(f.error_code, f.error_message.as_deref())?;
                Ok(f.matching_acls
                    .into_iter()
                    .map(|m| DeletedAcl {
                        result: check(m.error_code, m.error_message.as_deref()),
                        binding: AclBinding {
                            resource_type: ResourceType::from_code(m.resource_type),
                            resource_name: m.resource_name,
                            pattern_type: PatternType::from_code(m.pattern_type),
                            principal: m.principal,
                            host: m.host,
                            operation: AclOperation::from_code(m.operation),
                            permission: AclPermissionType::from_code(m.permission_type),
                        },
                    })
                    .collect())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_enums_use_kafkas_codes() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        assert_eq!(ResourceType::from_code(0), ResourceType::Unknown(0));
        let f = AclBindingFilter::any();
        assert_eq!(
            (
                f.resource_type.code(),
                f.operation.code(),
                f.permission.code()
            ),
            (1, 1, 1)
        );
    }
}
