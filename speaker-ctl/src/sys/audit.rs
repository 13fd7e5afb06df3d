//! The kernel's audit records as they happen, through the audit netlink
//! socket's read-only multicast group (`AUDIT_NLGRP_READLOG`, Linux 3.16+,
//! needs `CAP_AUDIT_READ`).
//!
//! Why not only `/dev/kmsg`: without an audit daemon the kernel prints
//! audit records to its log through `printk_ratelimit()` (10 records per
//! 5 s by default), so a burst of denials loses all but the first few
//! there; with an audit daemon they do not reach the kernel log at all.
//! The multicast group gets every record in both cases, unthrottled.
use super::poll::wait_readable;
use nix::errno::Errno;
use nix::sys::socket::{bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// `AUDIT_NLGRP_READLOG` (include/uapi/linux/audit.h).
const AUDIT_NLGRP_READLOG: u32 = 1;
/// The bind mask of that group (bit N-1 for group N).
const READLOG_GROUPS: u32 = 1 << (AUDIT_NLGRP_READLOG - 1);
/// `struct nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
const NLMSG_HDRLEN: usize = 16;

/// A subscription to the audit records the kernel emits from now on.
pub struct AuditLog {
    fd: OwnedFd,
    pending: std::collections::VecDeque<String>,
}

impl AuditLog {
    /// Subscribes (fails without `CAP_AUDIT_READ`, or on a kernel without
    /// audit).
    pub fn open() -> io::Result<AuditLog> {
        let fd =
            socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, SockProtocol::NetlinkAudit)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, READLOG_GROUPS))?;
        Ok(AuditLog { fd, pending: Default::default() })
    }

    /// The descriptor to poll for new records.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next record as the kernel log would print it (`type=N
    /// audit(…): …`); `None` if nothing came within `wait` (`None`: do not
    /// wait).
    pub fn next_record(&mut self, wait: Option<Duration>) -> io::Result<Option<String>> {
        let mut buf = vec![0u8; 16384];
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Ok(Some(line));
            }
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => self.pending.extend(messages(&buf[..n])),
                Err(Errno::EINTR) => continue,
                // The socket's buffer overflowed: records were lost, the
                // next ones still come.
                Err(Errno::ENOBUFS) => continue,
                Err(Errno::EAGAIN) => {
                    let Some(wait) = wait else { return Ok(None) };
                    if !wait_readable(&[self.fd.as_fd()], wait)? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The netlink messages of one datagram, each as `type=TYPE TEXT`.
fn messages(mut data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < NLMSG_HDRLEN || len > data.len() {
            // The kernel's audit messages may carry a length that counts
            // only the header: take the rest of the datagram as the text.
            out.push(line(kind, &data[NLMSG_HDRLEN..]));
            break;
        }
        out.push(line(kind, &data[NLMSG_HDRLEN..len]));
        // Messages are aligned to 4 bytes.
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

fn line(kind: u16, text: &[u8]) -> String {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    format!("type={kind} {}", String::from_utf8_lossy(&text[..end]).trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, text: &str) -> Vec<u8> {
        let len = NLMSG_HDRLEN + text.len();
        let mut v = Vec::new();
        v.extend((len as u32).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend(0u16.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend(text.as_bytes());
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn records_read_as_the_kernel_log_prints_them() {
        let text = "audit(1700000000.123:46): pid=9 comm=\"a\" sig=0 arch=c000003e syscall=165 compat=0 ip=0x1 code=0x50001";
        let mut two = msg(1326, text);
        two.extend(msg(1300, "audit(1.2:3): x"));
        let got = messages(&two);
        assert_eq!(got, vec![format!("type=1326 {text}"), "type=1300 audit(1.2:3): x".to_string()]);
    }

    #[test]
    fn truncated_or_short_datagrams_do_not_panic() {
        assert!(messages(&[1, 2, 3]).is_empty());
        let mut m = msg(1326, "audit(1.2:3): pid=1");
        m[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&m).len(), 1);
    }
}
