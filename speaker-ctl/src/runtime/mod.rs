//! `speaker-runtime`: an OCI runtime that wraps crun (speaker-ctl under a
//! second name, or `speaker-ctl runtime ...`).
//!
//! It takes crun's command line (Docker: `"runtimes": {"speaker": {"path":
//! "/usr/local/bin/speaker-runtime"}}`, podman: `--runtime`).  A bundle
//! whose `config.json` has the annotation `io.speaker.profile` gets
//! speaker's phases:
//!
//! * `create` compiles the profile, puts the boot phase into the bundle's
//!   `linux.seccomp` (for crun to install; the bundle's file is restored
//!   afterwards: crun keeps its own copy), runs `crun create` and starts
//!   the container's monitor ([`monitor`]), which registers the container
//!   with speaker.ko when `start` lets its command exec;
//! * `start` runs `crun start` and returns once the container is
//!   registered; the monitor then switches it to the running phase when
//!   the readiness condition holds (annotation `io.speaker.ready`, else the
//!   profile's `ready`) and records when;
//! * `kill` with SIGTERM or SIGINT (the default is SIGTERM) first switches
//!   to the shutdown phase, then forwards the signal;
//! * `exec` is crun's: every switch rewrites `linux.seccomp` in crun's
//!   state copy of the configuration, which `crun exec` reads, so new
//!   processes get the current phase's filter (plus what crun needs to
//!   start them and what any program needs to start, see
//!   [`bundle::PROGRAM_STARTUP`]);
//! * `delete` runs `crun delete` and forgets the container;
//! * `run` is `create` + `start` (+ waiting for the container and
//!   `delete` unless `--detach`).
//!
//! Everything else, and every command on containers without the
//! annotation, is `exec`'ed as crun with the same arguments.  crun is
//! `--speaker-crun PATH` (a global option removed before crun sees the
//! line), else `$SPEAKER_CRUN`, else `crun` on PATH.
pub mod args;
pub mod bundle;
pub mod monitor;

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::container::state::{kernel_cid_for, now_unix_ms, ContainerState, PhaseRecord, RuntimeRecord};
use crate::device::Device;
use crate::profile::schema::Phase;
use args::{parse_command, Invocation, CREATE_WITH_VALUE};
use bundle::Bundle;

const PROG: &str = "speaker-runtime";

/// Entry point; `args` excludes argv[0].
pub fn main(args: Vec<OsString>) -> i32 {
    let inv = args::parse(&args);
    match dispatch(&inv) {
        Ok(code) => code,
        Err(e) => {
            report(&inv, &format!("{e:#}"));
            1
        }
    }
}

