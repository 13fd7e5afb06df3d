//! The cache-trim walks against a thread group that changes its filters
//! between two visits (issue 18 item 3), on the debug kernel only: its
//! speaker.ko has two load-time knobs (speaker-kmod/debug.rs) that widen
//! the gap after each visit (`debug_walk_gap_ms`) and bring back the walk
//! that visited each thread under its own hold of the siglock
//! (`debug_walk_per_thread`).  The same sequence runs under the old walk,
//! where it must leave a stale cache bit (else this scenario could not see
//! the race), and under the walk speaker.ko has, where it must not.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::raw::{self, RawContainer};
use crate::support::rmmod_within;

/// Whether the guest's speaker.ko has the debug knobs (a build for a KASAN
/// kernel): its `.modinfo` names the parameter.  (Rust module parameters
/// are load-time only: they do not appear in /sys/module.)
pub fn module_has_debug_knobs() -> bool {
    std::fs::read("/speaker.ko").is_ok_and(|b| b.windows(23).any(|w| w == b"parm=debug_walk_gap_ms:"))
}

/// The gap after each visit: wide enough for the threads to act in the
/// middle of it whatever TCG's scheduling latency (tens of ms, hundreds on
/// a loaded host).
const GAP_MS: u64 = 800;

/// Shared between the runner and the confined child's two threads.
#[repr(C)]
struct Shared {
    /// CLOCK_MONOTONIC (ns) just before the SWITCH ioctl; 0 before.
    t0: AtomicU64,
    /// Set when the SWITCH ioctl has returned.
    done: AtomicU64,
    /// How far the threads' sequence has come (see [`race`]).
    step: AtomicU64,
    /// The first failed filter install (-errno), 0 if none.
    error: AtomicI64,
    /// When each of the six installs happened (ns after t0), for the log.
    when: [AtomicU64; 6],
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until `t0 + gaps × GAP_MS`.
fn at(s: &Shared, gaps: f64) {
    let t = s.t0.load(Ordering::Acquire) + (gaps * GAP_MS as f64 * 1e6) as u64;
    while now_ns() < t {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_for(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn install(s: &Shared, which: usize, flags: u32) {
    s.when[which].store(now_ns().saturating_sub(s.t0.load(Ordering::Acquire)), Ordering::Release);
    let r = raw::install(&raw::allow_all(), flags);
    if r < 0 {
        let _ = s.error.compare_exchange(0, r, Ordering::AcqRel, Ordering::Acquire);
    }
}

const TSYNC: u32 = 1;

/// Reloads speaker.ko with `params`.
fn reload(params: &[&str]) -> Outcome {
    rmmod_within(Duration::from_secs(30))?;
    let mut args = vec!["/speaker.ko"];
    args.extend_from_slice(params);
    let o = run("insmod", &args);
    ensure!(o.code == 0, "insmod {}: {}", args.join(" "), o.stderr);
    Ok(())
}

/// One run of the review note's sequence against container filter F.
/// Thread T (the leader, visited first) and thread U (with a private ALLOW
/// filter P from the start).  The switch to a program that denies
/// getpriority starts at t0; the walk visits T, waits a gap, visits U,
/// waits a gap, swaps, and walks again the same way:
///
/// - t0 + 0.5 gap (walk 1, between T and U): U TSYNCs S' (on P, not yet
///   trimmed), then T stacks Z' privately on S';
/// - t0 + 1.5 gap (after walk 1 saw U, before walk 2 sees T): T TSYNCs Y
///   (on Z'), then U stacks R2 privately on Y;
/// - t0 + 2.5 gap (walk 2, between T and U): U TSYNCs S2 (on R2), then T
///   stacks Z2 privately on S2.
///
/// Under the old walk no walk ever sees Z2, whose cache came from filters
/// not yet trimmed.  Returns T's getpriority after the switch returned.
fn race() -> Result<i64, String> {
    let shared: &Shared = raw::shared()?;
    let sh = shared as *const Shared as usize;
    // Op 0: thread U starts, stacks P, and plays its part.
    let start_u = move || -> i64 {
        // SAFETY: the mapping outlives the child.
        let s = unsafe { &*(sh as *const Shared) };
        std::thread::spawn(move || {
            install(s, 0, 0); // P
            s.step.store(1, Ordering::Release);
            wait_for(|| s.t0.load(Ordering::Acquire) != 0);
            at(s, 0.5);
            install(s, 0, TSYNC); // S'
            s.step.store(2, Ordering::Release);
            wait_for(|| s.step.load(Ordering::Acquire) >= 3);
            install(s, 3, 0); // R2
            at(s, 2.5);
            install(s, 4, TSYNC); // S2
            s.step.store(4, Ordering::Release);
        });
        wait_for(|| s.step.load(Ordering::Acquire) >= 1);
        0
    };
    // Op 1: T plays its part, then answers getpriority once the switch is over.
    let play_t = move || -> i64 {
        // SAFETY: as above.
        let s = unsafe { &*(sh as *const Shared) };
        wait_for(|| s.step.load(Ordering::Acquire) >= 2);
        install(s, 1, 0); // Z'
        at(s, 1.5);
        install(s, 2, TSYNC); // Y
        s.step.store(3, Ordering::Release);
        wait_for(|| s.step.load(Ordering::Acquire) >= 4);
        install(s, 5, 0); // Z2
        wait_for(|| s.done.load(Ordering::Acquire) != 0);
        let e = s.error.load(Ordering::Acquire);
        if e != 0 {
            return 100_000 - e;
        }
        raw::getpriority_native()
    };
    let fd = raw::open_dev();
    ensure!(fd >= 0, "cannot open /dev/speaker: errno {}", -fd);
    let c = RawContainer::start(&raw::allow_all(), || {}, vec![Box::new(start_u), Box::new(play_t)]);
    let result = c.and_then(|c| {
        ensure!(raw::register(fd, "walks", c.pid, 1) == 0, "register failed");
        ensure!(c.ask(0)? == 0, "thread U did not start");
        let switcher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let t0 = now_ns();
            shared.t0.store(t0, Ordering::Release);
            let e = raw::switch(fd, "walks", &raw::deny_getpriority(), 0);
            shared.done.store(now_ns() - t0, Ordering::Release);
            e
        });
        let r = c.ask(1)?;
        let e = switcher.join().map_err(|_| "the switching thread panicked".to_string())?;
        ensure!(e == 0, "the switch gave errno {e}");
        let ms = |ns: u64| ns / 1_000_000;
        let when: Vec<u64> = shared.when.iter().map(|w| ms(w.load(Ordering::Acquire))).collect();
        println!(
            "  switch took {} ms; S' Z' Y R2 S2 Z2 at {:?} ms after it started (gap {GAP_MS} ms)",
            ms(shared.done.load(Ordering::Acquire)),
            &when[..]
        );
        ensure!(r < 50_000, "a filter install in the child failed: errno {}", r - 100_000);
        Ok(r)
    });
    let _ = raw::unregister(fd, "walks");
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    result
}

/// Under the old walk (one siglock hold per thread) the sequence of
/// [`race`] leaves thread T a top filter whose cache still allows
/// getpriority, which the switched program denies; under speaker.ko's
/// walk (a thread group under one hold) it is denied.
pub fn tsync_and_private_stacking_between_visits_keep_no_stale_cache() -> Outcome {
    let gap = format!("debug_walk_gap_ms={GAP_MS}");
    reload(&[&gap, "debug_walk_per_thread=1"])?;
    let old = race();
    reload(&[&gap])?;
    let new = race();
    reload(&[])?;
    let (old, new) = (old?, new?);
    println!("  getpriority in T after the switch: old walk {old}, speaker.ko's walk {new}");
    ensure!(
        old >= 0,
        "the old per-thread walk gave {old}, not a stale allow: the sequence did not open the race, so this scenario proves nothing"
    );
    ensure!(
        new == -raw::DENY_ERRNO,
        "getpriority after the switch gave {new}, want -{} (a stale cache bit let it through)",
        raw::DENY_ERRNO
    );
    Ok(())
}
