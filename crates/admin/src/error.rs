//! Errors. A whole call fails with an [`Error`] (the network, a broker that
//! lacks the API, an error the broker gave for the whole request); a call
//! about several resources also holds one `Result` per resource, whose
//! `Err` is an [`Error`] of kind [`ErrorKind::Broker`] carrying the code
//! and the broker's message, and the topic and partition when there is one.
//!
//! The type is kafkit-conn's, so retry loops ask the same questions at
//! every layer ([`Error::is_retriable`], [`Error::code`]):
//!
//! ```no_run
//! # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
//! use kafkit_admin::ErrorCode;
//! for (topic, result) in admin.delete_topics(&["a", "b"]).await? {
//!     if let Err(e) = result {
//!         if e.code() != Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) {
//!             eprintln!("{topic}: {e}");
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use kafkit_conn::ErrorCode;
pub use kafkit_conn::{Error, ErrorKind};

/// `Result` with kafkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok(())` for `NONE`, else a broker error with the message when the
/// broker sent one.
pub(crate) fn check(code: ErrorCode, message: Option<&str>) -> Result<()> {
    Error::check(code, message)
}

/// A broker error for `code`, which must not be `NONE`.
pub(crate) fn broker_error(code: ErrorCode, message: Option<&str>) -> Error {
    match Error::check(code, message) {
        Err(e) => e,
        Ok(()) => Error::new(ErrorKind::Broker(ErrorCode::UNKNOWN_SERVER_ERROR))
            .with_message("an error was expected but the code is NONE"),
    }
}

/// An invalid argument: nothing was sent.
pub(crate) fn invalid(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config(why.into()))
}

/// The per-partition result of `code`, with the topic and partition named.
pub(crate) fn partition_result(
    code: ErrorCode,
    message: Option<&str>,
    topic: &str,
    partition: i32,
) -> Result<()> {
    check(code, message).map_err(|e| e.with_topic(topic, Some(partition)))
}

/// The per-topic result of `code`, with the topic named.
pub(crate) fn topic_result(code: ErrorCode, message: Option<&str>, topic: &str) -> Result<()> {
    check(code, message).map_err(|e| e.with_topic(topic, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_resource_errors_carry_code_message_and_topic() {
        let e =
            partition_result(ErrorCode::NOT_LEADER_OR_FOLLOWER, Some("moved"), "t", 3).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert_eq!(e.topic(), Some("t"));
        assert_eq!(e.partition(), Some(3));
        assert!(e.is_retriable());
        assert!(e.to_string().contains("moved"), "{e}");
        assert!(topic_result(ErrorCode::NONE, None, "t").is_ok());
    }

    #[test]
    fn broker_error_never_hides_a_none_code() {
        assert_eq!(
            broker_error(ErrorCode::NONE, None).code(),
            Some(ErrorCode::UNKNOWN_SERVER_ERROR)
        );
        assert!(matches!(invalid("x").kind(), ErrorKind::Config(_)));
    }
}
