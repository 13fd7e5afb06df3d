//! `speaker-ctl bench`: switch latency for containers of 1, 100 and 1,000
//! threads, measured side by side in one run (median of `--runs`
//! switches each), plus the cost of a syscall under each phase's filter.
//!
//! Each container runs `speaker-ctl bench-payload N` (N idle threads)
//! under an allow-by-default boot filter; switches alternate between the
//! running and the boot program.
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::BenchArgs;
use crate::container::launch::{launch, NewContainer};
use crate::container::phases;
use crate::container::state::ContainerState;
use crate::device::Device;
use crate::profile::schema::Phase;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn write_profiles(dir: &std::path::Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let boot = dir.join("boot.json");
    let running = dir.join("running.json");
    std::fs::write(
        &boot,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )?;
    std::fs::write(
        &running,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["sysinfo","mount","getpriority","sethostname"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )?;
    Ok((boot, running))
}

fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

pub fn run(args: BenchArgs) -> Result<i32> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let dev = Device::open()?;
    let dir = std::env::temp_dir().join(format!("speaker-bench-{}", std::process::id()));
    let (boot, running) = write_profiles(&dir)?;
    let exe = std::env::current_exe().context("cannot find speaker-ctl's own path")?;
    println!("switch latency, median of {} runs each (sync: the ioctl waits for the RCU-tasks grace period;", args.runs);
    println!("deferred: SWITCH_DEFER_FREE, the old program is freed by an RCU-tasks callback)");
    println!("{:>8} {:>16} {:>16} {:>16} {:>10}", "threads", "sync ioctl", "deferred ioctl", "deferred kernel", "vs 1st");
    let mut first = None;
    for &n in &args.threads {
        let cid = format!("bench-{n}-{}", std::process::id());
        let phases = phases::from_files(&boot, &running, None)?;
        let prog_boot = phases[0].prog.clone();
        let prog_running = phases[1].prog.clone();
        let state = launch(NewContainer {
            cid: cid.clone(),
            phases,
            cmd: vec![exe.display().to_string(), "bench-payload".into(), n.to_string()],
            net: false,
            detach: true,
            confine: crate::container::confine::Confinement::default(),
        })?;
        let start = Instant::now();
        while task_count(state.pid) < n && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut sync = Vec::new();
        let mut wall = Vec::new();
        let mut kernel = Vec::new();
        let mut tasks = 0;
        for i in 0..args.runs * 2 {
            let (prog, phase) = if i % 2 == 0 { (&prog_running, Phase::Running) } else { (&prog_boot, Phase::Boot) };
            let deferred = i >= args.runs;
            let flags = if deferred { crate::abi::SWITCH_DEFER_FREE } else { 0 };
            let t = Instant::now();
            let r = dev.switch_with(&cid, prog, phase.index(), 0, flags)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if deferred {
                wall.push(ms);
                kernel.push(r.elapsed_ns as f64 / 1e6);
            } else {
                sync.push(ms);
            }
            tasks = r.tasks;
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(state.pid), None);
        ContainerState::remove(&cid);
        let (s, w, k) = (median(&mut sync), median(&mut wall), median(&mut kernel));
        let base = *first.get_or_insert(w);
        println!("{:>8} {:>13.3} ms {:>13.3} ms {:>13.3} ms {:>9.1}x   ({} tasks)", n, s, w, k, w / base, tasks);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(0)
}

/// Runs `threads` idle threads (the main thread counts as one) until killed.
pub fn payload(threads: usize) -> Result<i32> {
    for _ in 1..threads.max(1) {
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(3600));
            })
            .context("cannot spawn a payload thread")?;
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
