//! speaker-fuzz: an ioctl fuzzer for speaker.ko, run as root inside the VM
//! (`qemu/run -- speaker-fuzz [--seed N] [--calls N] [--threads N] [--rounds N] [--module PATH]`).
//!
//! Each round opens `/dev/speaker` in several worker threads (default 4)
//! that throw ioctls at it: random command numbers (speaker's magic 0xB7
//! with random nr, direction and size, and other magics), speaker's five
//! commands with well-formed and malformed arguments (random pids and
//! container ids, valid and malformed BPF programs of 0..5000 instructions,
//! jumps out of range), and bad pointers (NULL, kernel addresses,
//! non-canonical, unmapped, a PROT_NONE page, a read-only page for commands
//! the kernel writes to, a struct straddling the end of a mapping).  Meanwhile
//! a container thread forks children that install a seccomp filter, are
//! registered, switched and unregistered, live a few milliseconds (some fork
//! a grandchild sharing the filter) and exit; the workers fork and drop
//! privileges now and then; an rmmod thread tries `delete_module` while its
//! own fd is open (must fail).  At the end of a round every child is gone
//! and every fd closed: the module's container count must come back to 0,
//! `rmmod` must succeed, and the module is loaded again for the next round.
//!
//! The fuzzer asserts no errno for garbage: only sane return values (0, or
//! -1 with an errno), a sane `VERSION` answer, no leaked container, rmmod
//! refused while an fd is open and accepted once none is, and (by the
//! scenario harness) a clean kernel log and kmemleak.  It prints the seed
//! (rerun with `--seed`), calls per second and the errno histogram.
use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use speaker_tests::abi;
use speaker_tests::ensure;
use speaker_tests::guest::{cid_bytes, dmesg, kernel_trouble, raw_ioctl, run_selected, seccomp_filters, Outcome, Scenario};
use speaker_tests::ioctl;

// ---------------------------------------------------------------------------
// Configuration and the PRNG

struct Config {
    seed: u64,
    calls: u64,
    threads: usize,
    rounds: u64,
    module: String,
}

/// SplitMix64: small, fast, and the same stream for the same seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `per_mille`/1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }

    /// A stream of its own for thread or round `n`.
    fn fork_stream(&mut self, n: u64) -> Rng {
        Rng::new(self.next() ^ n.wrapping_mul(0xd134_2543_de82_ef95))
    }
}

// ---------------------------------------------------------------------------
// BPF programs

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const RET_ALLOW: u32 = 0x7fff_0000;
const BPF_RET_K: u16 = 0x06;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JA: u16 = 0x05;

/// An allow-all program (one of a few equivalent shapes).
fn allow_all(rng: &mut Rng) -> Vec<libc::sock_filter> {
    match rng.below(3) {
        0 => vec![insn(BPF_RET_K, 0, 0, RET_ALLOW)],
        1 => vec![insn(BPF_LD_W_ABS, 0, 0, 4), insn(BPF_RET_K, 0, 0, RET_ALLOW)],
        _ => vec![insn(BPF_LD_W_ABS, 0, 0, 0), insn(BPF_JEQ_K, 0, 0, 1000), insn(BPF_RET_K, 0, 0, RET_ALLOW)],
    }
}

/// A program seccomp accepts: allow-all, or one syscall (or all) answered
/// with a random action (errno, kill, trap, log, trace, user-notif).
fn valid_prog(rng: &mut Rng) -> Vec<libc::sock_filter> {
    if rng.chance(500) {
        return allow_all(rng);
    }
    let actions = [0x0005_0000 | 1000, 0x8000_0000, 0x0003_0000, 0x7ffc_0000, 0x7ff0_0000, 0x7fc0_0000, 0x0000_0000];
    let action = rng.pick(&actions);
    if rng.chance(200) {
        return vec![insn(BPF_RET_K, 0, 0, action)];
    }
    let any = rng.below(450) as u32;
    let nr = rng.pick(&[39u32, 102, 110, 140, 165, 170, 1000, any]);
    vec![insn(BPF_LD_W_ABS, 0, 0, 0), insn(BPF_JEQ_K, 0, 1, nr), insn(BPF_RET_K, 0, 0, action), insn(BPF_RET_K, 0, 0, RET_ALLOW)]
}

