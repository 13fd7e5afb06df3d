//! A forked child that times cheap syscalls under the filters it is given:
//! installed by itself, or registered with speaker.ko and swapped, with an
//! application filter stacked in between (as a service would stack its own
//! during boot). The parent reads the child's action cache
//! (`/proc/PID/seccomp_cache`, `CONFIG_SECCOMP_CACHE_DEBUG`) before it lets
//! the child exit.
//!
//! After its last filter change the child makes only the probed syscalls,
//! `read`, `write`, `clock_gettime` (when the vDSO falls back to it) and
//! `exit_group`: a filter it runs under must allow those.
//!
//! Under the notify engine's filter (`Setup::notify`) the child installs
//! `first` with a listener and sends its number; the parent copies it
//! (`pidfd_getfd`) and answers every notification with EPERM from a thread
//! that lives as long as the child (a denial's round trip).
use std::collections::BTreeSet;
use std::io::{Read, Write};

use super::error::BenchError;
use super::stats::Figure;
use crate::container::notify::listener::{install_with_listener, receive, respond, take_fd};
use crate::container::seccomp;
use crate::device::Device;
use crate::profile::{Arch, SockFilter};
use crate::sys::process::pipe_cloexec;

/// A syscall the child makes in a loop; harmless with these arguments
/// (bad file descriptors, queries).
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub name: &'static str,
    pub nr: i64,
    pub args: [u64; 3],
}

const BAD_FD: u64 = u64::MAX;

pub const GETPPID: Probe = Probe { name: "getppid", nr: libc::SYS_getppid, args: [0; 3] };

/// `syslog(SYSLOG_ACTION_SIZE_BUFFER)`: a query, denied by Docker's default
/// profile (it needs CAP_SYSLOG) and by speaker's running filters.
pub const DENIED: Probe = Probe { name: "syslog", nr: libc::SYS_syslog, args: [10, 0, 0] };

/// Candidates for "a syscall at the end of a long filter": the one that
/// runs the most instructions of Docker's default profile (linear layout)
/// is measured.
pub const DEEP_CANDIDATES: [Probe; 24] = [
    Probe { name: "fsync", nr: libc::SYS_fsync, args: [BAD_FD, 0, 0] },
    Probe { name: "fdatasync", nr: libc::SYS_fdatasync, args: [BAD_FD, 0, 0] },
    Probe { name: "syncfs", nr: libc::SYS_syncfs, args: [BAD_FD, 0, 0] },
    Probe { name: "fchdir", nr: libc::SYS_fchdir, args: [BAD_FD, 0, 0] },
    Probe { name: "dup", nr: libc::SYS_dup, args: [BAD_FD, 0, 0] },
    Probe { name: "flock", nr: libc::SYS_flock, args: [BAD_FD, 0, 0] },
    Probe { name: "ftruncate", nr: libc::SYS_ftruncate, args: [BAD_FD, 0, 0] },
    Probe { name: "fstatfs", nr: libc::SYS_fstatfs, args: [BAD_FD, 0, 0] },
    Probe { name: "getdents64", nr: libc::SYS_getdents64, args: [BAD_FD, 0, 0] },
    Probe { name: "fadvise64", nr: libc::SYS_fadvise64, args: [BAD_FD, 0, 0] },
    Probe { name: "readahead", nr: libc::SYS_readahead, args: [BAD_FD, 0, 0] },
    Probe { name: "timerfd_gettime", nr: libc::SYS_timerfd_gettime, args: [BAD_FD, 0, 0] },
    Probe { name: "inotify_rm_watch", nr: libc::SYS_inotify_rm_watch, args: [BAD_FD, 0, 0] },
    Probe { name: "flistxattr", nr: libc::SYS_flistxattr, args: [BAD_FD, 0, 0] },
    Probe { name: "tee", nr: libc::SYS_tee, args: [BAD_FD, BAD_FD, 0] },
    Probe { name: "sync_file_range", nr: libc::SYS_sync_file_range, args: [BAD_FD, 0, 0] },
    Probe { name: "fallocate", nr: libc::SYS_fallocate, args: [BAD_FD, 0, 0] },
    Probe { name: "epoll_ctl", nr: libc::SYS_epoll_ctl, args: [BAD_FD, 0, 0] },
    Probe { name: "io_destroy", nr: libc::SYS_io_destroy, args: [0, 0, 0] },
    Probe { name: "getsid", nr: libc::SYS_getsid, args: [0, 0, 0] },
    Probe { name: "sched_getscheduler", nr: libc::SYS_sched_getscheduler, args: [0, 0, 0] },
    Probe { name: "pkey_free", nr: libc::SYS_pkey_free, args: [BAD_FD, 0, 0] },
    Probe { name: "fchmod", nr: libc::SYS_fchmod, args: [BAD_FD, 0, 0] },
    Probe { name: "lseek", nr: libc::SYS_lseek, args: [BAD_FD, 0, 0] },
];

