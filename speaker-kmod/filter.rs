// SPDX-License-Identifier: GPL-2.0

//! A container's own seccomp filter, and the swap of its program.
//!
//! # How a swap stays correct
//!
//! seccomp evaluates a syscall by checking the *top* filter's action cache
//! (a bitmap of syscalls known to be allowed whatever their arguments) and,
//! on a miss, running every filter's program down the `prev` chain.  A
//! filter's cache is computed once, when it is attached, as the
//! intersection of its own constant allows and its `prev`'s cache.
//!
//! To replace the program of filter `F` with `new`:
//!
//! 1. `mask` = the syscalls `new` allows unconditionally (emulated like
//!    seccomp's `seccomp_cache_prepare()`).
//! 2. Trim (`&= mask`) the cache of `F` and of every filter stacked above
//!    `F` in any task, each under the task's siglock: after this no cache
//!    anywhere lets through a syscall `new` may deny.  Caches only ever
//!    lose bits, so a racing reader sees either the old or a smaller set.
//! 3. Publish `new` in `F->prog` (a single atomic pointer store).  A task
//!    entering seccomp afterwards runs `new`; one that loaded the old
//!    pointer just before may still be running the old program.
//! 4. Trim again: a filter stacked concurrently with step 2 may have copied
//!    a cache from below before it was trimmed; it is attached (under a
//!    siglock) by now, so the second walk sees it.
//! 5. The old program is handed back to the caller, who keeps it until the
//!    filter dies (`keep.rs` says why a grace period is not enough).
//! 6. Unless the caller asked not to wait (`SWITCH_DEFER_FREE`), the
//!    switch waits for `synchronize_rcu_tasks()` ([`wait_for_old_runs`],
//!    after the registry lock is dropped: the old program is kept, so the
//!    wait protects nothing another ioctl could free):
//!    `seccomp_run_filters()` runs programs with migration disabled but
//!    preemptible, outside any RCU read-side section.  An RCU-tasks grace
//!    period ends only after every task has voluntarily switched, returned
//!    to user space or idled, so when the switch returns no syscall can
//!    still be decided by the old program.
//!
//! Tasks forked during or after the swap share `F` with their parent, so
//! they see `new` too.  Filters below `F` (the host's or the runtime's) are
//! never written.

use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{bindings, prelude::*};

use crate::bpf::{CacheMask, OwnedProg};
use crate::mirror::{SeccompFilter, COMPAT_WORDS, NATIVE_WORDS};
use crate::tasks::for_each_thread_locked;

/// One counted reference (`refs`) on a container's seccomp filter.
///
/// # Invariants
///
/// `ptr` points to a `struct seccomp_filter` on which this value owns one
/// `refs` reference, so the filter, its program and its `prev` chain stay
/// allocated until [`Drop`].
pub(crate) struct FilterRef {
    ptr: NonNull<SeccompFilter>,
}

// SAFETY: the reference is a plain refcount; the filter is shared by design
// and every mutation of it goes through atomics or the siglock.
unsafe impl Send for FilterRef {}
// SAFETY: as above.
unsafe impl Sync for FilterRef {}

/// What a swap did.
pub(crate) struct SwapStats {
    /// Threads using the filter when the program was published.
    pub(crate) tasks: u32,
    /// Filters above the container's whose cache lost bits.
    pub(crate) filters_above: u32,
}

/// seccomp's `MAX_INSNS_PER_PATH` (kernel/seccomp.c): 256 KiB of
/// instructions per chain, counting 4 more for each filter.
const MAX_INSNS_PER_PATH: u64 = (1 << 18) / 8;

impl FilterRef {
    /// Takes a reference on `f`.
    ///
    /// # Safety
    ///
    /// `f` is live for the duration of the call (the caller holds the
    /// siglock of a task whose chain contains it).
    pub(crate) unsafe fn get(f: NonNull<SeccompFilter>) -> FilterRef {
        // SAFETY: `f` is live by contract; `refcount_inc` is what
        // `__get_seccomp_filter()` does for each new holder.
        unsafe { bindings::refcount_inc(addr_of_mut!((*f.as_ptr()).refs)) };
        // INVARIANT: we just took the reference this value owns.
        FilterRef { ptr: f }
    }

