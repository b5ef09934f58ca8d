//! Configs: DescribeConfigs (with synonyms and where each value comes
//! from), IncrementalAlterConfigs (KIP-339) and the legacy AlterConfigs,
//! for topics, brokers, broker loggers, groups and client metrics.
//! Broker resources go to that broker; the others to any broker.

use std::collections::BTreeMap;

use kafkit_protocol::messages::DescribeConfigsRequest;
use kafkit_protocol::messages::describe_configs_request::DescribeConfigsResource;

use crate::Admin;
use crate::error::{Result, check};
use crate::wire::wire_enum;

/// A resource that has configs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResource {
    /// A topic.
    Topic(String),
    /// A broker's configs, by id.
    Broker(i32),
    /// A broker's log levels (KIP-412), by id.
    BrokerLogger(i32),
    /// A consumer group (KIP-848).
    Group(String),
    /// A client metrics subscription (KIP-714).
    ClientMetrics(String),
}

impl ConfigResource {
    pub(crate) fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
            ConfigResource::BrokerLogger(id) => (8, id.to_string()),
            ConfigResource::ClientMetrics(n) => (16, n.clone()),
            ConfigResource::Group(g) => (32, g.clone()),
        }
    }

    pub(crate) fn from_wire(kind: i8, name: &str) -> Option<ConfigResource> {
        Some(match kind {
            2 => ConfigResource::Topic(name.to_owned()),
            4 => ConfigResource::Broker(name.parse().ok()?),
            8 => ConfigResource::BrokerLogger(name.parse().ok()?),
            16 => ConfigResource::ClientMetrics(name.to_owned()),
            32 => ConfigResource::Group(name.to_owned()),
            _ => return None,
        })
    }

    /// The broker that must answer for this resource, if any.
    pub(crate) fn broker(&self) -> Option<i32> {
        match self {
            // The empty name means the cluster-wide default: any broker.
            ConfigResource::Broker(id) | ConfigResource::BrokerLogger(id) => Some(*id),
            _ => None,
        }
    }
}

wire_enum!(
    /// Where a config value comes from.
    ConfigSource {
        /// The broker did not say.
        Unspecified = 0,
        /// Set on the topic.
        DynamicTopic = 1,
        /// Set dynamically for this broker.
        DynamicBroker = 2,
        /// Set dynamically as the default of every broker.
        DynamicDefaultBroker = 3,
        /// Set in the broker's properties file.
        StaticBroker = 4,
        /// Kafka's default.
        Default = 5,
        /// A broker logger's level set dynamically.
        DynamicBrokerLogger = 6,
        /// Set on a client metrics subscription.
        ClientMetrics = 7,
        /// Set on the group.
        Group = 8,
    }
);

wire_enum!(
    /// A config's type (DescribeConfigs v3+).
    ConfigType {
        /// The broker did not say.
        Unspecified = 0,
        /// `true` or `false`.
        Boolean = 1,
        /// A string.
        String = 2,
        /// A 32-bit integer.
        Int = 3,
        /// A 16-bit integer.
        Short = 4,
        /// A 64-bit integer.
        Long = 5,
        /// A floating point number.
        Double = 6,
        /// A comma-separated list.
        List = 7,
        /// A Java class name.
        Class = 8,
        /// A password (never shown).
        Password = 9,
    }
);

/// A value the config would have without a more specific setting.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSynonym {
    /// The synonym's name (may differ: `log.retention.ms` for `retention.ms`).
    pub name: String,
    /// Its value, `None` if sensitive.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    /// The name.
    pub name: String,
    /// The value; `None` if sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// True if it cannot be changed dynamically.
    pub read_only: bool,
    /// True if the value is hidden.
    pub sensitive: bool,
    /// The values it overrides, most specific first (asked for with
    /// `include_synonyms`).
    pub synonyms: Vec<ConfigSynonym>,
    /// The type, if the broker says.
    pub config_type: ConfigType,
    /// The documentation, if asked for and sent.
    pub documentation: Option<String>,
}

