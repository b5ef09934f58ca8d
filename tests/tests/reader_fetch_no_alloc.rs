//! End to end, from the socket to the caller, a `Fetcher` allocates nothing
//! per record: 20,000 records read from tansu cost a few allocations per
//! fetch (requests, response vectors, tasks), far fewer than one per
//! record. A current-thread runtime keeps the fetcher's background task and
//! the connection drivers on the test thread, where a counting allocator
//! watches.
//!
//! Implementing `GlobalAlloc` is unsafe by definition; this test binary
//! needs it and nothing else does.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use kafkit_conn::{Message as Produce, Purpose, Transport, TransportConfig};
use kafkit_reader::{FetchConfig, Fetcher, StartOffset, TopicPartition};
use kafkit_tests::{TestBroker, unique_topic};

thread_local! {
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

const RECORDS: usize = 20_000;

#[tokio::test(flavor = "current_thread")]
async fn reading_from_a_broker_allocates_far_less_than_once_per_record() {
    let broker = TestBroker::start();
    let topic = unique_topic("reader-no-alloc");
    broker.create_topic(&topic, 1);
    let transport = Transport::connect(TransportConfig::new([broker.bootstrap()]))
        .await
        .unwrap();
    let producer = transport
        .partition_conn(&topic, 0, Purpose::Produce)
        .await
        .unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    let batch: Vec<Produce> = (0..1_000).map(|_| Produce::new(value.clone())).collect();
    for _ in 0..RECORDS / 1_000 {
        producer.write_messages(&batch).await.unwrap();
    }

    let config = FetchConfig {
        // About 2,000 records per fetch, so the count covers several
        // fetches (tansu honours max_bytes, not max_partition_bytes).
        max_partition_bytes: 256 << 10,
        max_bytes: 256 << 10,
        ..Default::default()
    };
    let mut fetcher = Fetcher::new(transport, config);
    fetcher.assign(vec![(
        TopicPartition::new(topic.as_str(), 0),
        StartOffset::Offset(0),
    )]);
    // The first message pays for connections and the first fetch.
    let first = tokio::time::timeout(Duration::from_secs(10), fetcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.offset, 0);

    let before = allocations();
    let read = async {
        let mut bytes = 0;
        for _ in 1..RECORDS {
            bytes += fetcher.next().await.unwrap().value_bytes().len();
        }
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("every record within 30 s");
    let allocated = allocations() - before;

    assert_eq!(bytes, (RECORDS - 1) * 100);
    let fetches = fetcher.stats().fetches;
    eprintln!("{allocated} allocations for {RECORDS} records in {fetches} fetches");
    assert!(fetches >= 3, "the window covers several fetches: {fetches}");
    assert!(
        allocated < (RECORDS / 20) as u64,
        "{allocated} allocations for {RECORDS} records ({fetches} fetches)"
    );
}
