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
//! 5. `synchronize_rcu_tasks()`: `seccomp_run_filters()` runs programs with
//!    migration disabled but preemptible, outside any RCU read-side
//!    section.  An RCU-tasks grace period ends only after every task has
//!    voluntarily switched, returned to user space or idled, so no task can
//!    still be inside the old program, which is then destroyed.
//!
//! Tasks forked during or after the swap share `F` with their parent, so
//! they see `new` too.  Filters below `F` (the host's or the runtime's) are
//! never written.

use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{bindings, prelude::*};

use crate::bpf::{CacheMask, NewProg};
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

    /// Counts the threads whose filter chain contains this filter.
    pub(crate) fn count_tasks(&self) -> u32 {
        let me = self.as_ptr();
        let mut n = 0;
        for_each_thread_locked(|_, top| {
            // SAFETY: the siglock is held, so the chain is attached and alive.
            if unsafe { chain_contains(top, me) } {
                n += 1;
            }
        });
        n
    }

    /// Replaces the filter's program with `new` (see the module docs).
    /// Sleeps for an RCU-tasks grace period, unless `defer` is given: then
    /// the old program is destroyed by `defer`'s RCU-tasks callback.
    pub(crate) fn swap(&self, new: NewProg, mask: &CacheMask, defer: Option<KBox<DeferredDestroy>>) -> SwapStats {
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
        trimmed += again;
        if let Some(d) = defer {
            d.destroy_after_grace_period(old);
        } else {
            // SAFETY: plain sleeping call, we hold no spinlock here.
            unsafe { bindings::synchronize_rcu_tasks() };
            // SAFETY: `old` was the filter's program (created by seccomp or by
            // a previous swap through bpf_prog_create_from_user); the filter
            // no longer points to it and the grace period above guarantees no
            // task still runs it.  Nothing else frees it: seccomp frees
            // `F->prog`, which is now `new`.
            unsafe { NewProg::destroy(old) };
        }
        SwapStats { tasks, filters_above: trimmed }
    }
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
                return;
            }
            let mut g = top;
            while g != me {
                trimmed += u32::from(trim(g, mask));
                g = (*g).prev;
            }
        }
        tasks += 1;
    });
    (tasks, trimmed)
}

/// Is `f` in the chain starting at `top`?
///
/// # Safety
///
/// The chain is attached and alive (the owning task's siglock is held).
unsafe fn chain_contains(mut top: *mut SeccompFilter, f: *mut SeccompFilter) -> bool {
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
                NewProg::destroy((*f).prog);
                bindings::kfree(f.cast());
                f = prev;
            }
        }
    }
}

/// An old program waiting for an RCU-tasks grace period before it is
/// destroyed (the `SWITCH_DEFER_FREE` path).
///
/// # Invariants
///
/// Once queued, `prog` is owned by this value and unreachable from any
/// filter; the value is leaked into `call_rcu_tasks()` and reclaimed by
/// [`DeferredDestroy::callback`].  Module unload waits for pending
/// callbacks (`rcu_barrier_tasks()`).
#[repr(C)]
pub(crate) struct DeferredDestroy {
    head: bindings::callback_head,
    prog: *mut bindings::bpf_prog,
}

impl DeferredDestroy {
    /// Allocates the record up front, so that a switch never fails after
    /// the swap.
    pub(crate) fn new() -> Result<KBox<DeferredDestroy>> {
        Ok(KBox::new(
            DeferredDestroy {
                // SAFETY: an all-zero callback_head is the state call_rcu_tasks() expects.
                head: unsafe { core::mem::zeroed() },
                prog: core::ptr::null_mut(),
            },
            GFP_KERNEL,
        )?)
    }

    fn destroy_after_grace_period(self: KBox<Self>, old: *mut bindings::bpf_prog) {
        let raw = KBox::into_raw(self);
        // SAFETY: `raw` is a valid, exclusively owned record; we store the
        // program and hand the record to RCU-tasks (INVARIANT: `old` is no
        // longer reachable from the filter).
        unsafe {
            (*raw).prog = old;
            bindings::call_rcu_tasks(addr_of_mut!((*raw).head), Some(Self::callback));
        }
    }

    /// # Safety
    ///
    /// Called by RCU-tasks with the `head` of a record queued by
    /// [`Self::destroy_after_grace_period`], once.
    unsafe extern "C" fn callback(head: *mut bindings::callback_head) {
        // CAST: `head` is the first field of a `#[repr(C)]` DeferredDestroy.
        let raw = head.cast::<DeferredDestroy>();
        // SAFETY: the record came from KBox::into_raw and is handed back once.
        let d = unsafe { KBox::from_raw(raw) };
        // SAFETY: a full RCU-tasks grace period has elapsed since the program
        // was unpublished, so no task can be running it.
        unsafe { NewProg::destroy(d.prog) };
    }
}

/// Waits until every deferred program has been destroyed (module unload).
pub(crate) fn wait_deferred() {
    // SAFETY: plain sleeping call from process context.
    unsafe { bindings::rcu_barrier_tasks() };
}
