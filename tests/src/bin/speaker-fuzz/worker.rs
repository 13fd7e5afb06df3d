//! A worker thread: random ioctls (commands, arguments and pointers) on its
//! own `/dev/speaker` fd, forked callers, reopened fds.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use speaker_tests::guest::{cid_bytes, raw_ioctl, seccomp_filters};
use speaker_tests::{abi, ioctl};

use crate::pointers::{arena, bad_pointer};
use crate::progs::{malformed_prog, valid_prog, ALLOW_ONE};
use crate::rng::Rng;
use crate::stats::{random_cid, random_pid, recent_cid, Stats};

/// Scratch memory of a worker: the kernel may write up to 16 KiB (the
/// largest size an ioctl number encodes) or 1024 status entries into it.
pub struct Scratch {
    pub bytes: Vec<u8>,
    pub status: Vec<abi::StatusEntry>,
    pub prog: Vec<libc::sock_filter>,
}

impl Scratch {
    pub fn new() -> Scratch {
        let e = ioctl::status_entry();
        Scratch { bytes: vec![0; 1 << 15], status: vec![e; abi::MAX_CONTAINERS], prog: Vec::new() }
    }

    pub fn ptr(&mut self) -> u64 {
        self.bytes.as_mut_ptr() as u64
    }
}

/// Calls `ioctl`, counts it, files its errno and checks the return value.
pub fn call(stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, cmd: u32, arg: u64) -> Result<i64, i32> {
    stats.calls.fetch_add(1, Relaxed);
    let r = raw_ioctl(fd, cmd, arg);
    match r {
        Ok(0) => *hist.entry(0).or_default() += 1,
        Ok(v) => stats.violation(format!("ioctl({cmd:#x}) returned {v}, neither 0 nor -1")),
        Err(e) if e <= 0 => stats.violation(format!("ioctl({cmd:#x}) failed without an errno ({e})")),
        Err(e) => *hist.entry(e).or_default() += 1,
    }
    r
}

/// A random command number: speaker's magic with any nr/dir/size, or
/// another magic (leaving out the VFS's generic file commands such as
/// FIFREEZE, which act on the file system of /dev rather than the driver).
pub fn random_cmd(rng: &mut Rng) -> u32 {
    let dir = rng.below(4) as u32;
    let size = match rng.below(3) {
        0 => rng.below(1 << 14) as u32,
        1 => rng.pick(&[0, 4, 8, 40, 64, 80, 112, 104]),
        _ => rng.below(256) as u32,
    };
    let nr = if rng.chance(700) { rng.below(8) as u32 } else { rng.below(256) as u32 };
    let magic = if rng.chance(700) {
        abi::SPEAKER_IOC_MAGIC
    } else {
        loop {
            let m = rng.below(256) as u32;
            if ![0x00, 0x15, 0x58, 0x66, 0x94, 0x54].contains(&m) {
                break m;
            }
        }
    };
    (dir << 30) | (size << 16) | (magic << 8) | nr
}

/// Fills `args` and returns the pointer to hand over for a `prog` field:
/// a valid or malformed program in `scratch.prog`, or a bad pointer.
pub fn random_prog(rng: &mut Rng, scratch: &mut Scratch) -> (u64, u32) {
    if rng.chance(100) {
        return (bad_pointer(rng, false), rng.below(64) as u32 + 1);
    }
    scratch.prog = if rng.chance(500) { valid_prog(rng) } else { malformed_prog(rng) };
    let len = scratch.prog.len() as u32;
    let len = match rng.below(10) {
        // Lengths that disagree with the buffer (reading past it reads our own heap, or faults).
        0 => rng.pick(&[0, len + 1, 4097]),
        1 => u32::MAX,
        _ => len,
    };
    (scratch.prog.as_ptr() as u64, len)
}

pub fn switch_args(rng: &mut Rng, scratch: &mut Scratch, cid: [u8; abi::CID_LEN]) -> abi::SwitchArgs {
    let (prog, prog_len) = random_prog(rng, scratch);
    let phase = if rng.chance(900) { rng.below(3) as u32 } else { rng.next() as u32 };
    let allowed = rng.next() as u32;
    let flags = if rng.chance(900) { rng.pick(&[abi::SWITCH_DEFER_FREE, abi::SWITCH_DEFER_FREE, 0]) } else { rng.next() as u32 };
    let mut args = ioctl::switch_at(cid, prog, prog_len, phase, allowed, flags);
    // `tasks` (an out field) and `reserved` get random values too.
    args.tasks = rng.next() as u32;
    args.reserved = if rng.chance(900) { 0 } else { rng.next() as u32 };
    args
}

/// The kinds of operation of a worker, for the time report.
pub const OPS: [&str; 10] =
    ["version", "register", "switch", "unregister", "status", "random-cmd", "ro-switch", "live-switch", "fork", "reopen"];

