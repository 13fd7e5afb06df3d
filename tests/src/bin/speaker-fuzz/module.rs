//! Loading and unloading speaker.ko: `insmod`, `delete_module`, and the
//! thread that tries rmmod while fds are open.

use std::ffi::CString;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::rng::Rng;
use crate::stats::{errno_name, Stats};
use crate::worker::{close, open_dev};

pub fn delete_module() -> Result<(), i32> {
    // SAFETY: delete_module with a NUL-terminated name; O_NONBLOCK never waits.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, c"speaker".as_ptr(), libc::O_NONBLOCK) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

pub fn insmod(path: &str) -> Result<(), String> {
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
pub fn rmmod_attempts(mut rng: Rng, stats: &Stats, stop: &AtomicBool, module: &str) {
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
