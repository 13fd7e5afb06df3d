//! Reading the kernel log through `/dev/kmsg`: one record per `read`,
//! `PRIO,SEQ,MONOTONIC_US,FLAGS;MESSAGE` followed by continuation lines.
use super::poll::wait_readable;
use nix::errno::Errno;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

/// An open `/dev/kmsg`, positioned at the oldest record still buffered.
pub struct Kmsg {
    fd: std::fs::File,
}

impl Kmsg {
    pub fn open() -> io::Result<Kmsg> {
        let fd = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg")?;
        Ok(Kmsg { fd })
    }

    /// The descriptor to poll for new records.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next record's first line; `None` once the buffer is drained
    /// (`wait: None`) or nothing came within `wait`.
    pub fn next_record(&mut self, wait: Option<Duration>) -> io::Result<Option<String>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    return Ok(Some(text.lines().next().unwrap_or("").to_string()));
                }
                // Records were overwritten before we read them: go on with
                // the oldest one left.
                Err(Errno::EPIPE) | Err(Errno::EINTR) => continue,
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
