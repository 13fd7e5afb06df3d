//! seccomp user notification at the system-call level: installing a filter
//! with a listener, receiving notifications and answering them.  nix has no
//! wrapper for seccomp(2) or these ioctls; every `unsafe` of the notify
//! engine is in this file.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::profile::SockFilter;

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: seccomp(2) returns a listener fd.
pub const FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19): once the
/// supervisor has received a notification, the waiting task is woken only
/// by a fatal signal (no restart of the syscall, and of its notification,
/// on every signal).
pub const FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: let the syscall run.
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Notification {
    pub id: u64,
    /// The task, in the listener's (the supervisor's) PID namespace.
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Response {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const _: () = assert!(std::mem::size_of::<SeccompData>() == 64);
const _: () = assert!(std::mem::size_of::<Notification>() == 80);
const _: () = assert!(std::mem::size_of::<Response>() == 24);

nix::ioctl_readwrite!(ioctl_notif_recv, b'!', 0, Notification);
nix::ioctl_readwrite!(ioctl_notif_send, b'!', 1, Response);

/// Installs `prog` on the calling thread with `flags` |
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` and returns the listener.  The caller
/// needs CAP_SYS_ADMIN or no_new_privs.
pub fn install_with_listener(prog: &[SockFilter], flags: libc::c_ulong) -> io::Result<OwnedFd> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `prog`, which outlives the call (the kernel
    // copies the program); SockFilter has sock_filter's layout.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags | FLAG_NEW_LISTENER, &fprog)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: with NEW_LISTENER, seccomp(2) returns a new file descriptor
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Waits for the next notification on `listener`.  `ENOENT`: the task
/// went away (or was interrupted) before it could be handed over; try
/// again.
pub fn receive(listener: BorrowedFd<'_>) -> nix::Result<Notification> {
    // The kernel wants the buffer zeroed.
    let mut n = Notification::default();
    // SAFETY: `n` is a valid, writable `struct seccomp_notif` of the size
    // the ioctl number encodes.
    unsafe { ioctl_notif_recv(listener.as_raw_fd(), &mut n) }?;
    Ok(n)
}

/// Lets the notified syscall `id` run (`errno` `None`) or fails it with
/// `errno`.  `ENOENT`: the task is gone or was interrupted meanwhile.
pub fn respond(listener: BorrowedFd<'_>, id: u64, errno: Option<u16>) -> nix::Result<()> {
    let mut r = match errno {
        None => Response { id, val: 0, error: 0, flags: USER_NOTIF_FLAG_CONTINUE },
        Some(e) => Response { id, val: 0, error: -i32::from(e), flags: 0 },
    };
    // SAFETY: `r` is a valid `struct seccomp_notif_resp` of the size the
    // ioctl number encodes; the kernel only reads it.
    unsafe { ioctl_notif_send(listener.as_raw_fd(), &mut r) }?;
    Ok(())
}

/// A duplicate of file descriptor `fd` of process `pid` (`pidfd_getfd`,
/// Linux 5.6; needs ptrace access to `pid`).
pub fn take_fd(pid: i32, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no memory.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd_open returned a new descriptor nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes descriptors and flags, no memory.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd_getfd returned a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(got as RawFd) })
}

/// Receives one descriptor (SCM_RIGHTS) from `conn`, with the bytes sent
/// beside it (crun sends the OCI container state JSON; ignored); extra
/// descriptors are closed.
pub fn receive_fd(conn: &std::os::unix::net::UnixStream) -> io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(r) = c {
            fds.extend(r);
        }
    }
    // SAFETY: SCM_RIGHTS gave this process new descriptors that nothing
    // else owns.
    let mut owned: Vec<OwnedFd> = fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }).collect();
    if owned.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the peer sent no descriptor"));
    }
    Ok(owned.swap_remove(0))
}

/// Whether this kernel has `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
/// (Linux 5.19 or later, by its release).
pub fn kernel_has_wait_killable() -> bool {
    nix::sys::utsname::uname().ok().and_then(|u| u.release().to_str().map(release_has_wait_killable)).unwrap_or(false)
}

fn release_has_wait_killable(release: &str) -> bool {
    let mut it = release.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (5, 19)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_killable_from_5_19() {
        assert!(release_has_wait_killable("6.1.0-50-amd64"));
        assert!(release_has_wait_killable("5.19.0"));
        assert!(!release_has_wait_killable("5.15.0-91-generic"));
        assert!(!release_has_wait_killable("5.10.0-28-amd64"));
        assert!(release_has_wait_killable("7.3.4+deb13-amd64"));
    }
}
