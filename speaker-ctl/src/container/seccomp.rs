//! Installing a compiled program as the calling thread's seccomp filter.
use std::io;

use crate::profile::SockFilter;

/// Installs `prog` on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`;
/// nix has no wrapper for seccomp(2)).  The caller needs CAP_SYS_ADMIN or
/// no_new_privs.  Async-signal-safe (it is called between fork and exec).
pub fn install(prog: &[SockFilter]) -> io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `prog`, which outlives the call; the kernel
    // copies the program.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &fprog)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
