//! The `kafkit` tool's TLS flags, against Apache Kafka's TLS listener (or
//! tansu behind socat, as tansu has no TLS): `--ca-file` is what the
//! broker's certificate is verified against, so the right CA lists the
//! topics, a certificate from another CA and an unreadable CA file fail
//! with exit code 6, and plaintext against the TLS port with code 3.

mod cli_support;

use cli_support::run;
use kafkit_tests::{Listener, TestBroker, TestPki, TlsProxy, socat_or_skip, unique_topic};

#[test]
fn tls_flags_verify_the_broker_and_fail_with_code_6() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-tls");
    broker.create_topic(&topic, 1);
    let (addr, _proxy, _own_pki) = match (broker.listener(Listener::Ssl), broker.pki()) {
        (Some(list), Some(pki)) => {
            // The broker's own TLS listener: whole commands work over it.
            let addr = list.split(',').next().unwrap().to_owned();
            let ca = pki.ca().display().to_string();
            let listed = run(&["-b", &addr, "--ca-file", &ca, "topics", "list"], "");
            assert_eq!(listed.code, Some(0), "{listed:?}");
            assert!(listed.stdout.contains(&topic), "{}", listed.stdout);
            (addr, None, None)
        }
        _ => {
            let Some(socat) = socat_or_skip() else {
                return;
            };
            let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
            let proxy = TlsProxy::start(&socat, &pki, broker.addr(), false);
            (proxy.addr().to_string(), Some(proxy), Some(pki))
        }
    };

    // Behind socat only the handshake can be checked: tansu's metadata
    // names its plaintext listener, which later connections would take.
    let other = TestPki::generate(&["localhost", "127.0.0.1"]);
    let other_ca = other.ca().display().to_string();
    let refused = run(
        &["-b", &addr, "--ca-file", &other_ca, "cluster", "describe"],
        "",
    );
    assert_eq!(
        refused.code,
        Some(6),
        "a certificate from another CA: {refused:?}"
    );
    assert!(refused.stderr.contains("TLS"), "{}", refused.stderr);

    let missing = run(
        &[
            "-b",
            &addr,
            "--ca-file",
            "/nonexistent/ca.pem",
            "topics",
            "list",
        ],
        "",
    );
    assert_eq!(missing.code, Some(6), "{missing:?}");
    assert!(
        missing.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        missing.stderr
    );

    // Plaintext against the TLS port is a connection failure, not a hang.
    let plaintext = run(
        &["-b", &addr, "--request-timeout", "5s", "topics", "list"],
        "",
    );
    assert_eq!(plaintext.code, Some(3), "{plaintext:?}");
}
