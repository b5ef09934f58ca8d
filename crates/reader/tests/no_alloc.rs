//! The consume path allocates nothing per record: a fetch response frame
//! holding 10,000 records of 100 bytes, as it comes off the socket, is
//! split into its frame, decoded, and every message is handed out through
//! [`MessageSet`] (the path `Fetcher::next` takes), touching key, value
//! and headers, while a counting allocator watches.
//!
//! Implementing `GlobalAlloc` is unsafe by definition; this test binary is
//! the only place in the crate that needs it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use kafkit_protocol::ApiKey;
use kafkit_protocol::frame;
use kafkit_protocol::messages::FetchResponse;
use kafkit_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafkit_protocol::records::RecordBatchBuilder;
use kafkit_reader::{MessageSet, TopicPartition};

thread_local! {
    // Per thread, so the harness's other threads don't count.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a thread-local Cell that never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const RECORDS: usize = 10_000;
const PER_BATCH: usize = 500;
const FETCH_VERSION: i16 = 12;

/// A Fetch v12 response frame (size prefix included) for one partition
/// holding `RECORDS` records of 100-byte values in batches of `PER_BATCH`,
/// half of them with a header.
fn fetch_response_frame() -> BytesMut {
    let mut records = BytesMut::new();
    let value = [0x5au8; 100];
    for base in (0..RECORDS).step_by(PER_BATCH) {
        let mut b = RecordBatchBuilder::new(base as i64).with_partition_leader_epoch(1);
        for i in base..base + PER_BATCH {
            let key = (i as u64).to_be_bytes();
            let headers: &[(&str, Option<&[u8]>)] = if i % 2 == 0 {
                &[("trace-id", Some(b"abc"))]
            } else {
                &[]
            };
            b.append(
                1_700_000_000_000 + i as i64,
                Some(&key),
                Some(&value),
                headers,
            )
            .unwrap();
        }
        records.extend_from_slice(&b.finish().unwrap());
    }
    let response = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "orders".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                high_watermark: RECORDS as i64,
                last_stable_offset: RECORDS as i64,
                records: Some(records.freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    frame::encode_response(&mut buf, 7, FETCH_VERSION, &response).unwrap();
    buf
}

#[test]
fn decoding_and_handing_out_a_fetch_response_allocates_nothing_per_record() {
    let mut wire = fetch_response_frame();
    let tp = TopicPartition::new("orders", 0);

    let before = allocations();
    let frame = frame::decode_frame(&mut wire, 1 << 30).unwrap().unwrap();
    let (_, response): (i32, FetchResponse) =
        frame::decode_response(frame, ApiKey::Fetch, FETCH_VERSION).unwrap();
    let mut seen = 0usize;
    let mut checksum = 0u64;
    for topic in response.responses {
        for partition in topic.partitions {
            let records: Bytes = partition.records.unwrap_or_default();
            for message in MessageSet::new(tp.clone(), 0, records) {
                let message = message.unwrap();
                seen += 1;
                checksum += message.value_bytes().len() as u64;
                checksum += u64::from(message.key_bytes()[7]);
                checksum += message.offset as u64 + message.timestamp as u64;
                for header in &message.headers {
                    checksum += header.key.len() as u64;
                }
                checksum += message.topic.len() as u64;
            }
        }
    }
    let allocated = allocations() - before;

    assert_eq!(seen, RECORDS);
    assert!(
        checksum > (RECORDS * 100) as u64,
        "the loop read the messages"
    );
    // The frame's header, the topic and partition vectors and the
    // iterator's state allocate a handful of times; one allocation per
    // record (10,000), or even per batch (20), is what this catches.
    assert!(
        allocated <= 16,
        "{allocated} allocations for {RECORDS} records in {} batches",
        RECORDS / PER_BATCH
    );
}
