// SPDX-License-Identifier: GPL-2.0

//! The containers speaker.ko knows, and the operations on them.
//!
//! One global mutex serialises registration, switches, status, the sweeper
//! and unloading.  Nothing that can wait on user space or on other tasks
//! runs under it: a switch copies and checks its program before taking it
//! and waits for its grace period after dropping it.  Every operation first
//! sweeps: containers whose tasks have all exited are forgotten, and the
//! programs kept for filters that died are freed (`keep.rs`).
//!
//! # Who may change a filter
//!
//! `REGISTER`, `SWITCH`, `UNREGISTER` and `STATUS` need `CAP_SYS_ADMIN`
//! (checked by `device.rs`) *and* a caller whose own seccomp chain contains
//! no filter speaker.ko manages ([`Registry::check_caller`]): a container's
//! task, even root with every capability and an fd to `/dev/speaker`, can
//! never loosen its own filter or anyone's.  Callers under other filters
//! (a host agent under systemd's `SystemCallFilter=`) are not refused: their
//! filter confines them, not a container.
//!
//! # What may be registered
//!
//! `REGISTER` takes the top filter of a task in a non-initial PID namespace
//! (what every container engine makes), or a filter whose program begins
//! with speaker's mark (what speaker's own tools install: the tracer, the
//! benchmarks).  A host process's own sandbox (sshd's privilege
//! separation, a systemd `SystemCallFilter=`) is neither: `EPERM`, so no
//! switch can ever loosen it ([`bears_mark`]).

use core::ptr::{addr_of_mut, NonNull};
use kernel::{bindings, prelude::*, sync::Arc};

use crate::abi::{self, CID_LEN};
use crate::bpf::{orig_insns, same_insns, CacheMask, OwnedProg};
use crate::filter::FilterRef;
use crate::keep::OldProgs;
use crate::mirror::SeccompFilter;
use crate::sweep::{self, Sweeper};
use crate::tasks::with_task_locked;

// The read-only queries (STATUS, PIDS) in a file of their own, a child of
// this module (they read the registry's private state).
#[path = "registry_query.rs"]
mod query;
pub(crate) use query::{pids, status};

kernel::sync::global_lock! {
    // SAFETY: initialised by `init()` from the module initialiser, before
    // the device (the only user) is registered.
    unsafe(uninit) static REGISTRY: Mutex<Registry> = Registry::new();
}

/// Initialises the registry.
///
/// # Safety
///
/// Called exactly once, before any other function of this module.
pub(crate) unsafe fn init() -> Result {
    let sweeper = Sweeper::new(sweep_tick)?;
    // SAFETY: called once, by the function's contract.
    unsafe { REGISTRY.init() };
    REGISTRY.lock().sweeper = Some(sweeper);
    Ok(())
}

/// One filter of a registered container: the one REGISTER took (its
/// head), or one ADD took from a process exec'd into it.  All the filters
/// of a container share its id, and a switch replaces every one's program.
///
/// # Invariants
///
/// Of the entries with one id, exactly one has `exec == false` (the
/// head), and it comes first.
struct Container {
    cid: [u8; CID_LEN],
    pid: u32,
    exec: bool,
    /// Replaced programs; declared before `filter` so they are dropped first.
    old: OldProgs,
    filter: FilterRef,
    phase: u32,
    allowed: u32,
    switches: u32,
    registered_ns: u64,
    last_switch_ns: u64,
}

/// A filter speaker.ko no longer lists (unregistered, or its tasks exited)
/// but still keeps replaced programs for, until it dies.
struct Retired {
    /// Dropped (freed) before `filter`, once it dies.
    old: OldProgs,
    filter: FilterRef,
}

/// Retires `c` into `retired`, which has room for one more (reserved by the
/// caller).  Should the push fail all the same, the kept programs are
/// leaked, not freed (`keep.rs`).
fn retire(retired: &mut KVec<Retired>, c: Container) {
    if let Err(kernel::alloc::kvec::PushError(r)) = retired.push_within_capacity(Retired { old: c.old, filter: c.filter }) {
        r.old.leak("retired list full");
    }
}

/// Everything the module knows.
///
/// # Invariants
///
/// `pinned` is true exactly while this module holds a reference on itself
/// taken by [`sweep::pin_module`], and then the sweeper is queued or running
/// (only the sweeper drops the reference).
pub(crate) struct Registry {
    containers: KVec<Container>,
    retired: KVec<Retired>,
    pinned: bool,
    sweeper: Option<Arc<Sweeper>>,
}

