//! Suite 5: what tracing costs a real service: nginx (run directly, not
//! as a container) under `ab`, untraced, under `speaker-ctl trace --mode
//! filter`, `--mode ptrace` and `strace -f`.
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::error::BenchError;
use super::results::Results;
use super::service::{wait_until, Service};
use super::Options;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const MODES: [&str; 4] = super::results::TRACING_MODES;

fn spawn(mode: &str, out: &std::path::Path) -> Result<Child, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding speaker-ctl's own path", e))?;
    let profile = out.join(format!("trace-{mode}.json")).display().to_string();
    let mut cmd = match mode {
        "untraced" => Command::new("nginx"),
        "strace" => {
            let mut c = Command::new("strace");
            c.args(["-f", "-o", "/dev/null", "nginx"]);
            c
        }
        _ => {
            let mut c = Command::new(exe);
            c.args(["trace", "--mode", mode, "--ready", "port:80", "-o", &profile, "--", "nginx"]);
            c
        }
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    cmd.spawn().map_err(|e| BenchError::Command { cmd: format!("nginx ({mode})"), msg: e.to_string() })
}

/// Stops the traced nginx: the tracer gets SIGINT (it ends the trace with
/// SIGTERM to nginx), the others SIGTERM; SIGKILL to the group after 60 s.
fn stop(mode: &str, child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    let sig = if mode == "filter" || mode == "ptrace" { Signal::SIGINT } else { Signal::SIGTERM };
    let _ = if mode == "strace" { killpg(pid, sig) } else { kill(pid, sig) };
    for _ in 0..600 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.wait();
    // nginx's workers are in the same group.
    let _ = wait_until("nginx to stop", 30, || Service::Nginx.request().is_err());
}

pub fn run(opts: &Options, res: &mut Results) -> Result<(), BenchError> {
    // Under ptrace every syscall stops nginx twice: a fifth of the requests.
    let requests = (opts.requests / 5).max(10);
    for mode in MODES {
        let mut child = spawn(mode, &opts.out)?;
        let measured = (|| -> Result<Vec<f64>, BenchError> {
            wait_until(&format!("nginx ({mode})"), 300, || Service::Nginx.request().is_ok())?;
            Service::Nginx.load(requests / 2 + 1)?;
            (0..opts.runs).map(|_| Service::Nginx.load(requests)).collect()
        })();
        stop(mode, &mut child);
        let rps = measured?;
        let m = res.figure(format!("tracing.nginx.{mode}"), &rps, "requests/s").unwrap_or(0.0);
        println!("  nginx {mode}: {m:.0} requests/s");
    }
    res.fact("tracing.requests_per_run", requests);
    res.fact("clock.tracing", opts.clock.name());
    for mode in &MODES[1..] {
        res.ratio(&format!("nginx under {mode} / untraced"), &format!("tracing.nginx.{mode}"), "tracing.nginx.untraced", "");
    }
    Ok(())
}