/// How the measured child gets its filters.
#[derive(Default)]
pub struct Setup<'a> {
    /// Installed by the child first.
    pub first: Option<&'a [SockFilter]>,
    /// Stacked by the child after the registration, before the swap.
    pub stacked: Option<&'a [SockFilter]>,
    /// Register `first` with speaker.ko under this id, then swap in the
    /// program.
    pub swap: Option<(&'a Device, &'a str, &'a [SockFilter])>,
    /// `first` is the notify engine's filter: installed with a listener,
    /// whose notifications a supervisor thread answers with EPERM.
    pub notify: bool,
}

/// What one child measured.
pub struct Measured {
    /// Nanoseconds per call of each probe (its median batch).
    pub ns_per_call: Vec<f64>,
    /// x86_64 syscall numbers the kernel's action cache allows outright
    /// (`None`: the kernel does not show it, no `CONFIG_SECCOMP_CACHE_DEBUG`,
    /// as on Debian's kernel).
    pub cached: Option<BTreeSet<u32>>,
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sync(w: &mut std::fs::File, r: &mut std::fs::File, tag: u8) -> std::io::Result<()> {
    w.write_all(&[tag])?;
    let mut b = [0u8; 1];
    r.read_exact(&mut b)
}

/// Each probe's calls are timed in this many batches; the median batch is
/// the measurement. Under `-icount` a batch is an instruction count, and a
/// timer tick or a kernel thread's burst lands in a few batches only.
pub const BATCHES: usize = 9;
/// Probes a child measures at most.
const MAX_PROBES: usize = 8;
const OUT_BYTES: usize = MAX_PROBES * BATCHES * 8;

/// The child: filters, hand-shakes, the timed loops; never returns. It
/// allocates nothing once its filters are in (they may not allow `brk` or
/// `mmap`).
fn child(setup: &Setup, probes: &[Probe], calls: u64, to_parent: &mut std::fs::File, from_parent: &mut std::fs::File) -> ! {
    let mut out = [0u8; OUT_BYTES];
    let per_batch = (calls / BATCHES as u64).max(1);
    // Without SECCOMP_FILTER_FLAG_LOG: the denied probe would otherwise
    // measure the audit log (speaker's own filters log every denial).
    let ok = (|| -> std::io::Result<()> {
        match (setup.first, setup.notify) {
            (Some(p), true) => {
                // Left open for the parent to copy (no allocation here).
                let fd = std::os::fd::IntoRawFd::into_raw_fd(install_with_listener(p, 0)?);
                to_parent.write_all(&fd.to_ne_bytes())?;
            }
            (Some(p), false) => seccomp::install_with(p, 0)?,
            (None, _) => {}
        }
        sync(to_parent, from_parent, b'R')?;
        if let Some(p) = setup.stacked {
            seccomp::install_with(p, 0)?;
        }
        sync(to_parent, from_parent, b'S')?;
        for (i, p) in probes.iter().enumerate().take(MAX_PROBES) {
            for b in 0..BATCHES {
                let t = now_ns();
                for _ in 0..per_batch {
                    // SAFETY: the probes' arguments are bad descriptors or
                    // plain numbers; no memory is passed.
                    unsafe { libc::syscall(p.nr, p.args[0], p.args[1], p.args[2]) };
                }
                let at = (i * BATCHES + b) * 8;
                out[at..at + 8].copy_from_slice(&(now_ns() - t).to_ne_bytes());
            }
        }
        to_parent.write_all(&out)?;
        // Wait until the parent has read the action cache.
        let mut b = [0u8; 1];
        let _ = from_parent.read(&mut b);
        Ok(())
    })()
    .is_ok();
    // SAFETY: _exit ends the forked child without running the parent's
    // exit handlers.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

fn cache_of(pid: i32) -> Option<BTreeSet<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/seccomp_cache")).ok()?;
    let cached = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next().and_then(|n| n.parse().ok()), w.next()) {
                (Some(abi), Some(nr), Some("ALLOW")) if abi == Arch::native().name() => Some(nr),
                _ => None,
            }
        })
        .collect();
    Some(cached)
}