/// A program seccomp (and so speaker) must refuse, or random noise.
fn malformed_prog(rng: &mut Rng) -> Vec<libc::sock_filter> {
    // Long programs are built (and refused) under the module's one lock:
    // they are the slowest calls, so a minority.
    let len = match rng.below(20) {
        0..=6 => rng.below(8),
        7..=13 => rng.below(64),
        14..=16 => rng.below(5001),
        _ => rng.pick(&[4095, 4096, 4097, 5000]),
    } as usize;
    let opcodes: [u16; 14] = [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0x15, 0x20, 0x28, 0x30, 0x35, 0x61, 0x87, 0x94];
    let mut p: Vec<libc::sock_filter> = (0..len)
        .map(|_| {
            let code = if rng.chance(700) { rng.pick(&opcodes) } else { rng.next() as u16 };
            let k = if rng.chance(500) { rng.below(64) as u32 * 4 } else { rng.next() as u32 };
            insn(code, rng.next() as u8, rng.next() as u8, k)
        })
        .collect();
    match rng.below(4) {
        // A valid body whose jump leaves the program.
        0 if len >= 2 => {
            p[0] = insn(BPF_JA, 0, 0, len as u32 + rng.below(1000) as u32);
            p[len - 1] = insn(BPF_RET_K, 0, 0, RET_ALLOW);
        }
        1 if len >= 3 => {
            p[len - 2] = insn(BPF_JEQ_K, 200, 255, 1);
            p[len - 1] = insn(BPF_RET_K, 0, 0, RET_ALLOW);
        }
        // No return at the end.
        2 if len >= 1 => p[len - 1] = insn(BPF_LD_W_ABS, 0, 0, 0),
        _ => {}
    }
    p
}

// ---------------------------------------------------------------------------
// Memory the kernel is pointed at

/// Addresses that are not ours to hand over, and pages to misuse.
struct Arena {
    /// A read-only page holding a well-formed `SwitchArgs` for container `fz-ro`.
    ro: u64,
    /// A page that was mapped and unmapped (in a region mmap never picks).
    unmapped: u64,
    /// A PROT_NONE page.
    none: u64,
    /// The last 16 bytes of a mapping followed by the unmapped page.
    edge: u64,
}

