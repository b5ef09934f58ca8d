//! The writer's side of the client [`Hook`]: a record about to be
//! buffered is shown to the hook, which may set headers on it (trace
//! context) and keep a token; the record's completion then carries the
//! token ([`Traced`]) until [`Batch::complete`](crate::batch::Batch::complete)
//! reports the outcome.
//!
//! With no hook installed nothing here runs: the writer checks
//! [`Hooks::is_installed`] once per record.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use kafkit_conn::hooks::{HeaderLookup, ProduceAck, ProduceRecord, RecordToken, SetHeaders};
use kafkit_conn::{Hook, Hooks};
use tokio::time::Instant;

use crate::batch::Completion;
use crate::{Error, Header, Message, RecordMetadata};

impl HeaderLookup for Message {
    fn header(&self, name: &str) -> Option<Bytes> {
        self.headers
            .iter()
            .rev()
            .find(|h| h.key == name)
            .and_then(|h| h.value.clone())
    }
}

/// A record's completion, with what the hook keeps until its outcome.
#[derive(Debug)]
pub(crate) struct Traced {
    pub(crate) inner: Completion,
    token: TokenBox,
    start: Instant,
}

/// The token and the hook it goes back to.
struct TokenBox {
    token: RecordToken,
    hook: Arc<dyn Hook>,
}

impl std::fmt::Debug for TokenBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenBox")
    }
}

impl Traced {
    /// Tells the hook the record's outcome; gives back the completion to
    /// resolve.
    pub(crate) fn report(
        self,
        topic: &str,
        partition: i32,
        result: &Result<RecordMetadata, Error>,
    ) -> Completion {
        let TokenBox { token, hook } = self.token;
        let (partition, offset) = match result {
            Ok(meta) => (meta.partition, meta.offset),
            Err(_) => (partition, -1),
        };
        let error = result.as_ref().err();
        hook.on_produce_acked(
            &ProduceAck {
                topic,
                partition,
                offset,
                duration: self.start.elapsed(),
                error: error.map(|e| e as &(dyn std::error::Error + Send + Sync)),
                error_type: error.map(error_type),
            },
            token,
        );
        self.inner
    }
}

/// A short, low-cardinality name for `error` (`error.type` in metrics).
pub(crate) fn error_type(error: &Error) -> &'static str {
    if let Some(name) = error.code().and_then(|c| c.name()) {
        return name;
    }
    match error {
        Error::AmbiguousTopic { .. } | Error::MissingTopic | Error::Config(_) => "config",
        Error::BufferFull { .. } => "buffer_full",
        Error::MessageTooLarge { .. } => "message_too_large",
        Error::NoSuchPartition { .. } => "no_such_partition",
        Error::Closed => "closed",
        Error::DeliveryTimeout(_) => "delivery_timeout",
        Error::Encode(_) => "encode",
        Error::Kafka(e) if e.is_connection_error() => "connection",
        Error::Kafka(_) => "kafka",
        Error::NoTransaction | Error::TransactionState { .. } => "transaction_state",
        Error::TransactionAborted | Error::Abortable(_) => "transaction_aborted",
        Error::Fatal(_) => "fatal",
        Error::RecordsFailed { .. } => "records_failed",
    }
}