pub(crate) type PerResource<T> = BTreeMap<ConfigResource, Result<T>>;

impl Admin {
    /// Describes the configs of `resources`, with the values they override
    /// when `include_synonyms`. One result per resource.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::ConfigResource;
    /// let topic = ConfigResource::Topic("events".into());
    /// for entry in admin.describe_configs(&[topic.clone()], true).await?.remove(&topic).unwrap()? {
    ///     println!("{} = {:?} ({:?})", entry.name, entry.value, entry.source);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_configs", skip(self))]
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
        include_synonyms: bool,
    ) -> Result<PerResource<Vec<ConfigEntry>>> {
        let mut out = BTreeMap::new();
        for (broker, resources) in split(resources) {
            let request = DescribeConfigsRequest {
                resources: resources
                    .iter()
                    .map(|r| {
                        let (resource_type, resource_name) = r.wire();
                        DescribeConfigsResource {
                            resource_type,
                            resource_name,
                            configuration_keys: None,
                            ..Default::default()
                        }
                    })
                    .collect(),
                include_synonyms,
                ..Default::default()
            };
            let call = |conn: kafkit_conn::Conn| {
                let request = request.clone();
                async move { conn.request(request).await }
            };
            let response = match broker {
                Some(id) => self.read_broker(id, call).await,
                None => self.read_any(call).await,
            };
            let response = match response {
                Ok(r) => r,
                Err(e) if broker.is_some() => {
                    // One broker down fails only its own resources.
                    out.extend(resources.into_iter().map(|r| (r, Err(e.clone()))));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for result in response.results {
                let Some(resource) =
                    ConfigResource::from_wire(result.resource_type, &result.resource_name)
                else {
                    continue;
                };
                let entries = check(result.error_code, result.error_message.as_deref())
                    .map(|()| result.configs.into_iter().map(entry).collect());
                out.insert(resource, entries);
            }
        }
        Ok(out)
    }
}

/// Resources grouped by the broker that must answer (`None`: any). The
/// `None` group sorts first: it is sent first, and its failure (which fails
/// the whole call) happens before anything else was sent, so no result is
/// lost; a named broker's failure fails only its own resources.
pub(crate) fn split(resources: &[ConfigResource]) -> BTreeMap<Option<i32>, Vec<ConfigResource>> {
    let mut groups: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
    for r in resources {
        groups.entry(r.broker()).or_default().push(r.clone());
    }
    groups
}

fn entry(
    c: kafkit_protocol::messages::describe_configs_response::DescribeConfigsResourceResult,
) -> ConfigEntry {
    ConfigEntry {
        name: c.name,
        value: c.value,
        source: ConfigSource::from_code(c.config_source),
        read_only: c.read_only,
        sensitive: c.is_sensitive,
        synonyms: c
            .synonyms
            .into_iter()
            .map(|s| ConfigSynonym {
                name: s.name,
                value: s.value,
                source: ConfigSource::from_code(s.source),
            })
            .collect(),
        config_type: ConfigType::from_code(c.config_type),
        documentation: c.documentation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_through_their_wire_form() {
        for r in [
            ConfigResource::Topic("t".into()),
            ConfigResource::Broker(7),
            ConfigResource::BrokerLogger(7),
            ConfigResource::Group("g".into()),
            ConfigResource::ClientMetrics("m".into()),
        ] {
            let (kind, name) = r.wire();
            assert_eq!(ConfigResource::from_wire(kind, &name), Some(r));
        }
        assert_eq!(ConfigResource::from_wire(4, "not-a-number"), None);
    }

    #[test]
    fn broker_resources_go_to_their_broker_and_the_rest_anywhere() {
        let groups = split(&[
            ConfigResource::Topic("a".into()),
            ConfigResource::Broker(2),
            ConfigResource::Group("g".into()),
            ConfigResource::BrokerLogger(2),
        ]);
        assert_eq!(groups[&None].len(), 2);
        assert_eq!(groups[&Some(2)].len(), 2);
    }
}
