//! SASL and ACLs against Apache Kafka's own listeners: PLAIN users from
//! the broker's JAAS configuration, SCRAM-SHA-256/512 users created through
//! kafkit-admin's AlterUserScramCredentials, and the StandardAuthorizer
//! denying a user until an ACL allows it. tansu stores no users in memory
//! and has no authorizer, so these tests need Kafka and say so on tansu.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Admin, PatternType,
    ResourceType, ScramAlteration, ScramMechanism,
};
use kafkit_conn::sasl::{Mechanism, Plain, Scram};
use kafkit_conn::{Conn, ConnConfig, ErrorCode, ErrorKind, Message, TlsConfig};
use kafkit_tests::kafka::{SASL_ADMIN, SASL_USER};
use kafkit_tests::{Listener, PROPAGATION, TestBroker, unique_topic};

/// The broker's address on `listener`, or `None` (with a note) on tansu.
fn listener(broker: &TestBroker, listener: Listener) -> Option<String> {
    let found = broker.listener(listener);
    if found.is_none() {
        eprintln!("skipping: the broker has no {listener:?} listener (tansu)");
    }
    found.map(|list| list.split(',').next().unwrap().to_owned())
}

fn config(sasl: Arc<dyn Mechanism>, tls: Option<TlsConfig>) -> ConnConfig {
    ConnConfig {
        sasl: Some(sasl),
        tls,
        ..Default::default()
    }
}

fn tls(broker: &TestBroker) -> TlsConfig {
    let pki = broker.pki().expect("a TLS listener has a PKI");
    TlsConfig::builder().ca_file(pki.ca()).build().unwrap()
}

