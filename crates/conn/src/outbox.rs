//! The bytes a connection has queued for its socket, in order. Small
//! request frames are copied into one buffer, so a burst of them leaves in
//! one write; a large frame (a produce request, say) is queued as it is,
//! without a copy, and goes out with the rest in one vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A frame this large or larger is queued by reference, not copied.
const BY_REFERENCE: usize = 16 * 1024;
/// The most slices one vectored write hands the socket.
const MAX_SLICES: usize = 64;

/// Bytes waiting for the socket.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Frames (or coalesced runs of small frames) ahead of `tail`.
    chunks: VecDeque<Bytes>,
    /// Small frames queued after the last chunk, coalesced.
    tail: BytesMut,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    /// Queues `frame` after everything queued before it.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.len() < BY_REFERENCE {
            self.tail.extend_from_slice(&frame);
            return;
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.chunks.push_back(frame);
    }

    /// Writes some of the queued bytes (one write, vectored when there are
    /// several chunks); returns how many left. Cancel safe: bytes leave the
    /// queue only once the socket took them.
    pub(crate) async fn write_to<W>(&mut self, writer: &mut W) -> std::io::Result<usize>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let n = if self.chunks.is_empty() {
            writer.write(&self.tail).await?
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES + 1];
            let mut count = 0;
            for chunk in self.chunks.iter().take(MAX_SLICES) {
                slices[count] = IoSlice::new(chunk);
                count += 1;
            }
            if count < MAX_SLICES && !self.tail.is_empty() {
                slices[count] = IoSlice::new(&self.tail);
                count += 1;
            }
            writer.write_vectored(&slices[..count]).await?
        };
        self.advance(n);
        Ok(n)
    }

    /// Drops the first `n` queued bytes.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail.advance(n);
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per write.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn frame(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    #[tokio::test]
    async fn frames_leave_in_order_whatever_their_size_and_the_writes() {
        let frames = [
            frame(1, 10),
            frame(2, BY_REFERENCE),
            frame(3, 7),
            frame(4, 5),
            frame(5, BY_REFERENCE * 3 + 1),
            frame(6, 1),
        ];
        for limit in [1, 3, 1000, BY_REFERENCE + 5, usize::MAX] {
            let mut outbox = Outbox::default();
            let mut want = Vec::new();
            for f in &frames {
                outbox.push(f.clone());
                want.extend_from_slice(f);
            }
            let mut w = Trickle {
                got: Vec::new(),
                limit,
            };
            while !outbox.is_empty() {
                let n = outbox.write_to(&mut w).await.unwrap();
                assert!(n > 0);
            }
            assert_eq!(w.got, want, "limit {limit}");
        }
    }

    #[test]
    fn large_frames_are_queued_by_reference_and_small_ones_coalesced() {
        let mut outbox = Outbox::default();
        let large = frame(9, BY_REFERENCE);
        outbox.push(frame(1, 3));
        outbox.push(frame(2, 4));
        assert!(outbox.chunks.is_empty());
        assert_eq!(outbox.tail.len(), 7);
        outbox.push(large.clone());
        assert_eq!(outbox.chunks.len(), 2);
        assert_eq!(outbox.chunks[1].as_ptr(), large.as_ptr(), "not copied");
        assert!(outbox.tail.is_empty());
    }
}
