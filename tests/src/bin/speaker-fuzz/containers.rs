//! The container thread: forks children that install a filter, are
//! registered, switched and unregistered, and exit; reaps them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use speaker_tests::guest::{cid_bytes, seccomp_filters};
use speaker_tests::{abi, ioctl};

use crate::progs::{allow_all, valid_prog, MARKED_ALLOW};
use crate::rng::Rng;
use crate::stats::{recent_cid, Stats, RECENT};
use crate::worker::{call, close, open_dev};

pub struct Child {
    pub pid: i32,
    pub born: Instant,
}

/// The child's life: install 1 or 2 filters, say so, wait for the go, maybe
/// fork a grandchild (sharing the filter), sleep `ms`, exit.  Only raw
/// syscalls on memory prepared before the fork.
pub fn container_child(ready_w: i32, go_r: i32, filters: u32, grandchild: bool, ms: u64) -> ! {
    let prog = libc::sock_fprog { len: MARKED_ALLOW.len() as u16, filter: MARKED_ALLOW.as_ptr() as *mut _ };
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

pub fn pipe() -> Option<(i32, i32)> {
    let mut p = [0i32; 2];
    // SAFETY: `p` has room for the two descriptors.
    (unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } == 0).then_some((p[0], p[1]))
}

/// Starts a child and registers it (as `fz-N`, or `fz-ro` now and then).
pub fn spawn_container(rng: &mut Rng, stats: &Stats, hist: &mut BTreeMap<i32, u64>, fd: i32, live: &mut Vec<Child>) {
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
pub fn reap(stats: &Stats, live: &mut Vec<Child>) {
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
pub fn containers(mut rng: Rng, stats: &Stats, stop: &AtomicBool) {
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
