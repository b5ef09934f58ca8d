//! The consume path allocates nothing per record.
//!
//! A counting global allocator wraps the system one; iterating every record
//! of an uncompressed batch (key, value and every header) must not touch it.
//! This is the one place in the workspace that needs `unsafe`: implementing
//! `GlobalAlloc` is an unsafe trait by definition.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use kafkit_protocol::records::{RecordBatchBuilder, RecordSet};

thread_local! {
    // Per thread, so allocations by the test harness's other threads don't count.
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

/// 10,000 records of 100-byte values with a key and one header, in one batch.
fn batch_of_100_byte_records() -> Bytes {
    let mut builder = RecordBatchBuilder::new(0);
    let value = [0x5au8; 100];
    for i in 0..10_000i64 {
        let key = i.to_be_bytes();
        builder
            .append(
                1_700_000_000_000 + i,
                Some(&key),
                Some(&value),
                &[("trace-id", Some(b"abc"))],
            )
            .expect("append");
    }
    // Copy into a shared `Bytes` so the first slice's promotion from a
    // unique buffer to a shared one happens here, not inside the loop.
    let bytes = builder.finish().expect("finish");
    let shared = bytes.clone();
    drop(bytes);
    shared
}

#[test]
fn iterating_an_uncompressed_batch_allocates_nothing_per_record() {
    let set = RecordSet::new(batch_of_100_byte_records());
    let before = allocations();
    let mut records = 0u64;
    let mut checksum = 0u64;
    for record in set.records() {
        let record = record.expect("valid record");
        records += 1;
        checksum += record.value.as_ref().map_or(0, |v| v.len() as u64);
        checksum += record.key.as_ref().map_or(0, |k| u64::from(k[7]));
        for header in record.headers.iter() {
            checksum += header.key.len() as u64 + header.value.map_or(0, |v| v.len() as u64);
        }
    }
    let allocated = allocations() - before;
    assert_eq!(records, 10_000);
    assert!(checksum > 10_000 * 100, "the loop really read the records");
    // A handful of allocations for the iterator state itself is tolerated;
    // one per record (10,000) or more is the regression this test catches.
    assert!(
        allocated <= 4,
        "{allocated} allocations while iterating 10,000 records"
    );
}