/// Forks a child set up as `setup`, times `calls` calls of each probe and
/// reads its action cache.
pub fn measure(setup: &Setup, probes: &[Probe], calls: u64) -> Result<Measured, BenchError> {
    let (mut up_r, mut up_w) = pipe_cloexec().map_err(|e| BenchError::sys("pipe", e))?;
    let (mut down_r, mut down_w) = pipe_cloexec().map_err(|e| BenchError::sys("pipe", e))?;
    // SAFETY: speaker-ctl bench is single-threaded here; the child only
    // makes syscalls on its own copy of memory and ends in _exit.
    let pid = match unsafe { nix::unistd::fork() }.map_err(|e| BenchError::sys("fork", e))? {
        nix::unistd::ForkResult::Child => {
            // The parent's ends: the child's reads must see the parent's
            // close, not its own open copy.
            drop(up_r);
            drop(down_w);
            child(setup, probes, calls, &mut up_w, &mut down_r)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(up_w);
    drop(down_r);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let lost = |e: std::io::Error| BenchError::io("the measuring child stopped early (filter setup failed?)", e);
        if setup.notify {
            let mut n = [0u8; 4];
            up_r.read_exact(&mut n).map_err(lost)?;
            let listener =
                take_fd(pid.as_raw(), i32::from_ne_bytes(n)).map_err(|e| BenchError::io("copying the child's seccomp listener", e))?;
            let stop = &stop;
            scope.spawn(move || answer_until(&listener, stop));
        }
        let r = measured(setup, probes, calls, pid, &mut up_r, &mut down_w);
        drop(down_w);
        let _ = nix::sys::wait::waitpid(pid, None);
        stop.store(true, std::sync::atomic::Ordering::Release);
        r
    });
    if let Some((dev, cid, _)) = setup.swap {
        let _ = dev.unregister(cid);
    }
    result
}

/// Answers every notification on `listener` with EPERM until `stop`.
fn answer_until(listener: &std::os::fd::OwnedFd, stop: &std::sync::atomic::AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u8)) {
            Ok(n) if n > 0 && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) => {
                if let Ok(n) = receive(listener.as_fd()) {
                    let _ = respond(listener.as_fd(), n.id, Some(libc::EPERM as u16));
                }
            }
            _ => {}
        }
    }
}

/// The parent's side of [`measure`] once the child runs: registration and
/// swap, the child's timings and its action cache.
fn measured(
    setup: &Setup,
    probes: &[Probe],
    calls: u64,
    pid: nix::unistd::Pid,
    up_r: &mut std::fs::File,
    down_w: &mut std::fs::File,
) -> Result<Measured, BenchError> {
    (|| {
        let lost = |e: std::io::Error| BenchError::io("the measuring child stopped early (filter setup failed?)", e);
        let mut b = [0u8; 1];
        up_r.read_exact(&mut b).map_err(lost)?;
        if let Some((dev, cid, _)) = setup.swap {
            let count = crate::sys::procfs::seccomp_filter_count(pid.as_raw()).map_err(|e| BenchError::io("reading Seccomp_filters", e))?;
            dev.register(cid, pid.as_raw() as u32, count, 0, 0)?;
        }
        down_w.write_all(b"G").map_err(lost)?;
        up_r.read_exact(&mut b).map_err(lost)?;
        if let Some((dev, cid, prog)) = setup.swap {
            dev.switch(cid, prog, 1, 0)?;
        }
        down_w.write_all(b"G").map_err(lost)?;
        let mut bytes = [0u8; OUT_BYTES];
        up_r.read_exact(&mut bytes).map_err(lost)?;
        let cached = cache_of(pid.as_raw());
        let per_batch = (calls / BATCHES as u64).max(1) as f64;
        let batches: Vec<f64> =
            bytes.chunks_exact(8).map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64).collect();
        let ns_per_call = batches
            .chunks_exact(BATCHES)
            .take(probes.len().min(MAX_PROBES))
            .map(|b| Figure::of(b, "ns").map(|f| f.median / per_batch).unwrap_or(0.0))
            .collect();
        Ok(Measured { ns_per_call, cached })
    })()
    .inspect_err(|_| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    })
}
