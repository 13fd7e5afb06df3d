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
//!    moved it to shutdown), records when, and exits.
//!
//! Its log is `/run/speaker/<id>/monitor.log`.
use anyhow::{bail, Context, Result};
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::container::seccomp;
use crate::container::state::{now_unix_ms, pid_alive, ContainerState};
use crate::device::Device;
use crate::profile::schema::Phase;
use crate::trace::ready::port_listening;

/// When the running phase starts, for a runtime container.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    /// A TCP socket listens on this port in the container's network namespace.
    Port(u16),
    /// `sh -c CMD`, run by the monitor outside the container, exits 0.
    Cmd(String),
    /// The paper's heuristic, seen from outside: the container's listening
    /// ports (at least one) and its number of tasks stay the same for
    /// `windows` consecutive windows of `window`.
    Auto { window: Duration, windows: u32 },
}

impl Ready {
    pub fn parse(s: &str) -> Result<Ready> {
        match crate::trace::spec::ReadySpec::parse(s)? {
            crate::trace::spec::ReadySpec::Port(p) => Ok(Ready::Port(p)),
            crate::trace::spec::ReadySpec::Cmd(c) => Ok(Ready::Cmd(c)),
            crate::trace::spec::ReadySpec::Auto => Ok(Ready::Auto { window: Duration::from_millis(500), windows: 4 }),
            crate::trace::spec::ReadySpec::Log(_) => bail!(
                "readiness condition '{s}' reads the service's output, which the container engine owns; use port:, cmd: or auto (annotation io.speaker.ready overrides the profile's)"
            ),
        }
    }
}

/// Appends a line to the container's monitor log.
pub fn log(cid: &str, msg: &str) {
    let path = ContainerState::dir_of(cid).join("monitor.log");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{} {msg}", now_unix_ms());
    }
}

/// Records a failure in the state (for `start` to report) and the log.
fn fail(cid: &str, msg: &str) {
    log(cid, &format!("error: {msg}"));
    if let Ok(_lock) = ContainerState::lock(cid) {
        if let Ok(mut st) = ContainerState::load(cid) {
            if let Some(rt) = st.runtime.as_mut() {
                rt.error = Some(msg.to_string());
            }
            let _ = st.save();
        }
    }
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
    if let Err(e) = watch(cid, pid) {
        fail(cid, &format!("{e:#}"));
    }
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
    let count = seccomp::filter_count(pid.as_raw()).with_context(|| format!("cannot read the seccomp state of pid {pid}"))?;
    if count == 0 {
        bail!("the container's command started without a seccomp filter (does the OCI runtime apply linux.seccomp?)");
    }
    let dev = Device::open()?;
    dev.register(st.kcid(), pid.as_raw() as u32, count, Phase::Boot.index(), boot.allowed)
        .with_context(|| format!("cannot register container '{cid}' (pid {pid}) with speaker.ko"))?;
    st.pid = pid.as_raw();
    st.started_unix_ms = now_unix_ms();
    if let Some(rt) = st.runtime.as_mut() {
        rt.registered = true;
    }
    st.save()?;
    ptrace::detach(pid, None).context("cannot let the container's command start (PTRACE_DETACH)")?;
    log(cid, &format!("registered pid {pid} (its filter {count} of {count}, boot phase, {} syscalls)", boot.allowed));
    Ok(true)
}

/// The container's listening TCP ports and task count (for `auto`).
fn activity(pid: Pid) -> Option<(Vec<u16>, usize)> {
    let mut ports = Vec::new();
    for f in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) {
            ports.extend(crate::trace::ready::listening_ports(&text));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    // Tasks of the container: every process in its PID namespace shows up
    // in the first process's /proc/<pid>/task only for its own threads, so
    // count the threads of all processes whose pid namespace is the same.
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let mut tasks = 0;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(p) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if std::fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&ns) {
            tasks += std::fs::read_dir(format!("/proc/{p}/task")).map(|d| d.count()).unwrap_or(0);
        }
    }
    Some((ports, tasks))
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
    let ready = Ready::parse(&spec)?;
    log(cid, &format!("waiting for '{spec}'"));
    let started = Instant::now();
    let mut last: Option<(Vec<u16>, usize)> = None;
    let mut stable = 0;
    loop {
        if !pid_alive(pid.as_raw()) {
            log(cid, "the container exited before it was ready");
            return Ok(());
        }
        let now_ready = match &ready {
            Ready::Port(p) => port_listening(pid.as_raw(), *p) == Some(true),
            Ready::Cmd(c) => std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(c)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
            Ready::Auto { windows, .. } => {
                let a = activity(pid);
                if a.is_some() && a == last && a.as_ref().map(|(p, _)| !p.is_empty()).unwrap_or(false) {
                    stable += 1;
                } else {
                    stable = 0;
                }
                last = a;
                stable >= *windows
            }
        };
        if now_ready {
            break;
        }
        std::thread::sleep(match &ready {
            Ready::Port(_) => Duration::from_millis(50),
            Ready::Cmd(_) => Duration::from_millis(200),
            Ready::Auto { window, .. } => *window,
        });
    }
    let waited = started.elapsed();
    let switched = crate::commands::switch::switch_when(cid, Some(Phase::Running), |from| from == Phase::Boot)?;
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    if let Some(rt) = st.runtime.as_mut() {
        rt.ready_unix_ms = Some(now_unix_ms());
    }
    st.save()?;
    match switched {
        Some((from, to, r)) => log(
            cid,
            &format!(
                "ready ('{spec}') {} ms after the command started; switched {from} -> {to}: {} tasks, {:.1} ms",
                waited.as_millis(),
                r.tasks,
                r.elapsed_ns as f64 / 1e6
            ),
        ),
        None => log(cid, &format!("ready ('{spec}') after {} ms, but the container already left its boot phase", waited.as_millis())),
    }
    Ok(())
}
