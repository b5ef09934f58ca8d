//! The cluster as a whole: DescribeCluster (KIP-700), falling back to
//! Metadata on brokers that predate it. Elections, reassignments and log
//! dirs are in `replicas.rs`.

use kafkit_conn::ErrorKind;
use kafkit_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
};

use crate::Admin;
use crate::error::{Result, check};

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Its node id.
    pub id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: i32,
    /// Its rack, if any.
    pub rack: Option<String>,
    /// True if fenced (DescribeCluster v2+, when asked for).
    pub fenced: bool,
}

/// What [`Admin::describe_cluster`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller's node id, if known.
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerDescription>,
    /// The operations the client may perform, as a bit set, if sent.
    pub authorized_operations: Option<i32>,
}

impl Admin {
    /// The cluster id, controller and brokers (DescribeCluster, KIP-700;
    /// Metadata on brokers older than Kafka 2.8).
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// let cluster = admin.describe_cluster().await?;
    /// println!("{:?}: {} brokers", cluster.cluster_id, cluster.brokers.len());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_cluster", skip(self))]
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.read_any(|conn| async move {
            match conn.request(DescribeClusterRequest::default()).await {
                Err(e) if matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }) => {
                    let request = MetadataRequest {
                        topics: Some(Vec::new()),
                        ..Default::default()
                    };
                    Ok(from_metadata(conn.request(request).await?))
                }
                other => from_describe_cluster(other?),
            }
        })
        .await
    }
}

fn from_describe_cluster(response: DescribeClusterResponse) -> Result<ClusterDescription> {
    check(response.error_code, response.error_message.as_deref())?;
    let mut brokers: Vec<BrokerDescription> = response
        .brokers
        .into_iter()
        .map(|b| BrokerDescription {
            id: b.broker_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
            fenced: b.is_fenced,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    Ok(ClusterDescription {
        cluster_id: Some(response.cluster_id),
        controller: (response.controller_id >= 0).then_some(response.controller_id),
        brokers,
        authorized_operations: (response.cluster_authorized_operations != i32::MIN)
            .then_some(response.cluster_authorized_operations),
    })
}

fn from_metadata(m: MetadataResponse) -> ClusterDescription {
    let mut brokers: Vec<BrokerDescription> = m
        .brokers
        .into_iter()
        .map(|b| BrokerDescription {
            id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
            fenced: false,
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    ClusterDescription {
        cluster_id: m.cluster_id,
        controller: (m.controller_id >= 0).then_some(m.controller_id),
        brokers,
        authorized_operations: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_conn::ErrorCode;
    use kafkit_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafkit_protocol::messages::metadata_response::MetadataResponseBroker;

    #[test]
    fn describe_cluster_answers_are_sorted_and_checked() {
        let broker = |id| DescribeClusterBroker {
            broker_id: id,
            host: "h".into(),
            port: 9092,
            ..Default::default()
        };
        let response = DescribeClusterResponse {
            cluster_id: "c".into(),
            controller_id: 2,
            brokers: vec![broker(3), broker(1)],
            ..Default::default()
        };
        let d = from_describe_cluster(response.clone()).unwrap();
        assert_eq!(d.brokers.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!((d.controller, d.authorized_operations), (Some(2), None));
        let refused = DescribeClusterResponse {
            error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            ..response
        };
        assert_eq!(
            from_describe_cluster(refused).unwrap_err().code(),
            Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED)
        );
    }

    #[test]
    fn old_brokers_are_described_from_metadata() {
        let m = MetadataResponse {
            cluster_id: None,
            controller_id: -1,
            brokers: vec![MetadataResponseBroker {
                node_id: 5,
                host: "h".into(),
                port: 1,
                rack: Some("r".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let d = from_metadata(m);
        assert_eq!((d.cluster_id, d.controller), (None, None));
        assert_eq!(d.brokers[0].rack.as_deref(), Some("r"));
    }
}
