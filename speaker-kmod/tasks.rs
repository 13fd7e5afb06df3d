// SPDX-License-Identifier: GPL-2.0

//! Visiting every thread of the system with its `sighand->siglock` held.
//!
//! seccomp attaches and detaches a task's filter chain under that task's
//! siglock (`seccomp_attach_filter()`, `seccomp_sync_threads()`,
//! `seccomp_filter_release()`), and computes a new filter's action cache
//! under it too.  While the lock is held, the task's chain can neither be
//! replaced nor freed, and no filter can be stacked on it.

use core::ptr::{addr_of, addr_of_mut, read_volatile};
use kernel::{bindings, sync::rcu};

use crate::mirror::SeccompFilter;

/// `container_of(ptr, T, field)` for a `list_head` member.
///
/// # Safety
///
/// `ptr` points to the `list_head` at offset `off` inside a `T`.
unsafe fn container_of<T>(ptr: *mut bindings::list_head, off: usize) -> *mut T {
    // SAFETY: by the function's contract the result is inside the same object.
    unsafe { ptr.byte_sub(off).cast::<T>() }
}

/// Locks `t->sighand->siglock`, as `lock_task_sighand()` does (that one is
/// not exported).  Returns the locked sighand, or `None` if the task has
/// already been released.
///
/// # Safety
///
/// The caller is in an RCU read-side critical section and `t` is a task
/// found through an RCU-protected list (so it and its sighand, which is
/// `SLAB_TYPESAFE_BY_RCU`, stay readable).
unsafe fn lock_sighand(t: *mut bindings::task_struct) -> Option<*mut bindings::sighand_struct> {
    loop {
        // SAFETY: `t` is readable (contract); READ_ONCE of an RCU pointer.
        let sh = unsafe { read_volatile(addr_of!((*t).sighand)) };
        if sh.is_null() {
            return None;
        }
        // SAFETY: a sighand seen under RCU stays a sighand (typesafe by RCU)
        // and its siglock stays initialised; the irq-disabling variant is
        // required because signals are sent from interrupt context.
        unsafe { bindings::spin_lock_irq_disable(addr_of_mut!((*sh).siglock)) };
        // SAFETY: as above.
        if unsafe { read_volatile(addr_of!((*t).sighand)) } == sh {
            return Some(sh);
        }
        // SAFETY: locked just above.
        unsafe { bindings::spin_unlock_irq_enable(addr_of_mut!((*sh).siglock)) };
    }
}

/// Calls `f(task, top_filter)` for every thread of every process (`f`
/// answers whether the thread is one the caller looks for: on the debug
/// kernel the stress scenario may widen the gap after such a group,
/// `debug.rs`).  The
/// threads of one process are visited under one hold of their shared
/// siglock, so `top_filter` and every filter below it stay attached and
/// alive during the call, and the thread group cannot change its filters
/// between two of its threads' visits: seccomp stacks a filter
/// (`seccomp_attach_filter()`) and synchronises a group
/// (`SECCOMP_FILTER_FLAG_TSYNC`, `seccomp_sync_threads()`) under that same
/// lock.  A walk that took the lock per thread could visit T, let U
/// TSYNC a filter onto T and T stack a private one on it, then visit U:
/// T's new filter would never be seen (issue 18, item 3).  Threads being
/// released, and threads without a filter, are passed over.  `f` must not
/// sleep.
pub(crate) fn for_each_thread_locked(mut f: impl FnMut(*mut bindings::task_struct, *mut SeccompFilter) -> bool) {
    if crate::debug::per_thread_walk() {
        return for_each_thread_locked_one_by_one(f);
    }
    each_process(|p| {
        // The group's siglock: every thread of a group shares the leader's
        // sighand (CLONE_THREAD needs CLONE_SIGHAND).  A leader already
        // released has no thread left to visit (it is released last).
        // SAFETY: in each_process()'s RCU section, `p` found through an RCU list.
        let Some(sh) = (unsafe { lock_sighand(p) }) else { return };
        let mut wanted = false;
        let visit = |t: *mut bindings::task_struct| {
            // A thread being released (`__exit_signal()`, under this lock)
            // has its sighand cleared: its chain is no longer its own.
            // SAFETY: siglock held: `sighand` and the filter pointer are stable.
            if unsafe { read_volatile(addr_of!((*t).sighand)) } == sh {
                // SAFETY: as above.
                let top = unsafe { (*t).seccomp.filter }.cast::<SeccompFilter>();
                if !top.is_null() {
                    wanted |= f(t, top);
                }
            }
        };
        // SAFETY: as above; the thread list changes only under the siglock we hold.
        unsafe { each_thread(p, visit) };
        // SAFETY: locked by lock_sighand().
        unsafe { bindings::spin_unlock_irq_enable(addr_of_mut!((*sh).siglock)) };
        if wanted {
            crate::debug::walk_gap();
        }
    });
}

