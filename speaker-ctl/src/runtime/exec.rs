//! `exec` into a speaker container (`docker exec`, Kubernetes exec probes,
//! health checks): crun starts the process under the current phase's exec
//! filter, and speaker-runtime adds that filter to the container in
//! speaker.ko (`SPEAKER_IOC_ADD`), so that every later switch reaches the
//! process too and it is refused as a caller of `/dev/speaker` like the
//! container's own tasks.
//!
//! The container's lock is held from before crun starts the process until
//! its filter is added: no switch can come between the exec filter crun
//! installs (the current phase's) and the add.  A process that cannot be
//! added is killed (fail closed: it would keep its phase for its whole
//! life), unless it has already exited.
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::args::{command_index, ExecArgs};
use super::crun::Invocation;
use crate::container::engine::Engine;
use crate::container::state::ContainerState;
use crate::device::{Device, DeviceError};
use crate::sys::procfs;

/// How long crun may take to start the process.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `exec`: passed to crun unless `a.id` is one of speaker's containers.
pub fn exec(inv: &Invocation, a: &ExecArgs) -> Result<i32> {
    // Under the notify engine crun hands the process's listener to the
    // container's supervisor itself (listenerPath): nothing to add.
    if inv.ours(&a.id).is_none_or(|s| s.engine == Engine::Notify) {
        return inv.exec_crun();
    }
    let crun = inv.crun()?;
    let lock = ContainerState::lock(&a.id)?;
    // Read under the lock: the phase no switch can change until the add.
    let state = ContainerState::load(&a.id)?;
    // Where crun writes the process's pid: the caller's file, or ours.
    let (pid_file, ours) = match &a.pid_file {
        Some(p) => (p.clone(), false),
        None => (ContainerState::dir_of(&a.id).join(format!("exec-{}.pid", std::process::id())), true),
    };
    let _ = std::fs::remove_file(&pid_file);
    let mut line = inv.forwarded.clone();
    if ours {
        let at = command_index(&line).ok_or_else(|| anyhow!("exec: no command word in the line"))?;
        line.splice(at + 1..at + 1, [OsString::from("--pid-file"), pid_file.clone().into_os_string()]);
    }
    let mut child = Command::new(&crun).args(&line).spawn().with_context(|| format!("cannot execute {}", crun.display()))?;
    // Our own filters: crun, our child, inherits them below the exec filter.
    let below = procfs::seccomp_filter_count(std::process::id() as i32).unwrap_or(0);
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = read_pid(&pid_file) {
            break pid;
        }
        if let Some(status) = child.try_wait()? {
            // crun failed before the process started: its own message said why.
            return Ok(status.code().unwrap_or(1));
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            bail!("exec into container '{}': crun wrote no pid file within {}s", a.id, START_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if ours {
        let _ = std::fs::remove_file(&pid_file);
    }
    if let Err(e) = add(&state, pid, below) {
        // A process that has already exited (a zombie's filter is gone:
        // speaker.ko answers EINVAL or ESRCH) needs no adding.
        if procfs::pid_alive(pid) && !exited(pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            return Err(e.context(format!("exec into container '{}': the new process (pid {pid}) was killed", a.id)));
        }
    }
    drop(lock);
    let status = child.wait().context("cannot wait for crun exec")?;
    Ok(status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
}

/// Whether `pid` has exited (a zombie, or gone).
fn exited(pid: i32) -> bool {
    procfs::status_field(pid, "State").ok().flatten().is_none_or(|s| s.starts_with('Z') || s.starts_with('X'))
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok().filter(|p| *p > 0)
}

/// Adds the exec filter of process `pid` (on top of `below` inherited
/// filters) to `state`'s container.  Waits for crun to install it; a
/// process that already stacked a filter of its own is refused (its top
/// filter would not be the exec filter).  Ok if the process has exited.
fn add(state: &ContainerState, pid: i32, below: u32) -> Result<()> {
    let want = below + 1;
    let started = Instant::now();
    let count = loop {
        match procfs::seccomp_filter_count(pid) {
            Ok(n) if n >= want => break n,
            Ok(_) if started.elapsed() < START_TIMEOUT => std::thread::sleep(Duration::from_millis(2)),
            Ok(n) => bail!("its exec filter was never installed ({n} filters)"),
            Err(_) => return Ok(()),
        }
    };
    if count != want {
        bail!("it has {count} seccomp filters, want {want}: its own filter is stacked on the exec filter");
    }
    let rec = state.record(state.current).ok_or_else(|| anyhow!("no {} phase in the container's state", state.current))?;
    let dev = Device::open()?;
    match dev.add(state.kernel_id(), pid as u32, count, state.current.index(), rec.allowed) {
        Ok(()) => {
            state.log(&format!("exec: pid {pid} added under the {} phase", state.current));
            Ok(())
        }
        // ESRCH names either the container or the process: with the
        // container still registered, the process is gone or exiting
        // (do_exit() drops a task's filters before the task shows as a
        // zombie) and runs no more system calls.
        Err(DeviceError::Ioctl { err: nix::Error::ESRCH, .. }) if dev.status(Some(state.kernel_id())).is_ok_and(|v| !v.is_empty()) => {
            state.log(&format!("exec: pid {pid} exited before it could be added"));
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context("speaker.ko refused to add its filter to the container")),
    }
}
