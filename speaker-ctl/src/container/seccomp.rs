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

/// speaker's mark (`abi::SPEAKER_MARK_CODE`, `abi::SPEAKER_MARK_K`): a
/// no-op first instruction.  speaker.ko's REGISTER takes the filter of a
/// task outside a PID namespace only if it bears the mark, so that a host
/// process's own sandbox can never be registered and loosened.
pub const MARK: SockFilter = SockFilter { code: crate::abi::SPEAKER_MARK_CODE, jt: 0, jf: 0, k: crate::abi::SPEAKER_MARK_K };

/// Most instructions seccomp takes in one program (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;

/// Like [`install`], with seccomp(2) flags `flags` (the tracer's trap
/// filter takes none: its traps are not denials).  The program is
/// installed with speaker's [`MARK`] in front (unless it has it already):
/// every filter speaker installs is one REGISTER takes.
pub fn install_with(prog: &[SockFilter], flags: libc::c_ulong) -> io::Result<()> {
    // On the stack, not the heap: this runs between fork and exec.
    let mut buf = [MARK; MAX_INSNS + 1];
    let marked: &[SockFilter] = if prog.first() == Some(&MARK) {
        prog
    } else if prog.len() < MAX_INSNS {
        buf[1..=prog.len()].copy_from_slice(prog);
        &buf[..=prog.len()]
    } else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let fprog = libc::sock_fprog { len: marked.len() as u16, filter: marked.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `fprog` points to `marked`, which outlives the call; the
    // kernel copies the program.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &fprog)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