    pub(crate) fn as_ptr(&self) -> *mut SeccompFilter {
        self.ptr.as_ptr()
    }

    /// Tasks that use the filter directly or through a filter stacked on it;
    /// 0 once every task of the container has exited.
    pub(crate) fn users(&self) -> i32 {
        // SAFETY: the filter is alive by the type invariant.
        unsafe { bindings::atomic_read(addr_of!((*self.ptr.as_ptr()).users.refs)) }
    }

    /// Whether this value holds the filter's only reference: then no task,
    /// stacked filter, listener or reader has it, and none can get it.
    pub(crate) fn is_sole_holder(&self) -> bool {
        // SAFETY: the filter is alive by the type invariant.
        unsafe { bindings::atomic_read(addr_of!((*self.ptr.as_ptr()).refs.refs)) == 1 }
    }

    /// Whether a thread outside thread group `tgid` uses the filter (its
    /// chain contains it).
    pub(crate) fn shared_outside(&self, tgid: i32) -> bool {
        let me = self.as_ptr();
        let mut shared = false;
        for_each_thread_locked(|t, top| {
            // SAFETY: siglock held: the chain is attached and alive, and `t`
            // is a live task whose `tgid` never changes.
            if !shared && unsafe { chain_contains(top, me) && (*t).tgid != tgid } {
                shared = true;
            }
            false
        });
        shared
    }

    /// Checks seccomp's `MAX_INSNS_PER_PATH` for every chain through this
    /// filter as if its program had `new_len` instructions (`ENOMEM`, as
    /// `seccomp_attach_filter()` answers).
    pub(crate) fn check_path_len(&self, new_len: u32) -> Result {
        let me = self.as_ptr();
        let mut longest = 0u64;
        for_each_thread_locked(|_, top| {
            let mut total = 0u64;
            let mut g = top;
            let mut found = false;
            while !g.is_null() {
                // SAFETY: siglock held: every filter of the chain and its
                // current program are alive.
                let len = if g == me { u64::from(new_len) } else { u64::from(unsafe { (*(*g).prog).len }) };
                found |= g == me;
                total = total.saturating_add(len + 4);
                // SAFETY: as above.
                g = unsafe { (*g).prev };
            }
            if found {
                longest = longest.max(total);
            }
            false
        });
        // The top filter is counted without the 4-instruction penalty.
        if longest > MAX_INSNS_PER_PATH + 4 {
            Err(ENOMEM)
        } else {
            Ok(())
        }
    }

    /// Replaces the filter's program with `new` (see the module docs) and
    /// returns the old one, which the caller must keep until the filter
    /// dies.  A task may still be running the old program when this
    /// returns: [`wait_for_old_runs`] waits until none can.
    pub(crate) fn swap(&self, new: OwnedProg, mask: &CacheMask) -> (SwapStats, OwnedProg) {
        let me = self.as_ptr();
        // SAFETY: the filter is alive (type invariant).
        unsafe { trim(me, mask) };
        let mut trimmed = walk(me, mask).1;
        // SAFETY: `prog` is a pointer-sized, aligned field of a live filter;
        // seccomp reads it with plain loads, so a single atomic store is
        // seen whole.
        let field = unsafe { AtomicPtr::from_ptr(addr_of_mut!((*me).prog)) };
        let old = field.swap(new.into_raw(), Ordering::AcqRel);
        let (tasks, again) = walk(me, mask);
        trimmed = trimmed.saturating_add(again);
        // SAFETY: `old` was the filter's program, created by seccomp or by a
        // previous swap with `save_orig`; the filter no longer points to it,
        // so nothing else owns it; the caller keeps it until the filter dies.
        let old = unsafe { OwnedProg::from_raw(old) };
        (SwapStats { tasks, filters_above: trimmed }, old)
    }
}

/// Waits for an RCU-tasks grace period: afterwards no task is still
/// running a program that a [`FilterRef::swap`] before the call replaced.
/// Sleeps for as long as one task stays in the kernel without scheduling
/// voluntarily, so callers hold no lock others wait for.
pub(crate) fn wait_for_old_runs() {
    // SAFETY: plain sleeping call; the callers hold no spinlock.
    unsafe { bindings::synchronize_rcu_tasks() };
}

