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
//! [`SeccompFilter::check_chain`] checks, with fault-safe reads, every live
//! filter chain before it is trusted (at load time and at `REGISTER`).

use kernel::bindings;

pub(crate) use crate::arch::{COMPAT_NR, NATIVE_NR};

const LONG_BITS: usize = core::mem::size_of::<kernel::ffi::c_ulong>() * 8;
/// `BITS_TO_LONGS(NATIVE_NR)`.
pub(crate) const NATIVE_WORDS: usize = NATIVE_NR.div_ceil(LONG_BITS);
/// `BITS_TO_LONGS(COMPAT_NR)`.
pub(crate) const COMPAT_WORDS: usize = COMPAT_NR.div_ceil(LONG_BITS);

/// `struct action_cache` (kernel/seccomp.c), with `SECCOMP_ARCH_COMPAT`
/// (sizes per architecture: arch.rs).
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

// The layout the mirror was written for (x86_64 and arm64, 473 native and
// 473 compat syscall slots each in 7.3.4).  A kernel with other numbers needs a new look at
// kernel/seccomp.c before this module is trusted with it.
const _: () = assert!(core::mem::offset_of!(SeccompFilter, cache) == 16);
const _: () = assert!(core::mem::size_of::<ActionCache>() == 8 * (NATIVE_WORDS + COMPAT_WORDS));
const _: () = assert!(core::mem::offset_of!(SeccompFilter, prog) == 16 + 8 * (NATIVE_WORDS + COMPAT_WORDS) + 8);
const _: () = assert!(core::mem::offset_of!(SockFprogKern, filter) == 8);

// Exported by mm/maccess.c; declared here so the module does not depend on
// which headers the kernel crate's bindings include.
extern "C" {
    fn copy_from_kernel_nofault(dst: *mut core::ffi::c_void, src: *const core::ffi::c_void, size: usize) -> isize;
}

/// Plain data that any bit pattern makes valid (integers and raw pointers),
/// the only types [`peek`] may read.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes is a valid `Self`.
unsafe trait Plain: Copy {}
// SAFETY: integers and raw pointers accept every bit pattern.
unsafe impl Plain for i32 {}
// SAFETY: as above.
unsafe impl Plain for u16 {}
// SAFETY: as above.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl<T> Plain for *mut T {}
// SAFETY: as above.
unsafe impl<T> Plain for *const T {}

/// `refs` and `users` of a `struct seccomp_filter` (two `refcount_t`, one
/// `atomic_t` each, next to each other at the start of the struct), read
/// together.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Counts {
    refs: i32,
    users: i32,
}
// SAFETY: two integers, no padding (8 bytes, aligned like the filter,
// which is allocated by kzalloc): every bit pattern is valid.
unsafe impl Plain for Counts {}
const _: () = assert!(core::mem::offset_of!(SeccompFilter, users) == 4 && core::mem::size_of::<Counts>() == 8);

/// Reads a `T` at kernel address `src` without ever faulting: a wrong
/// address gives `None` or garbage, never an oops.  A `T` of 8 bytes or less
/// is read with a single load on x86_64 and arm64 (`copy_from_kernel_nofault()`
/// copies 8 bytes at a time where unaligned access is cheap), so it is one
/// snapshot of memory that other CPUs write.  Used to check that
/// kernel memory reads like the mirror before the mirror is trusted.
fn peek<T: Plain>(src: *const T) -> Option<T> {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `v` is writable for `size_of::<T>()` bytes; the source is read
    // with page faults disabled and fault fixups, whatever `src` is.
    let r = unsafe { copy_from_kernel_nofault(v.as_mut_ptr().cast(), src.cast(), core::mem::size_of::<T>()) };
    // SAFETY: on success all bytes were written, and `T: Plain` accepts them.
    (r == 0).then(|| unsafe { v.assume_init() })
}

/// `base + offset_of!(S, field)` as a `*const T`, with wrapping arithmetic:
/// the base may be garbage, the address is only ever read through [`peek`].
macro_rules! field {
    ($base:expr, $S:ty, $($f:tt).+ => $T:ty) => {
        ($base as *const u8).wrapping_add(core::mem::offset_of!($S, $($f).+)).cast::<$T>()
    };
}

impl SeccompFilter {
    /// Checks, with fault-safe reads only, that the chain starting at `top`
    /// reads through this mirror like a chain of exactly `count` seccomp
    /// filters: sane reference counts, `prev` links that end after `count`
    /// filters, and a classic program behind each `prog` that ends in a
    /// return.  A kernel whose `struct seccomp_filter` differs from the
    /// mirror (another config, a patched kernel) fails here instead of being
    /// written to.  Returns what did not match.
    ///
    /// Nothing is dereferenced directly, so any `top` is safe to pass; the
    /// answer means something only while the chain stays attached (the
    /// task's siglock is held, or the caller holds a reference on `top`).
    pub(crate) fn check_chain(top: *const SeccompFilter, count: i32) -> Result<(), &'static str> {
        let mut f = top;
        let mut n = 0;
        while !f.is_null() {
            n += 1;
            if n > count {
                return Err("the prev chain is longer than the task's filter_count");
            }
            check_one(f)?;
            f = peek(field!(f, SeccompFilter, prev => *mut SeccompFilter)).ok_or("prev is unreadable")?;
        }
        if n != count {
            return Err("the prev chain is shorter than the task's filter_count");
        }
        Ok(())
    }
}

/// One filter of [`SeccompFilter::check_chain`], read only through [`peek`].
fn check_one(f: *const SeccompFilter) -> Result<(), &'static str> {
    // Both counts in one read: a fork takes `refs` then `users`, a release
    // drops `users` then `refs`, so `users <= refs` holds at every instant,
    // but not between two reads with a fork or release in between.
    let counts = peek(field!(f, SeccompFilter, refs => Counts)).ok_or("refs/users are unreadable")?;
    let (refs, users) = (counts.refs, counts.users);
    if refs < 1 || users < 0 || users > refs {
        return Err("refs/users are not reference counts");
    }
    let prog = peek(field!(f, SeccompFilter, prog => *mut bindings::bpf_prog)).ok_or("prog is unreadable")?;
    let here = f as usize;
    // Wrapping: `f` may be garbage near the top of the address space.
    if prog.is_null() || (prog as usize >= here && (prog as usize) < here.wrapping_add(1024)) {
        return Err("prog does not point to a program");
    }
    let len = peek(field!(prog, bindings::bpf_prog, len => u32)).ok_or("prog->len is unreadable")?;
    let orig = peek(field!(prog, bindings::bpf_prog, orig_prog => *mut SockFprogKern)).ok_or("prog->orig_prog is unreadable")?;
    if orig.is_null() {
        return Err("prog has no original classic program");
    }
    let olen = peek(field!(orig, SockFprogKern, len => u16)).ok_or("orig_prog->len is unreadable")?;
    let insns =
        peek(field!(orig, SockFprogKern, filter => *mut bindings::sock_filter)).ok_or("orig_prog->filter is unreadable")?;
    if olen == 0 || u32::from(olen) > crate::abi::MAX_PROG_LEN || insns.is_null() || len < u32::from(olen) {
        return Err("the program's lengths are not a seccomp program's");
    }
    let last = insns.wrapping_add(usize::from(olen) - 1);
    let code = peek(field!(last, bindings::sock_filter, code => u16)).ok_or("the last instruction is unreadable")?;
    if code & 0x07 != 0x06 {
        return Err("the classic program does not end in a return");
    }
    Ok(())
}