impl Registry {
    const fn new() -> Registry {
        Registry { containers: KVec::new(), retired: KVec::new(), pinned: false, sweeper: None }
    }

    /// Forgets exited containers and frees what dead filters kept.
    fn sweep(&mut self) {
        let mut i = 0;
        while i < self.containers.len() {
            let c = &self.containers[i];
            if c.filter.users() > 0 {
                i += 1;
                continue;
            }
            let (cid, head) = (c.cid, !c.exec);
            let gone = if c.old.is_empty() {
                // Nothing kept: dropping our reference is all (the last
                // holder frees the filter, as seccomp does).
                self.containers.remove(i).is_ok()
            } else if self.retired.reserve(1, GFP_KERNEL).is_ok() {
                match self.containers.remove(i) {
                    Ok(c) => {
                        retire(&mut self.retired, c);
                        true
                    }
                    Err(_) => false,
                }
            } else {
                // Out of memory: keep it listed, try again next sweep.
                i += 1;
                false
            };
            // INVARIANT: the next filter of the container, if any, heads it.
            if gone && head {
                if let Some(next) = self.containers.iter_mut().skip(i).find(|c| c.cid == cid) {
                    next.exec = false;
                }
            }
        }
        // A sole holder cannot lose that status: freeing is safe.
        self.retired.retain(|r| !r.filter.is_sole_holder());
    }

    fn needs_pin(&self) -> bool {
        !self.retired.is_empty() || self.containers.iter().any(|c| !c.old.is_empty())
    }

    /// Sweeps, and pins the module (starting the sweeper) if it now keeps
    /// programs.  Only the sweeper unpins.
    fn settle(&mut self) {
        self.sweep();
        if self.needs_pin() && !self.pinned && sweep::pin_module() {
            // INVARIANT: pinned, and the sweeper is queued just below.
            self.pinned = true;
            if let Some(s) = &self.sweeper {
                Sweeper::schedule(s.clone());
            }
        }
    }

    /// Whether `f` is a filter this module manages (listed or retired).
    fn manages(&self, f: *mut SeccompFilter) -> bool {
        self.containers.iter().any(|c| c.filter.as_ptr() == f) || self.retired.iter().any(|r| r.filter.as_ptr() == f)
    }

    /// `EPERM` if the calling task runs under a filter this module manages,
    /// or outside the initial PID namespace (in a container, even one
    /// whose filter is not registered yet: a process exec'd into a
    /// container runs before speaker-runtime can add its filter).
    fn check_caller(&self) -> Result {
        // SAFETY: `current` is always a valid task for the running thread.
        let cur = unsafe { bindings::get_current() };
        // SAFETY: `current` is alive; `init_pid_ns` is a static.
        if unsafe { bindings::task_active_pid_ns(cur) != addr_of_mut!(bindings::init_pid_ns) } {
            return Err(EPERM);
        }
        let mut confined = false;
        let look = |top: *mut SeccompFilter, _, _| {
            let mut f = top;
            while !f.is_null() && !confined {
                confined = self.manages(f);
                // SAFETY: siglock held: the chain is attached and alive.
                f = unsafe { (*f).prev };
            }
        };
        // SAFETY: `current` cannot be freed while it runs this code.
        unsafe { with_task_locked(cur, look) };
        if confined {
            Err(EPERM)
        } else {
            Ok(())
        }
    }

    /// The head entry of container `cid`.
    fn find(&mut self, cid: &[u8; CID_LEN]) -> Result<&mut Container> {
        if !valid_cid(cid) {
            return Err(EINVAL);
        }
        self.containers.iter_mut().find(|c| &c.cid == cid).ok_or(ESRCH)
    }

    /// Positions of every filter of container `cid`, the head first
    /// (`ESRCH` if there is none).
    fn members(&self, cid: &[u8; CID_LEN]) -> Result<KVec<usize>> {
        if !valid_cid(cid) {
            return Err(EINVAL);
        }
        let mut v = KVec::new();
        for (i, c) in self.containers.iter().enumerate() {
            if &c.cid == cid {
                v.push(i, GFP_KERNEL)?;
            }
        }
        if v.is_empty() {
            return Err(ESRCH);
        }
        Ok(v)
    }

