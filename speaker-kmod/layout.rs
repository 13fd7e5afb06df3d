// SPDX-License-Identifier: GPL-2.0

//! Load-time cross-checks of the kernel struct fields speaker reads.
//!
//! bindgen has produced wrong `task_struct` layouts before (0.73.x drops the
//! padding in front of cacheline-aligned empty structs, shifting every field
//! after `stats`).  Every field this module relies on is checked here
//! against a value the kernel computes itself, through exported functions or
//! known invariants; the module refuses to load if one is off.

use core::ptr::{addr_of, addr_of_mut, read_volatile};
use kernel::{bindings, prelude::*};

fn check(ok: bool, what: &str) -> Result {
    if ok {
        Ok(())
    } else {
        pr_err!("layout check failed: {}; bindings do not match this kernel (bindgen version?), refusing to load\n", what);
        Err(EINVAL)
    }
}

/// Runs every check; `Err(EINVAL)` (with a message naming the field) if one
/// fails.
pub(crate) fn check_all() -> Result {
    let tasks_off = core::mem::offset_of!(bindings::task_struct, tasks);
    let node_off = core::mem::offset_of!(bindings::task_struct, thread_node);
    // SAFETY: `current` is always a valid task for the running thread.
    let cur = unsafe { bindings::get_current() };
    // SAFETY: `cur` is valid; `init_pid_ns` is a static; the function reads
    // `thread_pid`/`signal->pids`, fields other than the ones checked.
    let (pid, tgid, kpid, ktgid) = unsafe {
        (
            (*cur).pid,
            (*cur).tgid,
            bindings::__task_pid_nr_ns(cur, bindings::pid_type_PIDTYPE_PID, addr_of_mut!(bindings::init_pid_ns)),
            bindings::__task_pid_nr_ns(cur, bindings::pid_type_PIDTYPE_TGID, addr_of_mut!(bindings::init_pid_ns)),
        )
    };
    check(pid == kpid && pid > 0, "task_struct.pid")?;
    check(tgid == ktgid && tgid > 0, "task_struct.tgid")?;

    let init = addr_of_mut!(bindings::init_task);
    // SAFETY: init_task is a static task; its comm and pid never change
    // after boot ("swapper/0", 0).
    let (comm, ipid) = unsafe { ((*init).comm, (*init).pid) };
    check(ipid == 0 && comm[..7].iter().map(|&c| c as u8).eq(*b"swapper"), "task_struct.comm")?;
    // SAFETY: init_task has no seccomp state.
    let seccomp_zero = unsafe {
        (*init).seccomp.mode == 0 && (*init).seccomp.filter.is_null()
    };
    check(seccomp_zero, "task_struct.seccomp (init_task)")?;
    // SAFETY: current's seccomp fields, read like /proc/PID/status does.
    let (mode, count, filter) = unsafe {
        (
            (*cur).seccomp.mode,
            bindings::atomic_read(addr_of!((*cur).seccomp.filter_count)),
            (*cur).seccomp.filter,
        )
    };
    check((0..=2).contains(&mode) && count >= 0 && (count == 0) == filter.is_null(), "task_struct.seccomp")?;

    let _rcu = kernel::sync::rcu::read_lock();
    // SAFETY: next_task(&init_task) under RCU: the first task ever forked,
    // PID 1, stays first on the list while it lives (and it always lives).
    let first = unsafe {
        read_volatile(addr_of!((*init).tasks.next)).byte_sub(tasks_off).cast::<bindings::task_struct>()
    };
    // SAFETY: as above.
    check(unsafe { (*first).pid } == 1, "task_struct.tasks")?;

    // SAFETY: current's signal struct is alive while it runs; its thread
    // list (RCU-protected) contains current.
    let found_self = unsafe {
        let head = addr_of_mut!((*(*cur).signal).thread_head);
        let mut node = read_volatile(addr_of!((*head).next));
        let mut found = false;
        while node != head {
            if node.byte_sub(node_off).cast::<bindings::task_struct>() == cur {
                found = true;
            }
            node = read_volatile(addr_of!((*node).next));
        }
        found
    };
    check(found_self, "task_struct.thread_node / signal_struct.thread_head")?;
    // SAFETY: a running task has a live sighand with a count of at least 1.
    let sighand_ok = unsafe {
        let sh = (*cur).sighand;
        !sh.is_null() && bindings::atomic_read(addr_of!((*sh).count.refs)) >= 1
    };
    check(sighand_ok, "task_struct.sighand")
}
