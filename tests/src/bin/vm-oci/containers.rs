//! Driving speaker-runtime and crun: bundles, detached and foreground
//! containers, their phase and state, the demo services of services.sh.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, wait_phase_polling, Out, Outcome};

pub fn share() -> PathBuf {
    PathBuf::from(std::env::var("VM_OCI_SHARE").unwrap_or_else(|_| "/mnt/share".into()))
}

/// `$NAME` from services.sh.
pub fn service_var(name: &str) -> String {
    let o = run("bash", &["-c", &format!(". {}/services.sh && printf %s \"${name}\"", share().display())]);
    o.stdout
}

/// The engine the scenarios ask for (`$VM_OCI_ENGINE`), if any.
pub fn engine() -> Option<String> {
    std::env::var("VM_OCI_ENGINE").ok().filter(|e| !e.is_empty())
}

pub fn rt(args: &[&str]) -> Out {
    run("speaker-runtime", args)
}

pub fn rt_ok(args: &[&str]) -> Result<String, String> {
    let o = rt(args);
    ensure!(o.code == 0, "speaker-runtime {} failed ({}): {}{}", args.join(" "), o.code, o.stdout.trim(), o.stderr.trim());
    Ok(o.stdout)
}

/// A bundle under /srv/containers/NAME whose rootfs is the guest's root.
pub fn bundle(name: &str, extra: &[&str], cmd: &[&str]) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/srv/containers/{name}"));
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(|e| format!("mkdir {}: {e}", rootfs.display()))?;
    if run("mountpoint", &["-q", rootfs.to_str().unwrap()]).code != 0 {
        let o = run("mount", &["--bind", "/", rootfs.to_str().unwrap()]);
        ensure!(o.code == 0, "bind mount: {}", o.stderr);
    }
    let mut args = vec![dir.to_str().unwrap(), "--hostname", name];
    args.extend_from_slice(extra);
    // The engine under test ($VM_OCI_ENGINE: kmod or notify; default: the
    // runtime's auto) for every speaker bundle.
    let engine = engine().map(|e| format!("io.speaker.engine={e}"));
    if let Some(a) = &engine {
        if extra.contains(&"--profile") && !extra.iter().any(|x| x.starts_with("io.speaker.engine=")) {
            args.extend_from_slice(&["--annotation", a]);
        }
    }
    args.push("--");
    args.extend_from_slice(cmd);
    let o = run("oci-bundle", &args);
    ensure!(o.code == 0, "oci-bundle: {}", o.stderr);
    Ok(dir)
}

pub use speaker_tests::guest::phase_of;

/// [`speaker_tests::guest::wait_phase_polling`], every 100 ms.
pub fn wait_phase(id: &str, phase: &str, secs: u64) -> Result<(), String> {
    wait_phase_polling(id, phase, secs, Duration::from_millis(100))
}

pub fn crun_status(id: &str) -> Option<String> {
    let o = run("crun", &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    v.get("status")?.as_str().map(str::to_string)
}

pub fn wait_stopped(id: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if crun_status(id).as_deref() == Some("stopped") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("container {id} did not stop within {secs}s (crun status {:?})", crun_status(id)))
}

/// Stops and deletes a container, and checks that nothing is left.
pub fn stop_and_delete(id: &str) -> Outcome {
    stop_and_delete_within(id, STOP_SECS)
}

/// How long [`stop_and_delete`] waits for a container to stop.
pub const STOP_SECS: u64 = 30;

/// [`stop_and_delete`], waiting `secs` for the container to stop.
pub fn stop_and_delete_within(id: &str, secs: u64) -> Outcome {
    rt_ok(&["kill", id, "TERM"])?;
    wait_stopped(id, secs)?;
    rt_ok(&["delete", id])?;
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state of {id} left after delete");
    ensure!(phase_of(id).is_none(), "speaker.ko still knows {id} after delete");
    ensure!(crun_status(id).is_none(), "crun still knows {id} after delete");
    Ok(())
}

/// Force-deletes every container (a failed scenario may leave one that
/// would hold the service's port and answer the next one's readiness probe).
pub fn remove_all_containers() {
    let list = run("crun", &["list", "-q"]).stdout;
    for id in list.split_whitespace() {
        let _ = rt(&["delete", "--force", id]);
    }
}

/// `speaker-runtime run -d`: the container inherits the caller's standard
/// streams (as with crun), so they go to /srv/ID.out, not to a pipe we
/// would wait on.
pub fn run_detached(bundle: &Path, id: &str) -> Outcome {
    let out = format!("/srv/{id}.out");
    let st = rt_to_file(&["run", "-d", "--bundle", bundle.to_str().unwrap(), id], &out)?.wait().map_err(|e| e.to_string())?;
    ensure!(st.success(), "speaker-runtime run -d {id}: {st}; output: {}", fs::read_to_string(&out).unwrap_or_default());
    Ok(())
}

/// Starts speaker-runtime with stdin from /dev/null and stdout and stderr
/// to the file `out` (a container started by it inherits them).
pub fn rt_to_file(args: &[&str], out: &str) -> Result<std::process::Child, String> {
    rt_to_file_cmd("speaker-runtime", args, out)
}

/// Runs `service`'s container (from services.sh and its committed profile)
/// until its automatic switch.
pub fn start_service(service: &str, id: &str) -> Result<(), String> {
    start_service_with(service, id, &[], 60)
}

/// [`start_service`] with more `oci-bundle` arguments (annotations), waiting
/// up to `secs` for the switch.
pub fn start_service_with(service: &str, id: &str, extra: &[&str], secs: u64) -> Result<(), String> {
    start_service_profile(service, id, &share().join(format!("profiles/{service}.json")), extra, secs)
}

/// [`start_service_with`] under the profile `profile`.
pub fn start_service_profile(service: &str, id: &str, profile: &Path, extra: &[&str], secs: u64) -> Result<(), String> {
    remove_all_containers();
    let cmd = service_var(&format!("{service}_cmd"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut args = vec!["--profile", profile.to_str().unwrap()];
    args.extend_from_slice(extra);
    let b = bundle(service, &args, &words)?;
    run_detached(&b, id)?;
    wait_phase(id, "running", secs)?;
    // The monitor logs the switch right after it (and after saving state).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mlog = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
        if mlog.contains("switched boot -> running") {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "monitor log does not show the switch: {mlog}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn workload(service: &str) -> Result<String, String> {
    let w = service_var(&format!("{service}_workload"));
    let o = run("sh", &["-c", &w]);
    ensure!(o.code == 0, "workload '{w}' failed ({}): {}{}", o.code, o.stdout, o.stderr);
    Ok(o.stdout)
}

pub fn state_pid(id: &str) -> i64 {
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    st["pid"].as_i64().unwrap_or(0)
}

/// Starts `prog args` with stdin from /dev/null and its output to `out`.
pub fn rt_to_file_cmd(prog: &str, args: &[&str], out: &str) -> Result<std::process::Child, String> {
    let log = fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())
}

/// Sends `sig` to the foreground process `child` (speaker-ctl run or
/// speaker-runtime run), as a terminal or a supervisor would.
pub fn signal_child(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits for the foreground process `child` to exit; its exit code.
pub fn wait_child(child: &mut std::process::Child, secs: u64, what: &str) -> Result<Option<i32>, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(st.code());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not exit within {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
