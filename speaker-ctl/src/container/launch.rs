//! Starting a container: new PID, mount, UTS and IPC namespaces (network
//! optional), the boot filter installed in the first process before it
//! execs the command, and the registration with speaker.ko.
//!
//! Hand-shake between speaker-ctl (parent) and the container's first
//! process (child):
//!
//! 1. the child sets up its namespaces, asks to be traced by its parent
//!    (`PTRACE_TRACEME`), installs the boot filter and execs the command;
//! 2. the successful exec stops the child (`SIGTRAP`) before the command
//!    runs a single instruction; the parent reads the child's
//!    `Seccomp_filters` count from /proc, registers the child's top filter
//!    with speaker.ko (the count proves that filter is the one just
//!    installed, and the stopped command cannot have stacked another),
//!    saves the state and detaches: the command starts.
//!
//! The only syscall made under the boot filter before the command runs is
//! `execve`, which every traced boot phase contains.  Setup failures are
//! reported over a close-on-exec pipe.
//!
//! Under the notify engine the child installs the notify filter instead
//! and waits on a second pipe until the parent has taken its listener and
//! started the supervisor (see [`super::notify::run`]); the rest is the
//! same, without speaker.ko.
use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use std::ffi::CString;
use std::io::{Read, Write};

use std::os::fd::AsRawFd;

use super::confine::Confinement;
use super::engine::Engine;
use super::notify::listener::install_with_listener;
use super::notify::run::{prepare, spawn_supervisor, take_listener, NotifyFilter};
use super::phases::CompiledPhase;
use super::register::register_at_exec_stop;
use super::rootfs::{self, Volume};
use super::seccomp;
use super::state::{now_unix_ms, ContainerState, PhaseRecord};
use crate::device::{self, Device};
use crate::profile::schema::Phase;
use crate::profile::Mode;
use crate::sys::fs::errno_text;
use crate::sys::process::{find_executable, pipe_cloexec};

/// A container to start.
pub struct NewContainer {
    pub cid: String,
    pub phases: Vec<CompiledPhase>,
    pub cmd: Vec<String>,
    pub net: bool,
    /// Detached: stdin from /dev/null, stdout and stderr to
    /// `/run/speaker/<cid>/output.log` (so the caller's pipes are not held).
    pub detach: bool,
    /// Capabilities, `no_new_privs`; the container always gets its own `/dev`.
    pub confine: Confinement,
    /// The host directories it may write; every other file is read-only.
    pub volumes: Vec<Volume>,
    /// Who enforces its phases.
    pub engine: Engine,
}