/// Prints an error on stderr and, like runc/crun, into `--log` (JSON lines
/// with `--log-format json`, which containerd shows to the user).
fn report(inv: &Invocation, msg: &str) {
    eprintln!("{PROG}: error: {msg}");
    if let Some(log) = &inv.log {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let line = if inv.log_format.as_deref() == Some("json") {
                serde_json::json!({"level": "error", "msg": format!("{PROG}: {msg}")}).to_string()
            } else {
                format!("{PROG}: error: {msg}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

fn dispatch(inv: &Invocation) -> Result<i32> {
    match inv.command.as_deref() {
        Some("create") => create(inv, &inv.rest),
        Some("start") => start(inv),
        Some("kill") => kill(inv),
        Some("delete") => delete(inv),
        Some("run") => run(inv),
        _ => exec_crun(inv, &inv.forwarded),
    }
}

/// The crun binary.
fn crun_path(inv: &Invocation) -> Result<PathBuf> {
    let me = std::env::current_exe().ok().and_then(|p| std::fs::canonicalize(p).ok());
    let not_me = |p: &Path| std::fs::canonicalize(p).ok() != me;
    if let Some(p) = &inv.crun {
        if p.is_file() {
            return Ok(p.clone());
        }
        bail!("crun not found at {} (--speaker-crun); install crun or fix the path", p.display());
    }
    if let Some(p) = std::env::var_os("SPEAKER_CRUN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("crun not found at {} ($SPEAKER_CRUN); install crun or fix the variable", p.display());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join("crun");
            if c.is_file() && not_me(&c) {
                return Ok(c);
            }
        }
    }
    bail!("crun not found in PATH; speaker-runtime wraps crun: install it (apt install crun) or pass --speaker-crun PATH")
}

/// Replaces this process with crun and `args` (only returns on failure).
fn exec_crun(inv: &Invocation, args: &[OsString]) -> Result<i32> {
    let crun = crun_path(inv)?;
    let err = Command::new(&crun).args(args).exec();
    Err(anyhow!("cannot execute {}: {err}", crun.display()))
}

/// Runs `crun <globals> <args>` and waits; returns its exit code.
fn run_crun(inv: &Invocation, crun: &Path, args: &[String]) -> Result<i32> {
    let status = Command::new(crun)
        .args(&inv.globals)
        .args(args)
        .status()
        .with_context(|| format!("cannot execute {}", crun.display()))?;
    Ok(status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
}

/// crun's state directory of container `id`.
fn crun_state_dir(inv: &Invocation, id: &str) -> PathBuf {
    inv.root.clone().unwrap_or_else(|| PathBuf::from("/run/crun")).join(id)
}

/// The speaker state of `id` if it is a speaker-runtime container.
fn ours(id: &str) -> Option<ContainerState> {
    ContainerState::load(id).ok().filter(|s| s.runtime.is_some())
}

fn single_id(cmd: &str, positionals: &[String]) -> Result<String> {
    match positionals {
        [id] => Ok(id.clone()),
        [] => bail!("{cmd}: missing the container id"),
        _ => bail!("{cmd}: expected one container id, got {positionals:?}"),
    }
}

/// `create` (also the first half of `run`, with `-d` removed).
fn create(inv: &Invocation, rest: &[String]) -> Result<i32> {
    let c = parse_command(rest, CREATE_WITH_VALUE, false);
    let bundle_dir = PathBuf::from(c.value(&["--bundle", "-b"]).unwrap_or("."));
    let config = c.value(&["--config", "-f"]).map(PathBuf::from);
    // A bundle speaker cannot read, or one without the annotation, is
    // crun's business entirely (including its error messages).
    let Ok(mut bundle) = Bundle::open(&bundle_dir, config.as_deref()) else {
        return exec_crun(inv, &inv.forwarded);
    };
    let Some(profile_path) = bundle.profile_path() else {
        return exec_crun(inv, &inv.forwarded);
    };
    let id = single_id("create", &c.positionals)?;
    crate::device::encode_cid(&kernel_cid_for(&id)).with_context(|| format!("container id '{id}'"))?;
    // Everything that can fail before crun runs, so that nothing is left
    // half-created.
    let crun = crun_path(inv)?;
    let spec = bundle::prepare(&bundle, &profile_path)?;
    let dev = Device::open().context("speaker-runtime needs speaker.ko (insmod speaker.ko)")?;
    if let Some(old) = ours(&id) {
        if crun_state_dir(inv, &id).exists() || old.alive() {
            bail!("container '{id}' already exists; delete it first");
        }
        ContainerState::remove(&id);
    }
    if !dev.status(Some(&kernel_cid_for(&id)))?.is_empty() {
        bail!("speaker.ko already has a container '{}'; pick another id", kernel_cid_for(&id));
    }
    // The monitor opens the device itself; an inherited descriptor would
    // pin the module for as long as the monitor lives.
    drop(dev);

    let state_dir = crun_state_dir(inv, &id);
    let state = ContainerState {
        cid: id.clone(),
        pid: 0,
        cmd: bundle.process_args(),
        started_unix_ms: now_unix_ms(),
        phases: spec.phases.iter().map(|p| PhaseRecord { phase: p.phase, allowed: p.allowed, instructions: p.prog.len() }).collect(),
        current: Phase::Boot,
        last_switch_unix_ms: None,
        kernel_cid: (kernel_cid_for(&id) != id).then(|| kernel_cid_for(&id)),
        runtime: Some(RuntimeRecord {
            crun_state_dir: state_dir.clone(),
            bundle: bundle.dir.clone(),
            profile: spec.profile_path.clone(),
            ready: spec.ready.clone(),
            ..RuntimeRecord::default()
        }),
    };
    let saved = (|| -> Result<()> {
        state.save()?;
        for p in &spec.phases {
            state.save_program(p.phase, &p.prog)?;
        }
        for (phase, prog) in &spec.exec_progs {
            let path = bundle::exec_bpf_path(&id, *phase);
            crate::profile::write_file_atomic(&path, &crate::container::seccomp::to_bytes(prog))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        for (phase, oci) in &spec.exec_oci {
            let path = bundle::exec_oci_path(&id, *phase);
            crate::profile::write_file_atomic(&path, serde_json::to_string_pretty(oci)?.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = saved {
        ContainerState::remove(&id);
        return Err(e);
    }

    // The boot phase goes into the bundle for crun; the original file is
    // put back once crun has its copy.
    let boot = &spec.oci.iter().find(|(p, _)| *p == Phase::Boot).expect("boot phase").1;
    bundle.set_seccomp(boot)?;
    bundle.save()?;
    let mut crun_args = vec!["create".to_string()];
    crun_args.extend(rest.iter().cloned());
    let code = run_crun(inv, &crun, &crun_args);
    let restored = crate::profile::write_file_atomic(&bundle.config_path, &bundle.original);
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            ContainerState::remove(&id);
            return Err(e);
        }
    };
    if code != 0 {
        ContainerState::remove(&id);
        return Ok(code);
    }
    let finish = || -> Result<()> {
        restored.with_context(|| format!("cannot restore {}", bundle.config_path.display()))?;
        let pid = crun_pid(inv, &crun, &id)?;
        if !state_dir.join("config.json").is_file() {
            bail!("crun keeps no {}/config.json; this crun is not supported (exec would get the wrong filter)", state_dir.display());
        }
        let monitor = spawn_monitor(&id, pid)?;
        let _lock = ContainerState::lock(&id)?;
        let mut st = ContainerState::load(&id)?;
        st.pid = pid.as_raw();
        if let Some(rt) = st.runtime.as_mut() {
            rt.monitor_pid = Some(monitor);
        }
        st.save()
    };
    if let Err(e) = finish() {
        let _ = Command::new(&crun).args(&inv.globals).args(["delete", "--force", &id]).status();
        ContainerState::remove(&id);
        return Err(e.context(format!("container '{id}' was not created")));
    }
    Ok(0)
}

/// The pid of the container's first process, from `crun state`.
fn crun_pid(inv: &Invocation, crun: &Path, id: &str) -> Result<Pid> {
    let out = Command::new(crun)
        .args(&inv.globals)
        .args(["state", id])
        .output()
        .with_context(|| format!("cannot execute {} state", crun.display()))?;
    if !out.status.success() {
        bail!("crun state {id} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("crun state printed invalid JSON")?;
    let pid = v.get("pid").and_then(|p| p.as_i64()).filter(|p| *p > 0).ok_or_else(|| anyhow!("crun state {id} has no pid"))?;
    Ok(Pid::from_raw(pid as i32))
}

/// Starts the monitor daemon (double fork, own session, stdio on
/// /dev/null); returns its pid once it has attached to `pid`.
fn spawn_monitor(id: &str, pid: Pid) -> Result<i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let (mut r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
    // SAFETY: speaker-runtime is single-threaded here; the child only
    // forks again and runs the monitor, which needs no lock held by
    // another thread.
    match unsafe { nix::unistd::fork() }.context("cannot fork the monitor")? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let _ = nix::unistd::setsid();
            // SAFETY: as above.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                        use std::os::fd::AsRawFd;
                        for fd in 0..3 {
                            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                        }
                    }
                    match monitor::seize(pid) {
                        Ok(()) => {
                            let _ = write!(w, "S{}", std::process::id());
                            drop(w);
                            monitor::run(id, pid);
                            std::process::exit(0);
                        }
                        Err(e) => {
                            let _ = write!(w, "F{e:#}");
                            std::process::exit(1);
                        }
                    }
                }
                Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
                Err(e) => {
                    let _ = write!(w, "Fcannot fork the monitor: {e}");
                    std::process::exit(1);
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut msg = String::new();
            let _ = r.read_to_string(&mut msg);
            if let Some(p) = msg.strip_prefix('S') {
                return p.parse().map_err(|_| anyhow!("the monitor sent a bad pid '{p}'"));
            }
            if let Some(m) = msg.strip_prefix('F') {
                bail!("{m}");
            }
            bail!("the monitor died before attaching to the container")
        }
    }
}

/// `start`: crun's, then wait until the monitor has registered the
/// container (so that `speaker-ctl status` and `switch` work as soon as
/// `start` returns).
fn start(inv: &Invocation) -> Result<i32> {
    let c = parse_command(&inv.rest, &[], false);
    let Some(id) = c.positionals.first().cloned() else { return exec_crun(inv, &inv.forwarded) };
    let Some(_) = ours(&id) else { return exec_crun(inv, &inv.forwarded) };
    let crun = crun_path(inv)?;
    let mut a = vec!["start".to_string()];
    a.extend(inv.rest.iter().cloned());
    let code = run_crun(inv, &crun, &a)?;
    if code != 0 {
        return Ok(code);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = ContainerState::load(&id)?;
        let rt = st.runtime.as_ref().expect("runtime container");
        if rt.registered {
            return Ok(0);
        }
        if let Some(e) = &rt.error {
            bail!("container '{id}' was started but speaker could not take it over, so it was killed: {e}");
        }
        if rt.monitor_pid.map(|m| !Path::new(&format!("/proc/{m}")).exists()).unwrap_or(true) {
            bail!("container '{id}': its speaker monitor is gone before registering it; see {}", ContainerState::dir_of(&id).join("monitor.log").display());
        }
        if Instant::now() > deadline {
            bail!("container '{id}' was not registered with speaker.ko within 30 s of start; see {}", ContainerState::dir_of(&id).join("monitor.log").display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Parses a signal as runc/crun do: `TERM`, `SIGTERM`, `15`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}

/// Switches `id` to its shutdown phase if it has one and is not there yet.
fn to_shutdown(id: &str) {
    let Some(st) = ours(id) else { return };
    if st.record(Phase::Shutdown).is_none() || !st.runtime.as_ref().map(|r| r.registered).unwrap_or(false) {
        return;
    }
    if let Err(e) = crate::commands::switch::switch_when(id, Some(Phase::Shutdown), |from| from < Phase::Shutdown) {
        eprintln!("{PROG}: warning: container '{id}': cannot switch to the shutdown phase before the signal: {e:#}");
    }
}

/// `kill ID [SIGNAL]`: SIGTERM/SIGINT first switch to the shutdown phase.
fn kill(inv: &Invocation) -> Result<i32> {
    let c = parse_command(&inv.rest, &[], false);
    if let Some(id) = c.positionals.first() {
        let sig = c.positionals.get(1).map(String::as_str).unwrap_or("SIGTERM");
        if matches!(parse_signal(sig), Some(libc::SIGTERM) | Some(libc::SIGINT)) {
            to_shutdown(id);
        }
    }
    exec_crun(inv, &inv.forwarded)
}

/// Forgets a speaker-runtime container (module, monitor, state).
fn forget(st: &ContainerState) {
    if let Ok(dev) = Device::open() {
        let _ = dev.unregister(st.kcid());
    }
    if let Some(m) = st.runtime.as_ref().and_then(|r| r.monitor_pid) {
        let exe = std::fs::read_link(format!("/proc/{m}/exe")).ok();
        if exe.is_some() && exe == std::env::current_exe().ok() {
            let _ = nix::sys::signal::kill(Pid::from_raw(m), nix::sys::signal::Signal::SIGKILL);
        }
    }
    ContainerState::remove(&st.cid);
}

/// `delete`: crun's, then forget the container once crun has.
fn delete(inv: &Invocation) -> Result<i32> {
    let c = parse_command(&inv.rest, &[], false);
    let Some(st) = c.positionals.first().and_then(|id| ours(id)) else { return exec_crun(inv, &inv.forwarded) };
    let crun = crun_path(inv)?;
    let mut a = vec!["delete".to_string()];
    a.extend(inv.rest.iter().cloned());
    let code = run_crun(inv, &crun, &a)?;
    if !crun_state_dir(inv, &st.cid).exists() {
        forget(&st);
    }
    Ok(code)
}

static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// `run`: create + start; unless `--detach`, wait for the container (we
/// are its subreaper), forward SIGTERM/SIGINT/SIGHUP through `kill`, then
/// delete it and exit with its status.
fn run(inv: &Invocation) -> Result<i32> {
    let c = parse_command(&inv.rest, CREATE_WITH_VALUE, false);
    let bundle_dir = PathBuf::from(c.value(&["--bundle", "-b"]).unwrap_or("."));
    let config = c.value(&["--config", "-f"]).map(PathBuf::from);
    let annotated = Bundle::open(&bundle_dir, config.as_deref()).ok().and_then(|b| b.profile_path()).is_some();
    if !annotated {
        return exec_crun(inv, &inv.forwarded);
    }
    let detach = c.flag(&["--detach", "-d"]);
    let id = single_id("run", &c.positionals)?;
    let create_rest: Vec<String> = inv.rest.iter().filter(|a| *a != "-d" && *a != "--detach").cloned().collect();
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes this process's
    // attributes.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let code = create(inv, &create_rest)?;
    if code != 0 {
        return Ok(code);
    }
    let start_inv = Invocation { command: Some("start".into()), rest: vec![id.clone()], ..inv.clone() };
    if let Err(e) = start(&start_inv) {
        if let Some(st) = ours(&id) {
            let crun = crun_path(inv)?;
            let _ = run_crun(inv, &crun, &["delete".into(), "--force".into(), id.clone()]);
            forget(&st);
        }
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let pid = ContainerState::load(&id).map(|s| s.pid)?;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `on_signal` only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let crun = crun_path(inv)?;
    let code = loop {
        let sig = SIGNALLED.swap(0, std::sync::atomic::Ordering::SeqCst);
        if sig != 0 {
            if sig == libc::SIGTERM || sig == libc::SIGINT {
                to_shutdown(&id);
            }
            let _ = run_crun(inv, &crun, &["kill".into(), id.clone(), sig.to_string()]);
        }
        match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::Exited(p, c)) if p.as_raw() == pid => break c,
            Ok(nix::sys::wait::WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => break 128 + s as i32,
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(nix::Error::EINTR) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => {}
            Err(nix::Error::ECHILD) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => bail!("cannot wait for container '{id}': {e}"),
        }
    };
    let _ = run_crun(inv, &crun, &["delete".into(), "--force".into(), id.clone()]);
    if let Some(st) = ours(&id) {
        forget(&st);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_in_every_spelling() {
        for s in ["TERM", "SIGTERM", "term", "15"] {
            assert_eq!(parse_signal(s), Some(libc::SIGTERM), "{s}");
        }
        assert_eq!(parse_signal("INT"), Some(libc::SIGINT));
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("NOPE"), None);
    }
}
