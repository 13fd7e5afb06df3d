//! Processes exec'd into a speaker container (`docker exec`, Kubernetes
//! exec probes, health checks) belong to it: speaker-runtime adds their
//! filter to the container in speaker.ko, so the container's switches reach
//! them, `status` counts them, and they are refused as callers like the
//! container's own tasks.
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{rt_to_file, stop_and_delete, wait_phase};
use crate::probe::{probe_cmd, probe_dir, start_probe, wait_probe_ready};

/// Starts a second probe serving `dir` inside container `id` with
/// `speaker-runtime exec -d`; waits until it is ready.
fn exec_probe(id: &str, dir: &Path) -> Outcome {
    let out = format!("/srv/{id}-exec.out");
    let st = rt_to_file(&["exec", "-d", id, "speaker-probe", "serve", dir.to_str().unwrap()], &out)?.wait().map_err(|e| e.to_string())?;
    ensure!(st.success(), "speaker-runtime exec -d {id}: {st:?}: {}", fs::read_to_string(&out).unwrap_or_default());
    wait_probe_ready(dir, id)
}

/// The number of tasks `speaker-ctl status --json` gives container `id`.
fn tasks_of(id: &str) -> Result<u64, String> {
    let st = run("speaker-ctl", &["status", id, "--json"]);
    ensure!(st.code == 0, "speaker-ctl status {id}: {}{}", st.stdout, st.stderr);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).map_err(|e| format!("status --json: {e}: {}", st.stdout))?;
    let entry = v.as_array().and_then(|a| a.first()).cloned().unwrap_or(v);
    entry.get("tasks").and_then(|t| t.as_u64()).ok_or(format!("no tasks in {}", st.stdout))
}

fn wait_tasks(id: &str, want: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = tasks_of(id)?;
        if n == want {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "container {id} counts {n} tasks, want {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process exec'd during boot (a health check started early) gets the
/// boot filter; the switch to running reaches it too: the boot-only
/// syscall is denied to it afterwards.
pub fn exec_during_boot_is_tightened_by_the_switch() -> Outcome {
    let id = "execb";
    let dir = start_probe(id)?;
    let xdir = probe_dir("execb-x")?;
    exec_probe(id, &xdir)?;
    let r = probe_cmd(&xdir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority in the exec'd process during boot: {r}");
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())?;
    wait_phase(id, "running", 20)?;
    let r = probe_cmd(&xdir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority in the process exec'd during boot, after the switch: {r} (want errno 1: it kept the boot filter)");
    let r = probe_cmd(&xdir, 3, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running phase) in the exec'd process after the switch: {r}");
    stop_and_delete(id)
}

/// A process exec'd into the container with CAP_SYS_ADMIN and a
/// `/dev/speaker` descriptor handed in cannot switch its container: EPERM.
pub fn exec_process_cannot_switch_its_container() -> Outcome {
    let id = "execsw";
    let _dir = start_probe(id)?;
    let dev = fs::OpenOptions::new().read(true).write(true).open("/dev/speaker").map_err(|e| format!("/dev/speaker: {e}"))?;
    let fd = dev.as_raw_fd();
    let mut cmd = Command::new("speaker-runtime");
    cmd.args(["exec", "--preserve-fds", "1", "--cap", "CAP_SYS_ADMIN", id, "speaker-probe", "fdswitch", id, "3"]);
    cmd.stdin(Stdio::null());
    // SAFETY: dup2 and fcntl between fork and exec, on descriptors this
    // process owns; fd 3 without close-on-exec is what crun's
    // --preserve-fds 1 passes (dup2 onto itself would keep the flag).
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    ensure!(
        out == format!("switch errno {}", libc::EPERM),
        "the exec'd process's switch of its own container gave '{out}' (want EPERM); stderr: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
    drop(dev);
    stop_and_delete(id)
}

/// `speaker-ctl status` counts the tasks of processes exec'd into the
/// container, and stops counting them when they exit.
pub fn status_counts_exec_processes() -> Outcome {
    let id = "execst";
    let _dir = start_probe(id)?;
    let before = tasks_of(id)?;
    let xdir = probe_dir("execst-x")?;
    exec_probe(id, &xdir)?;
    wait_tasks(id, before + 1)?;
    fs::write(xdir.join("cmd"), "1 exit\n").map_err(|e| e.to_string())?;
    wait_tasks(id, before)?;
    stop_and_delete(id)
}

/// Exec'd processes that exit at once (`docker exec ct true`, most exec
/// probes) never fail: do_exit() drops a task's filters before the task
/// shows as a zombie, and speaker-runtime must not take such a process for
/// one whose filter cannot be added (it used to kill it and fail the exec
/// with "add failed: EINVAL", about one exec in ten on Debian's kernel).
pub fn exec_of_processes_that_exit_at_once_never_fails() -> Outcome {
    let id = "execquick";
    let _dir = start_probe(id)?;
    let mut failed = Vec::new();
    for i in 0..40 {
        let o = run("speaker-runtime", &["exec", id, "speaker-probe", "try", "getppid"]);
        if o.code != 0 || o.stdout.trim() != "getppid: 0" {
            failed.push(format!("#{i}: exit {}: {}{}", o.code, o.stdout.trim(), o.stderr.trim()));
        }
    }
    ensure!(failed.is_empty(), "{} of 40 execs failed: {}", failed.len(), failed.join(" | "));
    stop_and_delete(id)
}