/// The filter the child installs.
enum Install<'a> {
    /// kmod: the boot phase's program (registered with speaker.ko).
    Boot(&'a [crate::profile::SockFilter]),
    /// notify: the one filter, with a listener; then wait on `go` (read end).
    Notify(&'a NotifyFilter, i32),
}

/// Child side; never returns.  Only async-signal-safe work after clone
/// (the parent is single-threaded, but keep it minimal anyway).
fn child(spec: &NewContainer, stdio: Option<(i32, i32)>, install: &Install, argv: &[CString], to_parent: &mut std::fs::File) -> isize {
    let fail = |to_parent: &mut std::fs::File, what: &str, err: nix::Error| -> isize {
        let _ = write!(to_parent, "F{what}: {}", err.desc());
        127
    };
    use nix::mount::{mount, MsFlags};
    if let Err(e) = mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>) {
        return fail(to_parent, "cannot make / private in the new mount namespace", e);
    }
    if let Err((what, e)) = rootfs::make_read_only(&spec.volumes) {
        return fail(to_parent, what, e);
    }
    if let Err(e) = mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>) {
        return fail(to_parent, "cannot mount /proc for the new PID namespace", e);
    }
    if let Err((what, e)) = rootfs::protect_proc() {
        return fail(to_parent, what, e);
    }
    if let Err(e) = nix::unistd::sethostname(&spec.cid) {
        return fail(to_parent, "cannot set the hostname", e);
    }
    if spec.net {
        if let Err(e) = loopback_up() {
            return fail(to_parent, "cannot bring up lo in the new network namespace", e);
        }
    }
    if let Some((null, log)) = stdio {
        for (from, to) in [(null, 0), (log, 1), (log, 2)] {
            if let Err(e) = nix::unistd::dup2(from, to) {
                return fail(to_parent, "cannot redirect the container's standard streams", e);
            }
        }
    }
    if let Err((what, e)) = spec.confine.apply() {
        return fail(to_parent, what, e);
    }
    if let Err(e) = nix::sys::ptrace::traceme() {
        return fail(to_parent, "cannot be traced by speaker-ctl (PTRACE_TRACEME)", e);
    }
    match install {
        Install::Boot(boot) => {
            if let Err(e) = seccomp::install(boot) {
                let _ = write!(to_parent, "Fcannot install the boot filter: {e}");
                return 127;
            }
        }
        Install::Notify(f, go) => match install_with_listener(&f.prog, f.flags) {
            Ok(listener) => {
                // Kept open (close-on-exec) for the parent to copy; then
                // wait for its go.  The read may itself be notified: it
                // returns (or fails) once the supervisor answers.
                std::mem::forget(listener);
                let mut b = [0u8; 1];
                let _ = nix::unistd::read(*go, &mut b);
            }
            Err(e) => {
                let _ = write!(to_parent, "Fcannot install the notify engine's filter: {e}");
                return 127;
            }
        },
    }
    // speaker-ctl (a Rust program) ignores SIGPIPE, and an ignored signal
    // stays ignored across execve: the command gets the default back, as
    // under crun or a shell (`yes | head -1` must end `yes`).
    // SAFETY: signal(2) is async-signal-safe; SIG_DFL is a valid handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // Only execve runs under the boot filter before the command; the
    // report below is best effort (the boot filter may deny write).
    let err = nix::unistd::execvp(&argv[0], argv).unwrap_err();
    let _ = write!(to_parent, "E{}", err as i32);
    127
}

fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let s = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: ifreq is plain data; zero is a valid initial value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[..2].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char]);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which is valid.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(nix::Error::last());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}

/// Starts the container in enforce mode; returns its state (saved) once
/// the command runs.
pub fn launch(spec: NewContainer) -> Result<ContainerState> {
    launch_in(spec, Mode::Enforce)
}