/// Dials until the broker accepts `config` (a credential may not have
/// reached it yet), failing after [`PROPAGATION`].
async fn dial_eventually(addr: &str, config: ConnConfig) -> Conn {
    let start = Instant::now();
    loop {
        match Conn::dial_with(addr, config.clone()).await {
            Ok(conn) => return conn,
            Err(e) if start.elapsed() > PROPAGATION => panic!("{addr} never accepted: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn assert_sasl_rejected(result: Result<Conn, kafkit_conn::Error>) {
    let e = result.expect_err("the broker accepted a bad credential");
    assert!(matches!(e.kind(), ErrorKind::Sasl(_)), "{e:?}");
    assert!(!e.is_retriable(), "retrying cannot fix a credential: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_users_log_in_over_sasl_plaintext_and_sasl_ssl() {
    let broker = TestBroker::start();
    let (Some(plain_addr), Some(ssl_addr)) = (
        listener(&broker, Listener::SaslPlaintext),
        listener(&broker, Listener::SaslSsl),
    ) else {
        return;
    };
    let admin = Arc::new(Plain::new(SASL_ADMIN.0, SASL_ADMIN.1));
    let conn = Conn::dial_with(&plain_addr, config(admin.clone(), None))
        .await
        .unwrap();
    assert!(!conn.brokers().await.unwrap().is_empty());
    conn.close().await.unwrap();
    let conn = Conn::dial_with(&ssl_addr, config(admin, Some(tls(&broker))))
        .await
        .unwrap();
    assert!(!conn.brokers().await.unwrap().is_empty());
    conn.close().await.unwrap();

    let wrong = Arc::new(Plain::new(SASL_USER.0, "not-the-password"));
    assert_sasl_rejected(Conn::dial_with(&plain_addr, config(wrong, None)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_created_through_the_admin_api_log_in_until_deleted() {
    let broker = TestBroker::start();
    let (Some(plain_addr), Some(ssl_addr)) = (
        listener(&broker, Listener::SaslPlaintext),
        listener(&broker, Listener::SaslSsl),
    ) else {
        return;
    };
    let admin = Admin::builder([&broker.bootstrap()]).build().await.unwrap();
    let user = unique_topic("scram-user");
    let password = "s3cret-for-scram";
    // Kafka takes one alteration per user and request (two fail with
    // DUPLICATE_RESOURCE, as for the Java admin client): one call each.
    for (mechanism, iterations) in [
        (ScramMechanism::Sha256, 4096),
        (ScramMechanism::Sha512, 8192),
    ] {
        let upsert = ScramAlteration::Upsert {
            user: user.clone(),
            mechanism,
            iterations,
            password: password.to_owned(),
        };
        let results = admin.alter_user_scram_credentials(&[upsert]).await.unwrap();
        assert!(results[&user].is_ok(), "{results:?}");
    }

    // The broker's credential cache applies the upserts a moment after the
    // controller has them.
    kafkit_tests::eventually("both SCRAM credentials are described", || async {
        let described = admin
            .describe_user_scram_credentials(Some(&[&user]))
            .await
            .map_err(|e| e.to_string())?;
        let mut infos: Vec<(ScramMechanism, i32)> = described[&user]
            .as_ref()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|c| (c.mechanism, c.iterations))
            .collect();
        infos.sort_by_key(|(_, iterations)| *iterations);
        if infos
            == [
                (ScramMechanism::Sha256, 4096),
                (ScramMechanism::Sha512, 8192),
            ]
        {
            Ok(())
        } else {
            Err(format!("{infos:?}"))
        }
    })
    .await;

    let sha256: Arc<dyn Mechanism> = Arc::new(Scram::sha256(&user, password));
    let sha512: Arc<dyn Mechanism> = Arc::new(Scram::sha512(&user, password));
    let conn = dial_eventually(&plain_addr, config(sha256.clone(), None)).await;
    assert!(!conn.brokers().await.unwrap().is_empty());
    let conn = dial_eventually(&ssl_addr, config(sha512.clone(), Some(tls(&broker)))).await;
    assert!(!conn.brokers().await.unwrap().is_empty());
    let wrong: Arc<dyn Mechanism> = Arc::new(Scram::sha256(&user, "wrong"));
    assert_sasl_rejected(Conn::dial_with(&plain_addr, config(wrong, None)).await);

    let delete = [ScramAlteration::Delete {
        user: user.clone(),
        mechanism: ScramMechanism::Sha256,
    }];
    assert!(admin.alter_user_scram_credentials(&delete).await.unwrap()[&user].is_ok());
    let start = Instant::now();
    while Conn::dial_with(&plain_addr, config(sha256.clone(), None))
        .await
        .is_ok()
    {
        assert!(
            start.elapsed() < PROPAGATION,
            "a deleted credential still logs in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other mechanism's credential is still there.
    Conn::dial_with(&plain_addr, config(sha512, None))
        .await
        .unwrap();
}

/// Writes one record as `conn`'s user, returning the broker's error code.
async fn write_one(conn: &Conn, topic: &str) -> Option<ErrorCode> {
    let result = async {
        let partition = conn.partition_conn(topic, 0).await?;
        partition.write_messages(&[Message::new("v")]).await
    }
    .await;
    result.err().map(|e| {
        e.code()
            .unwrap_or_else(|| panic!("not a broker error: {e:?}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_denies_a_user_until_an_acl_allows_it() {
    let broker = TestBroker::start();
    let Some(addr) = listener(&broker, Listener::SaslPlaintext) else {
        return;
    };
    let topic = unique_topic("acl");
    broker.create_topic(&topic, 1);
    let admin = Admin::builder([&broker.bootstrap()]).build().await.unwrap();
    let alice = Conn::dial_with(
        &addr,
        config(Arc::new(Plain::new(SASL_USER.0, SASL_USER.1)), None),
    )
    .await
    .unwrap();
    assert_eq!(
        write_one(&alice, &topic).await,
        Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
    );

    let principal = format!("User:{}", SASL_USER.0);
    let bindings: Vec<AclBinding> = [AclOperation::Write, AclOperation::Describe]
        .into_iter()
        .map(|operation| AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.clone(),
            pattern_type: PatternType::Literal,
            principal: principal.clone(),
            host: "*".to_owned(),
            operation,
            permission: AclPermissionType::Allow,
        })
        .collect();
    for result in admin.create_acls(&bindings).await.unwrap() {
        result.unwrap();
    }
    let filter = AclBindingFilter {
        resource_type: ResourceType::Topic,
        resource_name: Some(topic.clone()),
        ..AclBindingFilter::any()
    };
    let mut expected = bindings.clone();
    expected.sort_by_key(|b| b.operation.code());
    kafkit_tests::eventually("both ACLs are described", || async {
        let mut described = admin
            .describe_acls(&filter)
            .await
            .map_err(|e| e.to_string())?;
        described.sort_by_key(|b| b.operation.code());
        if described == expected {
            Ok(())
        } else {
            Err(format!("{described:?}"))
        }
    })
    .await;

    let start = Instant::now();
    while let Some(code) = write_one(&alice, &topic).await {
        assert_eq!(code, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        assert!(start.elapsed() < PROPAGATION, "the ACL never took effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let deleted = admin.delete_acls(&[filter]).await.unwrap();
    assert_eq!(deleted[0].as_ref().unwrap().len(), 2);
    let start = Instant::now();
    while write_one(&alice, &topic).await.is_none() {
        assert!(
            start.elapsed() < PROPAGATION,
            "the deleted ACL still allows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice.close().await.unwrap();
}
