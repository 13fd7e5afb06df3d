//! Suite 2a: switch latency against the tasks in a container.
//!
//! Each container runs `speaker-ctl bench-payload --threads N` (N idle
//! threads) or `--processes N` (N single-threaded processes) under an
//! allow-by-default boot filter; switches alternate between a running and
//! the boot program, `runs` synchronous ones (the ioctl waits for the
//! RCU-tasks grace period) and `runs` with `SWITCH_DEFER_FREE` (it does
//! not wait; either way speaker.ko keeps replaced programs until the
//! container's filter dies).
use std::time::{Duration, Instant};

use super::error::BenchError;
use super::results::Results;
use super::Options;
use crate::container::confine::Confinement;
use crate::container::launch::{launch, NewContainer};
use crate::container::phases::CompiledPhase;
use crate::container::state::ContainerState;
use crate::device::Device;
use crate::profile::filter::{Action, PhaseFilter, Rule};
use crate::profile::schema::Phase;
use crate::profile::{self, Arch, SockFilter};

/// An allow-by-default filter denying `names` (EPERM) on the native ABI.
pub fn denylist(names: &[&str]) -> Result<Vec<SockFilter>, BenchError> {
    let f = PhaseFilter {
        default_action: Action::Allow,
        arches: vec![Arch::native()],
        rules: names.iter().map(|n| Rule { name: n.to_string(), arch: Arch::native(), action: Action::Errno(1), args: vec![] }).collect(),
        unresolved: vec![],
    };
    Ok(profile::compile(&f)?)
}

/// A payload container (`bench-payload`) started under `boot`.
pub struct Payload {
    pub cid: String,
    pub pid: i32,
}

impl Payload {
    /// Starts one with `threads` threads or `processes` processes and waits
    /// until speaker.ko counts them all.
    pub fn start(cid: &str, boot: &[SockFilter], threads: usize, processes: usize) -> Result<Payload, BenchError> {
        let exe = std::env::current_exe().map_err(|e| BenchError::io("finding speaker-ctl's own path", e))?;
        let phases = vec![CompiledPhase { phase: Phase::Boot, allowed: 0, prog: boot.to_vec(), complain: boot.to_vec(), filter: None }];
        let cmd = vec![
            exe.display().to_string(),
            "bench-payload".into(),
            "--threads".into(),
            threads.to_string(),
            "--processes".into(),
            processes.to_string(),
        ];
        let state = launch(NewContainer {
            cid: cid.to_string(),
            phases,
            cmd,
            net: false,
            detach: true,
            confine: Confinement::default(),
            volumes: Vec::new(),
            engine: crate::container::engine::Engine::Kmod,
        })
        .map_err(|e| BenchError::container(format!("starting payload container {cid}"), e))?;
        let payload = Payload { cid: cid.to_string(), pid: state.pid };
        let want = (threads.max(1) + processes.max(1) - 1) as u32;
        let dev = Device::open()?;
        let start = Instant::now();
        loop {
            let tasks = dev.status(Some(cid))?.first().map(|s| s.tasks).unwrap_or(0);
            if tasks >= want {
                return Ok(payload);
            }
            if start.elapsed() > Duration::from_secs(300) {
                return Err(BenchError::Timeout { what: format!("{cid}'s {want} tasks (speaker.ko counts {tasks})"), secs: 300 });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        ContainerState::remove(&self.cid);
    }
}

/// `runs` synchronous and `runs` deferred switches of `cid` between
/// `progs`, in milliseconds (wall clock around the ioctl).
pub fn time_switches(dev: &Device, cid: &str, progs: [&[SockFilter]; 2], runs: usize) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
    let (mut sync, mut deferred) = (Vec::new(), Vec::new());
    for i in 0..runs * 2 {
        // Alternate sync and deferred so that both see the same conditions.
        let defer = i % 2 == 1;
        let (prog, phase) = if (i / 2) % 2 == 0 { (progs[0], Phase::Running) } else { (progs[1], Phase::Boot) };
        let flags = if defer { crate::abi::SWITCH_DEFER_FREE } else { 0 };
        let t = Instant::now();
        dev.switch_with(cid, prog, phase.index(), 0, flags)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if defer { &mut deferred } else { &mut sync }.push(ms);
    }
    Ok((sync, deferred))
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    let dev = Device::open()?;
    res.fact("clock.switch", opts.clock.name());
    let boot = denylist(&["sysinfo"])?;
    let running = denylist(&["sysinfo", "mount", "getpriority", "sethostname"])?;
    let counts = opts.threads.iter().map(|&n| ("threads", n)).chain(opts.processes.iter().map(|&n| ("processes", n)));
    for (kind, n) in counts {
        let cid = format!("bench-{kind}-{n}-{}", std::process::id());
        let (t, p) = if kind == "threads" { (n, 1) } else { (1, n) };
        let payload = Payload::start(&cid, &boot, t, p)?;
        let (sync, deferred) = time_switches(&dev, &payload.cid, [&running, &boot], opts.runs)?;
        let tasks = dev.status(Some(&cid))?.first().map(|s| s.tasks).unwrap_or(0);
        drop(payload);
        let s = res.figure(format!("switch.sync.{kind}.{n}"), &sync, "ms").unwrap_or(0.0);
        let d = res.figure(format!("switch.deferred.{kind}.{n}"), &deferred, "ms").unwrap_or(0.0);
        res.fact(format!("switch.tasks.{kind}.{n}"), tasks);
        println!("  {n:>5} {kind:<9} ({tasks:>5} tasks): sync {s:>9.3} ms, deferred {d:>8.3} ms");
    }
    Ok(())
}

/// `bench-payload`: `threads` idle threads (the main one counts) in each of
/// `processes` processes (the first counts), until killed.
pub fn payload(threads: usize, processes: usize) -> Result<(), BenchError> {
    for _ in 1..processes.max(1) {
        // SAFETY: single-threaded so far; the child only sleeps.
        match unsafe { nix::unistd::fork() }.map_err(|e| BenchError::sys("fork", e))? {
            nix::unistd::ForkResult::Child => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            nix::unistd::ForkResult::Parent { .. } => {}
        }
    }
    for _ in 1..threads.max(1) {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(3600));
            })
            .map_err(|e| BenchError::io("spawning a payload thread", e))?;
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
