//! A whole fuzz run: its rounds (threads started, joined, every child reaped,
//! the module reloaded) and its report.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use speaker_tests::guest::{kernel_trouble, raw_ioctl, LogSince};
use speaker_tests::{abi, ensure, ioctl};

use crate::containers::containers;
use crate::module::{delete_module, insmod, rmmod_attempts};
use crate::pointers::arena;
use crate::rng::Rng;
use crate::stats::{errno_name, Stats};
use crate::worker::{close, worker, OPS};
use crate::Config;

/// What a finished run found.
pub struct Report {
    pub calls: u64,
    pub secs: f64,
    pub registered: u64,
    pub switched: u64,
    pub exits: u64,
    pub rmmod_refused: u64,
    pub reloads: u64,
    pub rounds: u64,
    pub violations: Vec<String>,
    pub trouble: Vec<String>,
}

/// SIGKILLs every process whose parent we are, then reaps until none is left.
pub fn kill_and_reap_all() -> Result<(), String> {
    let me = std::process::id().to_string();
    let start = Instant::now();
    loop {
        for e in std::fs::read_dir("/proc").map_err(|e| e.to_string())?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let st = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            if st.lines().any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(me.as_str())) {
                // SAFETY: killing a child of ours.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let mut st = 0;
        // SAFETY: reaping any child of ours, without blocking.
        match unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } {
            -1 => return Ok(()),
            0 => std::thread::sleep(Duration::from_millis(20)),
            _ => {}
        }
        ensure!(start.elapsed() < Duration::from_secs(30), "children still alive 30 s after SIGKILL");
    }
}

/// The module's container count (the VERSION ioctl also makes it forget
/// exited containers), or why it cannot be read.
pub fn container_count() -> Result<u32, String> {
    let fd = speaker_tests::guest::open_speaker()?;
    let mut v = ioctl::version();
    let r = raw_ioctl(fd, abi::SPEAKER_IOC_VERSION, ioctl::addr_mut(&mut v));
    close(fd);
    r.map_err(|e| format!("VERSION failed: {}", errno_name(e)))?;
    Ok(v.containers)
}

pub fn round(cfg: &Config, rng: &mut Rng, stats: &Stats, n: u64) -> Result<(), String> {
    let budget = cfg.calls * (n + 1) / cfg.rounds;
    let stop_workers = AtomicBool::new(false);
    let stop_rest = AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..cfg.threads {
            let r = rng.fork_stream(t as u64);
            let stop = &stop_workers;
            workers.push(s.spawn(move || worker(r, stats, budget, stop)));
        }
        let r = rng.fork_stream(100);
        let stop = &stop_rest;
        let cont = s.spawn(move || containers(r, stats, stop));
        let r = rng.fork_stream(101);
        let rm = s.spawn(move || rmmod_attempts(r, stats, stop, &cfg.module));
        for w in workers {
            if w.join().is_err() {
                stats.violation("a worker thread panicked".into());
            }
        }
        stop_rest.store(true, Relaxed);
        if cont.join().is_err() || rm.join().is_err() {
            stats.violation("the container or rmmod thread panicked".into());
        }
    });
    kill_and_reap_all()?;
    // Every child is gone and every fd closed: no container may remain.
    let start = Instant::now();
    let mut count = container_count()?;
    while count != 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        count = container_count()?;
    }
    if count != 0 {
        stats.violation(format!("round {n}: {count} container(s) still registered after every child exited"));
    }
    // ... and the module can go, and come back.
    let start = Instant::now();
    loop {
        match delete_module() {
            Ok(()) => break,
            Err(e) if (e == libc::EAGAIN || e == libc::EBUSY) && start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => return Err(format!("round {n}: rmmod with no fd open and no container failed: {}", errno_name(e))),
        }
    }
    insmod(&cfg.module).map_err(|e| format!("round {n}: insmod again: {e}"))?;
    stats.reloads.fetch_add(1, Relaxed);
    println!(
        "FUZZ round {n}: calls {} registered {} switched {} children {} exited {} forks {} rmmod refused {} reloads {}",
        stats.calls.load(Relaxed),
        stats.registered.load(Relaxed),
        stats.switched.load(Relaxed),
        stats.children.load(Relaxed),
        stats.exits.load(Relaxed),
        stats.forks.load(Relaxed),
        stats.rmmod_refused.load(Relaxed),
        stats.reloads.load(Relaxed)
    );
    Ok(())
}

pub fn fuzz(cfg: &Config) -> Result<Report, String> {
    println!(
        "FUZZ seed {} calls {} threads {} rounds {} (rerun: speaker-fuzz --seed {} --calls {})",
        cfg.seed, cfg.calls, cfg.threads, cfg.rounds, cfg.seed, cfg.calls
    );
    // What the kernel logs from here on (not a count of dmesg's lines: the
    // ring buffer may wrap during a long run and drop earlier ones).
    let mut since = LogSince::now()?;
    // SAFETY: prctl without pointers: orphaned grandchildren come to us.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    arena();
    let stats = Stats::default();
    let mut rng = Rng::new(cfg.seed);
    let start = Instant::now();
    for n in 0..cfg.rounds {
        let mut r = rng.fork_stream(n);
        round(cfg, &mut r, &stats, n)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let calls = stats.calls.load(Relaxed);
    println!("FUZZ {calls} calls in {secs:.1} s: {:.0} calls/s", calls as f64 / secs);
    let hist = stats.histogram.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut by_count: Vec<(i32, u64)> = hist.into_iter().collect();
    by_count.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let line: Vec<String> = by_count.iter().map(|(e, n)| format!("{}={n}", errno_name(*e))).collect();
    println!("FUZZ errno histogram: {}", line.join(" "));
    let times = *stats.times.lock().unwrap_or_else(|e| e.into_inner());
    let line: Vec<String> = OPS
        .iter()
        .zip(times)
        .map(|(n, (c, ns))| format!("{n}={c}x{:.2}ms", if c == 0 { 0.0 } else { ns as f64 / c as f64 / 1e6 }))
        .collect();
    println!("FUZZ worker time per operation: {}", line.join(" "));
    let trouble = kernel_trouble(&since.messages().join("\n"));
    let violations = stats.violations.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Report {
        calls,
        secs,
        registered: stats.registered.load(Relaxed),
        switched: stats.switched.load(Relaxed),
        exits: stats.exits.load(Relaxed),
        rmmod_refused: stats.rmmod_refused.load(Relaxed),
        reloads: stats.reloads.load(Relaxed),
        rounds: cfg.rounds,
        violations,
        trouble,
    })
}
