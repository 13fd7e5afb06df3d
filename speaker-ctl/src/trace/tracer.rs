//! The trace loop: the wait loop that follows every task it creates and records each
//! syscall-entry stop (`--mode ptrace`) or each `PTRACE_EVENT_SECCOMP` stop
//! (`--mode filter`, see [`super::filter`]).  Both modes share everything
//! else: fork/vfork/clone/exec following, signal re-injection, group-stops.
//!
//! Only the thread that seized the root may make ptrace requests and it
//! waits with `__WNOTHREAD`, so the children of speaker-ctl's other threads
//! (the workload, `--ready cmd:` probes) are never reaped here.  This must be
//! the process's main thread: speaker-ctl is a child subreaper, and orphans
//! are reparented to the first live thread of the group, i.e. the main one,
//! where this loop reaps them.
//!
//! Raw libc for waitpid and ptrace requests: nix's wrappers cannot carry
//! real-time signals (its `Signal` enum has none), and PTRACE_LISTEN and
//! PTRACE_GET_SYSCALL_INFO have no nix wrapper.
use crate::sys::output::errln;
use anyhow::{bail, Result};
use nix::errno::Errno;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::spawn::Root;
use super::state::TraceState;
use super::trap_filter::TrapFilter;
use crate::profile::Arch;
use crate::sys::fs::errno_text;

const PTRACE_EVENT_STOP: i32 = 128;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;
#[cfg(not(target_arch = "aarch64"))]
const NR_EXECVE: u64 = 59;
#[cfg(target_arch = "aarch64")]
const NR_EXECVE: u64 = 221;
/// Most stops handled before the filter is synced and they are resumed.
const MAX_BATCH: usize = 64;

/// `struct ptrace_syscall_info` (linux/ptrace.h), entry/seccomp layout.
#[repr(C)]
#[derive(Default)]
struct SyscallInfo {
    op: u8,
    pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    nr: u64,
    args: [u64; 6],
    ret_data: u32,
    pad2: u32,
}

/// Resumes `pid` (`PTRACE_SYSCALL` with syscall-stops, else `PTRACE_CONT`),
/// delivering `sig` (0: none).  A vanished tracee (ESRCH: SIGKILLed
/// meanwhile) is not an error: its exit is reported by waitpid.
fn resume(pid: i32, sig: i32, syscall_stops: bool) {
    let req = if syscall_stops { libc::PTRACE_SYSCALL } else { libc::PTRACE_CONT };
    // SAFETY: plain ptrace request on our tracee.
    unsafe { libc::ptrace(req, pid, 0, sig as libc::c_long) };
}

fn listen(pid: i32) {
    // SAFETY: plain ptrace request on our tracee.
    unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid, 0, 0) };
}

fn event_msg(pid: i32) -> Option<u64> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long to &msg.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut _) };
    (r == 0).then_some(msg as u64)
}

/// How the trace ended.
pub struct TraceEnd {
    /// The root's wait status (`None` if it was never reaped, which would be
    /// a bug).
    pub root_status: Option<i32>,
    /// The root's exec failed with this errno (negative: installing the
    /// filter-mode seccomp filter failed with minus this errno).
    pub exec_error: Option<i32>,
}

/// What to do with a stopped tracee once the batch is over.
enum Resume {
    /// `PTRACE_SYSCALL`/`PTRACE_CONT` with this signal (0: none).
    Go(i32),
    /// `PTRACE_LISTEN` (group-stop).
    Listen,
}

struct Task {
    /// Syscalls are recorded (the root: only from its exec on; before, it
    /// runs speaker-ctl's code).
    recording: bool,
}

/// The traced tasks, as far as the wait loop knows them.
struct Tasks {
    /// Tasks seen stopped at least once.
    known: HashMap<i32, Task>,
    /// Tasks announced by a fork/vfork/clone event whose first stop has not
    /// been seen yet.
    pending: HashSet<i32>,
    /// Unknown pids whose exit was reaped (a new task SIGKILLed before its
    /// creator's event was handled, or an untraced orphan); bounded.
    dead_unknown: HashSet<i32>,
}