/// The walk before issue 18 item 3, for the debug kernel's stress scenario
/// only (`debug_walk_per_thread`): each thread under its own hold of the
/// siglock, so a thread group can change its filters between two of its
/// threads' visits.
fn for_each_thread_locked_one_by_one(mut f: impl FnMut(*mut bindings::task_struct, *mut SeccompFilter) -> bool) {
    each_process(|p| {
        let visit = |t: *mut bindings::task_struct| {
            let mut wanted = false;
            // SAFETY: in an RCU section, `t` found through an RCU list.
            if let Some(sh) = unsafe { lock_sighand(t) } {
                // SAFETY: siglock held: the filter pointer is stable.
                let top = unsafe { (*t).seccomp.filter }.cast::<SeccompFilter>();
                if !top.is_null() {
                    wanted = f(t, top);
                }
                // SAFETY: locked by lock_sighand().
                unsafe { bindings::spin_unlock_irq_enable(addr_of_mut!((*sh).siglock)) };
            }
            if wanted {
                crate::debug::walk_gap();
            }
        };
        // SAFETY: in each_process()'s RCU section, `p` found through an RCU
        // list; the thread list is RCU-protected (`__for_each_thread()`).
        unsafe { each_thread(p, visit) };
    });
}

/// Calls `f(p)` for every entry of the `tasks` list (one per process),
/// all inside one RCU read-side section.
fn each_process(mut f: impl FnMut(*mut bindings::task_struct)) {
    let tasks_off = core::mem::offset_of!(bindings::task_struct, tasks);
    let _rcu = rcu::read_lock();
    let init = addr_of_mut!(bindings::init_task);
    let mut p = init;
    loop {
        // SAFETY: `p` is init_task or a task reached through the RCU-protected
        // `tasks` list inside our read-side section (next_task()).
        p = unsafe { container_of(read_volatile(addr_of!((*p).tasks.next)), tasks_off) };
        if p == init {
            break;
        }
        f(p);
    }
}

/// Calls `f(t)` for every thread on `p`'s thread list.
///
/// # Safety
///
/// In an RCU read-side section, `p` found through the `tasks` list (its
/// signal struct is freed only after a grace period,
/// delayed_put_task_struct()); the list is RCU-protected, and stable while
/// the group's siglock is held.
unsafe fn each_thread(p: *mut bindings::task_struct, mut f: impl FnMut(*mut bindings::task_struct)) {
    let node_off = core::mem::offset_of!(bindings::task_struct, thread_node);
    // SAFETY: by the function's contract `p` and its signal struct are readable.
    let head = unsafe { addr_of_mut!((*(*p).signal).thread_head) };
    // SAFETY: `head` is a valid list head (above).
    let mut node = unsafe { read_volatile(addr_of!((*head).next)) };
    while node != head {
        // SAFETY: `node` is a `thread_node` of a task on the thread list.
        let t: *mut bindings::task_struct = unsafe { container_of(node, node_off) };
        f(t);
        // SAFETY: as for `node` above.
        node = unsafe { read_volatile(addr_of!((*node).next)) };
    }
}

/// Calls `f(top_filter, filter_count, mode)` for task `t` with its siglock
/// held; does nothing if the task has already been released.
///
/// # Safety
///
/// The caller holds a reference on `t` (so the task struct stays allocated).
pub(crate) unsafe fn with_task_locked(
    t: *mut bindings::task_struct,
    f: impl FnOnce(*mut SeccompFilter, i32, i32),
) {
    let _rcu = rcu::read_lock();
    // SAFETY: `t` is referenced (contract) and we are in an RCU section.
    if let Some(sh) = unsafe { lock_sighand(t) } {
        // SAFETY: siglock held: `seccomp` is stable.
        let (top, count, mode) = unsafe {
            (
                (*t).seccomp.filter.cast::<SeccompFilter>(),
                bindings::atomic_read(addr_of!((*t).seccomp.filter_count)),
                (*t).seccomp.mode,
            )
        };
        f(top, count, mode);
        // SAFETY: locked by lock_sighand().
        unsafe { bindings::spin_unlock_irq_enable(addr_of_mut!((*sh).siglock)) };
    }
}