/// Shows `message` (bound for `topic`) to the hook, if one is installed:
/// returns the message to buffer (a copy carrying the headers the hook
/// set, or the caller's) and the completion (wrapped with the hook's
/// token, if it returned one). Called once per record, before any retry
/// for buffer space.
pub(crate) fn before_buffering<'m>(
    hooks: &Hooks,
    client_id: Option<&str>,
    topic: &str,
    message: &'m Message,
    completion: Completion,
) -> (Cow<'m, Message>, Completion) {
    let Some(hook) = hooks.get() else {
        return (Cow::Borrowed(message), completion);
    };
    let mut set = SetHeaders::default();
    let token = hook.on_produce_record(
        &ProduceRecord {
            topic,
            partition: message.partition,
            key: message.key.as_deref(),
            value_len: message.value.as_ref().map_or(0, Bytes::len),
            headers: message,
            client_id,
        },
        &mut set,
    );
    let message = if set.is_empty() {
        Cow::Borrowed(message)
    } else {
        let mut owned = message.clone();
        for (name, value) in set.into_inner() {
            owned.headers.retain(|h| h.key != name);
            owned.headers.push(Header {
                key: name,
                value: Some(value),
            });
        }
        Cow::Owned(owned)
    };
    let completion = match token {
        Some(token) => Completion::Traced(Box::new(Traced {
            inner: completion,
            token: TokenBox {
                token,
                hook: hook.clone(),
            },
            start: Instant::now(),
        })),
        None => completion,
    };
    (message, completion)
}

/// A record that could not be buffered: its hook hears the error.
pub(crate) fn refused(completion: Completion, topic: &str, error: &Error) {
    if let Completion::Traced(traced) = completion {
        drop(traced.report(topic, -1, &Err(error.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// An acknowledgement as the hook saw it: topic, partition, offset,
    /// error type.
    type Ack = (String, i32, i64, Option<String>);

    #[derive(Default)]
    struct Recorder {
        acks: Mutex<Vec<Ack>>,
    }

    impl Hook for Recorder {
        fn on_produce_record(
            &self,
            record: &ProduceRecord<'_>,
            set: &mut SetHeaders,
        ) -> Option<RecordToken> {
            let seen = record.headers.header("traceparent");
            set.set("traceparent", "new");
            Some(Box::new(seen))
        }

        fn on_produce_acked(&self, ack: &ProduceAck<'_>, token: RecordToken) {
            let seen = token.downcast::<Option<Bytes>>().expect("our token");
            assert_eq!(*seen, Some(Bytes::from("old")));
            self.acks.lock().unwrap().push((
                ack.topic.to_owned(),
                ack.partition,
                ack.offset,
                ack.error_type.map(str::to_owned),
            ));
        }
    }

    #[tokio::test]
    async fn headers_are_replaced_and_the_outcome_reported() {
        let recorder = Arc::new(Recorder::default());
        let hooks = Hooks::from_arc(recorder.clone());
        let message = Message::new("v")
            .with_header("traceparent", "old")
            .with_header("keep", "k");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (buffered, completion) =
            before_buffering(&hooks, None, "t", &message, Completion::Oneshot(tx));
        let names: Vec<_> = buffered.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(names, ["keep", "traceparent"]);
        assert_eq!(buffered.header("traceparent"), Some(Bytes::from("new")));
        let Completion::Traced(traced) = completion else {
            panic!("not traced")
        };
        let meta = RecordMetadata {
            partition: 3,
            offset: 42,
        };
        let Completion::Oneshot(tx) = traced.report("t", 3, &Ok(meta)) else {
            panic!("inner completion lost")
        };
        tx.send(Ok(meta)).unwrap();
        assert_eq!(rx.await.unwrap().unwrap().offset, 42);
        let (tx, _rx) = tokio::sync::oneshot::channel();
        let (_, completion) =
            before_buffering(&hooks, None, "t", &message, Completion::Oneshot(tx));
        refused(completion, "t", &Error::Closed);
        let acks = recorder.acks.lock().unwrap();
        assert_eq!(acks[0], ("t".to_owned(), 3, 42, None));
        assert_eq!(acks[1], ("t".to_owned(), -1, -1, Some("closed".to_owned())));
    }

    #[test]
    fn without_a_hook_the_message_is_borrowed() {
        let message = Message::new("v");
        let (buffered, completion) = before_buffering(
            &Hooks::default(),
            None,
            "t",
            &message,
            Completion::Report(1),
        );
        assert!(matches!(buffered, Cow::Borrowed(_)));
        assert!(matches!(completion, Completion::Report(1)));
    }
}
