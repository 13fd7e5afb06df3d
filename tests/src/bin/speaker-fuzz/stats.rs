//! What the fuzzing threads share: call counters and the recently used
//! container ids and pids (so that calls hit live containers), and errno names.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Mutex;

use speaker_tests::abi;
use speaker_tests::guest::cid_bytes;

use crate::rng::Rng;
use crate::worker::OPS;

/// Counts and findings, shared by every thread.
#[derive(Default)]
pub struct Stats {
    pub calls: AtomicU64,
    pub registered: AtomicU64,
    pub switched: AtomicU64,
    pub unregistered: AtomicU64,
    pub children: AtomicU64,
    pub exits: AtomicU64,
    pub forks: AtomicU64,
    pub unprivileged: AtomicU64,
    pub rmmod_refused: AtomicU64,
    pub reloads: AtomicU64,
    pub histogram: Mutex<BTreeMap<i32, u64>>,
    /// Per kind of worker operation ([`OPS`]): count and total nanoseconds.
    pub times: Mutex<[(u64, u64); OPS.len()]>,
    /// Insane answers and broken promises; the run fails if any.
    pub violations: Mutex<Vec<String>>,
}

impl Stats {
    pub fn violation(&self, v: String) {
        println!("FUZZ VIOLATION {v}");
        let mut all = self.violations.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() < 100 {
            all.push(v);
        }
    }
}

/// Recently used container ids and pids, for calls aimed at live things.
pub struct Recent {
    pub next_cid: AtomicU64,
    pub pids: [AtomicU32; 16],
}

pub static RECENT: Recent = Recent { next_cid: AtomicU64::new(0), pids: [const { AtomicU32::new(0) }; 16] };

pub fn recent_cid(rng: &mut Rng) -> String {
    let n = RECENT.next_cid.load(Relaxed);
    format!("fz-{}", n.saturating_sub(rng.below(6)))
}

pub fn random_cid(rng: &mut Rng) -> [u8; abi::CID_LEN] {
    match rng.below(8) {
        0..=3 => cid_bytes(&recent_cid(rng)),
        4 => cid_bytes("fz-ro"),
        5 => [0; abi::CID_LEN],
        // Not NUL-terminated, any bytes.
        6 => std::array::from_fn(|_| rng.next() as u8 | 1),
        _ => cid_bytes(&format!("{}", rng.next())),
    }
}

pub fn random_pid(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0..=3 => RECENT.pids[rng.below(16) as usize].load(Relaxed),
        4 => std::process::id(),
        // SAFETY: gettid has no memory effects.
        5 => unsafe { libc::gettid() as u32 },
        6 => rng.pick(&[0, 1, u32::MAX, i32::MAX as u32, 4_194_304]),
        _ => rng.below(5000) as u32,
    }
}

pub fn errno_name(e: i32) -> String {
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