/// Like [`launch`], with the boot phase in mode `mode`.
pub fn launch_in(spec: NewContainer, mode: Mode) -> Result<ContainerState> {
    device::encode_cid(&spec.cid)?;
    let dev = match spec.engine {
        Engine::Kmod => Some(Device::open()?),
        Engine::Notify => None,
    };
    match ContainerState::load(&spec.cid) {
        Ok(old) if old.alive() => bail!("container '{}' already exists (pid {}); stop it first or pick another --name", spec.cid, old.pid),
        Ok(_) => ContainerState::remove(&spec.cid),
        Err(_) => {}
    }
    if let Some(dev) = &dev {
        if !dev.status(Some(&spec.cid))?.is_empty() {
            bail!("speaker.ko already has a container '{}'; pick another --name", spec.cid);
        }
    }
    let boot = spec.phases.iter().find(|p| p.phase == Phase::Boot).ok_or_else(|| anyhow!("no boot phase"))?;
    if let Err(e) = find_executable(&spec.cmd[0]) {
        let hint = match (e, spec.cmd[0].contains('/')) {
            (nix::errno::Errno::ENOENT, true) => " (not found)",
            (nix::errno::Errno::ENOENT, false) => " (not found in PATH)",
            _ => "",
        };
        bail!("cannot execute '{}': {}{hint}", spec.cmd[0], errno_text(e as i32));
    }
    let argv: Vec<CString> = spec
        .cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| anyhow!("argument {a:?} contains a NUL byte")))
        .collect::<Result<_>>()?;

    let stdio_files = if spec.detach {
        let dir = ContainerState::dir_of(&spec.cid);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = dir.join("output.log");
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        let out = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        Some((null, out))
    } else {
        None
    };
    let stdio = stdio_files.as_ref().map(|(n, o)| (n.as_raw_fd(), o.as_raw_fd()));
    let notify = match spec.engine {
        Engine::Notify => Some(prepare(&spec.cid, &spec.phases, mode).inspect_err(|_| ContainerState::remove(&spec.cid))?),
        Engine::Kmod => None,
    };
    let (go_r, mut go_w) = pipe_cloexec().context("cannot create a pipe")?;
    let (mut up_r, mut up_w) = pipe_cloexec().context("cannot create a pipe")?;
    let mut flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if spec.net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut stack = vec![0u8; 256 * 1024];
    let boot_prog = boot.program(mode).to_vec();
    let install = match &notify {
        Some(f) => Install::Notify(f, go_r.as_raw_fd()),
        None => Install::Boot(&boot_prog),
    };
    // SAFETY: the child runs `child()` on its own stack copy without CLONE_VM
    // (like fork); it only uses memory it owns in its copy and ends in exec
    // or _exit (the returned value becomes its exit status).
    let pid =
        unsafe { nix::sched::clone(Box::new(|| child(&spec, stdio, &install, &argv, &mut up_w)), &mut stack, flags, Some(libc::SIGCHLD)) }
            .with_context(|| format!("cannot create the namespaces of container '{}' (needs root)", spec.cid))?;
    drop(up_w);
    drop(go_r);
    drop(stdio_files);
    // notify: the listener, to the supervisor; then the child may exec.
    let mut supervisor = None;
    if notify.is_some() {
        let started = take_listener(pid, std::time::Duration::from_secs(30)).and_then(|l| match l {
            Some(l) => spawn_supervisor(&spec.cid, pid, l).map(Some),
            None => Ok(None),
        });
        match started {
            Ok(s) => supervisor = s,
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                ContainerState::remove(&spec.cid);
                return Err(e.context(format!("container '{}': cannot hand its seccomp listener to a supervisor", spec.cid)));
            }
        }
        let _ = go_w.write_all(b"g");
    }
    drop(go_w);

    // Wait for the exec stop (or the child's death before it).
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGTRAP)) => break,
            Ok(WaitStatus::Stopped(_, sig)) => {
                // A signal before the exec: deliver it as if untraced.
                let _ = nix::sys::ptrace::cont(pid, sig);
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(_) => {
                let mut msg = String::new();
                let _ = up_r.read_to_string(&mut msg);
                ContainerState::remove(&spec.cid);
                if let Some(m) = msg.strip_prefix('F') {
                    bail!("container '{}': {m}", spec.cid);
                }
                if let Some(errno) = msg.strip_prefix('E').and_then(|e| e.parse::<i32>().ok()) {
                    bail!("cannot execute '{}': {}", spec.cmd[0], std::io::Error::from_raw_os_error(errno));
                }
                bail!("container '{}' died before its command started (does its boot phase allow execve?)", spec.cid);
            }
            Ok(_) => {}
        }
    }
    let register = || -> Result<ContainerState> {
        if let Some(dev) = &dev {
            register_at_exec_stop(dev, &spec.cid, pid.as_raw(), Phase::Boot, boot.allowed)?;
        }
        let state = ContainerState {
            cid: spec.cid.clone(),
            pid: pid.as_raw(),
            cmd: spec.cmd.clone(),
            started_unix_ms: now_unix_ms(),
            phases: spec.phases.iter().map(PhaseRecord::of).collect(),
            current: Phase::Boot,
            last_switch_unix_ms: None,
            kernel_id: None,
            runtime: None,
            mode,
            switches: Vec::new(),
            reload: None,
            engine: spec.engine,
        };
        state.save()?;
        state.save_programs(&spec.phases)?;
        if let Some(sup) = supervisor {
            state.log(&format!("notify engine: supervisor pid {sup} holds the seccomp listener (boot phase)"));
        }
        Ok(state)
    };
    let state = match register() {
        Ok(s) => s,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            if let Some(dev) = &dev {
                let _ = dev.unregister(&spec.cid);
            }
            ContainerState::remove(&spec.cid);
            return Err(e);
        }
    };
    // Detach: the command starts under its boot filter.
    nix::sys::ptrace::detach(pid, None).context("cannot let the container's command start (PTRACE_DETACH)")?;
    Ok(state)
}
