// SPDX-License-Identifier: GPL-2.0

//! Mirrors of kernel structures that bindgen cannot see.
//!
//! `struct seccomp_filter` is private to `kernel/seccomp.c` and
//! `struct sock_fprog_kern` lives in `include/linux/filter.h`, which the
//! kernel crate's bindings do not include.  Both are mirrored here, as of
//! **Linux 7.3.4** (Debian `linux-source-7.3` 7.3.4-1~bpo13+1), and only as
//! far as speaker needs them: the prefix of `struct seccomp_filter` up to
//! `prog`.
//!
//! `speaker-kmod/check-mirror` (run by `scripts/build-module` before every
//! build) fails the build when the text of either definition in the kernel
//! source differs from the one this file was written against; at run time,
//! [`SeccompFilter::looks_sane`] checks a live filter before it is trusted.

use kernel::bindings;

/// Bits of the native (x86_64) action cache: `SECCOMP_ARCH_NATIVE_NR`, which
/// is `NR_syscalls`.
pub(crate) const NATIVE_NR: usize = bindings::__NR_syscalls as usize;
/// Bits of the compat (i386) action cache: `SECCOMP_ARCH_COMPAT_NR`, which
/// is `IA32_NR_syscalls` (the kernel is built with `CONFIG_IA32_EMULATION`).
pub(crate) const COMPAT_NR: usize = bindings::IA32_NR_syscalls as usize;

const LONG_BITS: usize = core::mem::size_of::<kernel::ffi::c_ulong>() * 8;
/// `BITS_TO_LONGS(NATIVE_NR)`.
pub(crate) const NATIVE_WORDS: usize = NATIVE_NR.div_ceil(LONG_BITS);
/// `BITS_TO_LONGS(COMPAT_NR)`.
pub(crate) const COMPAT_WORDS: usize = COMPAT_NR.div_ceil(LONG_BITS);

/// `struct action_cache` (kernel/seccomp.c), with `SECCOMP_ARCH_COMPAT`.
#[repr(C)]
pub(crate) struct ActionCache {
    pub(crate) allow_native: [kernel::ffi::c_ulong; NATIVE_WORDS],
    pub(crate) allow_compat: [kernel::ffi::c_ulong; COMPAT_WORDS],
}

/// Prefix of `struct seccomp_filter` (kernel/seccomp.c, Linux 7.3.4):
///
/// ```c
/// struct seccomp_filter {
///     refcount_t refs;
///     refcount_t users;
///     bool log;
///     bool wait_killable_recv;
///     struct action_cache cache;
///     struct seccomp_filter *prev;
///     struct bpf_prog *prog;
///     struct notification *notif;      /* not mirrored */
///     struct mutex notify_lock;        /* not mirrored */
///     wait_queue_head_t wqh;           /* not mirrored */
/// };
/// ```
///
/// Only pointers to it are ever used; it is never created or moved by Rust.
#[repr(C)]
pub(crate) struct SeccompFilter {
    pub(crate) refs: bindings::refcount_t,
    pub(crate) users: bindings::refcount_t,
    pub(crate) log: bool,
    pub(crate) wait_killable_recv: bool,
    pub(crate) cache: ActionCache,
    pub(crate) prev: *mut SeccompFilter,
    pub(crate) prog: *mut bindings::bpf_prog,
}

/// `struct sock_fprog_kern` (include/linux/filter.h, Linux 7.3.4):
/// `{ u16 len; struct sock_filter *filter; }`.
#[repr(C)]
pub(crate) struct SockFprogKern {
    pub(crate) len: u16,
    pub(crate) filter: *mut bindings::sock_filter,
}

// The layout the mirror was written for (x86_64, 473 native and 473 compat
// syscall slots in 7.3.4).  A kernel with other numbers needs a new look at
// kernel/seccomp.c before this module is trusted with it.
const _: () = assert!(core::mem::offset_of!(SeccompFilter, cache) == 16);
const _: () = assert!(core::mem::size_of::<ActionCache>() == 8 * (NATIVE_WORDS + COMPAT_WORDS));
const _: () = assert!(core::mem::offset_of!(SeccompFilter, prog) == 16 + 8 * (NATIVE_WORDS + COMPAT_WORDS) + 8);
const _: () = assert!(core::mem::offset_of!(SockFprogKern, filter) == 8);

impl SeccompFilter {
    /// Checks that a live filter reads like one through this mirror.
    ///
    /// # Safety
    ///
    /// `f` must point to a live `struct seccomp_filter` (the caller holds a
    /// reference or the lock that keeps it attached).
    pub(crate) unsafe fn looks_sane(f: *const SeccompFilter) -> bool {
        // SAFETY: `f` is live by the function's contract; `refs` and `users`
        // are `refcount_t`, read atomically like `refcount_read()` does.
        let (refs, users, prog) = unsafe {
            (
                bindings::atomic_read(&raw const (*f).refs.refs),
                bindings::atomic_read(&raw const (*f).users.refs),
                (*f).prog,
            )
        };
        if refs < 1 || users < 0 || users > refs || prog.is_null() {
            return false;
        }
        // SAFETY: a live filter owns its `prog`; seccomp creates it with
        // `save_orig` on x86, so `orig_prog` is the classic program, which
        // the classic checker guarantees to end in a return.
        unsafe {
            let orig = (*prog).orig_prog.cast::<SockFprogKern>();
            if orig.is_null() || (*orig).filter.is_null() || (*orig).len == 0 || (*orig).len > 4096 {
                return false;
            }
            let last = &*(*orig).filter.add((*orig).len as usize - 1);
            last.code & 0x07 == 0x06 /* BPF_RET */
        }
    }
}
