//! [`MessageSet`]: the decode path the [`Fetcher`](crate::Fetcher) uses,
//! for callers that send their own Fetch requests (through
//! `kafkit_conn::Conn::request`, say) and want [`Message`]s out of one
//! partition's `records`.

use bytes::Bytes;
use kafkit_protocol::messages::fetch_response::AbortedTransaction;

use super::chunk::{Chunk, TxnFilter, scan};
use crate::{Error, Message, TopicPartition};

/// The messages in one partition's `records` field of a fetch response,
/// from the offset the fetch asked for.
///
/// Iterating decodes batch by batch (decompressing each compressed batch
/// once) and hands out messages whose key, value and headers are slices of
/// `records`: nothing is allocated per record. Control batches (transaction
/// markers) are skipped, and so are records before the start offset (a
/// fetch may start inside a batch). A corrupt batch is one `Err`, after
/// which iteration ends.
///
/// ```
/// use bytes::Bytes;
/// use kafkit_protocol::records::RecordBatchBuilder;
/// use kafkit_reader::{MessageSet, TopicPartition};
///
/// let mut batch = RecordBatchBuilder::new(40);
/// for value in ["a", "b", "c"] {
///     batch.append(0, None, Some(value.as_bytes()), &[]).unwrap();
/// }
/// let records: Bytes = batch.finish().unwrap();
/// let mut set = MessageSet::new(TopicPartition::new("orders", 0), 41, records);
/// let offsets: Vec<i64> = set.by_ref().map(|m| m.unwrap().offset).collect();
/// assert_eq!(offsets, [41, 42]);
/// assert_eq!(set.position(), 43);
/// ```
#[derive(Debug)]
pub struct MessageSet {
    chunk: Chunk,
}

impl MessageSet {
    /// The messages of `records` from `start_offset` on, all of them
    /// (read_uncommitted).
    pub fn new(tp: TopicPartition, start_offset: i64, records: Bytes) -> MessageSet {
        let end = scan(&records)
            .next_offset
            .map_or(start_offset, |end| end.max(start_offset));
        MessageSet {
            chunk: Chunk::new(tp, 0, start_offset, end, records, None),
        }
    }

    /// Only committed messages (read_committed, KIP-98): drops the batches
    /// of the transactions the fetch response lists as aborted (its
    /// partition's `aborted_transactions`), up to each one's abort marker.
    pub fn read_committed(mut self, aborted: &[AbortedTransaction]) -> MessageSet {
        self.chunk.set_filter(TxnFilter::new(aborted));
        self
    }

    /// The offset after the last message handed out or batch passed over;
    /// once iteration ended, the offset to fetch next.
    pub fn position(&self) -> i64 {
        self.chunk.position
    }
}

impl Iterator for MessageSet {
    type Item = Result<Message, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.chunk.next_message()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafkit_protocol::records::{ControlRecord, RecordBatchBuilder, control_batch};

    #[test]
    fn read_committed_applies_the_aborted_list() {
        let mut data = BytesMut::new();
        let mut b = RecordBatchBuilder::new(0)
            .with_producer(5, 0, 0)
            .with_transactional(true);
        b.append(0, None, Some(b"aborted"), &[]).unwrap();
        data.extend_from_slice(&b.finish().unwrap());
        data.extend_from_slice(&control_batch(1, 5, 0, &ControlRecord::abort(0), 0).unwrap());
        let mut b = RecordBatchBuilder::new(2);
        b.append(0, None, Some(b"plain"), &[]).unwrap();
        data.extend_from_slice(&b.finish().unwrap());
        let data = data.freeze();
        let aborted = [AbortedTransaction {
            producer_id: 5,
            first_offset: 0,
            ..Default::default()
        }];
        let tp = TopicPartition::new("t", 0);
        let committed: Vec<Message> = MessageSet::new(tp.clone(), 0, data.clone())
            .read_committed(&aborted)
            .map(Result::unwrap)
            .collect();
        assert_eq!(committed.len(), 1);
        assert_eq!(committed[0].value_bytes(), b"plain");
        let all = MessageSet::new(tp, 0, data).count();
        assert_eq!(all, 2);
    }

    #[test]
    fn an_empty_set_stays_at_its_start() {
        let mut set = MessageSet::new(TopicPartition::new("t", 0), 9, Bytes::new());
        assert!(set.next().is_none());
        assert_eq!(set.position(), 9);
    }
}
