//! Readiness: when a service's boot phase ends, and the probes that tell.
//! The tracer and the runtime's monitor both use them.
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys::procfs;

/// `auto` readiness as the runtime sees it from outside: the listening
/// ports and task count stay the same for this many windows ...
pub const OUTSIDE_AUTO_WINDOWS: u32 = 4;
/// ... of this long.
pub const OUTSIDE_AUTO_WINDOW: Duration = Duration::from_millis(500);

pub use crate::profile::readiness::{BadReadiness, Readiness};

/// How waiting for a container's readiness from outside ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The condition holds.
    Ready,
    /// The container's first process exited first.
    Exited,
    /// The deadline passed first.
    TimedOut,
}

impl Readiness {
    /// Waits until this condition holds for the container whose first
    /// process is `pid`, seen from outside as the runtime sees it (the
    /// runtime's monitor after boot, a reload): `port:` listening in its
    /// network namespace, `cmd:` run here and exiting 0, `auto`: the same
    /// listening ports and number of tasks for [`OUTSIDE_AUTO_WINDOWS`]
    /// windows of [`OUTSIDE_AUTO_WINDOW`] (with `auto_needs_port`, at least
    /// one port listening: a server still setting up has none yet).
    /// `log:` never holds from outside (the runtime refuses it).
    pub fn wait_outside(&self, pid: i32, deadline: Option<Instant>, auto_needs_port: bool) -> Waited {
        let probe = AtomicI32::new(0);
        let mut last: Option<(Vec<u16>, usize)> = None;
        let mut stable = 0;
        loop {
            if !procfs::pid_alive(pid) {
                return Waited::Exited;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Waited::TimedOut;
            }
            let now_ready = match self {
                Readiness::Port(p) => procfs::port_listening(pid, *p) == Some(true),
                Readiness::Cmd(c) => probe_cmd(c, &probe),
                Readiness::Log(_) => false,
                Readiness::Auto => {
                    let ports = procfs::listening_ports_of(pid).unwrap_or_default();
                    let now = procfs::tasks_in_pid_namespace(pid).map(|t| (ports, t));
                    let has_port = now.as_ref().is_some_and(|(p, _)| !p.is_empty());
                    if now.is_some() && now == last && (has_port || !auto_needs_port) {
                        stable += 1;
                    } else {
                        stable = 0;
                    }
                    last = now;
                    stable >= OUTSIDE_AUTO_WINDOWS
                }
            };
            if now_ready {
                return Waited::Ready;
            }
            std::thread::sleep(match self {
                Readiness::Auto => OUTSIDE_AUTO_WINDOW,
                Readiness::Cmd(_) => Duration::from_millis(200),
                Readiness::Port(_) | Readiness::Log(_) => Duration::from_millis(50),
            });
        }
    }
}

/// Runs `sh -c CMD` once (in its own process group, no input or output;
/// its pid is in `current` while it runs, for whoever must kill it) and
/// says whether it exited 0.
pub fn probe_cmd(cmd: &str, current: &AtomicI32) -> bool {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let Ok(mut child) = child else { return false };
    current.store(child.id() as i32, Ordering::Release);
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    current.store(0, Ordering::Release);
    ok
}

/// Polls [`probe_cmd`] every `interval` until it succeeds (then sets
/// `ready`) or `stop` is set.
pub fn spawn_cmd_poller(
    cmd: String,
    interval: Duration,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    current: Arc<AtomicI32>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if probe_cmd(&cmd, &current) {
                ready.store(true, Ordering::Release);
                return;
            }
            std::thread::sleep(interval);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_probe_reports_the_exit_status() {
        let current = AtomicI32::new(0);
        assert!(probe_cmd("true", &current));
        assert!(!probe_cmd("exit 3", &current));
        assert_eq!(current.load(Ordering::Acquire), 0);
    }
}
