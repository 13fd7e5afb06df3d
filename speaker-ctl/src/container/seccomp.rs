//! Installing a compiled program as the calling thread's seccomp filter,
//! and reading a task's seccomp state from /proc.
use std::io;

use crate::profile::SockFilter;

/// Installs `prog` on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`).
/// The caller needs CAP_SYS_ADMIN or no_new_privs.  Async-signal-safe (it
/// is called between fork and exec).
pub fn install(prog: &[SockFilter]) -> io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `prog`, which outlives the call; the kernel
    // copies the program.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &fprog) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `Seccomp_filters:` of `/proc/PID/status`: how many filters the task has.
pub fn filter_count(pid: i32) -> io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/status has no Seccomp_filters line")))
}

/// Serialises a program as raw `struct sock_filter` bytes (native endian).
pub fn to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}