/// One random operation of a worker; returns its kind (index in [`OPS`]).
pub fn fuzz_once(rng: &mut Rng, stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, scratch: &mut Scratch) -> usize {
    let bad = rng.chance(100);
    let op = rng.below(100);
    match op {
        // VERSION
        0..=9 => {
            let mut v = ioctl::version();
            let arg = if bad { bad_pointer(rng, true) } else { ioctl::addr_mut(&mut v) };
            let answered = call(stats, hist, fd, abi::SPEAKER_IOC_VERSION, arg).is_ok() && !bad;
            if answered && (v.abi_version != abi::SPEAKER_ABI_VERSION || v.containers as usize > abi::MAX_CONTAINERS) {
                stats.violation(format!("VERSION answered abi {} containers {}", v.abi_version, v.containers));
            }
        }
        // REGISTER of random or recent pids
        10..=19 => {
            let pid = random_pid(rng);
            let count = match rng.below(3) {
                0 => seccomp_filters(pid as i32).unwrap_or(1),
                1 => rng.below(4) as u32,
                _ => rng.next() as u32,
            };
            let cid = if rng.chance(500) { cid_bytes(&format!("fzw-{}", rng.below(4))) } else { random_cid(rng) };
            let a = ioctl::register(cid, pid, count, rng.below(20) as u32, rng.next() as u32);
            let arg = if bad { bad_pointer(rng, false) } else { ioctl::addr(&a) };
            if call(stats, hist, fd, abi::SPEAKER_IOC_REGISTER, arg).is_ok() {
                stats.registered.fetch_add(1, Relaxed);
            }
        }
        // SWITCH with valid and malformed programs
        20..=49 => {
            let cid = random_cid(rng);
            let mut a = switch_args(rng, scratch, cid);
            let arg = if bad { bad_pointer(rng, true) } else { ioctl::addr_mut(&mut a) };
            if call(stats, hist, fd, abi::SPEAKER_IOC_SWITCH, arg).is_ok() {
                stats.switched.fetch_add(1, Relaxed);
            }
        }
        // UNREGISTER
        50..=54 => {
            let a = ioctl::unregister(random_cid(rng));
            let arg = if bad { bad_pointer(rng, false) } else { ioctl::addr(&a) };
            if call(stats, hist, fd, abi::SPEAKER_IOC_UNREGISTER, arg).is_ok() {
                stats.unregistered.fetch_add(1, Relaxed);
            }
        }
        // PIDS with random capacities and buffers
        61..=64 => {
            let any = rng.below(9000) as u32;
            let cap = rng.pick(&[0, 1, 7, 4096, 65536, 65537, u32::MAX, any]);
            let pids = match rng.below(10) {
                0 => bad_pointer(rng, true),
                1 => arena().edge,
                // 32 KiB of scratch: room for 8192 pids; larger capacities
                // must be refused or bounded, never overrun silently.
                _ => scratch.bytes.as_mut_ptr() as u64,
            };
            let cap = if pids == scratch.bytes.as_mut_ptr() as u64 { cap.min(8192) } else { cap };
            let mut a = ioctl::pids(random_cid(rng), pids, cap);
            let arg = if bad { bad_pointer(rng, true) } else { ioctl::addr_mut(&mut a) };
            let _ = call(stats, hist, fd, abi::SPEAKER_IOC_PIDS, arg);
        }
        // STATUS with random capacities and buffers
        55..=60 => {
            let any = rng.below(2048) as u32;
            let cap = rng.pick(&[0, 1, 2, 16, 1024, 1025, 1 << 20, u32::MAX, any]);
            let entries = match rng.below(10) {
                0 => bad_pointer(rng, true),
                1 => arena().edge,
                _ => scratch.status.as_mut_ptr() as u64,
            };
            let cid = if rng.chance(500) { [0; abi::CID_LEN] } else { random_cid(rng) };
            let mut a = ioctl::status(entries, cap, cid);
            let arg = if bad { bad_pointer(rng, true) } else { ioctl::addr_mut(&mut a) };
            if call(stats, hist, fd, abi::SPEAKER_IOC_STATUS, arg).is_ok() && !bad && a.count as usize > abi::MAX_CONTAINERS {
                stats.violation(format!("STATUS counted {} containers", a.count));
            }
        }
        // Random command numbers on scratch memory full of noise or well-formed structs
        65..=89 => {
            let cmd = random_cmd(rng);
            let arg = match rng.below(4) {
                0 => bad_pointer(rng, true),
                1 => rng.next(),
                _ => {
                    let n = rng.below(256) as usize;
                    for b in &mut scratch.bytes[..n] {
                        *b = rng.next() as u8;
                    }
                    if rng.chance(300) {
                        let cid = random_cid(rng);
                        let a = switch_args(rng, scratch, cid);
                        // SAFETY: `bytes` is far larger than a SwitchArgs; unaligned write.
                        unsafe { std::ptr::write_unaligned(scratch.bytes.as_mut_ptr() as *mut abi::SwitchArgs, a) };
                    }
                    scratch.ptr() + rng.below(8)
                }
            };
            call(stats, hist, fd, cmd, arg).ok();
        }
        // The read-only page as a SWITCH argument: the kernel may switch, then fail to write back.
        90..=92 => {
            call(stats, hist, fd, abi::SPEAKER_IOC_SWITCH, arena().ro).ok();
        }
        // Well-formed switch of a recent container to a valid program.
        _ => {
            scratch.prog = valid_prog(rng);
            let mut a =
                ioctl::switch(cid_bytes(&recent_cid(rng)), &scratch.prog, 1, 0, if rng.chance(950) { abi::SWITCH_DEFER_FREE } else { 0 });
            if call(stats, hist, fd, abi::SPEAKER_IOC_SWITCH, ioctl::addr_mut(&mut a)).is_ok() {
                stats.switched.fetch_add(1, Relaxed);
            }
        }
    }
    match op {
        0..=9 => 0,
        10..=19 => 1,
        20..=49 => 2,
        50..=54 => 3,
        55..=64 => 4,
        65..=89 => 5,
        90..=92 => 6,
        _ => 7,
    }
}

