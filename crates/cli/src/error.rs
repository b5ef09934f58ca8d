//! Errors and exit codes. Every failure the tool reports is a [`Failure`]: a
//! readable message and the [`Exit`] code scripts can branch on. Errors of
//! the library crates are sorted by what they mean to a user (the network,
//! a missing resource, authentication...), never by their Rust variant.

use std::fmt;
use std::process::ExitCode;

use kafkit_conn::{ErrorCode, ErrorKind};

/// The tool's exit codes; `kafkit --help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else (an IO error on stdin or a file, a record that
    /// failed for a reason not listed below).
    Failure = 1,
    /// 2: bad usage: an unknown flag, a bad value, flags that exclude each
    /// other, an invalid configuration.
    Usage = 2,
    /// 3: the cluster could not be reached or answered with an error:
    /// connection refused, timeouts, a broker error code.
    Broker = 3,
    /// 4: a topic, partition or group that does not exist.
    NotFound = 4,
    /// 5: a topic that already exists (or another conflict with the
    /// cluster's state, such as deleting a group that still has members).
    Conflict = 5,
    /// 6: TLS or SASL failed, or the broker refused an operation to this
    /// principal (an ACL).
    Auth = 6,
}

/// The exit code table; `--help` (main.rs) prints it, and a test keeps the
/// two the same.
#[cfg(test)]
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (IO error, a record that could not be written)
  2  usage error (bad flag or value, invalid configuration)
  3  connection or broker error (refused, timeout, a broker error code)
  4  not found (unknown topic, partition or group)
  5  conflict (topic already exists, group not empty)
  6  TLS, SASL or authorization failure";

/// A failure to report: the message goes to stderr, the code to the shell.
#[derive(Debug)]
pub struct Failure {
    /// What to exit with.
    pub exit: Exit,
    /// What went wrong, in words.
    pub message: String,
}

impl Failure {
    /// A failure with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: impl fmt::Display) -> Failure {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Per-resource failures of a command about several resources: each is
/// printed as it happens, and the command fails with the first one's exit
/// code once all are done.
#[derive(Debug, Default)]
pub struct Failures {
    first: Option<Exit>,
    count: usize,
}

impl Failures {
    /// Reports `failure` on stderr and remembers it.
    pub fn report(&mut self, failure: Failure) {
        eprintln!("kafkit: {failure}");
        self.first.get_or_insert(failure.exit);
        self.count += 1;
    }

