//! The bytes this process has sent over TCP: per open TCP socket, what the
//! peer has acknowledged (`tcpi_bytes_acked` of `TCP_INFO`), so that what a
//! client sent between two moments counts every request once, its framing
//! included, and nothing else (no pipe, eventfd or file writes).

/// The offset of `tcpi_bytes_acked` (a u64) in Linux's `struct tcp_info`
/// (since Linux 4.1): 8 one-byte fields, 24 u32s, two u64 pacing rates.
const TCPI_BYTES_ACKED: usize = 8 + 24 * 4 + 2 * 8;

/// The acknowledged bytes of each open TCP socket of this process at one
/// moment, by the socket's inode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpSent(Vec<(u64, u64)>);

impl TcpSent {
    /// Now; `None` if /proc/self/fd cannot be read.
    pub fn take() -> Option<TcpSent> {
        let mut sockets = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Some(inode) = std::fs::read_link(entry.path()).ok().and_then(|l| {
                let l = l.to_str()?;
                l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            }) else {
                continue;
            };
            if let Some(acked) = bytes_acked(fd) {
                sockets.push((inode, acked));
            }
        }
        Some(TcpSent(sockets))
    }

    /// What was sent from `self` to `later`: each socket's growth, all of
    /// a socket's bytes if it was opened in between (less its SYN, which
    /// counts one in `tcpi_bytes_acked` of a connection this side opened).
    /// A socket closed in between is not counted (the clients keep theirs
    /// open).
    pub fn until(&self, later: &TcpSent) -> u64 {
        later
            .0
            .iter()
            .map(
                |&(inode, acked)| match self.0.iter().find(|(i, _)| *i == inode) {
                    Some(&(_, before)) => acked.saturating_sub(before),
                    None => acked.saturating_sub(1),
                },
            )
            .sum()
    }
}

/// `tcpi_bytes_acked` of descriptor `fd`, or `None` if it is not a TCP
/// socket (a Unix socket, a netlink one, or one closed meanwhile).
fn bytes_acked(fd: i32) -> Option<u64> {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`; a
    // descriptor that is not a TCP socket (or was closed) just fails.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    } == 0;
    let bytes = info.get(TCPI_BYTES_ACKED..TCPI_BYTES_ACKED + 8)?;
    (ok && len as usize >= TCPI_BYTES_ACKED + 8)
        .then(|| u64::from_ne_bytes(bytes.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;

    #[test]
    fn sent_bytes_are_counted_per_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut old = TcpStream::connect(addr).unwrap();
        let (mut old_server, _) = listener.accept().unwrap();
        old.write_all(&[1u8; 3_000]).unwrap();
        old_server.read_exact(&mut [0u8; 3_000]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = TcpSent::take().unwrap();
        // 1,000 more on the old socket, 10,000 on a new one, and a third
        // socket that comes and goes does not disturb the count.
        old.write_all(&[1u8; 1_000]).unwrap();
        old_server.read_exact(&mut [0u8; 1_000]).unwrap();
        let mut new = TcpStream::connect(addr).unwrap();
        let (mut new_server, _) = listener.accept().unwrap();
        new.write_all(&[7u8; 10_000]).unwrap();
        new_server.read_exact(&mut vec![0u8; 10_000]).unwrap();
        drop(TcpStream::connect(addr).unwrap());
        // Both ends are this process, so the servers' sockets count too
        // (they sent nothing). Acks may trail the reads a moment.
        let mut sent = 0;
        for _ in 0..100 {
            sent = start.until(&TcpSent::take().unwrap());
            if sent >= 11_000 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sent, 11_000);
    }
}
