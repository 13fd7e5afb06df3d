//! The per-container monitor of `speaker-runtime`: a small daemon started
//! by `create` that
//!
//! 1. attaches to the container's first process with `PTRACE_SEIZE`
//!    (`create` returns only once it has: the process is then waiting for
//!    `start` in crun's exec fifo and cannot have exec'ed);
//! 2. at that process's exec of the container command (after `start`),
//!    reads its `Seccomp_filters` count, registers its top filter (the boot
//!    filter crun just installed) with speaker.ko, and detaches: the
//!    command runs;
//! 3. from then on watches the readiness condition and, once it holds,
//!    switches the container to its running phase (unless `kill` already
//!    moved it to shutdown) and records when;
//! 4. all along, follows the kernel log for the container's denials (its
//!    filter is installed with `SECCOMP_FILTER_FLAG_LOG`), attributing each
//!    as it arrives (`denials.jsonl`, and a line in the log), and exits
//!    with the container.
//!
//! Its log is `/run/speaker/<id>/monitor.log`.
use anyhow::{bail, Context, Result};
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::container::denials::{follow, Denial};
use crate::container::notify::listener::receive_fd;
use crate::container::notify::supervisor::{load_policy, supervise};
use crate::container::ready::{Readiness, Waited};
use crate::container::register::register_at_exec_stop;
use crate::container::state::{now_unix_ms, ContainerState};
use crate::container::switch::switch_if;
use crate::device::Device;
use crate::profile::schema::Phase;
use crate::sys::process::daemon;
use crate::sys::procfs::pid_alive;

/// Appends a line to the container's log (if its state is still there).
fn log(cid: &str, msg: &str) {
    if let Ok(st) = ContainerState::load(cid) {
        st.log(msg);
    }
}

/// Records a failure in the state (for `start` to report) and the log.
fn fail(cid: &str, msg: &str) {
    if let Ok(_lock) = ContainerState::lock(cid) {
        if let Ok(mut st) = ContainerState::load(cid) {
            st.log(&format!("error: {msg}"));
            if let Some(rt) = st.runtime.as_mut() {
                rt.error = Some(msg.to_string());
            }
            let _ = st.save();
        }
    }
}

/// Starts the monitor daemon (double fork, own session, stdio on
/// /dev/null); returns its pid once it has attached to `pid`.
pub fn spawn(id: &str, pid: Pid) -> Result<i32> {
    let id = id.to_string();
    daemon(|| seize(pid), move |()| run(&id, pid))
}

/// The unix socket a notify-engine container's monitor receives its
/// filter's listener on (crun's `linux.seccomp.listenerPath`).
pub fn notify_socket(id: &str) -> PathBuf {
    ContainerState::dir_of(id).join("notify.sock")
}

/// Starts the monitor of a notify-engine container before crun creates
/// it: returns its pid once it listens on [`notify_socket`].
pub fn spawn_notify(id: &str) -> Result<i32> {
    let path = notify_socket(id);
    let _ = std::fs::remove_file(&path);
    let id = id.to_string();
    daemon(
        move || UnixListener::bind(&path).with_context(|| format!("cannot listen on {} for the seccomp listener", path.display())),
        move |listener| run_notify(&id, listener),
    )
}

/// The notify engine's monitor: receives the listener of the container's
/// filter from crun (and one per process `exec` starts later), supervises
/// each in a thread, and then does what the kmod monitor does (readiness →
/// running) until the container exits.
fn run_notify(cid: &str, listener: UnixListener) {
    let policy = match load_policy(cid) {
        Ok(p) => std::sync::Arc::new(p),
        Err(e) => return fail(cid, &format!("{e:#}")),
    };
    {
        let cid = cid.to_string();
        std::thread::spawn(move || {
            let mut first = true;
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                match receive_listener(&conn) {
                    Ok(fd) => {
                        if first {
                            first = false;
                            if let Err(e) = mark_registered(&cid) {
                                log(&cid, &format!("warning: {e:#}"));
                            }
                        } else {
                            log(&cid, "supervising the filter of a process exec'ed into the container");
                        }
                        let (cid, policy) = (cid.clone(), policy.clone());
                        std::thread::spawn(move || {
                            let e = supervise(&cid, fd, &policy, |_, d| {
                                if let Some(d) = d {
                                    log(&cid, &format!("denial: {}", d.summary()));
                                }
                            });
                            log(&cid, &format!("warning: {e}"));
                        });
                    }
                    Err(e) => log(&cid, &format!("warning: {e:#}")),
                }
            }
        });
    }
    // The container's pid and the first listener (crun sends it during
    // `create`, which then records the pid).
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if !ContainerState::dir_of(cid).is_dir() {
            return;
        }
        if let Ok(st) = ContainerState::load(cid) {
            if st.pid > 0 && st.runtime.as_ref().is_some_and(|r| r.registered) {
                break Pid::from_raw(st.pid);
            }
        }
        if Instant::now() > deadline {
            return fail(cid, "crun did not hand over the seccomp listener within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let follower = spawn_follower(cid, pid);
    if let Err(e) = watch(cid, pid) {
        fail(cid, &format!("{e:#}"));
    }
    let _ = follower.join();
}

/// Receives one listener fd from crun's connection (see
/// `notify::listener::receive_fd`).
fn receive_listener(conn: &UnixStream) -> Result<OwnedFd> {
    receive_fd(conn).context("cannot receive the seccomp listener from crun")
}

/// Records that the monitor holds the container's listener (`start`
/// waits for it).
fn mark_registered(cid: &str) -> Result<()> {
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    if let Some(rt) = st.runtime.as_mut() {
        rt.registered = true;
    }
    st.save()?;
    st.log("holding the seccomp listener of the container's filter (notify engine, boot phase)");
    Ok(())
}

/// Step 1 (in the monitor process): attach.  Step 2 and 3 follow in [`run`].
pub fn seize(pid: Pid) -> Result<()> {
    ptrace::seize(pid, ptrace::Options::PTRACE_O_TRACEEXEC | ptrace::Options::PTRACE_O_EXITKILL)
        .with_context(|| format!("cannot attach to the container's first process {pid} (PTRACE_SEIZE)"))
}

/// Steps 2 and 3; returns when the monitor's work is done.
pub fn run(cid: &str, pid: Pid) {
    match wait_exec_and_register(cid, pid) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            fail(cid, &format!("{e:#}"));
            // Fail closed: a container meant to be slimmed must not run
            // with an unregistered boot filter.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            return;
        }
    }
    let follower = spawn_follower(cid, pid);
    if let Err(e) = watch(cid, pid) {
        fail(cid, &format!("{e:#}"));
    }
    let _ = follower.join();
}

