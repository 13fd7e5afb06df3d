//! The notify engine for the containers `speaker-ctl run` starts (the OCI
//! path gets its listener from crun instead: `runtime::monitor`).
//!
//! Hand-over of the listener, with no socket and no syscall the profile
//! must allow:
//!
//! 1. [`prepare`] writes the supervisor's table and the phase file (boot)
//!    and compiles the one filter (running → allow, the rest → notify);
//! 2. the container's first process installs it with
//!    `SECCOMP_FILTER_FLAG_NEW_LISTENER` (the listener is close-on-exec)
//!    and waits on a pipe before it execs the command;
//! 3. [`take_listener`] finds the listener among the first process's
//!    descriptors (`/proc/PID/fd`, `anon_inode:seccomp notify`) and copies
//!    it (`pidfd_getfd`), whatever the process is blocked in meanwhile (a
//!    notified syscall waits for an answer, and nobody answers yet);
//! 4. [`spawn_supervisor`] hands the copy to a daemon that answers every
//!    notification until the container is gone; only then is the first
//!    process let go, and its exec closes its own copy.
//!
//! The supervisor is the only holder of the listener from then on: if it
//! dies, every notified syscall fails with ENOSYS (fail-closed).
use anyhow::{bail, Context, Result};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::filter::from_running;
use super::listener::{kernel_has_wait_killable, take_fd, FLAG_WAIT_KILLABLE_RECV};
use super::phase;
use super::supervisor::{load_policy, save_policy, supervise};
use super::NotifyPolicy;
use crate::container::phases::CompiledPhase;
use crate::container::state::ContainerState;
use crate::profile::schema::Phase;
use crate::profile::{self, Mode, SockFilter};
use crate::sys::process::daemon;
use crate::sys::procfs::pid_alive;

/// The filter the first process installs, and its seccomp(2) flags.
pub struct NotifyFilter {
    pub prog: Vec<SockFilter>,
    pub flags: libc::c_ulong,
}

/// Step 1 for container `cid`: its table and phase file (boot, in `mode`)
/// in its state directory, and the filter made from its running phase.
pub fn prepare(cid: &str, phases: &[CompiledPhase], mode: Mode) -> Result<NotifyFilter> {
    let filters: Vec<(Phase, profile::PhaseFilter)> =
        phases.iter().filter_map(|p| p.filter.as_ref().map(|f| (p.phase, f.clone()))).collect();
    let Some((_, running)) = filters.iter().find(|(p, _)| *p == Phase::Running) else {
        bail!("container '{cid}': the notify engine needs a running phase in the profile (its filter is the running phase's)");
    };
    // An allowing default (a Docker-style denylist given with --running)
    // would send every syscall but the denied ones through the supervisor:
    // the container did not even start (seen with defaultAction
    // SCMP_ACT_ALLOW: speaker-ctl spun and the command never ran).
    if running.default_action.allows() {
        bail!(
            "container '{cid}': the notify engine needs a running phase that allows a list of syscalls (its default action is {}): give an allowlist, or use --engine kmod",
            running.default_action.scmp_name()
        );
    }
    let prog = profile::compile(&from_running(running))
        .with_context(|| format!("container '{cid}': cannot compile the notify engine's filter"))?;
    let dir = ContainerState::dir_of(cid);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    save_policy(cid, &NotifyPolicy::from_filters(&filters))?;
    phase::set(cid, Phase::Boot, mode).with_context(|| format!("container '{cid}': cannot write its phase file"))?;
    let flags = if kernel_has_wait_killable() { FLAG_WAIT_KILLABLE_RECV } else { 0 };
    Ok(NotifyFilter { prog, flags })
}

/// What a seccomp listener's `/proc/PID/fd` link reads.
const LISTENER_LINK: &str = "anon_inode:seccomp notify";

/// Step 3: a copy of the listener of `pid` (our traced child, which
/// installs its filter and then waits), or `None` if the child ended
/// before it had one (its own report says why).
pub fn take_listener(pid: Pid, within: Duration) -> Result<Option<OwnedFd>> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in dir.flatten() {
                let is_listener = std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == LISTENER_LINK);
                let fd = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok());
                if let (true, Some(fd)) = (is_listener, fd) {
                    return take_fd(pid.as_raw(), fd)
                        .map(Some)
                        .with_context(|| format!("cannot copy the seccomp listener of pid {pid} (pidfd_getfd)"));
                }
            }
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return Ok(None),
            // A signal before the exec (the child is traced): deliver it.
            Ok(WaitStatus::Stopped(_, sig)) => {
                let _ = nix::sys::ptrace::cont(pid, sig);
            }
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            bail!("pid {pid} installed no seccomp listener within {}s", within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Step 4: the supervisor daemon of container `cid` (first process `pid`)
/// with `listener`; returns its pid once it runs.  It answers until the
/// first process is gone or the container's state is removed, logging
/// denials to the container's log.  Forks: the caller is single-threaded.
pub fn spawn_supervisor(cid: &str, pid: Pid, listener: OwnedFd) -> Result<i32> {
    let cid = cid.to_string();
    let prepare = {
        let cid = cid.clone();
        move || load_policy(&cid)
    };
    let sup = daemon(prepare, move |policy: NotifyPolicy| {
        {
            let cid = cid.clone();
            std::thread::spawn(move || {
                let e = supervise(&cid, listener, &policy, |_, d| {
                    if let (Some(d), Ok(st)) = (d, ContainerState::load(&cid)) {
                        st.log(&format!("denial: {}", d.summary()));
                    }
                });
                if let Ok(st) = ContainerState::load(&cid) {
                    st.log(&format!("supervisor: {e}"));
                }
            });
        }
        while pid_alive(pid.as_raw()) && ContainerState::dir_of(&cid).is_dir() {
            std::thread::sleep(Duration::from_millis(200));
        }
    })?;
    Ok(sup)
}
