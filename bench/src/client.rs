//! The clients the benchmark measures, how each runs (this binary, the Go
//! peer, the Java peer), which workloads each takes part in, and what a
//! child process of this binary does.

use crate::workload::Bench;

/// How a client is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This binary's `child` command.
    Rust,
    /// `kafkit-peer-go NAME ...`, NAME being the peer's client name.
    Go(&'static str),
    /// `java -jar kafkit-peer-java.jar ...`.
    Java,
}

/// A client measured by the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Kafkit,
    Librdkafka,
    FranzGo,
    Sarama,
    KafkaGo,
    ConfluentGo,
    Java,
    /// kafkit's `Reader` in a consumer group of its own (consume only, on
    /// request): the `kafkit` row of a consume table is its `Fetcher` with
    /// the partitions assigned, as every other client reads.
    KafkitReader,
    /// kafkit's `Fetcher` with fetch sessions (KIP-227) turned off, so that
    /// every fetch names every partition (consume only, on request).
    KafkitNoSessions,
}

impl Client {
    /// Every client, in table order.
    pub const ALL: &[Client] = &[
        Client::Kafkit,
        Client::Librdkafka,
        Client::FranzGo,
        Client::Sarama,
        Client::KafkaGo,
        Client::ConfluentGo,
        Client::Java,
        Client::KafkitReader,
        Client::KafkitNoSessions,
    ];

    /// The clients measured when `--clients` is not given.
    pub const DEFAULT: &[Client] = &[
        Client::Kafkit,
        Client::Librdkafka,
        Client::FranzGo,
        Client::Sarama,
        Client::KafkaGo,
        Client::ConfluentGo,
        Client::Java,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::Kafkit => "kafkit",
            Client::Librdkafka => "librdkafka",
            Client::FranzGo => "franz-go",
            Client::Sarama => "sarama",
            Client::KafkaGo => "kafka-go",
            Client::ConfluentGo => "confluent-kafka-go",
            Client::Java => "java",
            Client::KafkitReader => "kafkit-reader",
            Client::KafkitNoSessions => "kafkit-no-sessions",
        }
    }

    pub fn from_name(name: &str) -> Option<Client> {
        Client::ALL.iter().copied().find(|c| c.name() == name)
    }

    pub fn runtime(self) -> Runtime {
        match self {
            Client::Kafkit
            | Client::Librdkafka
            | Client::KafkitReader
            | Client::KafkitNoSessions => Runtime::Rust,
            Client::FranzGo => Runtime::Go("franz-go"),
            Client::Sarama => Runtime::Go("sarama"),
            Client::KafkaGo => Runtime::Go("kafka-go"),
            Client::ConfluentGo => Runtime::Go("confluent"),
            Client::Java => Runtime::Java,
        }
    }

    /// Whether the client takes part in `bench`.
    pub fn runs(self, bench: Bench) -> bool {
        self.skips(bench).is_none()
    }

    /// Why the client does not take part in `bench`, if it does not.
    pub fn skips(self, bench: Bench) -> Option<&'static str> {
        match self {
            Client::KafkitReader | Client::KafkitNoSessions if bench.is_produce() => {
                Some("a consumer")
            }
            Client::Sarama | Client::KafkaGo | Client::ConfluentGo if bench.shape(1).topics > 1 => {
                Some("its peer's bench-consume reads one topic")
            }
            _ => None,
        }
    }

    /// Whether the counting allocator sees this client's allocations: only
    /// Rust code's (librdkafka uses C's malloc, the peers are other processes).
    pub fn counts_allocations(self) -> bool {
        matches!(
            self,
            Client::Kafkit | Client::KafkitReader | Client::KafkitNoSessions
        )
    }
}

/// What a child process of this binary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Produce,
    Consume,
    /// Writes a consume benchmark's records (with librdkafka); not measured.
    Fill,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::Fill => "fill",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        [Mode::Produce, Mode::Consume, Mode::Fill]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_modes_round_trip_their_names() {
        for &c in Client::ALL {
            assert_eq!(Client::from_name(c.name()), Some(c));
        }
        for m in [Mode::Produce, Mode::Consume, Mode::Fill] {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert!(!Client::KafkitReader.runs(Bench::Produce));
        assert!(Client::KafkitReader.runs(Bench::Consume));
        assert!(!Client::KafkitNoSessions.runs(Bench::ProduceKeyed));
        assert!(Client::KafkitNoSessions.runs(Bench::Consume1000));
        assert!(!Client::Sarama.runs(Bench::Consume1000));
        assert!(Client::FranzGo.runs(Bench::Consume1000));
    }
}