/// Forks a child that makes a few calls on the inherited fd, as root or
/// after dropping to uid/gid 65534, and exits (reaped by the container thread).
pub fn fork_caller(rng: &mut Rng, stats: &Stats, fd: i32, unprivileged: bool) {
    let cid = cid_bytes(&recent_cid(rng));
    let mut sw = ioctl::switch(cid, &ALLOW_ONE, 1, 0, abi::SWITCH_DEFER_FREE);
    let reg = ioctl::register(cid_bytes("fz-unpriv"), random_pid(rng), 1, 0, 0);
    let un = ioctl::unregister(cid);
    let mut v = ioctl::version();
    stats.calls.fetch_add(4, Relaxed);
    // SAFETY: the child makes raw syscalls on memory prepared before the fork
    // (no allocation, no locks: other threads may hold them) and _exits.
    unsafe {
        match libc::fork() {
            0 => {
                if unprivileged {
                    libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                    if libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534) != 0
                        || libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) != 0
                    {
                        libc::_exit(3);
                    }
                }
                libc::syscall(libc::SYS_ioctl, fd, abi::SPEAKER_IOC_VERSION as libc::c_ulong, &mut v as *mut abi::VersionInfo);
                libc::syscall(libc::SYS_ioctl, fd, abi::SPEAKER_IOC_SWITCH as libc::c_ulong, &mut sw as *mut abi::SwitchArgs);
                libc::syscall(libc::SYS_ioctl, fd, abi::SPEAKER_IOC_REGISTER as libc::c_ulong, &reg as *const abi::RegisterArgs);
                libc::syscall(libc::SYS_ioctl, fd, abi::SPEAKER_IOC_UNREGISTER as libc::c_ulong, &un as *const abi::CidArgs);
                libc::_exit(0)
            }
            -1 => {}
            _ => {
                stats.forks.fetch_add(1, Relaxed);
                if unprivileged {
                    stats.unprivileged.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

pub fn open_dev(stats: &Stats) -> Option<i32> {
    // SAFETY: plain open of a NUL-terminated path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        stats.violation(format!("cannot open /dev/speaker during a round: {}", std::io::Error::last_os_error()));
        return None;
    }
    Some(fd)
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor this thread owns.
    unsafe { libc::close(fd) };
}

/// A worker: random calls until the round's budget is spent.
pub fn worker(mut rng: Rng, stats: &Stats, budget: u64, stop: &AtomicBool) {
    let mut hist = BTreeMap::new();
    let mut scratch = Scratch::new();
    let mut times = [(0u64, 0u64); OPS.len()];
    let Some(mut fd) = open_dev(stats) else { return };
    while stats.calls.load(Relaxed) < budget && !stop.load(Relaxed) {
        let t = Instant::now();
        let op = fuzz_once(&mut rng, stats, &mut hist, fd, &mut scratch);
        times[op].0 += 1;
        times[op].1 += t.elapsed().as_nanos() as u64;
        // Forks of this multi-threaded process take ~0.4 s each under TCG.
        if rng.chance(1) {
            let t = Instant::now();
            let unprivileged = rng.chance(500);
            fork_caller(&mut rng, stats, fd, unprivileged);
            times[8].0 += 1;
            times[8].1 += t.elapsed().as_nanos() as u64;
        }
        if rng.chance(5) {
            let t = Instant::now();
            close(fd);
            let f = open_dev(stats);
            times[9].0 += 1;
            times[9].1 += t.elapsed().as_nanos() as u64;
            match f {
                Some(f) => fd = f,
                None => break,
            }
        }
    }
    close(fd);
    let mut all = stats.times.lock().unwrap_or_else(|e| e.into_inner());
    for (a, t) in all.iter_mut().zip(times) {
        a.0 += t.0;
        a.1 += t.1;
    }
    drop(all);
    let mut all = stats.histogram.lock().unwrap_or_else(|e| e.into_inner());
    for (e, n) in hist {
        *all.entry(e).or_default() += n;
    }
}
