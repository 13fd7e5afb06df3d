//! Readiness: when a service's boot phase ends, and the probes that tell.
//! The tracer and the runtime's monitor both use them.
use anyhow::{bail, Result};
use regex::Regex;
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

/// When a service is ready, i.e. its boot phase ends (`trace --ready`,
/// a profile's `ready`, annotation `io.speaker.ready`).
#[derive(Debug, Clone)]
pub enum Readiness {
    /// A TCP socket listening on this local port, in the traced tree's
    /// network namespace.
    Port(u16),
    /// A shell command (`sh -c`) that exits 0; polled.
    Cmd(String),
    /// A line of the service's stdout/stderr matching this regex.
    Log(Regex),
    /// No new syscall for `--auto-windows` windows of `--auto-window`.
    Auto,
}

const READY_HELP: &str = "expected port:TCP_PORT, cmd:'SHELL COMMAND', log:REGEX or auto";

impl Readiness {
    /// Parses a `--ready` value.
    pub fn parse(spec: &str) -> Result<Readiness> {
        let s = spec.trim();
        if s == "auto" {
            return Ok(Readiness::Auto);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            bail!("malformed --ready '{spec}': {READY_HELP}");
        };
        match kind {
            "port" => match rest.trim().parse::<u16>() {
                Ok(p) if p != 0 => Ok(Readiness::Port(p)),
                _ => bail!("malformed --ready '{spec}': '{rest}' is not a TCP port (1-65535); {READY_HELP}"),
            },
            "cmd" => {
                let cmd = strip_quotes(rest.trim());
                if cmd.trim().is_empty() {
                    bail!("malformed --ready '{spec}': the command is empty; {READY_HELP}");
                }
                Ok(Readiness::Cmd(cmd.to_string()))
            }
            "log" => {
                if rest.is_empty() {
                    bail!("malformed --ready '{spec}': the regex is empty; {READY_HELP}");
                }
                match Regex::new(rest) {
                    Ok(re) => Ok(Readiness::Log(re)),
                    Err(e) => {
                        let msg = e.to_string().replace('\n', " ");
                        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
                        bail!("malformed --ready '{spec}': invalid regex: {msg}")
                    }
                }
            }
            _ => bail!("malformed --ready '{spec}': unknown kind '{kind}'; {READY_HELP}"),
        }
    }
}

/// `'x'` or `"x"` -> `x` (for `--ready "cmd:'...'"`).
fn strip_quotes(s: &str) -> &str {
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

impl Readiness {
    /// Parses a condition for a runtime container, whose output the
    /// container engine owns (so `log:` cannot be watched).
    pub fn parse_for_runtime(s: &str) -> Result<Readiness> {
        match Readiness::parse(s)? {
            Readiness::Log(_) => bail!(
                "readiness condition '{s}' reads the service's output, which the container engine owns; use port:, cmd: or auto (annotation io.speaker.ready overrides the profile's)"
            ),
            r => Ok(r),
        }
    }
}

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
    fn ready_specs() {
        assert!(matches!(Readiness::parse("port:8080").unwrap(), Readiness::Port(8080)));
        assert!(matches!(Readiness::parse("auto").unwrap(), Readiness::Auto));
        match Readiness::parse("cmd:'test -e /x'").unwrap() {
            Readiness::Cmd(c) => assert_eq!(c, "test -e /x"),
            o => panic!("{o:?}"),
        }
        match Readiness::parse("log:listening on .*:80").unwrap() {
            Readiness::Log(re) => assert!(re.is_match("nginx listening on 0.0.0.0:80")),
            o => panic!("{o:?}"),
        }
        for bad in ["", "port", "port:", "port:0", "port:70000", "cmd:", "log:(", "foo:1", "8080"] {
            let e = Readiness::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("malformed --ready"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn runtime_refuses_log_readiness() {
        let e = Readiness::parse_for_runtime("log:x").unwrap_err().to_string();
        assert!(e.contains("use port:, cmd: or auto"), "{e}");
        assert!(matches!(Readiness::parse_for_runtime("port:80").unwrap(), Readiness::Port(80)));
    }

    #[test]
    fn cmd_probe_reports_the_exit_status() {
        let current = AtomicI32::new(0);
        assert!(probe_cmd("true", &current));
        assert!(!probe_cmd("exit 3", &current));
        assert_eq!(current.load(Ordering::Acquire), 0);
    }
}