static ARENA: OnceLock<Arena> = OnceLock::new();
static ALLOW_ONE: [libc::sock_filter; 1] = [libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ALLOW }];

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn arena() -> &'static Arena {
    ARENA.get_or_init(|| {
        let ps = page_size();
        // Far below where mmap places things (top-down from the stack), so
        // nothing lands in the hole we punch.
        let hint = 0x10_0000_0000usize as *mut libc::c_void;
        // SAFETY: a fresh anonymous mapping at an address we reserve with
        // MAP_FIXED_NOREPLACE (never replacing an existing mapping).
        let base = unsafe {
            libc::mmap(
                hint,
                4 * ps,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let b = base as usize;
        let ro = b;
        let args = ioctl::switch(cid_bytes("fz-ro"), &ALLOW_ONE, 1, 0, abi::SWITCH_DEFER_FREE);
        // SAFETY: page 0 of our mapping is writable and large enough; then
        // pages are re-protected or unmapped, all inside our own mapping.
        unsafe {
            std::ptr::write(ro as *mut abi::SwitchArgs, args);
            assert_eq!(libc::mprotect(ro as *mut _, ps, libc::PROT_READ), 0);
            assert_eq!(libc::mprotect((b + ps) as *mut _, ps, libc::PROT_NONE), 0);
            assert_eq!(libc::munmap((b + 3 * ps) as *mut _, ps), 0);
        }
        Arena { ro: ro as u64, none: (b + ps) as u64, edge: (b + 3 * ps - 16) as u64, unmapped: (b + 3 * ps) as u64 }
    })
}

/// A pointer the kernel must refuse (or, for the edge, partly refuse).
fn bad_pointer(rng: &mut Rng, kernel_writes: bool) -> u64 {
    let a = arena();
    let mut v = vec![0, 1, 0x1000, 0xffff_8880_0000_0000, 0xffff_ffff_8100_0000, 0x8000_0000_0000_0000, u64::MAX - 7];
    v.extend([a.unmapped, a.none, a.edge, a.unmapped - 1]);
    if kernel_writes {
        v.push(a.ro);
    }
    rng.pick(&v)
}

// ---------------------------------------------------------------------------
// Shared state of a run

/// Counts and findings, shared by every thread.
#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    registered: AtomicU64,
    switched: AtomicU64,
    unregistered: AtomicU64,
    children: AtomicU64,
    exits: AtomicU64,
    forks: AtomicU64,
    unprivileged: AtomicU64,
    rmmod_refused: AtomicU64,
    reloads: AtomicU64,
    histogram: Mutex<BTreeMap<i32, u64>>,
    /// Per kind of worker operation ([`OPS`]): count and total nanoseconds.
    times: Mutex<[(u64, u64); OPS.len()]>,
    /// Insane answers and broken promises; the run fails if any.
    violations: Mutex<Vec<String>>,
}

impl Stats {
    fn violation(&self, v: String) {
        println!("FUZZ VIOLATION {v}");
        let mut all = self.violations.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() < 100 {
            all.push(v);
        }
    }
}

/// Recently used container ids and pids, for calls aimed at live things.
struct Recent {
    next_cid: AtomicU64,
    pids: [AtomicU32; 16],
}

static RECENT: Recent = Recent { next_cid: AtomicU64::new(0), pids: [const { AtomicU32::new(0) }; 16] };

fn recent_cid(rng: &mut Rng) -> String {
    let n = RECENT.next_cid.load(Relaxed);
    format!("fz-{}", n.saturating_sub(rng.below(6)))
}

fn random_cid(rng: &mut Rng) -> [u8; abi::CID_LEN] {
    match rng.below(8) {
        0..=3 => cid_bytes(&recent_cid(rng)),
        4 => cid_bytes("fz-ro"),
        5 => [0; abi::CID_LEN],
        // Not NUL-terminated, any bytes.
        6 => std::array::from_fn(|_| rng.next() as u8 | 1),
        _ => cid_bytes(&format!("{}", rng.next())),
    }
}

fn random_pid(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0..=3 => RECENT.pids[rng.below(16) as usize].load(Relaxed),
        4 => std::process::id(),
        // SAFETY: gettid has no memory effects.
        5 => unsafe { libc::gettid() as u32 },
        6 => rng.pick(&[0, 1, u32::MAX, i32::MAX as u32, 4_194_304]),
        _ => rng.below(5000) as u32,
    }
}

// ---------------------------------------------------------------------------
// One ioctl, accounted

/// Scratch memory of a worker: the kernel may write up to 16 KiB (the
/// largest size an ioctl number encodes) or 1024 status entries into it.
struct Scratch {
    bytes: Vec<u8>,
    status: Vec<abi::StatusEntry>,
    prog: Vec<libc::sock_filter>,
}

impl Scratch {
    fn new() -> Scratch {
        let e = ioctl::status_entry();
        Scratch { bytes: vec![0; 1 << 15], status: vec![e; abi::MAX_CONTAINERS], prog: Vec::new() }
    }

    fn ptr(&mut self) -> u64 {
        self.bytes.as_mut_ptr() as u64
    }
}

