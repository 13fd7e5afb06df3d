//! Waiting for descriptors to become readable.
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// Waits up to `wait` (at most about 65 s) for one of `fds` to be
/// readable: `false` if none became so in time; `true` if one did, or a
/// signal interrupted the wait (the caller reads, and finds out).
pub fn wait_readable(fds: &[BorrowedFd<'_>], wait: Duration) -> io::Result<bool> {
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    let mut polled: Vec<PollFd> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
    match poll(&mut polled, PollTimeout::from(ms)) {
        Ok(0) => Ok(false),
        Ok(_) | Err(Errno::EINTR) => Ok(true),
        Err(e) => Err(e.into()),
    }
}
