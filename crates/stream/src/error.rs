//! The processor's [`Error`]: the reader's, the writer's, or a record the
//! user function could not process.

/// An error returned by a processing function, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a [`Processor`](crate::Processor) stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are inconsistent; nothing was started.
    #[error("invalid processor configuration: {0}")]
    Config(String),
    /// The reader failed (group membership, fetch).
    #[error("reader: {0}")]
    Reader(#[from] kafkit_reader::Error),
    /// The transactional writer failed: fenced by a newer instance with
    /// the same transactional id ([`is_fatal`](Error::is_fatal)), or
    /// transactions kept failing.
    #[error("writer: {0}")]
    Writer(#[from] kafkit_writer::Error),
    /// The function failed for a record on every attempt and there is no
    /// dead-letter topic; the transaction holding the record was aborted.
    #[error("processing {topic}/{partition}@{offset} failed after {attempts} attempts: {source}")]
    Processing {
        /// The input record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// How many times the function ran for it.
        attempts: u32,
        /// The last error.
        source: BoxError,
    },
    /// The processor was closed.
    #[error("the processor is closed")]
    Closed,
}

impl Error {
    /// True when the writer is unusable (fenced by a newer instance with
    /// the same transactional id, or not authorised): drop the processor;
    /// building a new one fences in turn.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Writer(e) if e.is_fatal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_errors_name_the_record() {
        let e = Error::Processing {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            attempts: 3,
            source: "bad json".into(),
        };
        assert_eq!(
            e.to_string(),
            "processing orders/2@41 failed after 3 attempts: bad json"
        );
        assert!(!e.is_fatal());
        assert!(std::error::Error::source(&e).is_some());
    }
}
