//! A request frame as a list of chunks: its size prefix, header and body
//! in one buffer, with large record sets (a Produce request's batches) left
//! out of it and referenced where they belong (see `codec/records.rs`), so
//! that a writer sends them with one vectored write instead of copying
//! each batch into the frame first.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::records::by_reference;
use crate::frame::{request_header, size_prefix};
use crate::{EncodeError, Message, Request};

/// One complete request frame, as [`encode_request`](crate::frame::encode_request)
/// writes it, split into chunks that, sent in order, make the same bytes.
pub fn encode_request_chunks<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<Vec<Bytes>, EncodeError> {
    let header = request_header(R::API_KEY, version, correlation_id, client_id);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let (result, left_out) = by_reference(|| {
        header.encode(&mut buf, R::API_KEY.request_header_version(version))?;
        body.encode(&mut buf, version)
    });
    result?;
    let len = buf.len() - 4 + left_out.iter().map(|(_, b)| b.len()).sum::<usize>();
    buf[..4].copy_from_slice(&size_prefix(len)?);
    let buf = buf.freeze();
    let mut chunks = Vec::with_capacity(2 * left_out.len() + 1);
    let mut at = 0;
    for (position, records) in left_out {
        chunks.push(buf.slice(at..position));
        chunks.push(records);
        at = position;
    }
    if at < buf.len() {
        chunks.push(buf.slice(at..));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::records::BY_REFERENCE;
    use crate::frame::encode_request;
    use crate::messages::ProduceRequest;
    use crate::messages::produce_request::{PartitionProduceData, TopicProduceData};

    fn produce(sizes: &[usize]) -> ProduceRequest {
        let partitions = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| PartitionProduceData {
                index: i as i32,
                records: Some(Bytes::from(vec![i as u8 + 1; size])),
                ..Default::default()
            })
            .collect();
        ProduceRequest {
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: partitions,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_chunks_make_the_same_frame_and_large_batches_are_not_copied() {
        for version in [3, 8, 9, 12] {
            let request = produce(&[10, BY_REFERENCE, 3, 2 * BY_REFERENCE + 7]);
            let mut whole = BytesMut::new();
            encode_request(&mut whole, 42, Some("app"), version, &request).unwrap();
            let chunks = encode_request_chunks(42, Some("app"), version, &request).unwrap();
            assert_eq!(chunks.concat(), &whole[..], "v{version}");
            let batches = &request.topic_data[0].partition_data;
            for p in [1, 3] {
                let batch = batches[p].records.as_ref().unwrap();
                assert!(
                    chunks.iter().any(|c| c.as_ptr() == batch.as_ptr()),
                    "v{version}: batch {p} sent by reference"
                );
            }
        }
    }

    #[test]
    fn a_frame_without_large_batches_is_one_chunk() {
        let chunks = encode_request_chunks(1, None, 9, &produce(&[10, 20])).unwrap();
        assert_eq!(chunks.len(), 1);
    }
}
