//! Installing a compiled program as the calling thread's seccomp filter.
use std::io;

use crate::profile::SockFilter;

/// `SECCOMP_FILTER_FLAG_LOG`: the kernel reports every syscall the filter
/// does not allow (audit `type=1326`), whatever the action; the flag stays
/// with the filter when speaker.ko replaces its program.
pub const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = 2;

/// Installs `prog` on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER,
/// SECCOMP_FILTER_FLAG_LOG)`; nix has no wrapper for seccomp(2)).  The caller needs CAP_SYS_ADMIN or
/// no_new_privs.  Async-signal-safe (it is called between fork and exec).
pub fn install(prog: &[SockFilter]) -> io::Result<()> {
    install_with(prog, SECCOMP_FILTER_FLAG_LOG)
}

/// Like [`install`], with seccomp(2) flags `flags` (the tracer's trap
/// filter takes none: its traps are not denials).
pub fn install_with(prog: &[SockFilter], flags: libc::c_ulong) -> io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `prog`, which outlives the call; the kernel
    // copies the program.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &fprog)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
