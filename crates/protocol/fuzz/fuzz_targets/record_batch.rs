//! A fetch response's `records` bytes: every batch (magic 0, 1 and 2,
//! compressed or not, nested legacy wrappers), every record, every header,
//! control records.
//!
//! Input: the record set itself, as in a Fetch response or `batch_*.bin`.
//! CRCs are checked in one pass (batch headers only) and skipped in the
//! other, so that mutated batches still reach the record parser.
//! Properties: a batch whose records all decode has `recordsCount` records;
//! header iteration yields exactly `len()` headers; magic-2 records
//! re-encode (with `RecordBatchBuilder`) to the same records;
//! `RecordSet::records` agrees with walking the batches.
#![no_main]

use bytes::Bytes;
use kafkit_protocol::records::{DecodeOptions, RecordSet};
use kafkit_protocol_fuzz::{DECOMPRESSED_LIMIT, walk_set};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    let opts = DecodeOptions::new()
        .with_decompressed_limit(DECOMPRESSED_LIMIT)
        .with_max_nesting(3);

    // With CRC checks, as a consumer with check.crcs decodes.
    let checked = RecordSet::with_options(data.clone(), opts);
    for batch in checked.batches() {
        if batch.is_err() {
            break;
        }
    }

    // Without, so that the fuzzer gets past the CRCs to the records.
    let set = RecordSet::with_options(data, opts.with_verify_crc(false));
    let (records, ok) = walk_set(&set);

    // The flattened iterator yields the same records (control ones included).
    let mut flat = set.records().include_control(true);
    let mut n = 0;
    let mut failed = false;
    for r in flat.by_ref() {
        match r {
            Ok(r) => {
                assert_eq!(
                    Some(&r),
                    records.get(n),
                    "records() and batches() disagree at record {n}"
                );
                n += 1;
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert_eq!(
        (n, failed),
        (records.len(), !ok),
        "records() and batches() end differently"
    );
    let _ = flat.truncated_tail();
    // Data records only (the default).
    for r in set.records() {
        if r.is_err() {
            break;
        }
    }
});