impl Tasks {
    fn live(&self) -> usize {
        self.known.len() + self.pending.len()
    }
}

/// Follows the tracees until none is left: every task announced or seen has
/// exited (or waitpid says ECHILD).  Untraced orphans reparented to us (of the
/// workload, say) do not keep the trace going.
///
/// Without `filter` (ptrace mode) every task runs with syscall-stops and is
/// resumed as soon as its stop is handled.  With it (filter mode) tasks run
/// with `PTRACE_CONT`; the stops already pending are handled as one batch,
/// then the filter is synced (one switch at most) and only then are the
/// stopped tasks resumed.
pub fn trace_loop(state: &TraceState, root: Root, filter: Option<&TrapFilter>) -> Result<TraceEnd> {
    let root_pid = root.pid;
    let syscall_stops = filter.is_none();
    let mut t = Tasks { known: HashMap::new(), pending: HashSet::new(), dead_unknown: HashSet::new() };
    t.known.insert(root_pid, Task { recording: false });
    state.tasks_seen.fetch_add(1, Ordering::Relaxed);
    state.live_tasks.store(1, Ordering::Relaxed);
    let mut names: HashMap<(Arch, u64), Option<String>> = HashMap::new();
    let mut root_status = None;
    let mut info_error_reported = false;
    // Stopped tasks to resume at the end of the batch.
    let mut stopped: Vec<(i32, Resume)> = Vec::new();
    let mut fatal: Option<anyhow::Error> = None;

    let flush = |stopped: &mut Vec<(i32, Resume)>| {
        if let Some(f) = filter {
            f.sync(|| {
                let phase = state.phase();
                (phase, state.seen(phase))
            });
        }
        for (pid, r) in stopped.drain(..) {
            match r {
                Resume::Go(sig) => resume(pid, sig, syscall_stops),
                Resume::Listen => listen(pid),
            }
        }
    };

    while root_status.is_none() || t.live() > 0 {
        let mut status = 0;
        let nohang = if stopped.is_empty() { 0 } else { libc::WNOHANG };
        // SAFETY: valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD | nohang) };
        if pid == 0 {
            // No other stop pending: end of the batch.
            flush(&mut stopped);
            continue;
        }
        if pid < 0 {
            match Errno::last_raw() {
                libc::EINTR => continue,
                libc::ECHILD => break,
                e => {
                    flush(&mut stopped);
                    bail!("waitpid failed while tracing: {}", errno_text(e))
                }
            }
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if t.known.remove(&pid).is_none() && !t.pending.remove(&pid) {
                if t.dead_unknown.len() > 4096 {
                    t.dead_unknown.clear();
                }
                t.dead_unknown.insert(pid);
            }
            state.live_tasks.store(t.live(), Ordering::Relaxed);
            if pid == root_pid {
                root_status = Some(status);
                state.root_alive.store(false, Ordering::Release);
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let recording = match t.known.entry(pid) {
            Entry::Occupied(task) => task.get().recording,
            Entry::Vacant(v) => {
                v.insert(Task { recording: true });
                if !t.pending.remove(&pid) {
                    state.tasks_seen.fetch_add(1, Ordering::Relaxed);
                }
                state.live_tasks.store(t.live(), Ordering::Relaxed);
                true
            }
        };
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;

        let action = if sig == libc::SIGTRAP | 0x80 || event == libc::PTRACE_EVENT_SECCOMP {
            // Syscall-entry/exit stop (ptrace mode) or seccomp stop (filter
            // mode): record the syscall.
            let seccomp_stop = event == libc::PTRACE_EVENT_SECCOMP;
            if seccomp_stop && pid == root_pid {
                if let Some(f) = filter.filter(|f| !f.registered()) {
                    // The traced command's exec, trapped by the filter it
                    // has just installed: make that filter speaker.ko's.
                    if let Err(e) = f.register(pid, state.phase()) {
                        // SAFETY: our own child, before its exec.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        fatal.get_or_insert(e);
                    }
                }
            }
            if recording {
                let mut info = SyscallInfo::default();
                // SAFETY: the kernel writes at most size_of::<SyscallInfo>() bytes.
                let r = unsafe {
                    libc::ptrace(libc::PTRACE_GET_SYSCALL_INFO, pid, std::mem::size_of::<SyscallInfo>(), &mut info as *mut SyscallInfo)
                };
                if r <= 0 {
                    let e = Errno::last_raw();
                    if e != libc::ESRCH && !info_error_reported {
                        info_error_reported = true;
                        errln!(
                            "speaker-ctl: warning: PTRACE_GET_SYSCALL_INFO failed ({}): \
                             syscalls are not recorded (Linux 5.3 or later is needed)",
                            errno_text(e)
                        );
                    }
                } else if info.op == PTRACE_SYSCALL_INFO_ENTRY || (seccomp_stop && info.op == PTRACE_SYSCALL_INFO_SECCOMP) {
                    if let Some(abi) = Arch::from_audit(info.arch, info.nr) {
                        record(state, &mut names, abi, info.nr, seccomp_stop);
                    }
                }
            }
            Resume::Go(0)
        } else if event == PTRACE_EVENT_STOP {
            if matches!(sig, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) {
                // Group-stop: stay stopped, as without a tracer, but let the
                // kernel tell us when SIGCONT (or a kill) arrives.
                Resume::Listen
            } else {
                // A new task's first stop, or the end of a listened stop.
                Resume::Go(0)
            }
        } else if event == libc::PTRACE_EVENT_EXEC {
            // The former thread id vanishes when a non-leader thread execs.
            if let Some(former) = event_msg(pid) {
                let former = former as i32;
                if former != pid && t.known.remove(&former).is_some() {
                    state.live_tasks.store(t.live(), Ordering::Relaxed);
                }
            }
            if pid == root_pid && !state.exec_done.load(Ordering::Acquire) {
                // The first exec (CMD itself) counts in boot: it was made by
                // our child before syscall-stops were on, so count it here.
                if let Some(task) = t.known.get_mut(&pid) {
                    task.recording = true;
                }
                record(state, &mut names, Arch::native(), NR_EXECVE, false);
                state.exec_done.store(true, Ordering::Release);
            }
            Resume::Go(0)
        } else if matches!(event, libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE) {
            // The new task shows up by itself (its own PTRACE_EVENT_STOP),
            // possibly before this event: until then it is pending.
            if let Some(new) = event_msg(pid) {
                let new = new as i32;
                if !t.known.contains_key(&new) && !t.dead_unknown.remove(&new) {
                    t.pending.insert(new);
                    state.tasks_seen.fetch_add(1, Ordering::Relaxed);
                    state.live_tasks.store(t.live(), Ordering::Relaxed);
                }
            }
            Resume::Go(0)
        } else if event != 0 {
            Resume::Go(0)
        } else {
            // Signal-delivery-stop: deliver the signal as if untraced.
            Resume::Go(sig)
        };
        stopped.push((pid, action));
        if filter.is_none() || stopped.len() >= MAX_BATCH {
            flush(&mut stopped);
        }
    }
    flush(&mut stopped);
    if let Some(e) = fatal {
        return Err(e);
    }

    let exec_error = if state.exec_done.load(Ordering::Acquire) { None } else { root.exec_error() };
    Ok(TraceEnd { root_status, exec_error })
}

/// Counts one syscall (`stop`: one seccomp stop) in the current phase.
fn record(state: &TraceState, names: &mut HashMap<(Arch, u64), Option<String>>, abi: Arch, nr: u64, stop: bool) {
    let ms = state.t0.elapsed().as_millis() as u64;
    let phase = state.phase();
    let mut rec = state.rec();
    if stop {
        rec.count_stop(phase, ms);
    }
    rec.record(phase, abi, nr, ms, || names.entry((abi, nr)).or_insert_with(|| abi.syscall_name(nr)).clone());
}
