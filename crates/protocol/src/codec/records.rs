//! Record sets (the `records` fields of Produce and Fetch), which may be
//! written by reference. Inside [`by_reference`], a record set of at least
//! [`BY_REFERENCE`] bytes is not copied into the buffer: its length prefix
//! is written, and the set is noted with the position it belongs at, so
//! that the frame goes out as a list of chunks in one vectored write
//! (`frame::encode_request_chunks`). Elsewhere it is copied, as any bytes.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};

use super::write::write_length;
use crate::EncodeError;

/// Record sets this large or larger are written by reference.
pub const BY_REFERENCE: usize = 16 * 1024;

thread_local! {
    /// While [`by_reference`] runs: the record sets left out, each with
    /// the buffer position it belongs at.
    static LEFT_OUT: RefCell<Option<Vec<(usize, Bytes)>>> = const { RefCell::new(None) };
}

/// Writes a nullable record set.
pub fn write_nullable_records(
    buf: &mut BytesMut,
    v: Option<&Bytes>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_length(buf, v.map(Bytes::len), compact, true, what)?;
    if let Some(records) = v {
        put_records(buf, records);
    }
    Ok(())
}

/// Writes a non-nullable record set.
pub fn write_records(
    buf: &mut BytesMut,
    v: &Bytes,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_records(buf, Some(v), compact, what)
}

fn put_records(buf: &mut BytesMut, records: &Bytes) {
    let left_out = records.len() >= BY_REFERENCE
        && LEFT_OUT.with(|cell| match cell.borrow_mut().as_mut() {
            Some(list) => {
                list.push((buf.len(), records.clone()));
                true
            }
            None => false,
        });
    if !left_out {
        buf.put_slice(records);
    }
}

/// Runs `encode` (which writes into one buffer) with large record sets
/// left out of that buffer; returns its result and the sets left out,
/// each with the buffer position it belongs at, in order.
pub(crate) fn by_reference<T>(encode: impl FnOnce() -> T) -> (T, Vec<(usize, Bytes)>) {
    /// Ends the window even if `encode` panics.
    struct Window;
    impl Drop for Window {
        fn drop(&mut self) {
            LEFT_OUT.with(|cell| cell.borrow_mut().take());
        }
    }
    LEFT_OUT.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
    let window = Window;
    let out = encode();
    let left_out = LEFT_OUT.with(|cell| cell.borrow_mut().take().unwrap_or_default());
    drop(window);
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_sets_are_left_out_only_inside_the_window() {
        let large = Bytes::from(vec![7u8; BY_REFERENCE]);
        let small = Bytes::from_static(b"abc");
        let mut copied = BytesMut::new();
        write_nullable_records(&mut copied, Some(&large), false, "r").unwrap();
        assert_eq!(copied.len(), 4 + BY_REFERENCE, "copied outside the window");

        let mut buf = BytesMut::new();
        let (result, left_out) = by_reference(|| {
            write_nullable_records(&mut buf, Some(&small), true, "r")?;
            write_records(&mut buf, &large, true, "r")?;
            write_nullable_records(&mut buf, None, true, "r")
        });
        result.unwrap();
        // Small: prefix + 3 bytes; large: a 3-byte varint prefix; null: 1.
        assert_eq!(buf.len(), 1 + 3 + 3 + 1);
        assert_eq!(left_out.len(), 1);
        assert_eq!(left_out[0].0, 1 + 3 + 3);
        assert_eq!(left_out[0].1.as_ptr(), large.as_ptr(), "not copied");
        // The window is closed again.
        let mut after = BytesMut::new();
        write_records(&mut after, &large, false, "r").unwrap();
        assert_eq!(after.len(), 4 + BY_REFERENCE);
    }
}
