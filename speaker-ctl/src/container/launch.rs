//! Starting a container: new PID, mount, UTS and IPC namespaces (network
//! optional), the boot filter installed in the first process before it
//! execs the command, and the registration with speaker.ko.
//!
//! Hand-shake between speaker-ctl (parent) and the container's first
//! process (child), over two close-on-exec pipes:
//!
//! 1. the child sets up its namespaces, installs the boot filter and
//!    writes `I`;
//! 2. the parent reads the child's `Seccomp_filters` count from /proc,
//!    registers the child's top filter with speaker.ko (the count proves
//!    that filter is the one just installed), saves the state and writes
//!    `G`;
//! 3. the child execs the command; if exec fails it writes `E` and the
//!    errno, otherwise the parent reads EOF.
//!
//! The boot profile must therefore allow `read`, `write` and `execve`.
use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use super::phases::CompiledPhase;
use super::seccomp;
use super::state::{now_unix_ms, ContainerState, PhaseRecord};
use crate::device::{self, Device};
use crate::profile::schema::Phase;

/// What to start.
pub struct LaunchSpec {
    pub cid: String,
    pub phases: Vec<CompiledPhase>,
    pub cmd: Vec<String>,
    pub net: bool,
    /// Detached: stdin from /dev/null, stdout and stderr to
    /// `/run/speaker/<cid>/output.log` (so the caller's pipes are not held).
    pub detach: bool,
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Child side; never returns.  Only async-signal-safe work after clone
/// (the parent is single-threaded, but keep it minimal anyway).
fn child(
    cid: &str,
    net: bool,
    stdio: Option<(i32, i32)>,
    boot: &[crate::profile::SockFilter],
    argv: &[CString],
    to_parent: &mut std::fs::File,
    from_parent: &mut std::fs::File,
) -> isize {
    let fail = |to_parent: &mut std::fs::File, what: &str, err: nix::Error| -> isize {
        let _ = write!(to_parent, "F{what}: {}", err.desc());
        127
    };
    use nix::mount::{mount, MsFlags};
    if let Err(e) = mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>) {
        return fail(to_parent, "cannot make / private in the new mount namespace", e);
    }
    if let Err(e) = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        return fail(to_parent, "cannot mount /proc for the new PID namespace", e);
    }
    if let Err(e) = nix::unistd::sethostname(cid) {
        return fail(to_parent, "cannot set the hostname", e);
    }
    if net {
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
    if let Err(e) = seccomp::install(boot) {
        let _ = write!(to_parent, "Fcannot install the boot filter: {e}");
        return 127;
    }
    if to_parent.write_all(b"I").is_err() {
        return 127;
    }
    let mut go = [0u8; 1];
    if from_parent.read_exact(&mut go).is_err() || go[0] != b'G' {
        return 127;
    }
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

/// Starts the container; returns its state (saved) once the command runs.
pub fn launch(spec: LaunchSpec) -> Result<ContainerState> {
    device::encode_cid(&spec.cid)?;
    let dev = Device::open()?;
    match ContainerState::load(&spec.cid) {
        Ok(old) if old.alive() => bail!("container '{}' already exists (pid {}); stop it first or pick another --name", spec.cid, old.pid),
        Ok(_) => ContainerState::remove(&spec.cid),
        Err(_) => {}
    }
    if dev.status(Some(&spec.cid))?.first().is_some() {
        bail!("speaker.ko already has a container '{}'; pick another --name", spec.cid);
    }
    let boot = spec.phases.iter().find(|p| p.phase == Phase::Boot).ok_or_else(|| anyhow!("no boot phase"))?;
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
    let (mut up_r, mut up_w) = pipe()?;
    let (mut down_r, mut down_w) = pipe()?;
    let mut flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if spec.net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut stack = vec![0u8; 256 * 1024];
    let cid = spec.cid.clone();
    let net = spec.net;
    let boot_prog = boot.prog.clone();
    // SAFETY: the child runs `child()` on its own stack copy without CLONE_VM
    // (like fork); it only uses memory it owns in its copy and ends in exec
    // or _exit (the returned value becomes its exit status).
    let pid = unsafe {
        nix::sched::clone(
            Box::new(|| child(&cid, net, stdio, &boot_prog, &argv, &mut up_w, &mut down_r)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .with_context(|| format!("cannot create the namespaces of container '{}' (needs root)", spec.cid))?;
    drop(up_w);
    drop(down_r);
    drop(stdio_files);

    let mut first = [0u8; 1];
    let n = up_r.read(&mut first).unwrap_or(0);
    if n == 0 || first[0] != b'I' {
        let mut rest = String::new();
        let _ = up_r.read_to_string(&mut rest);
        let _ = nix::sys::wait::waitpid(pid, None);
        ContainerState::remove(&spec.cid);
        if n == 1 && first[0] == b'F' {
            bail!("container '{}': {rest}", spec.cid);
        }
        bail!(
            "container '{}' died while starting (its boot filter must allow read, write and execve)",
            spec.cid
        );
    }
    let register = || -> Result<ContainerState> {
        let count = seccomp::filter_count(pid.as_raw()).with_context(|| format!("cannot read the seccomp state of pid {pid}"))?;
        dev.register(&spec.cid, pid.as_raw() as u32, count, Phase::Boot.index(), boot.allowed)
            .with_context(|| format!("cannot register container '{}' (pid {pid}) with speaker.ko", spec.cid))?;
        let state = ContainerState {
            cid: spec.cid.clone(),
            pid: pid.as_raw(),
            cmd: spec.cmd.clone(),
            started_unix_ms: now_unix_ms(),
            phases: spec
                .phases
                .iter()
                .map(|p| PhaseRecord { phase: p.phase, allowed: p.allowed, instructions: p.prog.len() })
                .collect(),
            current: Phase::Boot,
            last_switch_unix_ms: None,
        };
        state.save()?;
        for p in &spec.phases {
            state.save_program(p.phase, &p.prog)?;
        }
        Ok(state)
    };
    let state = match register() {
        Ok(s) => s,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            let _ = dev.unregister(&spec.cid);
            ContainerState::remove(&spec.cid);
            return Err(e);
        }
    };
    down_w.write_all(b"G").context("the container's first process vanished before exec")?;
    drop(down_w);
    let mut after = Vec::new();
    let _ = up_r.read_to_end(&mut after);
    if after.first() == Some(&b'E') {
        let errno = String::from_utf8_lossy(&after[1..]).parse::<i32>().unwrap_or(0);
        let _ = nix::sys::wait::waitpid(pid, None);
        let _ = dev.unregister(&spec.cid);
        ContainerState::remove(&spec.cid);
        bail!("cannot execute '{}': {}", spec.cmd[0], std::io::Error::from_raw_os_error(errno));
    }
    Ok(state)
}

