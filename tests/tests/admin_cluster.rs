//! kafkit-admin's cluster, config and ACL calls against tansu.

use kafkit_admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Admin, AlterConfigOp,
    ConfigResource, ConfigSource, NewTopic, PatternType, ResourceType,
};
use kafkit_tests::{TestBroker, unique_topic};

async fn admin(broker: &TestBroker) -> Admin {
    Admin::builder([broker.bootstrap().to_string()])
        .build()
        .await
        .expect("admin connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_names_the_brokers_and_the_controller() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let cluster = admin.describe_cluster().await.expect("describe cluster");
    assert!(!cluster.brokers.is_empty());
    let port = i32::from(broker.addr().port());
    assert!(
        cluster.brokers.iter().any(|b| b.port == port),
        "{:?} lists the broker we dialled",
        cluster.brokers
    );
    let controller = cluster.controller.expect("a controller");
    assert!(cluster.brokers.iter().any(|b| b.id == controller));
    assert!(cluster.cluster_id.is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_set_incrementally_are_described_with_their_source() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let topic = unique_topic("admin-configs");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1).config("cleanup.policy", "compact")],
            false,
        )
        .await
        .expect("create");
    assert!(created[&topic].is_ok(), "{:?}", created[&topic]);
    let resource = ConfigResource::Topic(topic.clone());

    let ops = vec![AlterConfigOp::Set("retention.ms".into(), "3600000".into())];
    let altered = admin
        .incremental_alter_configs(&[(resource.clone(), ops)], false)
        .await
        .expect("alter");
    assert!(altered[&resource].is_ok(), "{:?}", altered[&resource]);

    // The broker's cache applies the change a moment after the controller.
    let retention = kafkit_tests::eventually("retention.ms is described as set", || async {
        let described = admin
            .describe_configs(std::slice::from_ref(&resource), true)
            .await
            .map_err(|e| e.to_string())?;
        let entries = described[&resource].as_ref().map_err(|e| e.to_string())?;
        let retention = entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .ok_or_else(|| format!("no retention.ms in {entries:?}"))?;
        if retention.value.as_deref() == Some("3600000") {
            Ok(retention.clone())
        } else {
            Err(format!("{retention:?}"))
        }
    })
    .await;
    assert!(!retention.sensitive);
    if broker.has_tansu_bug("DescribeConfigs gives every config the source DEFAULT_CONFIG") {
        return;
    }
    assert_eq!(retention.source, ConfigSource::DynamicTopic);

    // The seed scenario shows configs set on the topic.
    let listed = admin.list_topics(false).await.expect("list");
    let detail = &listed[&topic];
    assert_eq!(
        detail.config_entries.get("retention.ms"),
        Some(&Some("3600000".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_acls_are_described() {
    let broker = TestBroker::start();
    let admin = admin(&broker).await;
    let topic = unique_topic("admin-acl");
    let acl = AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: topic.clone(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermissionType::Allow,
    };
    let created = admin.create_acls(std::slice::from_ref(&acl)).await;
    let tansu_null_results = broker.has_tansu_bug("CreateAcls answers with a null results array");
    if tansu_null_results {
        let e = created.expect_err("tansu's answer does not decode");
        assert!(e.is_connection_error(), "{e}");
    } else {
        let created = created.expect("create acls");
        assert_eq!(created.len(), 1);
        assert!(created[0].is_ok(), "{:?}", created[0]);
    }

    let filter = AclBindingFilter {
        resource_type: ResourceType::Topic,
        resource_name: Some(topic.clone()),
        pattern_type: PatternType::Literal,
        ..AclBindingFilter::any()
    };
    // The broker's authorizer applies the created ACL a moment after the
    // controller has it.
    let described = if tansu_null_results {
        admin.describe_acls(&filter).await.expect("describe acls")
    } else {
        kafkit_tests::eventually("the created ACL is described", || async {
            let described = admin
                .describe_acls(&filter)
                .await
                .map_err(|e| e.to_string())?;
            if described.contains(&acl) {
                Ok(described)
            } else {
                Err(format!("{described:?} lacks {acl:?}"))
            }
        })
        .await
    };
    assert!(
        described.iter().all(|a| a.resource_name == topic),
        "the filter applies: {described:?}"
    );
}