    /// `Ok` if nothing failed, else a failure naming how many of `total`
    /// `what` failed.
    pub fn finish(self, total: usize, what: &str) -> Result<()> {
        match self.first {
            None => Ok(()),
            Some(exit) => Err(Failure::new(
                exit,
                format!("{} of {total} {what} failed", self.count),
            )),
        }
    }
}

/// `Result` with a [`Failure`].
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// The exit code a broker error code means.
pub fn exit_for_code(code: ErrorCode) -> Exit {
    match code {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::UNKNOWN_TOPIC_ID
        | ErrorCode::GROUP_ID_NOT_FOUND => Exit::NotFound,
        ErrorCode::TOPIC_ALREADY_EXISTS | ErrorCode::NON_EMPTY_GROUP => Exit::Conflict,
        ErrorCode::SASL_AUTHENTICATION_FAILED
        | ErrorCode::ILLEGAL_SASL_STATE
        | ErrorCode::UNSUPPORTED_SASL_MECHANISM
        | ErrorCode::TOPIC_AUTHORIZATION_FAILED
        | ErrorCode::GROUP_AUTHORIZATION_FAILED
        | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => Exit::Auth,
        ErrorCode::INVALID_REPLICATION_FACTOR
        | ErrorCode::INVALID_PARTITIONS
        | ErrorCode::INVALID_CONFIG
        | ErrorCode::INVALID_TOPIC_EXCEPTION
        | ErrorCode::INVALID_REQUEST => Exit::Usage,
        _ => Exit::Broker,
    }
}

/// The exit code a connection-layer error means.
pub fn exit_for_conn(e: &kafkit_conn::Error) -> Exit {
    match e.kind() {
        ErrorKind::Broker(code) => exit_for_code(*code),
        ErrorKind::Config(_) => Exit::Usage,
        ErrorKind::Tls(_) | ErrorKind::Sasl(_) => Exit::Auth,
        _ => Exit::Broker,
    }
}

impl From<kafkit_conn::Error> for Failure {
    fn from(e: kafkit_conn::Error) -> Failure {
        Failure::new(exit_for_conn(&e), e.to_string())
    }
}

impl From<kafkit_writer::Error> for Failure {
    fn from(e: kafkit_writer::Error) -> Failure {
        use kafkit_writer::Error as W;
        let exit = match &e {
            W::Kafka(conn) => exit_for_conn(conn),
            W::RecordsFailed { last, .. } => Failure::from((**last).clone()).exit,
            W::NoSuchPartition { .. } => Exit::NotFound,
            W::Config(_) | W::AmbiguousTopic { .. } | W::MissingTopic => Exit::Usage,
            W::DeliveryTimeout(_) => Exit::Broker,
            _ => Exit::Failure,
        };
        Failure::new(exit, e.to_string())
    }
}

impl From<kafkit_reader::Error> for Failure {
    fn from(e: kafkit_reader::Error) -> Failure {
        use kafkit_reader::ErrorKind as R;
        let exit = match (e.kind(), e.conn()) {
            (_, Some(conn)) => exit_for_conn(conn),
            (R::Config(_), None) => Exit::Usage,
            (R::OffsetOutOfRange, None) => Exit::NotFound,
            (R::Conn(_) | R::Group(_), None) => Exit::Broker,
            _ => Exit::Failure,
        };
        Failure::new(exit, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(Exit::Failure, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: ErrorCode) -> kafkit_conn::Error {
        kafkit_conn::Error::check(code, None).unwrap_err()
    }

    #[test]
    fn broker_codes_map_to_what_they_mean() {
        let unknown = Failure::from(broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(unknown.exit, Exit::NotFound);
        assert_eq!(
            Failure::from(broker(ErrorCode::TOPIC_ALREADY_EXISTS)).exit,
            Exit::Conflict
        );
        assert_eq!(
            Failure::from(broker(ErrorCode::TOPIC_AUTHORIZATION_FAILED)).exit,
            Exit::Auth
        );
        assert_eq!(
            Failure::from(broker(ErrorCode::NOT_LEADER_OR_FOLLOWER)).exit,
            Exit::Broker
        );
        assert_eq!(
            Failure::from(kafkit_conn::Error::new(ErrorKind::Config("bad".into()))).exit,
            Exit::Usage
        );
    }

    #[test]
    fn writer_errors_look_through_to_the_cause() {
        let failed = kafkit_writer::Error::RecordsFailed {
            failed: 3,
            last: Box::new(kafkit_writer::Error::Kafka(broker(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ))),
        };
        let f = Failure::from(failed);
        assert_eq!(f.exit, Exit::NotFound);
        assert!(f.message.contains("3 records failed"), "{f}");
        assert_eq!(
            Failure::from(kafkit_writer::Error::MissingTopic).exit,
            Exit::Usage
        );
    }

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        for (exit, n) in [
            (Exit::Failure, 1),
            (Exit::Usage, 2),
            (Exit::Broker, 3),
            (Exit::NotFound, 4),
            (Exit::Conflict, 5),
            (Exit::Auth, 6),
        ] {
            assert_eq!(exit as u8, n);
            assert!(EXIT_CODES_HELP.contains(&format!("  {n}  ")));
        }
        let f = Failure::usage("x").context("parsing --offset");
        assert_eq!(f.to_string(), "parsing --offset: x");
        assert!(Failures::default().finish(2, "topics").is_ok());
        let mut failures = Failures::default();
        failures.report(Failure::new(Exit::NotFound, "a"));
        failures.report(Failure::new(Exit::Broker, "b"));
        let f = failures.finish(3, "topics").unwrap_err();
        assert_eq!(
            (f.exit, f.message.as_str()),
            (Exit::NotFound, "2 of 3 topics failed")
        );
    }
}
