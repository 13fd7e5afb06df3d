//! Suite 6: what speaker.ko holds. Per container: the growth of the
//! kernel's slab and vmalloc memory (`/proc/meminfo`) while `CONTAINERS`
//! idle processes, each with its own filter, are registered. Per kept
//! program: the growth while a container is switched to `PROGRAMS`
//! distinct programs (each is kept until the container's filter dies;
//! switching back to a known program reuses the kept copy, which the
//! suite checks with the STATUS `kept` count). Debug kernels (KASAN,
//! kmemleak) inflate both.
use std::io::Read;

use super::error::BenchError;
use super::results::Results;
use super::switch::{denylist, Payload};
use super::Options;
use crate::device::Device;
use crate::profile::schema::Phase;
use crate::sys::process::pipe_cloexec;

const CONTAINERS: usize = 16;
const PROGRAMS: usize = 16;
/// Syscalls denied one by one to make distinct programs.
const NAMES: [&str; PROGRAMS] = [
    "acct",
    "add_key",
    "bpf",
    "chroot",
    "delete_module",
    "fsmount",
    "init_module",
    "kexec_load",
    "keyctl",
    "mount",
    "pivot_root",
    "quotactl",
    "reboot",
    "setns",
    "swapon",
    "umount2",
];

/// Kernel memory that grows with kmalloc and vmalloc (slab + vmalloc), bytes.
fn kernel_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (kb("Slab:") + kb("VmallocUsed:")) * 1024.0
}

/// Forks `n` idle children, each with its own copy of `prog` installed
/// (not shared, so each can be registered); returns their pids.
fn idle_children(n: usize, prog: &[crate::profile::SockFilter]) -> Result<Vec<nix::unistd::Pid>, BenchError> {
    let mut pids = Vec::new();
    for _ in 0..n {
        let (mut r, w) = pipe_cloexec().map_err(|e| BenchError::sys("pipe", e))?;
        // SAFETY: single-threaded here; the child installs its filter,
        // reports and sleeps until killed.
        match unsafe { nix::unistd::fork() }.map_err(|e| BenchError::sys("fork", e))? {
            nix::unistd::ForkResult::Child => {
                let _ = crate::container::seccomp::install(prog);
                drop(w);
                loop {
                    // SAFETY: pause() has no arguments.
                    unsafe { libc::pause() };
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(w);
                let mut b = Vec::new();
                let _ = r.read_to_end(&mut b);
                pids.push(child);
            }
        }
    }
    Ok(pids)
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    res.fact("clock.memory", opts.clock.name());
    let dev = Device::open()?;
    let boot = denylist(&["sysinfo"])?;
    let mut per_container = Vec::new();
    for round in 0..opts.runs {
        let pids = idle_children(CONTAINERS, &boot)?;
        let before = kernel_bytes();
        for (i, pid) in pids.iter().enumerate() {
            let count = crate::sys::procfs::seccomp_filter_count(pid.as_raw()).map_err(|e| BenchError::io("reading Seccomp_filters", e))?;
            dev.register(&format!("bench-mem-{round}-{i}"), pid.as_raw() as u32, count, Phase::Boot.index(), 0)?;
        }
        let after = kernel_bytes();
        for (i, pid) in pids.iter().enumerate() {
            let _ = dev.unregister(&format!("bench-mem-{round}-{i}"));
            let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(*pid, None);
        }
        per_container.push((after - before) / CONTAINERS as f64);
    }
    res.figure("memory.per_container", &per_container, "bytes");

    let progs: Vec<_> = NAMES.iter().map(|n| denylist(&["sysinfo", n])).collect::<Result<_, _>>()?;
    let mut per_program = Vec::new();
    let (mut kept_distinct, mut kept_back_and_forth) = (0, 0);
    for round in 0..opts.runs {
        let cid = format!("bench-mem-switch-{round}-{}", std::process::id());
        let payload = Payload::start(&cid, &boot, 1, 1)?;
        let before = kernel_bytes();
        for p in &progs {
            dev.switch_with(&cid, p, Phase::Running.index(), 0, crate::abi::SWITCH_DEFER_FREE)?;
        }
        let after = kernel_bytes();
        kept_distinct = dev.status(Some(&cid))?.first().map(|e| e.kept).unwrap_or(0);
        for i in 0..10 {
            dev.switch_with(&cid, &progs[i % 2], Phase::Running.index(), 0, crate::abi::SWITCH_DEFER_FREE)?;
        }
        kept_back_and_forth = dev.status(Some(&cid))?.first().map(|e| e.kept).unwrap_or(0);
        drop(payload);
        per_program.push((after - before) / PROGRAMS as f64);
    }
    res.figure("memory.per_kept_program", &per_program, "bytes");
    res.fact("memory.program_instructions", progs[0].len());
    res.fact("memory.program_bytes_classic", progs[0].len() * 8);
    // What a kept program holds: the classic copy (orig_prog, kmalloc) and
    // the bpf_prog with its converted instructions (vmalloc, whole pages).
    let len = progs[0].len();
    let estimate = len * 8 + 16 + (256 + len * 16).div_ceil(4096) * 4096;
    res.fact("memory.per_kept_program_estimate", estimate);
    res.fact(format!("memory.kept_after_{PROGRAMS}_distinct_switches"), kept_distinct);
    res.fact("memory.kept_after_10_more_switches_between_known_programs", kept_back_and_forth);
    println!(
        "  per container {:.0} bytes, per kept program {:.0} bytes ({} instructions); kept after {PROGRAMS} distinct switches: {kept_distinct}, after 10 more between known ones: {kept_back_and_forth}",
        res.median("memory.per_container").unwrap_or(0.0),
        res.median("memory.per_kept_program").unwrap_or(0.0),
        progs[0].len()
    );
    Ok(())
}
