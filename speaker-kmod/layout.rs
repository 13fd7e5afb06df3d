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

use crate::mirror::SeccompFilter;

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
    check(sighand_ok, "task_struct.sighand")?;
    drop(_rcu);
    check_seccomp_filter()
}

/// Checks `struct seccomp_filter` (mirror.rs) against the first live filter
/// chain found, with fault-safe reads: a kernel of the same release but
/// another config (the struct shifted) makes loading fail here.  With no
/// filter in the system there is nothing to read; every chain is checked
/// again at `REGISTER`.  (A kernel without `CONFIG_COMPAT`, whose filters
/// lack the compat half of the action cache, never gets this far: speaker.ko
/// needs `compat_ptr_ioctl`, which only such kernels export.)
fn check_seccomp_filter() -> Result {
    let mut found: Option<(i32, Result<(), &'static str>)> = None;
    crate::tasks::for_each_thread_locked(|t, top| {
        if found.is_none() {
            // SAFETY: `t`'s siglock is held, so its seccomp fields are stable.
            let (pid, count) = unsafe { ((*t).pid, bindings::atomic_read(addr_of!((*t).seccomp.filter_count))) };
            found = Some((pid, SeccompFilter::check_chain(top, count)));
        }
        false
    });
    match found {
        Some((pid, Ok(()))) => {
            pr_info!("layout: struct seccomp_filter checked against the live filters of pid {}\n", pid);
            Ok(())
        }
        Some((pid, Err(why))) => {
            pr_err!(
                "layout: the seccomp filters of pid {} do not read right through mirror.rs ({}): this kernel's struct seccomp_filter differs from the one speaker.ko was built for; refusing to load\n",
                pid,
                why
            );
            Err(EINVAL)
        }
        None => {
            pr_info!("layout: no live seccomp filter to check struct seccomp_filter against; each is checked at REGISTER\n");
            Ok(())
        }
    }
}