/// Follows the kernel's audit records of the container's denials until it
/// is gone, storing each (both engines: under notify, the syscalls no phase
/// lists and those of processes exec'd after a switch are the kernel's
/// answers, not the supervisor's).
fn spawn_follower(cid: &str, pid: Pid) -> std::thread::JoinHandle<()> {
    let cid = cid.to_string();
    std::thread::spawn(move || {
        let gone = || !pid_alive(pid.as_raw()) || !ContainerState::dir_of(&cid).is_dir();
        let each = |d: &Denial| log(&cid, &format!("denial: {}", d.summary()));
        if let Err(e) = follow(Some(&cid), Duration::from_secs(1), gone, each) {
            log(&cid, &format!("warning: denials are not recorded: {e:#}"));
        }
    })
}

/// Waits for the exec; `Ok(false)` if the process died first.
fn wait_exec_and_register(cid: &str, pid: Pid) -> Result<bool> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, ev)) if ev == libc::PTRACE_EVENT_EXEC => break,
            Ok(WaitStatus::PtraceEvent(_, _, _)) => {
                // A group stop (SEIZE reports it as PTRACE_EVENT_STOP): let
                // the process stay stopped until it is continued.
                // SAFETY: PTRACE_LISTEN takes no addresses.
                unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0) };
            }
            Ok(WaitStatus::Stopped(_, sig)) => {
                let _ = ptrace::cont(pid, sig);
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => {
                log(cid, "the container's first process exited before its command started");
                return Ok(false);
            }
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => bail!("lost the container's first process {pid}: {e}"),
        }
    }
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    let boot = st.record(Phase::Boot).cloned().context("the state has no boot phase")?;
    let dev = Device::open()?;
    let count = register_at_exec_stop(&dev, st.kernel_id(), pid.as_raw(), Phase::Boot, boot.allowed)?;
    st.pid = pid.as_raw();
    st.started_unix_ms = now_unix_ms();
    if let Some(rt) = st.runtime.as_mut() {
        rt.registered = true;
    }
    st.save()?;
    ptrace::detach(pid, None).context("cannot let the container's command start (PTRACE_DETACH)")?;
    st.log(&format!("registered pid {pid} (its filter {count} of {count}, boot phase, {} syscalls)", boot.allowed));
    Ok(true)
}

fn watch(cid: &str, pid: Pid) -> Result<()> {
    let st = ContainerState::load(cid)?;
    let Some(spec) = st.runtime.as_ref().and_then(|r| r.ready.clone()) else {
        log(cid, "no readiness condition: the container stays in its boot phase until 'speaker-ctl switch'");
        return Ok(());
    };
    if st.record(Phase::Running).is_none() {
        log(cid, "the profile has no running phase: nothing to switch to");
        return Ok(());
    }
    let ready = Readiness::parse_for_runtime(&spec)?;
    log(cid, &format!("waiting for '{spec}'"));
    let started = Instant::now();
    if ready.wait_outside(pid.as_raw(), None, true) == Waited::Exited {
        log(cid, "the container exited before it was ready");
        return Ok(());
    }
    let waited = started.elapsed();
    let switched = switch_if(cid, Some(Phase::Running), |from| from == Phase::Boot)?;
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    if let Some(rt) = st.runtime.as_mut() {
        rt.ready_unix_ms = Some(now_unix_ms());
    }
    st.save()?;
    match switched {
        Some(s) => st.log(&format!(
            "ready ('{spec}') {} ms after the command started; switched {} -> {}: {} tasks, {:.1} ms",
            waited.as_millis(),
            s.from,
            s.to,
            s.report.tasks,
            s.report.elapsed_ns as f64 / 1e6
        )),
        None => st.log(&format!("ready ('{spec}') after {} ms, but the container already left its boot phase", waited.as_millis())),
    }
    Ok(())
}
