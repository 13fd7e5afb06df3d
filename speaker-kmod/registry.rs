// SPDX-License-Identifier: GPL-2.0

//! The containers speaker.ko knows, and the operations on them.
//!
//! One global mutex serialises registration, switches (including their
//! grace period), status and unloading.  Containers whose tasks have all
//! exited are forgotten (and their filter reference dropped) at the start of
//! every operation.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

use crate::abi::{self, CID_LEN};
use crate::bpf::{CacheMask, NewProg};
use crate::filter::{DeferredDestroy, FilterRef};
use crate::mirror::SeccompFilter;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init()` from the module initialiser, before
    // the device (the only user) is registered.
    unsafe(uninit) static REGISTRY: Mutex<KVec<Container>> = KVec::new();
}

/// Initialises the registry lock.
///
/// # Safety
///
/// Called exactly once, before any other function of this module.
pub(crate) unsafe fn init() {
    // SAFETY: called once, by the function's contract.
    unsafe { REGISTRY.init() };
}

/// One registered container.
pub(crate) struct Container {
    cid: [u8; CID_LEN],
    pid: u32,
    filter: FilterRef,
    phase: u32,
    allowed: u32,
    switches: u32,
    registered_ns: u64,
    last_switch_ns: u64,
}

fn now_real_ns() -> u64 {
    let mut ts = bindings::timespec64 { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { bindings::ktime_get_real_ts64(&mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_mono_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::ktime_get() as u64 }
}

/// Checks a container id: NUL-terminated inside the buffer, 1..=63 bytes of
/// `[A-Za-z0-9_.-]`, NUL-padded.
fn valid_cid(cid: &[u8; CID_LEN]) -> bool {
    let Some(len) = cid.iter().position(|&b| b == 0) else { return false };
    len > 0
        && cid[..len].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && cid[len..].iter().all(|&b| b == 0)
}

fn forget_exited(list: &mut KVec<Container>) {
    let mut i = 0;
    while i < list.len() {
        if list[i].filter.users() <= 0 {
            // Dropping the container drops our filter reference (and frees
            // the filter if we were its last holder).
            drop(list.remove(i));
        } else {
            i += 1;
        }
    }
}

fn find<'a>(list: &'a mut KVec<Container>, cid: &[u8; CID_LEN]) -> Result<&'a mut Container> {
    if !valid_cid(cid) {
        return Err(EINVAL);
    }
    list.iter_mut().find(|c| &c.cid == cid).ok_or(ESRCH)
}

/// Number of registered (live) containers.
pub(crate) fn count() -> u32 {
    let mut list = REGISTRY.lock();
    forget_exited(&mut list);
    list.len() as u32
}

/// Registers the filter on top of task `pid`'s chain as container `cid`'s.
pub(crate) fn register(args: &abi::RegisterArgs) -> Result {
    if !valid_cid(&args.cid) || args.phase > abi::PHASE_MAX {
        return Err(EINVAL);
    }
    let mut list = REGISTRY.lock();
    forget_exited(&mut list);
    if list.iter().any(|c| c.cid == args.cid) {
        return Err(EEXIST);
    }
    if list.len() >= abi::MAX_CONTAINERS {
        return Err(ENOSPC);
    }
    let filter = filter_of_pid(args.pid, args.filter_count)?;
    if list.iter().any(|c| c.filter.as_ptr() == filter.as_ptr()) {
        // Two ids for one filter would make switches ambiguous.
        return Err(EEXIST);
    }
    list.push(
        Container {
            cid: args.cid,
            pid: args.pid,
            filter,
            phase: args.phase,
            allowed: args.allowed,
            switches: 0,
            registered_ns: now_real_ns(),
            last_switch_ns: 0,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

/// Takes a reference on the top filter of task `nr` (a PID in the caller's
/// namespace), checking that the task has exactly `expected` filters.
fn filter_of_pid(nr: u32, expected: u32) -> Result<FilterRef> {
    if nr == 0 || nr > i32::MAX as u32 {
        return Err(EINVAL);
    }
    // SAFETY: plain lookup in the caller's PID namespace; returns a counted
    // `struct pid` or NULL.
    let pid = unsafe { bindings::find_get_pid(nr as i32) };
    if pid.is_null() {
        return Err(ESRCH);
    }
    // SAFETY: `pid` is a counted reference; the result is a counted task or NULL.
    let task = unsafe { bindings::get_pid_task(pid, bindings::pid_type_PIDTYPE_PID) };
    // SAFETY: we own the reference from find_get_pid().
    unsafe { bindings::put_pid(pid) };
    if task.is_null() {
        return Err(ESRCH);
    }
    let mut result = Err(ESRCH);
    let take = |top: *mut SeccompFilter, count: i32, mode: i32| {
        result = if mode != bindings::SECCOMP_MODE_FILTER as i32 || top.is_null() {
            Err(EINVAL)
        } else if count != expected as i32 {
            Err(EBUSY)
        // SAFETY: siglock held, `top` is attached to the task and alive.
        } else if !unsafe { SeccompFilter::looks_sane(top) } {
            pr_err!("filter of pid {} does not match mirror.rs; refusing\n", nr);
            Err(EINVAL)
        } else {
            // SAFETY: `top` is alive (siglock held) and non-null.
            Ok(unsafe { FilterRef::get(NonNull::new_unchecked(top)) })
        };
    };
    // SAFETY: we hold a reference on `task` until put_task_struct() below.
    unsafe { crate::tasks::with_task_locked(task, take) };
    // SAFETY: we own the task reference from get_pid_task().
    unsafe { bindings::put_task_struct(task) };
    result
}

/// Result of a switch, for the ioctl's out fields.
pub(crate) struct SwitchOut {
    pub(crate) tasks: u32,
    pub(crate) filters_above: u32,
    pub(crate) cached_allow: u32,
    pub(crate) elapsed_ns: u64,
}

/// Replaces the program of container `cid`'s filter.
pub(crate) fn switch(args: &abi::SwitchArgs) -> Result<SwitchOut> {
    if args.phase > abi::PHASE_MAX || args.flags & !abi::SWITCH_DEFER_FREE != 0 || args.reserved != 0 {
        return Err(EINVAL);
    }
    let mut list = REGISTRY.lock();
    forget_exited(&mut list);
    let c = find(&mut list, &args.cid)?;
    // Built once per switch, whatever the number of tasks.
    let prog = NewProg::from_user(args.prog, args.prog_len)?;
    let mask = CacheMask::of(&prog);
    let defer = if args.flags & abi::SWITCH_DEFER_FREE != 0 { Some(DeferredDestroy::new()?) } else { None };
    let start = now_mono_ns();
    let stats = c.filter.swap(prog, &mask, defer);
    let elapsed_ns = now_mono_ns() - start;
    c.phase = args.phase;
    c.allowed = args.allowed;
    c.switches += 1;
    c.last_switch_ns = now_real_ns();
    Ok(SwitchOut { tasks: stats.tasks, filters_above: stats.filters_above, cached_allow: mask.count(), elapsed_ns })
}

/// Forgets container `cid` (its tasks keep their current filter).
pub(crate) fn unregister(cid: &[u8; CID_LEN]) -> Result {
    if !valid_cid(cid) {
        return Err(EINVAL);
    }
    let mut list = REGISTRY.lock();
    forget_exited(&mut list);
    let i = list.iter().position(|c| &c.cid == cid).ok_or(ESRCH)?;
    drop(list.remove(i));
    Ok(())
}

/// Fills `out` with the status of all containers (or of `only`), returns
/// the total count.
pub(crate) fn status(only: Option<&[u8; CID_LEN]>, out: &mut KVec<abi::StatusEntry>, cap: usize) -> Result<u32> {
    if only.is_some_and(|cid| !valid_cid(cid)) {
        return Err(EINVAL);
    }
    let mut list = REGISTRY.lock();
    forget_exited(&mut list);
    let mut total = 0;
    for c in list.iter() {
        if only.is_some_and(|cid| cid != &c.cid) {
            continue;
        }
        total += 1;
        if out.len() < cap {
            out.push(
                abi::StatusEntry {
                    cid: c.cid,
                    pid: c.pid,
                    phase: c.phase,
                    tasks: c.filter.count_tasks(),
                    allowed: c.allowed,
                    switches: c.switches,
                    reserved: 0,
                    registered_ns: c.registered_ns,
                    last_switch_ns: c.last_switch_ns,
                },
                GFP_KERNEL,
            )?;
        }
    }
    Ok(total)
}

/// Drops every container (module unload): their tasks keep the program
/// they run now; seccomp frees it when the last task exits.
pub(crate) fn release_all() {
    let mut list = REGISTRY.lock();
    list.clear();
    drop(list);
    crate::filter::wait_deferred();
}