/// Calls `ioctl`, counts it, files its errno and checks the return value.
fn call(stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, cmd: u32, arg: u64) -> Result<i64, i32> {
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
fn random_cmd(rng: &mut Rng) -> u32 {
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
fn random_prog(rng: &mut Rng, scratch: &mut Scratch) -> (u64, u32) {
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

fn switch_args(rng: &mut Rng, scratch: &mut Scratch, cid: [u8; abi::CID_LEN]) -> abi::SwitchArgs {
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
const OPS: [&str; 10] =
    ["version", "register", "switch", "unregister", "status", "random-cmd", "ro-switch", "live-switch", "fork", "reopen"];

/// One random operation of a worker; returns its kind (index in [`OPS`]).
fn fuzz_once(rng: &mut Rng, stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, scratch: &mut Scratch) -> usize {
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
fn fork_caller(rng: &mut Rng, stats: &Stats, fd: i32, unprivileged: bool) {
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

fn open_dev(stats: &Stats) -> Option<i32> {
    // SAFETY: plain open of a NUL-terminated path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        stats.violation(format!("cannot open /dev/speaker during a round: {}", std::io::Error::last_os_error()));
        return None;
    }
    Some(fd)
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor this thread owns.
    unsafe { libc::close(fd) };
}

/// A worker: random calls until the round's budget is spent.
fn worker(mut rng: Rng, stats: &Stats, budget: u64, stop: &AtomicBool) {
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

// ---------------------------------------------------------------------------
// Containers: children under a seccomp filter, registered and switched

struct Child {
    pid: i32,
    born: Instant,
}

/// The child's life: install 1 or 2 filters, say so, wait for the go, maybe
/// fork a grandchild (sharing the filter), sleep `ms`, exit.  Only raw
/// syscalls on memory prepared before the fork.
fn container_child(ready_w: i32, go_r: i32, filters: u32, grandchild: bool, ms: u64) -> ! {
    let prog = libc::sock_fprog { len: 1, filter: ALLOW_ONE.as_ptr() as *mut _ };
    let ts = libc::timespec { tv_sec: 0, tv_nsec: (ms as i64) * 1_000_000 };
    // SAFETY: raw syscalls on this process's own descriptors and on memory
    // built before the fork; ends in _exit.
    unsafe {
        for _ in 0..filters {
            if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) != 0 {
                libc::_exit(10);
            }
        }
        let b = 1u8;
        libc::write(ready_w, &b as *const u8 as *const _, 1);
        let mut g = 0u8;
        libc::read(go_r, &mut g as *mut u8 as *mut _, 1);
        if grandchild && libc::fork() == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::nanosleep(&ts, std::ptr::null_mut());
            libc::_exit(0);
        }
        libc::nanosleep(&ts, std::ptr::null_mut());
        for _ in 0..20 {
            libc::getppid();
        }
        libc::_exit(0)
    }
}

fn pipe() -> Option<(i32, i32)> {
    let mut p = [0i32; 2];
    // SAFETY: `p` has room for the two descriptors.
    (unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } == 0).then_some((p[0], p[1]))
}

/// Starts a child and registers it (as `fz-N`, or `fz-ro` now and then).
fn spawn_container(rng: &mut Rng, stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, live: &mut Vec<Child>) {
    let Some((ready_r, ready_w)) = pipe() else { return };
    let Some((go_r, go_w)) = pipe() else {
        close(ready_r);
        close(ready_w);
        return;
    };
    let filters = 1 + rng.below(2) as u32;
    let grandchild = rng.chance(300);
    let ms = rng.below(60);
    // SAFETY: the child only runs `container_child` (raw syscalls, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        container_child(ready_w, go_r, filters, grandchild, ms);
    }
    close(ready_w);
    close(go_r);
    if pid < 0 {
        close(ready_r);
        close(go_w);
        return;
    }
    stats.children.fetch_add(1, Relaxed);
    live.push(Child { pid, born: Instant::now() });
    RECENT.pids[rng.below(16) as usize].store(pid as u32, Relaxed);
    let mut b = 0u8;
    // SAFETY: one byte into `b` from our pipe.
    let ready = unsafe { libc::read(ready_r, &mut b as *mut u8 as *mut _, 1) } == 1;
    let early_go = rng.chance(250);
    let go = || {
        // SAFETY: one byte to our pipe, then closing our ends.
        unsafe { libc::write(go_w, &b as *const u8 as *const _, 1) };
        close(go_w);
    };
    if early_go {
        go();
    }
    if ready {
        let n = RECENT.next_cid.load(Relaxed) + 1;
        let cid = if rng.chance(50) { "fz-ro".to_string() } else { format!("fz-{n}") };
        let count = seccomp_filters(pid).unwrap_or(filters);
        let a = ioctl::register(cid_bytes(&cid), pid as u32, count, 0, 0);
        if call(stats, hist, fd, abi::SPEAKER_IOC_REGISTER, ioctl::addr(&a)).is_ok() {
            stats.registered.fetch_add(1, Relaxed);
            RECENT.next_cid.store(n, Relaxed);
        }
    }
    if !early_go {
        go();
    }
    close(ready_r);
}

/// Reaps every child that has exited (ours, grandchildren handed to us as
/// subreaper, forked callers); drops them from `live`.
fn reap(stats: &Stats, live: &mut Vec<Child>) {
    loop {
        let mut st = 0;
        // SAFETY: reaping any of our children without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
        if let Some(i) = live.iter().position(|c| c.pid == pid) {
            live.swap_remove(i);
            stats.exits.fetch_add(1, Relaxed);
        }
    }
}

/// The container thread: keeps up to 8 children alive, registered, switched
/// and sometimes unregistered, kills children older than 2 s.
fn containers(mut rng: Rng, stats: &Stats, stop: &AtomicBool) {
    let mut hist = BTreeMap::new();
    let Some(fd) = open_dev(stats) else { return };
    let mut live: Vec<Child> = Vec::new();
    while !stop.load(Relaxed) {
        reap(stats, &mut live);
        if live.len() < 8 {
            spawn_container(&mut rng, stats, &mut hist, fd, &mut live);
        }
        let mut prog = allow_all(&mut rng);
        if rng.chance(300) {
            prog = valid_prog(&mut rng);
        }
        let mut a = ioctl::switch(cid_bytes(&recent_cid(&mut rng)), &prog, 1, 0, if rng.chance(900) { abi::SWITCH_DEFER_FREE } else { 0 });
        if call(stats, &mut hist, fd, abi::SPEAKER_IOC_SWITCH, ioctl::addr_mut(&mut a)).is_ok() {
            stats.switched.fetch_add(1, Relaxed);
        }
        if rng.chance(100) {
            let u = ioctl::unregister(cid_bytes(&recent_cid(&mut rng)));
            if call(stats, &mut hist, fd, abi::SPEAKER_IOC_UNREGISTER, ioctl::addr(&u)).is_ok() {
                stats.unregistered.fetch_add(1, Relaxed);
            }
        }
        for c in live.iter().filter(|c| c.born.elapsed() > Duration::from_secs(2)) {
            // SAFETY: killing our own (unreaped, so still ours) child.
            unsafe { libc::kill(c.pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(rng.below(3)));
    }
    for c in &live {
        // SAFETY: as above.
        unsafe { libc::kill(c.pid, libc::SIGKILL) };
    }
    close(fd);
    let mut all = stats.histogram.lock().unwrap_or_else(|e| e.into_inner());
    for (e, n) in hist {
        *all.entry(e).or_default() += n;
    }
}

// ---------------------------------------------------------------------------
// The module: rmmod and insmod

fn delete_module() -> Result<(), i32> {
    // SAFETY: delete_module with a NUL-terminated name; O_NONBLOCK never waits.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, c"speaker".as_ptr(), libc::O_NONBLOCK) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn insmod(path: &str) -> Result<(), String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: opening a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("cannot open {path}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: finit_module on our fd with empty parameters.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, c"".as_ptr(), 0) };
    let err = std::io::Error::last_os_error();
    close(fd);
    if r != 0 {
        return Err(format!("finit_module({path}): {err}"));
    }
    let start = Instant::now();
    while !std::path::Path::new("/dev/speaker").exists() {
        if start.elapsed() > Duration::from_secs(5) {
            return Err("/dev/speaker did not appear after insmod".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Tries rmmod every 20-200 ms while holding an fd: must always be refused.
fn rmmod_attempts(mut rng: Rng, stats: &Stats, stop: &AtomicBool, module: &str) {
    let Some(fd) = open_dev(stats) else { return };
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(20 + rng.below(180)));
        stats.calls.fetch_add(1, Relaxed);
        match delete_module() {
            Err(libc::EAGAIN) | Err(libc::EBUSY) => {
                stats.rmmod_refused.fetch_add(1, Relaxed);
            }
            Ok(()) => {
                stats.violation("rmmod succeeded while /dev/speaker was open".into());
                if let Err(e) = insmod(module) {
                    stats.violation(format!("insmod after that: {e}"));
                }
            }
            Err(e) => stats.violation(format!("rmmod with an open fd failed with {} (want EAGAIN or EBUSY)", errno_name(e))),
        }
    }
    close(fd);
}

// ---------------------------------------------------------------------------
// A run

fn errno_name(e: i32) -> String {
    const NAMES: [(i32, &str); 22] = [
        (0, "OK"),
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::ESRCH, "ESRCH"),
        (libc::EINTR, "EINTR"),
        (libc::EIO, "EIO"),
        (libc::E2BIG, "E2BIG"),
        (libc::EBADF, "EBADF"),
        (libc::EAGAIN, "EAGAIN"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EFAULT, "EFAULT"),
        (libc::EBUSY, "EBUSY"),
        (libc::EEXIST, "EEXIST"),
        (libc::ENODEV, "ENODEV"),
        (libc::EINVAL, "EINVAL"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::ENOTTY, "ENOTTY"),
        (libc::ERANGE, "ERANGE"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::EOVERFLOW, "EOVERFLOW"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
    ];
    NAMES.iter().find(|(n, _)| *n == e).map(|(_, s)| s.to_string()).unwrap_or_else(|| format!("errno{e}"))
}

/// What a finished run found.
struct Report {
    calls: u64,
    secs: f64,
    registered: u64,
    switched: u64,
    exits: u64,
    rmmod_refused: u64,
    reloads: u64,
    rounds: u64,
    violations: Vec<String>,
    trouble: Vec<String>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static REPORT: OnceLock<Result<Report, String>> = OnceLock::new();

/// SIGKILLs every process whose parent we are, then reaps until none is left.
fn kill_and_reap_all() -> Result<(), String> {
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
fn container_count() -> Result<u32, String> {
    let fd = speaker_tests::guest::open_speaker()?;
    let mut v = ioctl::version();
    let r = raw_ioctl(fd, abi::SPEAKER_IOC_VERSION, ioctl::addr_mut(&mut v));
    close(fd);
    r.map_err(|e| format!("VERSION failed: {}", errno_name(e)))?;
    Ok(v.containers)
}

fn round(cfg: &Config, rng: &mut Rng, stats: &Stats, n: u64) -> Result<(), String> {
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

fn fuzz(cfg: &Config) -> Result<Report, String> {
    println!(
        "FUZZ seed {} calls {} threads {} rounds {} (rerun: speaker-fuzz --seed {} --calls {})",
        cfg.seed, cfg.calls, cfg.threads, cfg.rounds, cfg.seed, cfg.calls
    );
    let trouble_before = kernel_trouble(&dmesg()).len();
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
    let trouble = kernel_trouble(&dmesg()).split_off(trouble_before);
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

// ---------------------------------------------------------------------------
// Scenarios

fn report() -> Result<&'static Report, String> {
    REPORT.get().ok_or("the fuzz run did not happen")?.as_ref().map_err(|e| format!("the fuzz run failed: {e}"))
}

fn fuzz_run_completes() -> Outcome {
    let cfg = CONFIG.get().ok_or("no configuration")?;
    let r = REPORT.get_or_init(|| fuzz(cfg));
    let r = r.as_ref().map_err(|e| e.clone())?;
    ensure!(r.calls >= cfg.calls, "only {} of {} calls were made in {:.0} s", r.calls, cfg.calls, r.secs);
    Ok(())
}

fn fuzzed_ioctls_get_sane_answers() -> Outcome {
    let r = report()?;
    ensure!(r.violations.is_empty(), "{} violation(s): {}", r.violations.len(), r.violations.join(" | "));
    Ok(())
}

fn fuzzing_races_register_switch_and_exits() -> Outcome {
    let r = report()?;
    ensure!(
        r.registered > 0 && r.switched > 0 && r.exits > 0,
        "the run registered {} containers, switched {} times, saw {} container exits: nothing raced",
        r.registered,
        r.switched,
        r.exits
    );
    Ok(())
}

fn rmmod_is_refused_while_fds_are_open() -> Outcome {
    let r = report()?;
    ensure!(r.rmmod_refused > 0, "no rmmod attempt was made while fds were open");
    Ok(())
}

fn module_reloads_once_fds_close_and_no_container_is_left() -> Outcome {
    let r = report()?;
    ensure!(r.reloads == r.rounds, "{} of {} rounds ended with rmmod and insmod", r.reloads, r.rounds);
    Ok(())
}

fn fuzzing_leaves_the_kernel_log_clean() -> Outcome {
    let r = report()?;
    ensure!(r.trouble.is_empty(), "kernel log: {}", r.trouble.join(" | "));
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    ("fuzz_run_completes", fuzz_run_completes),
    ("fuzzed_ioctls_get_sane_answers", fuzzed_ioctls_get_sane_answers),
    ("fuzzing_races_register_switch_and_exits", fuzzing_races_register_switch_and_exits),
    ("rmmod_is_refused_while_fds_are_open", rmmod_is_refused_while_fds_are_open),
    ("module_reloads_once_fds_close_and_no_container_is_left", module_reloads_once_fds_close_and_no_container_is_left),
    ("fuzzing_leaves_the_kernel_log_clean", fuzzing_leaves_the_kernel_log_clean),
];

fn usage(why: &str) -> ! {
    eprintln!("speaker-fuzz: {why}");
    eprintln!("usage: speaker-fuzz [--seed N] [--calls N] [--threads N] [--rounds N] [--module PATH] [SCENARIO...]");
    std::process::exit(2)
}

fn parse_config(args: &[String]) -> (Config, Vec<String>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut cfg = Config { seed: now, calls: 100_000, threads: 4, rounds: 3, module: "/speaker.ko".into() };
    let mut names = Vec::new();
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> u64 {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(&format!("{what} wants a whole number")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => cfg.seed = num(it.next(), "--seed"),
            "--calls" => cfg.calls = num(it.next(), "--calls"),
            "--threads" => cfg.threads = num(it.next(), "--threads") as usize,
            "--rounds" => cfg.rounds = num(it.next(), "--rounds").max(1),
            "--module" => cfg.module = it.next().cloned().unwrap_or_else(|| usage("--module wants a path")),
            s if s.starts_with('-') => usage(&format!("unknown option '{s}'")),
            s => names.push(s.to_string()),
        }
    }
    if cfg.threads < 1 {
        usage("--threads wants at least 1");
    }
    (cfg, names)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (n, _) in SCENARIOS {
            println!("{n}");
        }
        return;
    }
    let (cfg, mut names) = parse_config(&args);
    // The run happens in the first scenario; the others judge it.
    if !names.is_empty() && !names.iter().any(|n| n == "fuzz_run_completes") {
        names.insert(0, "fuzz_run_completes".into());
    }
    let _ = CONFIG.set(cfg);
    run_selected(SCENARIOS, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..100).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(43).next(), xs[0]);
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }

    /// Loads `prog` as a seccomp filter in a forked child: whether the kernel
    /// accepts it.  A refused filter makes the child exit 7; an accepted one
    /// may deny or kill the exit itself, so anything else means accepted.
    fn kernel_accepts(prog: &[libc::sock_filter]) -> bool {
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
        // SAFETY: the child only sets no_new_privs, loads the filter and _exits.
        unsafe {
            match libc::fork() {
                0 => {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    let r = libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog);
                    libc::_exit(if r == 0 { 0 } else { 7 })
                }
                pid => {
                    let mut st = 0;
                    libc::waitpid(pid, &mut st, 0);
                    !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7)
                }
            }
        }
    }

    #[test]
    fn valid_programs_are_accepted_by_seccomp() {
        let mut r = Rng::new(1);
        for _ in 0..40 {
            let p = valid_prog(&mut r);
            assert!(kernel_accepts(&p), "refused: {:?}", p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn malformed_programs_are_mostly_refused_and_span_the_lengths() {
        let mut r = Rng::new(2);
        let progs: Vec<Vec<libc::sock_filter>> = (0..200).map(|_| malformed_prog(&mut r)).collect();
        assert!(progs.iter().any(|p| p.is_empty()) && progs.iter().any(|p| p.len() > 4096));
        let refused = progs.iter().filter(|p| p.len() <= 4096 && !p.is_empty()).filter(|p| !kernel_accepts(p)).count();
        let tried = progs.iter().filter(|p| p.len() <= 4096 && !p.is_empty()).count();
        assert!(refused * 10 >= tried * 9, "only {refused} of {tried} malformed programs were refused");
    }

    #[test]
    fn random_commands_cover_speaker_and_other_magics_but_not_vfs_ones() {
        let mut r = Rng::new(3);
        let cmds: Vec<u32> = (0..10_000).map(|_| random_cmd(&mut r)).collect();
        let magic = |c: u32| (c >> 8) & 0xff;
        assert!(cmds.iter().filter(|&&c| magic(c) == abi::SPEAKER_IOC_MAGIC).count() > 5000);
        assert!(cmds.iter().filter(|&&c| magic(c) != abi::SPEAKER_IOC_MAGIC).count() > 1000);
        assert!(cmds.iter().all(|&c| ![0x00, 0x15, 0x58, 0x66, 0x94, 0x54].contains(&magic(c))));
        for known in [abi::SPEAKER_IOC_VERSION, abi::SPEAKER_IOC_SWITCH, abi::SPEAKER_IOC_STATUS] {
            assert!(cmds.contains(&known), "{known:#x} never drawn");
        }
    }

    #[test]
    fn bad_pointers_are_refused_by_the_kernel() {
        let mut r = Rng::new(4);
        for _ in 0..50 {
            let p = bad_pointer(&mut r, true);
            // The two pointers straddling the end of the mapping are partly valid.
            if p == arena().edge || p == arena().unmapped - 1 {
                continue;
            }
            let fd = dev_zero();
            // SAFETY: a read into `p`: the kernel must refuse to write there.
            let n = unsafe { libc::read(fd, p as *mut _, 8) };
            close(fd);
            assert_eq!(n, -1, "read into {p:#x} succeeded");
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EFAULT), "read into {p:#x}");
        }
    }

    fn dev_zero() -> i32 {
        // SAFETY: opening a path literal.
        unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
    }

    #[test]
    fn errno_names_are_known() {
        assert_eq!(errno_name(libc::EFAULT), "EFAULT");
        assert_eq!(errno_name(0), "OK");
        assert_eq!(errno_name(4000), "errno4000");
    }
}