    /// Number of containers (heads).
    fn heads(&self) -> usize {
        self.containers.iter().filter(|c| !c.exec).count()
    }
}

fn now_real_ns() -> u64 {
    let mut ts = bindings::timespec64 { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { bindings::ktime_get_real_ts64(&mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
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

/// Number of registered (live) containers.
pub(crate) fn count() -> u32 {
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.heads() as u32
}

/// Registers the filter on top of task `pid`'s chain as container `cid`'s.
pub(crate) fn register(args: &abi::RegisterArgs) -> Result {
    if !valid_cid(&args.cid) || args.phase > abi::PHASE_MAX {
        return Err(EINVAL);
    }
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.check_caller()?;
    if reg.containers.iter().any(|c| c.cid == args.cid) {
        return Err(EEXIST);
    }
    if reg.heads() >= abi::MAX_CONTAINERS {
        return Err(ENOSPC);
    }
    let filter = filter_of_pid(args.pid, args.filter_count)?;
    if reg.manages(filter.as_ptr()) {
        // Two ids for one filter would make switches ambiguous.
        return Err(EEXIST);
    }
    reg.containers.push(
        Container {
            cid: args.cid,
            pid: args.pid,
            exec: false,
            old: OldProgs::new(),
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
/// namespace), checking that the task has exactly `expected` filters, that
/// the chain reads right through the mirror, and that no process outside
/// the task's thread group shares the filter (`EBUSY`: a switch would
/// rewrite it for them too).
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
    // SAFETY: we hold a reference on `task`; `tgid` never changes.
    let tgid = unsafe { (*task).tgid };
    // SAFETY: we hold a reference on `task`; `init_pid_ns` is a static.
    let in_pid_ns = unsafe { bindings::task_active_pid_ns(task) != addr_of_mut!(bindings::init_pid_ns) };
    let mut result = Err(ESRCH);
    let take = |top: *mut SeccompFilter, count: i32, mode: i32| {
        result = if mode == bindings::SECCOMP_MODE_FILTER as i32 && top.is_null() {
            // The task is exiting: do_exit() drops its filters while the
            // task still shows as alive (before it becomes a zombie).
            Err(ESRCH)
        } else if mode != bindings::SECCOMP_MODE_FILTER as i32 || top.is_null() {
            Err(EINVAL)
        } else if count != expected as i32 {
            Err(EBUSY)
        } else if let Err(why) = SeccompFilter::check_chain(top, count) {
            pr_err!("the seccomp filters of pid {} do not read right through mirror.rs ({}); refusing\n", nr, why);
            Err(EINVAL)
        // SAFETY: `top` is alive (siglock held) and its chain was checked
        // just above: its program has a saved classic program.
        } else if !in_pid_ns && !unsafe { bears_mark(top) } {
            Err(EPERM)
        } else {
            // SAFETY: `top` is alive (siglock held) and non-null.
            Ok(unsafe { FilterRef::get(NonNull::new_unchecked(top)) })
        };
    };
    // SAFETY: we hold a reference on `task` until put_task_struct() below.
    unsafe { with_task_locked(task, take) };
    // SAFETY: we own the task reference from get_pid_task().
    unsafe { bindings::put_task_struct(task) };
    let filter = result?;
    if filter.shared_outside(tgid) {
        return Err(EBUSY);
    }
    Ok(filter)
}

/// Adds the filter on top of task `pid`'s chain (a process exec'd into the
/// container) to container `cid`, under the rules of [`register`].
pub(crate) fn add(args: &abi::RegisterArgs) -> Result {
    if !valid_cid(&args.cid) || args.phase > abi::PHASE_MAX {
        return Err(EINVAL);
    }
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.check_caller()?;
    let added = reg.members(&args.cid)?.len() - 1;
    if added >= abi::MAX_EXEC_FILTERS {
        return Err(ENOSPC);
    }
    let filter = filter_of_pid(args.pid, args.filter_count)?;
    if reg.manages(filter.as_ptr()) {
        return Err(EEXIST);
    }
    let head = reg.find(&args.cid)?;
    let (switches, registered_ns, last_switch_ns) = (head.switches, head.registered_ns, head.last_switch_ns);
    reg.containers.push(
        Container {
            cid: args.cid,
            pid: args.pid,
            exec: true,
            old: OldProgs::new(),
            filter,
            phase: args.phase,
            allowed: args.allowed,
            switches,
            registered_ns,
            last_switch_ns,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

/// Whether the program of `top` begins with speaker's mark
/// ([`abi::SPEAKER_MARK_CODE`], [`abi::SPEAKER_MARK_K`]).
///
/// REGISTER takes what a container is: the top filter of a task in a
/// non-initial PID namespace, or a filter its maker marked as one.  A host
/// process's own sandbox (sshd's privilege separation, a browser's, a
/// systemd `SystemCallFilter=`) is neither, so no switch can loosen it.
///
/// # Safety
///
/// `top` is a live filter whose chain passed [`SeccompFilter::check_chain`]
/// (its program has a non-empty saved classic program).
unsafe fn bears_mark(top: *mut SeccompFilter) -> bool {
    // SAFETY: by the function's contract `top` and its program are alive.
    let insns = unsafe { orig_insns((*top).prog) };
    insns.first().is_some_and(|i| i.code == abi::SPEAKER_MARK_CODE && i.jt == 0 && i.jf == 0 && i.k == abi::SPEAKER_MARK_K)
}

/// Result of a switch, for the ioctl's out fields.
pub(crate) struct SwitchOut {
    pub(crate) tasks: u32,
    pub(crate) filters_above: u32,
    pub(crate) cached_allow: u32,
    pub(crate) elapsed_ns: u64,
}

/// Replaces the program of container `cid`'s filter.
///
/// Only the swap itself runs under the registry lock.  The program is
/// copied from user space and checked before the lock is taken (the copy
/// can sleep for as long as the caller likes: a userfaultfd page), and the
/// RCU-tasks grace period is waited for after it is dropped (one task that
/// stays in the kernel holds it up; the old program is kept anyway, so
/// nothing the wait protects can be freed meanwhile): one slow caller never
/// stalls the other containers' ioctls or the sweeper.
pub(crate) fn switch(args: &abi::SwitchArgs) -> Result<SwitchOut> {
    if args.phase > abi::PHASE_MAX || args.flags & !abi::SWITCH_DEFER_FREE != 0 || args.reserved != 0 {
        return Err(EINVAL);
    }
    // A process exec'd into the container may add a filter between the
    // count and the swap: then the programs are built again.
    for _ in 0..3 {
        let n = {
            let mut reg = REGISTRY.lock();
            reg.settle();
            reg.check_caller()?;
            reg.members(&args.cid)?.len()
        };
        // One program per filter the container owns, copied and checked
        // before the lock; each copy must be the first one's instructions
        // (the caller cannot give its filters different programs by
        // changing its buffer during the call).
        let mut progs = KVec::with_capacity(n, GFP_KERNEL)?;
        progs.push(OwnedProg::from_user(args.prog, args.prog_len)?, GFP_KERNEL)?;
        for _ in 1..n {
            let p = OwnedProg::from_user(args.prog, args.prog_len)?;
            if !p.same_as(progs[0].orig()) {
                return Err(EINVAL);
            }
            progs.push(p, GFP_KERNEL)?;
        }
        // Built once per switch, whatever the number of tasks.
        let mask = CacheMask::of(&progs[0]);
        let mut reg = REGISTRY.lock();
        reg.settle();
        reg.check_caller()?;
        let members = reg.members(&args.cid)?;
        if members.len() != n {
            continue;
        }
        return swap_all(reg, &members, progs, &mask, args);
    }
    Err(EAGAIN)
}

/// The swap of [`switch`], under the registry lock (`reg`), of the filters
/// at `members` to `progs` (one each): every filter is checked first
/// (path length, room to keep its program), then every one is swapped, so
/// a refused switch changes none.
fn swap_all(
    mut reg: kernel::sync::lock::GlobalGuard<REGISTRY>,
    members: &[usize],
    progs: KVec<OwnedProg>,
    mask: &CacheMask,
    args: &abi::SwitchArgs,
) -> Result<SwitchOut> {
    let new = progs[0].orig();
    for &i in members {
        let c = &mut reg.containers[i];
        // SAFETY: the current program of a filter we hold a reference on;
        // only switches (serialised by the registry lock) replace it.
        let current = unsafe { orig_insns((*c.filter.as_ptr()).prog) };
        if !same_insns(new, current) {
            c.filter.check_path_len(progs[0].len())?;
            c.old.check_room(new, current.len())?;
        }
    }
    // `elapsed_ns`: the swaps and their grace period, not the waits for the
    // lock or the sweeps around them.
    let start = now_mono_ns();
    let (mut tasks, mut filters_above, mut swapped) = (0u32, 0u32, false);
    for (&i, new) in members.iter().zip(progs) {
        let c = &mut reg.containers[i];
        // SAFETY: as above.
        let current = unsafe { orig_insns((*c.filter.as_ptr()).prog) };
        if new.same_as(current) {
            // Nothing to publish (a repeated switch): keep nothing more.
            continue;
        }
        // Publish the kept copy again if there is one: phases ping-pong
        // without growing.  (`new` is then dropped: never published.)
        // Cannot fail after check_room().
        let new = c.old.make_room(new, current.len())?;
        let (stats, old) = c.filter.swap(new, mask);
        c.old.keep(old);
        tasks = tasks.saturating_add(stats.tasks);
        filters_above = filters_above.saturating_add(stats.filters_above);
        swapped = true;
    }
    let swap_ns = now_mono_ns().saturating_sub(start);
    let now = now_real_ns();
    for &i in members {
        let c = &mut reg.containers[i];
        c.phase = args.phase;
        c.allowed = args.allowed;
        c.switches = c.switches.saturating_add(1);
        c.last_switch_ns = now;
    }
    reg.settle();
    drop(reg);
    let wait_start = now_mono_ns();
    if swapped && args.flags & abi::SWITCH_DEFER_FREE == 0 {
        crate::filter::wait_for_old_runs();
    }
    let elapsed_ns = swap_ns.saturating_add(now_mono_ns().saturating_sub(wait_start));
    Ok(SwitchOut { tasks, filters_above, cached_allow: mask.count(), elapsed_ns })
}

/// Forgets container `cid` (its tasks keep their current filter; programs
/// kept for it stay until it dies).
pub(crate) fn unregister(cid: &[u8; CID_LEN]) -> Result {
    if !valid_cid(cid) {
        return Err(EINVAL);
    }
    let mut reg = REGISTRY.lock();
    reg.settle();
    reg.check_caller()?;
    let members = reg.members(cid)?;
    let keeping = members.iter().filter(|&&i| !reg.containers[i].old.is_empty()).count();
    reg.retired.reserve(keeping, GFP_KERNEL)?;
    // Last first, so the positions before stay valid.
    for &i in members.iter().rev() {
        if let Ok(c) = reg.containers.remove(i) {
            if !c.old.is_empty() {
                retire(&mut reg.retired, c);
            }
        }
    }
    reg.settle();
    Ok(())
}

/// Runs from the sweeper's work item: sweeps, and either queues the sweeper
/// again or drops the module reference once nothing is kept.
fn sweep_tick(this: Arc<Sweeper>) {
    let mut reg = REGISTRY.lock();
    reg.sweep();
    if reg.needs_pin() {
        Sweeper::schedule(this);
        return;
    }
    // INVARIANT: unpinned below, and the sweeper is not queued again.
    reg.pinned = false;
    drop(reg);
    drop(this);
    // SAFETY: taken by `settle()` when `pinned` became true; module exit
    // flushes this work item, so the rest of this function is waited for.
    unsafe { sweep::unpin_module() };
}

/// Module unload: drops every container (their tasks keep the program they
/// run now; seccomp frees it with the filter), then waits for the sweeper.
pub(crate) fn release_all() {
    let mut reg = REGISTRY.lock();
    // Unloading happens only while unpinned, so nothing is kept; should a
    // kept program remain, a reader may hold it: leak it (`keep.rs`).
    for c in reg.containers.iter_mut() {
        core::mem::replace(&mut c.old, OldProgs::new()).leak("unloading");
    }
    for r in reg.retired.iter_mut() {
        core::mem::replace(&mut r.old, OldProgs::new()).leak("unloading");
    }
    // Replace the vectors, not just clear them: the static registry is never
    // dropped, so a cleared vector's buffer would leak at every unload.
    reg.containers = KVec::new();
    reg.retired = KVec::new();
    let sweeper = reg.sweeper.take();
    drop(reg);
    if let Some(s) = sweeper {
        s.flush();
    }
}