/// Trims the cache of every filter stacked above `me` in any thread.
/// Returns the threads whose chain contains `me` and the number of trims
/// that cleared bits.
fn walk(me: *mut SeccompFilter, mask: &CacheMask) -> (u32, u32) {
    let (mut tasks, mut trimmed) = (0u32, 0u32);
    for_each_thread_locked(|_, top| {
        // SAFETY: siglock held: every filter of the chain is attached and
        // alive; only filters strictly above `me` are written.
        unsafe {
            if !chain_contains(top, me) {
                return false;
            }
            let mut g = top;
            while g != me {
                trimmed = trimmed.saturating_add(u32::from(trim(g, mask)));
                g = (*g).prev;
            }
        }
        tasks = tasks.saturating_add(1);
        // A thread of the switched filter: the debug kernel's stress
        // scenario may widen the gap after its group (`debug.rs`).
        true
    });
    (tasks, trimmed)
}

/// Is `f` in the chain starting at `top`?
///
/// # Safety
///
/// The chain is attached and alive (the owning task's siglock is held).
pub(crate) unsafe fn chain_contains(mut top: *mut SeccompFilter, f: *mut SeccompFilter) -> bool {
    while !top.is_null() {
        if top == f {
            return true;
        }
        // SAFETY: by contract every filter of the chain is alive.
        top = unsafe { (*top).prev };
    }
    false
}

/// Clears from `f`'s action cache every syscall that `mask` lacks, with
/// atomic bit operations (seccomp tests the bits concurrently).  Returns
/// whether a bit was cleared.
///
/// # Safety
///
/// `f` is alive.
unsafe fn trim(f: *mut SeccompFilter, mask: &CacheMask) -> bool {
    // SAFETY: `f` is alive (contract); the bitmaps are arrays of longs.
    let (native, compat) = unsafe {
        (
            addr_of_mut!((*f).cache.allow_native).cast::<kernel::ffi::c_ulong>(),
            addr_of_mut!((*f).cache.allow_compat).cast::<kernel::ffi::c_ulong>(),
        )
    };
    // SAFETY: both pointers cover `*_WORDS` longs of a live filter.
    unsafe { trim_bitmap(native, &mask.native, NATIVE_WORDS) | trim_bitmap(compat, &mask.compat, COMPAT_WORDS) }
}

/// # Safety
///
/// `bits` points to `words` longs that stay allocated during the call.
unsafe fn trim_bitmap(bits: *mut kernel::ffi::c_ulong, mask: &[kernel::ffi::c_ulong], words: usize) -> bool {
    let mut changed = false;
    for w in 0..words {
        // SAFETY: `w < words` (contract); READ_ONCE of a concurrently read word.
        let cur = unsafe { core::ptr::read_volatile(bits.add(w)) };
        let mut extra = cur & !mask[w];
        while extra != 0 {
            let b = extra.trailing_zeros() as usize;
            extra &= extra - 1;
            // SAFETY: bit `w * 64 + b` lies in the bitmap; clear_bit() is
            // the atomic clear seccomp's readers expect.
            unsafe { bindings::clear_bit((w * 64 + b) as kernel::ffi::c_ulong, bits) };
            changed = true;
        }
    }
    changed
}

impl Drop for FilterRef {
    /// Drops the reference like `__put_seccomp_filter()`: the last holder
    /// frees the filter and walks down `prev` releasing single-reference
    /// branches.
    fn drop(&mut self) {
        let mut f = self.ptr.as_ptr();
        // SAFETY: we own one reference on `f` (type invariant).  When a
        // count reaches zero nobody else can reach that filter: no task has
        // it (tasks hold references), no filter above it (they hold one on
        // their prev) and no notifier listener (it holds one too), so
        // freeing it is ours to do, exactly as seccomp_filter_free() does:
        // destroy the program, free the struct (allocated with kzalloc),
        // and drop the reference it held on its prev.
        unsafe {
            while !f.is_null() && bindings::refcount_dec_and_test(addr_of_mut!((*f).refs)) {
                let prev = (*f).prev;
                drop(OwnedProg::from_raw((*f).prog));
                bindings::kfree(f.cast());
                f = prev;
            }
        }
    }
}
