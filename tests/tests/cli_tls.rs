//! The `kafkit` tool's TLS flags against tansu behind socat (tansu has no
//! TLS): `--ca-file` is what the broker's certificate is verified against,
//! so a certificate from another CA and an unreadable CA file fail with
//! exit code 6, and plaintext against the TLS port with code 3.

mod cli_support;

use cli_support::run;
use kafkit_tests::{TestBroker, TestPki, TlsProxy, socat_or_skip, unique_topic};

#[test]
fn tls_flags_verify_the_broker_and_fail_with_code_6() {
    let Some(socat) = socat_or_skip() else {
        return;
    };
    let broker = TestBroker::start();
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let proxy = TlsProxy::start(&socat, &pki, broker.addr(), false);
    let topic = unique_topic("cli-tls");
    broker.create_topic(&topic, 1);
    let addr = proxy.addr().to_string();

    // Only the handshake is checked: tansu's metadata names its plaintext
    // listener, so a command's later connections would bypass the proxy.
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
