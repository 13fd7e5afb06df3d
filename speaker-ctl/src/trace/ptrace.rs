//! The ptrace side: starting the traced command under `PTRACE_SEIZE` and the
//! wait loop that follows every task it creates and records each
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
use anyhow::{bail, Result};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;

use super::filter::FilterCtl;
use super::record::{syscall_name, Abi};
use super::session::Shared;
use crate::container::seccomp;
use crate::profile::schema::Phase;
use crate::profile::SockFilter;

const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

const PTRACE_EVENT_STOP: i32 = 128;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;
const NR_EXECVE: u64 = 59;
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

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn strerror(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    // "No such file or directory (os error 2)" -> "No such file or directory"
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Resumes `pid` (`PTRACE_SYSCALL` with syscall-stops, else `PTRACE_CONT`),
/// delivering `sig` (0: none).  A vanished tracee (ESRCH: SIGKILLed
/// meanwhile) is not an error: its exit is reported by waitpid.
fn resume(pid: i32, sig: i32, syscall_stops: bool) {
    let req = if syscall_stops {
        libc::PTRACE_SYSCALL
    } else {
        libc::PTRACE_CONT
    };
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

/// How the traced command's standard streams are set up.
#[derive(Default)]
pub struct ChildIo {
    /// Replaces stdin (`/dev/null` when our stdin is a terminal).
    pub stdin: Option<RawFd>,
    /// Replaces stdout (the `--ready log:` pipe).
    pub stdout: Option<RawFd>,
    /// Replaces stderr (the `--ready log:` pipe).
    pub stderr: Option<RawFd>,
}

/// The root task, seized and released towards its exec.
pub struct Root {
    pub pid: i32,
    /// Read end of a close-on-exec pipe: EOF when the exec succeeded, else
    /// the exec's errno (4 bytes).
    exec_err: OwnedFd,
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot create a pipe: {}", strerror(errno()));
    }
    // SAFETY: both fds are fresh and ours.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// Forks the traced command (in its own process group), seizes it with
/// `PTRACE_SEIZE` and lets it exec `prog`.  With `filter` (filter mode) the
/// child is seized with `PTRACE_O_TRACESECCOMP` too and installs `filter` as
/// its seccomp filter once seized, right before the exec (whose own
/// syscall is then the first to trap).  Must be called on the thread that
/// runs [`trace_loop`].
pub fn spawn_seized(
    prog: &CString,
    argv: &[CString],
    io: &ChildIo,
    display: &str,
    filter: Option<&[SockFilter]>,
) -> Result<Root> {
    let (sync_r, sync_w) = pipe_cloexec()?;
    let (err_r, err_w) = pipe_cloexec()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let (sync_r_fd, sync_w_fd, err_w_fd) =
        (sync_r.as_raw_fd(), sync_w.as_raw_fd(), err_w.as_raw_fd());

    // SAFETY: between fork and exec the child only makes async-signal-safe
    // calls on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!(
            "cannot start '{display}': fork failed: {}",
            strerror(errno())
        );
    }
    if pid == 0 {
        // SAFETY: see above; the child never returns from this block.
        unsafe {
            libc::close(sync_w_fd);
            libc::setpgid(0, 0);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Rust ignores SIGPIPE; the command gets the default back, as with
            // std::process::Command.  Our own handlers are reset too.
            for sig in [libc::SIGPIPE, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            for (fd, target) in [(io.stdin, 0), (io.stdout, 1), (io.stderr, 2)] {
                if let Some(fd) = fd {
                    libc::dup2(fd, target);
                }
            }
            let mut b = 0u8;
            let r = loop {
                let r = libc::read(sync_r_fd, &mut b as *mut u8 as *mut libc::c_void, 1);
                if r < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break r;
            };
            if r != 1 {
                libc::_exit(127);
            }
            if let Some(filter) = filter {
                // Seized (with TRACESECCOMP) by now: RET_TRACE reaches us.
                if let Err(e) = seccomp::install(filter) {
                    // Told apart from an exec errno by its sign.
                    let e: i32 = -e.raw_os_error().unwrap_or(libc::EINVAL);
                    libc::write(err_w_fd, &e as *const i32 as *const libc::c_void, 4);
                    libc::_exit(127);
                }
            }
            libc::execv(prog.as_ptr(), argv_ptrs.as_ptr());
            let e: i32 = *libc::__errno_location();
            libc::write(err_w_fd, &e as *const i32 as *const libc::c_void, 4);
            libc::_exit(127);
        }
    }
    drop(sync_r);
    drop(err_w);

    let options = if filter.is_some() {
        OPTIONS | libc::PTRACE_O_TRACESECCOMP
    } else {
        OPTIONS
    };
    // SAFETY: plain ptrace request on our child.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, options as libc::c_long) };
    if r != 0 {
        let e = errno();
        // SAFETY: our own child; reap it so that no zombie is left.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
        }
        if e == libc::EPERM {
            bail!(
                "cannot trace '{display}': ptrace(PTRACE_SEIZE) was refused (Operation not \
                 permitted): check /proc/sys/kernel/yama/ptrace_scope (3 forbids ptrace, 2 needs \
                 CAP_SYS_PTRACE), give speaker-ctl CAP_SYS_PTRACE, and do not run it under \
                 another tracer (strace, gdb) or a seccomp policy that denies ptrace"
            );
        }
        bail!(
            "cannot trace '{display}': ptrace(PTRACE_SEIZE) failed: {}",
            strerror(e)
        );
    }
    // Let the child exec: its first ptrace stop is PTRACE_EVENT_EXEC (in
    // filter mode, the seccomp stop of that exec before it).
    let b = 1u8;
    // SAFETY: valid 1-byte buffer.
    unsafe {
        libc::write(
            sync_w.as_raw_fd(),
            &b as *const u8 as *const libc::c_void,
            1,
        )
    };
    drop(sync_w);
    Ok(Root {
        pid,
        exec_err: err_r,
    })
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
pub fn trace_loop(shared: &Shared, root: Root, filter: Option<&FilterCtl>) -> Result<TraceEnd> {
    let root_pid = root.pid;
    let syscall_stops = filter.is_none();
    let mut t = Tasks {
        known: HashMap::new(),
        pending: HashSet::new(),
        dead_unknown: HashSet::new(),
    };
    t.known.insert(root_pid, Task { recording: false });
    shared.tasks_seen.fetch_add(1, Ordering::Relaxed);
    shared.live_tasks.store(1, Ordering::Relaxed);
    let mut names: HashMap<(Abi, u64), Option<String>> = HashMap::new();
    let mut root_status = None;
    let mut info_error_reported = false;
    // Stopped tasks to resume at the end of the batch.
    let mut stopped: Vec<(i32, Resume)> = Vec::new();
    let mut fatal: Option<anyhow::Error> = None;

    let flush = |stopped: &mut Vec<(i32, Resume)>| {
        if let Some(f) = filter {
            f.sync(shared);
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
        let pid =
            unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD | nohang) };
        if pid == 0 {
            // No other stop pending: end of the batch.
            flush(&mut stopped);
            continue;
        }
        if pid < 0 {
            match errno() {
                libc::EINTR => continue,
                libc::ECHILD => break,
                e => {
                    flush(&mut stopped);
                    bail!("waitpid failed while tracing: {}", strerror(e))
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
            shared.live_tasks.store(t.live(), Ordering::Relaxed);
            if pid == root_pid {
                root_status = Some(status);
                shared.root_alive.store(false, Ordering::Release);
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
                    shared.tasks_seen.fetch_add(1, Ordering::Relaxed);
                }
                shared.live_tasks.store(t.live(), Ordering::Relaxed);
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
                    if let Err(e) = f.register(shared, pid) {
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
                    libc::ptrace(
                        libc::PTRACE_GET_SYSCALL_INFO,
                        pid,
                        std::mem::size_of::<SyscallInfo>(),
                        &mut info as *mut SyscallInfo,
                    )
                };
                if r <= 0 {
                    let e = errno();
                    if e != libc::ESRCH && !info_error_reported {
                        info_error_reported = true;
                        eprintln!(
                            "speaker-ctl: warning: PTRACE_GET_SYSCALL_INFO failed ({}): \
                             syscalls are not recorded (Linux 5.3 or later is needed)",
                            strerror(e)
                        );
                    }
                } else if info.op == PTRACE_SYSCALL_INFO_ENTRY
                    || (seccomp_stop && info.op == PTRACE_SYSCALL_INFO_SECCOMP)
                {
                    if let Some(abi) = Abi::from_audit(info.arch, info.nr) {
                        record(shared, &mut names, abi, info.nr, seccomp_stop);
                    }
                }
            }
            Resume::Go(0)
        } else if event == PTRACE_EVENT_STOP {
            if matches!(
                sig,
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
            ) {
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
                    shared.live_tasks.store(t.live(), Ordering::Relaxed);
                }
            }
            if pid == root_pid && !shared.exec_done.load(Ordering::Acquire) {
                // The first exec (CMD itself) counts in boot: it was made by
                // our child before syscall-stops were on, so count it here.
                if let Some(task) = t.known.get_mut(&pid) {
                    task.recording = true;
                }
                record(shared, &mut names, Abi::X86_64, NR_EXECVE, false);
                shared.exec_done.store(true, Ordering::Release);
            }
            Resume::Go(0)
        } else if matches!(
            event,
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE
        ) {
            // The new task shows up by itself (its own PTRACE_EVENT_STOP),
            // possibly before this event: until then it is pending.
            if let Some(new) = event_msg(pid) {
                let new = new as i32;
                if !t.known.contains_key(&new) && !t.dead_unknown.remove(&new) {
                    t.pending.insert(new);
                    shared.tasks_seen.fetch_add(1, Ordering::Relaxed);
                    shared.live_tasks.store(t.live(), Ordering::Relaxed);
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

    let mut exec_error = None;
    if !shared.exec_done.load(Ordering::Acquire) {
        let mut e = [0u8; 4];
        let mut f = std::fs::File::from(root.exec_err);
        if std::io::Read::read_exact(&mut f, &mut e).is_ok() {
            exec_error = Some(i32::from_ne_bytes(e));
        }
    }
    Ok(TraceEnd {
        root_status,
        exec_error,
    })
}

/// Counts one syscall (`stop`: one seccomp stop) in the current phase.
fn record(
    shared: &Shared,
    names: &mut HashMap<(Abi, u64), Option<String>>,
    abi: Abi,
    nr: u64,
    stop: bool,
) {
    let ms = shared.t0.elapsed().as_millis() as u64;
    let mut rec = shared.rec.lock().unwrap_or_else(|e| e.into_inner());
    let phase =
        Phase::from_index(shared.phase.load(Ordering::Acquire) as u32).unwrap_or(Phase::Boot);
    if stop {
        rec.count_stop(phase, ms);
    }
    rec.record(phase, abi, nr, ms, || {
        names
            .entry((abi, nr))
            .or_insert_with(|| syscall_name(abi, nr))
            .clone()
    });
}

/// The error message of a failed exec of the traced command.
pub fn exec_error_message(display: &str, errno: i32) -> String {
    format!("cannot execute '{display}': {}", strerror(errno))
}

/// Human form of an errno (without the "(os error N)" suffix).
pub fn errno_text(e: i32) -> String {
    strerror(e)
}
