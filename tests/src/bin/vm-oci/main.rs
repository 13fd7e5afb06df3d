//! vm-oci: speaker-runtime (the OCI runtime wrapper over crun) with real
//! containers, run as root inside the full Debian guest
//! (`qemu/run --rootfs full --share DIR -- vm-oci [NAME...]`).  DIR
//! (/mnt/share, or $VM_OCI_SHARE) holds `services.sh` (examples/services.sh) and `profiles/` (the
//! committed profiles, examples/profiles: the demo services' scenarios
//! cover those of services.sh that have one there).
//!
//! Same output protocol as vm-scenarios.  Containers use the guest's own
//! root filesystem (bind-mounted, so crun pivots into a real directory)
//! and the host network, like `docker run --network host`.
mod fail_closed;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile, SyscallEntry};
use speaker_tests::ensure;
use speaker_tests::guest::{run, run_scenarios, Out, Outcome, PrintkUnlimited, Scenario};

fn share() -> PathBuf {
    PathBuf::from(std::env::var("VM_OCI_SHARE").unwrap_or_else(|_| "/mnt/share".into()))
}

/// `$NAME` from services.sh.
fn service_var(name: &str) -> String {
    let o = run("bash", &["-c", &format!(". {}/services.sh && printf %s \"${name}\"", share().display())]);
    o.stdout
}

fn rt(args: &[&str]) -> Out {
    run("speaker-runtime", args)
}

fn rt_ok(args: &[&str]) -> Result<String, String> {
    let o = rt(args);
    ensure!(o.code == 0, "speaker-runtime {} failed ({}): {}{}", args.join(" "), o.code, o.stdout.trim(), o.stderr.trim());
    Ok(o.stdout)
}

/// A bundle under /srv/containers/NAME whose rootfs is the guest's root.
fn bundle(name: &str, extra: &[&str], cmd: &[&str]) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/srv/containers/{name}"));
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(|e| format!("mkdir {}: {e}", rootfs.display()))?;
    if run("mountpoint", &["-q", rootfs.to_str().unwrap()]).code != 0 {
        let o = run("mount", &["--bind", "/", rootfs.to_str().unwrap()]);
        ensure!(o.code == 0, "bind mount: {}", o.stderr);
    }
    let mut args = vec![dir.to_str().unwrap(), "--hostname", name];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let o = run("oci-bundle", &args);
    ensure!(o.code == 0, "oci-bundle: {}", o.stderr);
    Ok(dir)
}

fn phase_of(id: &str) -> Option<String> {
    let o = run("speaker-ctl", &["status", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    v.get(0)?.get("phase")?.as_str().map(str::to_string)
}

fn wait_phase(id: &str, phase: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if phase_of(id).as_deref() == Some(phase) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
    Err(format!("container {id} not in phase {phase} after {secs}s (now {:?}); monitor log: {log}", phase_of(id)))
}

fn crun_status(id: &str) -> Option<String> {
    let o = run("crun", &["state", id]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    v.get("status")?.as_str().map(str::to_string)
}

fn wait_stopped(id: &str, secs: u64) -> Result<(), String> {
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
fn stop_and_delete(id: &str) -> Outcome {
    rt_ok(&["kill", id, "TERM"])?;
    wait_stopped(id, 30)?;
    rt_ok(&["delete", id])?;
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state of {id} left after delete");
    ensure!(phase_of(id).is_none(), "speaker.ko still knows {id} after delete");
    ensure!(crun_status(id).is_none(), "crun still knows {id} after delete");
    Ok(())
}

/// Force-deletes every container (a failed scenario may leave one that
/// would hold the service's port and answer the next one's readiness probe).
fn remove_all_containers() {
    let list = run("crun", &["list", "-q"]).stdout;
    for id in list.split_whitespace() {
        let _ = rt(&["delete", "--force", id]);
    }
}

/// `speaker-runtime run -d`: the container inherits the caller's standard
/// streams (as with crun), so they go to /srv/ID.out, not to a pipe we
/// would wait on.
fn run_detached(bundle: &Path, id: &str) -> Outcome {
    let out = format!("/srv/{id}.out");
    let st = rt_to_file(&["run", "-d", "--bundle", bundle.to_str().unwrap(), id], &out)?.wait().map_err(|e| e.to_string())?;
    ensure!(st.success(), "speaker-runtime run -d {id}: {st}; output: {}", fs::read_to_string(&out).unwrap_or_default());
    Ok(())
}

/// Starts speaker-runtime with stdin from /dev/null and stdout and stderr
/// to the file `out` (a container started by it inherits them).
fn rt_to_file(args: &[&str], out: &str) -> Result<std::process::Child, String> {
    rt_to_file_cmd("speaker-runtime", args, out)
}

/// Runs `service`'s container (from services.sh and its committed profile)
/// until its automatic switch.
fn start_service(service: &str, id: &str) -> Result<(), String> {
    remove_all_containers();
    let cmd = service_var(&format!("{service}_cmd"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let profile = share().join(format!("profiles/{service}.json"));
    let b = bundle(service, &["--profile", profile.to_str().unwrap()], &words)?;
    run_detached(&b, id)?;
    wait_phase(id, "running", 60)?;
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

fn workload(service: &str) -> Result<String, String> {
    let w = service_var(&format!("{service}_workload"));
    let o = run("sh", &["-c", &w]);
    ensure!(o.code == 0, "workload '{w}' failed ({}): {}{}", o.code, o.stdout, o.stderr);
    Ok(o.stdout)
}

// ---------------------------------------------------------------------------
// the probe container: speaker-probe serve, with a traced profile whose boot
// phase also allows getpriority (the boot-only syscall) and whose running
// phase does not; it switches when /srv/probe/<id>/go exists.

fn probe_profile() -> Result<PathBuf, String> {
    static P: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = Path::new("/srv/probe/trace");
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("res")).map_err(|e| e.to_string())?;
        let out = "/srv/probe/probe.json";
        let ready = format!("cmd:test -e {}/ready.p0t0", dir.display());
        // The running phase: plain syscalls and forks (as the scenarios ask).
        let work = format!(
            "echo '1 sys getppid' > {0}/cmd; while [ ! -e {0}/res/1.p0t0 ]; do sleep 0.1; done; \
             echo '2 fork getppid' > {0}/cmd; while [ ! -e {0}/res/2.forked ]; do sleep 0.1; done",
            dir.display()
        );
        let o = run(
            "speaker-ctl",
            &[
                "trace",
                "--mode",
                "filter",
                "--name",
                "probe",
                "--ready",
                &ready,
                "--workload",
                &work,
                "--running-for",
                "2s",
                "-o",
                out,
                "--",
                "speaker-probe",
                "serve",
                dir.to_str().unwrap(),
            ],
        );
        ensure!(o.code == 0, "tracing speaker-probe failed: {}", o.stderr);
        let mut p: Profile = serde_json::from_str(&fs::read_to_string(out).unwrap()).map_err(|e| e.to_string())?;
        p.ready = None;
        let boot = p.phases.get_mut(&Phase::Boot).ok_or("no boot phase")?;
        boot.syscalls.push(SyscallEntry { name: "getpriority".into(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None });
        let running = p.phase(Phase::Running).ok_or("no running phase")?;
        ensure!(!running.syscalls.iter().any(|e| e.name == "getpriority"), "getpriority in the probe's running phase");
        fs::write(out, serde_json::to_string_pretty(&p).unwrap()).map_err(|e| e.to_string())?;
        Ok(PathBuf::from(out))
    })
    .clone()
}

/// Starts probe container `id` (boot phase), returns its directory.
fn start_probe(id: &str) -> Result<PathBuf, String> {
    start_probe_with(id, &probe_profile()?, &[])
}

/// Starts probe container `id` from `profile` with more `oci-bundle`
/// arguments (boot phase), returns its directory.
fn start_probe_with(id: &str, profile: &Path, extra: &[&str]) -> Result<PathBuf, String> {
    remove_all_containers();
    let dir = probe_dir(id)?;
    let ready = format!("cmd:test -e {}/go", dir.display());
    let mut args = vec!["--profile", profile.to_str().unwrap(), "--ready", &ready];
    args.extend_from_slice(extra);
    let b = bundle(id, &args, &["speaker-probe", "serve", dir.to_str().unwrap()])?;
    run_detached(&b, id)?;
    wait_phase(id, "boot", 10)?;
    wait_probe_ready(&dir, id)?;
    Ok(dir)
}

/// A fresh directory for probe container `id`'s commands and results.
fn probe_dir(id: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/srv/probe/{id}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("res")).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn wait_probe_ready(dir: &Path, id: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("ready.p0t0").exists() {
        ensure!(Instant::now() < deadline, "the probe in {id} never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Asks the probe's first task for `op` as generation `gen`; its result.
fn probe_cmd(dir: &Path, gen: u32, op: &str, file: &str) -> Result<String, String> {
    fs::write(dir.join("cmd.tmp"), format!("{gen} {op}\n")).map_err(|e| e.to_string())?;
    fs::rename(dir.join("cmd.tmp"), dir.join("cmd")).map_err(|e| e.to_string())?;
    let res = dir.join(format!("res/{gen}.{file}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(t) = fs::read_to_string(&res) {
            return Ok(t.trim().to_string());
        }
        ensure!(Instant::now() < deadline, "no result {} for '{op}'", res.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// scenarios

fn oci_container_without_annotation_is_untouched() -> Outcome {
    // Like Docker's default profile, the bundle has its own seccomp: here
    // getpriority fails with EACCES (13).
    let sec = "/srv/plain-seccomp.json";
    fs::write(
        sec,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .map_err(|e| e.to_string())?;
    let b = bundle(
        "plain",
        &["--seccomp", sec],
        &["sh", "-c", "speaker-probe try getpriority getppid; grep Seccomp_filters /proc/self/status"],
    )?;
    let before = fs::read(b.join("config.json")).unwrap();
    let o = rt(&["run", "--bundle", b.to_str().unwrap(), "plain1"]);
    ensure!(o.code == 0, "speaker-runtime run plain1: {} {}", o.code, o.stderr);
    ensure!(o.stdout.contains("getpriority: errno 13"), "the bundle's own filter did not apply: {}", o.stdout);
    ensure!(o.stdout.contains("getppid: 0"), "getppid failed: {}", o.stdout);
    ensure!(o.stdout.contains("Seccomp_filters:\t1"), "expected exactly the bundle's filter: {}", o.stdout);
    ensure!(fs::read(b.join("config.json")).unwrap() == before, "config.json was changed");
    ensure!(!Path::new("/run/speaker/plain1").exists(), "speaker kept state for a plain container");
    ensure!(phase_of("plain1").is_none(), "speaker.ko knows the plain container");
    ensure!(crun_status("plain1").is_none(), "crun still has plain1 after run");
    // create/start/state/kill/delete of a plain bundle go to crun as well.
    // (create's container holds the caller's streams: a file, not a pipe)
    let st = rt_to_file(&["create", "--bundle", b.to_str().unwrap(), "plain2"], "/srv/plain2.out")?.wait().map_err(|e| e.to_string())?;
    ensure!(st.success(), "create plain2: {st}: {}", fs::read_to_string("/srv/plain2.out").unwrap_or_default());
    ensure!(!Path::new("/run/speaker/plain2").exists(), "speaker kept state for plain2");
    let state = rt_ok(&["state", "plain2"])?;
    ensure!(state.contains("\"created\""), "state of plain2: {state}");
    rt_ok(&["delete", "--force", "plain2"])?;
    ensure!(crun_status("plain2").is_none(), "plain2 not deleted");
    Ok(())
}

fn nginx_serves_after_automatic_switch() -> Outcome {
    start_service("nginx", "nginx1")?;
    let out = workload("nginx")?;
    ensure!(out.contains("Failed requests:        0"), "nginx: failed requests after the switch: {out}");
    ensure!(out.contains("Complete requests:      1000"), "nginx: not all requests completed: {out}");
    ensure!(!out.contains("Non-2xx"), "nginx: non-2xx responses: {out}");
    ensure!(phase_of("nginx1").as_deref() == Some("running"), "nginx1 left its running phase");
    stop_and_delete("nginx1")
}

fn redis_serves_after_automatic_switch() -> Outcome {
    let _ = fs::remove_file("/srv/redis/dump.rdb");
    start_service("redis", "redis1")?;
    let out = workload("redis")?;
    ensure!(out.contains("total_error_replies:0"), "redis: error replies after the switch: {out}");
    let o = run("redis-cli", &["set", "speaker:key", "slim"]);
    ensure!(o.stdout.trim() == "OK", "redis-cli set: {}{}", o.stdout, o.stderr);
    let o = run("redis-cli", &["get", "speaker:key"]);
    ensure!(o.stdout.trim() == "slim", "redis-cli get: {}{}", o.stdout, o.stderr);
    stop_and_delete("redis1")
}

fn running_container_denies_boot_only_syscall() -> Outcome {
    let dir = start_probe("probe1")?;
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority in the boot phase: {r}");
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())?;
    wait_phase("probe1", "running", 20)?;
    let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after the switch (container's own task): {r}, expected errno 1 (EPERM)");
    let r = probe_cmd(&dir, 3, "fork getpriority", "forked")?;
    ensure!(r == "errno 1", "getpriority in a child forked after the switch: {r}");
    let r = probe_cmd(&dir, 4, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running phase) after the switch: {r}");
    stop_and_delete("probe1")
}

fn exec_into_running_container_gets_running_filter() -> Outcome {
    let _dir = start_probe("probe2").and_then(|d| {
        // Boot phase: exec'ed processes get the boot filter.
        let o = rt_ok(&["exec", "probe2", "speaker-probe", "try", "getpriority"])?;
        ensure!(o.trim() == "getpriority: 0", "exec during boot: {o}");
        fs::write(d.join("go"), "").map_err(|e| e.to_string())?;
        Ok(d)
    })?;
    wait_phase("probe2", "running", 20)?;
    let o = rt_ok(&["exec", "probe2", "speaker-probe", "try", "getpriority", "getppid"])?;
    ensure!(o.contains("getpriority: errno 1"), "exec after the switch still allows getpriority: {o}");
    ensure!(o.contains("getppid: 0"), "exec after the switch: getppid (running phase) failed: {o}");
    // `crun exec` directly gets the same (speaker rewrote crun's copy).
    let o = run("crun", &["exec", "probe2", "speaker-probe", "try", "getpriority"]);
    ensure!(o.stdout.trim() == "getpriority: errno 1", "crun exec after the switch: {}{}", o.stdout, o.stderr);
    stop_and_delete("probe2")
}

/// Docker names containers by 64 hex digits, one more than speaker.ko's ids
/// hold: `speaker-ctl status` and `switch` take the runtime's id anyway.
fn ctl_switch_and_status_work_on_runtime_ids() -> Outcome {
    let id = "3f9a0c1be2d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";
    assert_eq!(id.len(), 64);
    let _dir = start_probe(id)?;
    let st = run("speaker-ctl", &["status", id]);
    ensure!(st.code == 0 && st.stdout.contains(" boot "), "speaker-ctl status {id}: {}{}", st.stdout, st.stderr);
    let sw = run("speaker-ctl", &["switch", id]);
    ensure!(sw.code == 0 && sw.stdout.contains("boot -> running"), "speaker-ctl switch {id}: {}{}", sw.stdout, sw.stderr);
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after speaker-ctl switch: {:?}", phase_of(id));
    let o = rt_ok(&["exec", id, "speaker-probe", "try", "getpriority"])?;
    ensure!(o.trim() == "getpriority: errno 1", "exec after speaker-ctl switch: {o}");
    stop_and_delete(id)
}

/// `run` without `-d`: waits for the container, turns SIGTERM into shutdown
/// phase + signal, exits with the container's status and deletes it.
fn foreground_run_forwards_sigterm_and_cleans_up() -> Outcome {
    remove_all_containers();
    let profile = probe_profile()?;
    let id = "probe4";
    let dir = probe_dir(id)?;
    let b = bundle(id, &["--profile", profile.to_str().unwrap()], &["speaker-probe", "serve", dir.to_str().unwrap()])?;
    let mut child = rt_to_file(&["run", "--bundle", b.to_str().unwrap(), id], "/srv/probe4.out")?;
    wait_phase(id, "boot", 20)?;
    wait_probe_ready(&dir, id)?;
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().map_err(|e| e.to_string())?;
    let out = fs::read_to_string("/srv/probe4.out").unwrap_or_default();
    ensure!(status.code() == Some(0), "speaker-runtime run exited {status} (the probe exits 0 on SIGTERM): {out}");
    let r = fs::read_to_string(dir.join("res/shutdown.p0t0")).unwrap_or_default();
    ensure!(r.trim() == "0", "the probe's shutdown syscall (uname, in its shutdown phase) gave '{}'", r.trim());
    ensure!(crun_status(id).is_none(), "crun still has {id}");
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left for {id}");
    ensure!(phase_of(id).is_none(), "speaker.ko still knows {id}");
    Ok(())
}

fn redis_saves_dump_in_shutdown_phase() -> Outcome {
    let _ = fs::remove_file("/srv/redis/dump.rdb");
    let _ = fs::remove_file("/srv/redis/redis.log");
    start_service("redis", "redis2")?;
    for i in 0..20 {
        let o = run("redis-cli", &["set", &format!("k{i}"), &format!("v{i}")]);
        ensure!(o.stdout.trim() == "OK", "redis-cli set: {}{}", o.stdout, o.stderr);
    }
    rt_ok(&["kill", "redis2", "TERM"])?;
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string("/run/speaker/redis2/state.json").unwrap_or_default()).unwrap_or_default();
    ensure!(st["current"] == "shutdown", "phase after kill TERM: {}", st["current"]);
    wait_stopped("redis2", 30)?;
    let log = fs::read_to_string("/srv/redis/redis.log").unwrap_or_default();
    ensure!(log.contains("DB saved on disk"), "redis did not save on shutdown: {log}");
    let lower = log.to_lowercase();
    ensure!(!lower.contains("error") && !lower.contains("failed") && !lower.contains("not permitted"), "errors in redis' log: {log}");
    let dump = fs::metadata("/srv/redis/dump.rdb").map(|m| m.len()).unwrap_or(0);
    ensure!(dump > 0, "no /srv/redis/dump.rdb");
    rt_ok(&["delete", "redis2"])?;
    Ok(())
}

fn runtime_passes_through_unknown_commands() -> Outcome {
    // Same output and exit status as crun itself, whatever crun makes of
    // the line (crun 1.8 has no `features` yet: both fail the same way).
    for args in [&["features"][..], &["--version"], &["--root", "/run/crun", "list"], &["ps", "no-such-container"], &["no-such-command"]] {
        let a = rt(args);
        let c = run("crun", args);
        ensure!(
            a.code == c.code && a.stdout == c.stdout,
            "speaker-runtime {} differs from crun: exit {} vs {}, output {:?} vs {:?}",
            args.join(" "),
            a.code,
            c.code,
            a.stdout,
            c.stdout
        );
    }
    ensure!(rt_ok(&["--version"])?.contains("crun version"), "--version is not crun's");
    Ok(())
}

/// The error cases: clear message, nothing left behind.
fn check_create_fails(id: &str, profile: &str, env: &[(&str, &str)], want: &str) -> Outcome {
    let b = bundle(id, &["--profile", profile], &["sleep", "100"])?;
    let before = fs::read(b.join("config.json")).unwrap();
    let o = Command::new("speaker-runtime")
        .args(["create", "--bundle", b.to_str().unwrap(), id])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    ensure!(!o.status.success(), "create {id} succeeded");
    ensure!(err.contains(want), "create {id}: message does not say '{want}': {err}");
    ensure!(crun_status(id).is_none(), "crun has a half-created {id}");
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left for {id}");
    ensure!(phase_of(id).is_none(), "speaker.ko knows {id}");
    ensure!(fs::read(b.join("config.json")).unwrap() == before, "config.json of {id} was changed");
    Ok(())
}

fn runtime_rejects_missing_profile() -> Outcome {
    check_create_fails(
        "bad1",
        "/srv/no-such-profile.json",
        &[],
        "profile /srv/no-such-profile.json named by annotation io.speaker.profile does not exist",
    )
}

fn runtime_rejects_profile_for_other_arch() -> Outcome {
    let p = "/srv/arm64-profile.json";
    fs::write(
        p,
        r#"{"schema":"speaker.profile/v1","architectures":["SCMP_ARCH_AARCH64"],
            "phases":{"boot":{"syscalls":[{"name":"read","arch":"aarch64"}]}}}"#,
    )
    .map_err(|e| e.to_string())?;
    check_create_fails("bad2", p, &[], "is for SCMP_ARCH_AARCH64 but this machine runs x86_64")
}

fn runtime_reports_missing_crun() -> Outcome {
    let profile = share().join("profiles/nginx.json");
    check_create_fails("bad3", profile.to_str().unwrap(), &[("SPEAKER_CRUN", "/nonexistent/crun")], "crun not found at /nonexistent/crun")
}

// ---------------------------------------------------------------------------
// production: denials, complain mode, learning

const COMPLAIN: [&str; 2] = ["--annotation", "io.speaker.mode=complain"];

fn state_pid(id: &str) -> i64 {
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    st["pid"].as_i64().unwrap_or(0)
}

/// Probe container `id` from `profile` (`extra` bundle arguments), switched
/// to its running phase.
fn probe_running(id: &str, profile: &Path, extra: &[&str]) -> Result<PathBuf, String> {
    let dir = start_probe_with(id, profile, extra)?;
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())?;
    wait_phase(id, "running", 20)?;
    Ok(dir)
}

/// Waits until `speaker-ctl denials ID --json` lists `syscall` with
/// `action`; returns that entry.
fn wait_denial(id: &str, syscall: &str, action: &str) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = run("speaker-ctl", &["denials", id, "--json"]);
        ensure!(o.code == 0, "speaker-ctl denials {id} --json: {}{}", o.stdout, o.stderr);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).map_err(|e| format!("denials --json: {e}: {}", o.stdout))?;
        if let Some(d) = v.as_array().into_iter().flatten().find(|d| d["syscall"] == syscall && d["action"] == action) {
            return Ok(d.clone());
        }
        if Instant::now() > deadline {
            let kmsg: Vec<String> = run("dmesg", &[]).stdout.lines().filter(|l| l.contains("type=1326")).map(str::to_string).collect();
            return Err(format!("no {syscall} {action} record for {id} in {}; audit lines in the kernel log: {kmsg:?}", o.stdout));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn denial_is_reported_with_container_and_phase() -> Outcome {
    // Audit records reach /dev/kmsg through printk_ratelimit(): off meanwhile.
    let _unlimited = PrintkUnlimited::new()?;
    let id = "deny1";
    let dir = probe_running(id, &probe_profile()?, &[])?;
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority in the running phase: {r}");
    let d = wait_denial(id, "getpriority", "SCMP_ACT_ERRNO")?;
    ensure!(d["cid"] == id && d["phase"] == "running", "denial attributed to {} / {}: {d}", d["cid"], d["phase"]);
    ensure!(d["pid"].as_i64() == Some(state_pid(id)), "denial pid {} is not the probe's {}", d["pid"], state_pid(id));
    ensure!(d["comm"] == "speaker-probe", "denial comm: {d}");
    let st = run("speaker-ctl", &["status", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap_or_default();
    ensure!(v[0]["denials"].as_u64().unwrap_or(0) >= 1, "status shows no denial: {}", st.stdout);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mlog = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
        if mlog.contains("denial: running pid") && mlog.contains("getpriority SCMP_ACT_ERRNO") {
            break;
        }
        ensure!(Instant::now() < deadline, "the monitor log does not record the denial: {mlog}");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_and_delete(id)
}

fn complain_mode_logs_and_allows_then_enforce_denies() -> Outcome {
    // Audit records reach /dev/kmsg through printk_ratelimit(): off meanwhile.
    let _unlimited = PrintkUnlimited::new()?;
    let id = "complain1";
    let dir = probe_running(id, &probe_profile()?, &COMPLAIN)?;
    let pid = state_pid(id);
    let st = run("speaker-ctl", &["status", id, "--json"]);
    ensure!(st.stdout.contains("\"mode\": \"complain\""), "status does not show complain mode: {}", st.stdout);
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority in the running phase in complain mode: {r}, expected it allowed");
    let d = wait_denial(id, "getpriority", "SCMP_ACT_LOG")?;
    ensure!(d["phase"] == "running", "logged in phase {}", d["phase"]);
    let sw = run("speaker-ctl", &["switch", id, "--enforce"]);
    ensure!(sw.code == 0 && sw.stdout.contains("running (complain) -> running (enforce)"), "switch --enforce: {}{}", sw.stdout, sw.stderr);
    let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after switch --enforce: {r}");
    let r = probe_cmd(&dir, 3, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running set) after switch --enforce: {r}");
    wait_denial(id, "getpriority", "SCMP_ACT_ERRNO")?;
    ensure!(state_pid(id) == pid && crun_status(id).as_deref() == Some("running"), "the container was restarted");
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after --enforce: {:?}", phase_of(id));
    // And back: only a swap can loosen a live filter.
    let sw = run("speaker-ctl", &["switch", id, "--complain"]);
    ensure!(sw.code == 0, "switch --complain: {}{}", sw.stdout, sw.stderr);
    let r = probe_cmd(&dir, 4, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority after switch --complain: {r}");
    stop_and_delete(id)
}

fn phase_names(profile: &str, phase: &str) -> Vec<String> {
    run("speaker-ctl", &["profile", "show", "--phase", phase, profile]).stdout.lines().map(str::to_string).collect()
}

fn learn_adds_logged_syscall_to_the_right_phase() -> Outcome {
    // Audit records reach /dev/kmsg through printk_ratelimit(): off meanwhile.
    let _unlimited = PrintkUnlimited::new()?;
    let id = "learn1";
    let base = probe_profile()?;
    for phase in ["boot", "running", "shutdown"] {
        ensure!(
            !phase_names(base.to_str().unwrap(), phase).contains(&"sysinfo".to_string()),
            "sysinfo already in the probe's {phase} phase"
        );
    }
    let dir = probe_running(id, &base, &COMPLAIN)?;
    let r = probe_cmd(&dir, 1, "sys sysinfo", "p0t0")?;
    ensure!(r == "0", "sysinfo in complain mode: {r}");
    wait_denial(id, "sysinfo", "SCMP_ACT_LOG")?;
    let out = "/srv/learned.json";
    let o = run("speaker-ctl", &["profile", "learn", id, "-o", out]);
    ensure!(o.code == 0 && o.stdout.contains("+sysinfo"), "profile learn: {}{}", o.stdout, o.stderr);
    ensure!(phase_names(out, "running").contains(&"sysinfo".to_string()), "sysinfo not learned into running: {}", o.stdout);
    for phase in ["boot", "shutdown"] {
        ensure!(!phase_names(out, phase).contains(&"sysinfo".to_string()), "sysinfo learned into {phase} too");
    }
    let p: serde_json::Value = serde_json::from_str(&fs::read_to_string(out).unwrap_or_default()).unwrap_or_default();
    let l = &p["learned"]["running"][0];
    ensure!(l["name"] == "sysinfo" && l["count"].as_u64() >= Some(1) && l["first_seen_unix_ms"].as_u64() > Some(0), "learned entry: {l}");
    // The same from a saved kernel log.
    fs::write("/srv/kernel.log", run("dmesg", &[]).stdout).map_err(|e| e.to_string())?;
    let o = run("speaker-ctl", &["profile", "learn", id, "--from-log", "/srv/kernel.log", "-o", "/srv/learned2.json"]);
    ensure!(
        o.code == 0 && phase_names("/srv/learned2.json", "running").contains(&"sysinfo".to_string()),
        "learn --from-log: {}{}",
        o.stdout,
        o.stderr
    );
    stop_and_delete(id)?;
    // The learned profile, enforced: sysinfo runs in the running phase.
    let dir = probe_running("learn2", Path::new(out), &[])?;
    let r = probe_cmd(&dir, 1, "sys sysinfo", "p0t0")?;
    ensure!(r == "0", "sysinfo under the learned profile's running phase: {r}");
    let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority under the learned profile's running phase: {r}");
    stop_and_delete("learn2")
}

// ---------------------------------------------------------------------------
// reload: nginx re-reads its configuration and starts new workers on SIGHUP

/// The command of the reload containers: a probe (to make syscalls inside
/// the container's filter on request) beside nginx, which becomes the
/// container's first process.
fn reload_cmd(dir: &Path) -> String {
    format!("speaker-probe serve {} & exec nginx", dir.display())
}

/// nginx (with a probe beside it) traced with `--reload-signal HUP`: boot,
/// running under ab, a reload, shutdown.  getpriority is added to the boot
/// phase as the boot-only syscall the probe makes.
fn reload_profile() -> Result<PathBuf, String> {
    static P: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    P.get_or_init(|| {
        remove_all_containers();
        let dir = probe_dir("nginx-trace")?;
        let out = "/srv/probe/nginx-reload.json";
        let cmd = reload_cmd(&dir);
        // The running phase: requests, and the probe answering a request
        // (as the scenarios ask it to).
        let work = format!(
            "ab -q -n 300 -c 4 http://127.0.0.1/ > /dev/null && echo '1 sys getppid' > {0}/cmd && \
             while [ ! -e {0}/res/1.p0t0 ]; do sleep 0.1; done",
            dir.display()
        );
        let args = [
            "trace",
            "--mode",
            "filter",
            "--name",
            "nginx",
            // Boot ends once nginx has both workers and answers (on a loaded
            // machine a 2 s lull can come before nginx forks them), the
            // reload once nothing new happened for 4 s.
            "--ready",
            "cmd:test $(pgrep -c -x nginx) -ge 3 && ab -q -n 4 http://127.0.0.1/ > /dev/null 2>&1",
            "--auto-windows",
            "8",
            "--workload",
            &work,
            "--running-for",
            "2s",
            "--reload-signal",
            "HUP",
            "-o",
            out,
            "--",
            "sh",
            "-c",
            &cmd,
        ];
        let log = "/srv/probe/nginx-reload.trace.log";
        let mut child = rt_to_file_cmd("speaker-ctl", &args, log)?;
        // nginx exits at SIGTERM; the probe beside it (no PID namespace
        // here to take it along) is told to exit once shutdown has begun.
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut told = false;
        let status = loop {
            if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
                break st;
            }
            if !told && fs::read_to_string(out).is_ok_and(|t| t.contains("\"shutdown\"")) {
                let _ = probe_cmd_nowait(&dir, 99, "exit");
                told = true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("the trace of nginx did not end: {}", fs::read_to_string(log).unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let o = Out { code: status.code().unwrap_or(-1), stdout: String::new(), stderr: fs::read_to_string(log).unwrap_or_default() };
        ensure!(o.code == 0, "tracing nginx with --reload-signal HUP failed: {}", o.stderr);
        let mut p: Profile = serde_json::from_str(&fs::read_to_string(out).unwrap()).map_err(|e| e.to_string())?;
        ensure!(p.phase(Phase::Reload).is_some_and(|s| !s.syscalls.is_empty()), "no reload phase traced: {}", o.stderr);
        ensure!(p.reload.as_ref().is_some_and(|r| r.signals == ["SIGHUP"]), "no reload entry: {:?}", p.reload);
        for ph in [Phase::Running, Phase::Reload] {
            ensure!(!p.phase(ph).unwrap().syscalls.iter().any(|e| e.name == "getpriority"), "getpriority in the traced {ph} phase");
        }
        let boot = p.phases.get_mut(&Phase::Boot).ok_or("no boot phase")?;
        boot.syscalls.push(SyscallEntry { name: "getpriority".into(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None });
        // The runtime's monitor: same ports and tasks for 2 s.
        p.ready = Some("auto".into());
        fs::write(out, serde_json::to_string_pretty(&p).unwrap()).map_err(|e| e.to_string())?;
        Ok(PathBuf::from(out))
    })
    .clone()
}

/// An HTTP client that runs until stopped: (requests, failures, first failure).
struct Client {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(u64, u64, Option<String>)>>,
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Client {
    fn start(n: usize) -> Client {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                std::thread::spawn(move || {
                    let (mut reqs, mut fails, mut first) = (0, 0, None);
                    while !stop.load(Ordering::Acquire) {
                        reqs += 1;
                        if let Err(e) = http_get() {
                            fails += 1;
                            first.get_or_insert(e);
                        }
                        done.fetch_add(1, Ordering::AcqRel);
                    }
                    (reqs, fails, first)
                })
            })
            .collect();
        Client { stop, threads, done }
    }

    fn requests(&self) -> u64 {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    fn finish(self) -> (u64, u64, Option<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let mut total = (0, 0, None);
        for t in self.threads {
            let (r, f, e) = t.join().unwrap_or((0, 1, Some("client thread panicked".into())));
            total.0 += r;
            total.1 += f;
            if total.2.is_none() {
                total.2 = e;
            }
        }
        total
    }
}

/// One `GET /` (HTTP/1.0, a new connection): Ok if nginx answered 200.
fn http_get() -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", 80)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    ensure!(text.starts_with("HTTP/1.1 200") && text.contains("nginx"), "answer: {}", text.lines().next().unwrap_or(""));
    Ok(())
}

/// The pids of the children of `pid` (nginx's workers, and the probe).
fn children(pid: i64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
        if ppid.as_deref() == Some(pid.to_string().as_str()) {
            out.insert(name);
        }
    }
    out
}

/// Starts `prog args` with stdin from /dev/null and its output to `out`.
fn rt_to_file_cmd(prog: &str, args: &[&str], out: &str) -> Result<std::process::Child, String> {
    let log = fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())
}

/// Hands the probe `op` as generation `gen` without waiting for a result.
fn probe_cmd_nowait(dir: &Path, gen: u32, op: &str) -> std::io::Result<()> {
    fs::write(dir.join("cmd.tmp"), format!("{gen} {op}\n"))?;
    fs::rename(dir.join("cmd.tmp"), dir.join("cmd"))
}

/// Waits until nginx (the container's first process `pid`) has its two
/// workers and answers.
fn wait_nginx(pid: i64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    while children(pid).len() < 3 || http_get().is_err() {
        ensure!(Instant::now() < deadline, "nginx (pid {pid}) never came up: children {:?}, {:?}", children(pid), http_get());
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The reload under load: `reload` sends SIGHUP the container's way; checks
/// 0 failed requests (some served during the reload), new workers, the
/// container back in running with the boot-only syscall denied again, the
/// reload recorded as a switch, and no denial for nginx.
fn reload_under_load(id: &str, dir: &Path, reload: impl FnOnce() -> Result<String, String>) -> Outcome {
    let pid = state_pid(id);
    wait_nginx(pid)?;
    let r = probe_cmd(dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority (boot-only) in the running phase before the reload: {r}");
    let workers = children(pid);
    let client = Client::start(3);
    std::thread::sleep(Duration::from_millis(1500));
    let before = client.requests();
    let out = reload();
    let during = client.requests() - before;
    std::thread::sleep(Duration::from_millis(1500));
    let (reqs, fails, first) = client.finish();
    let out = out?;
    ensure!(fails == 0, "{fails} of {reqs} requests failed around the reload (first: {first:?}); reload: {out}");
    ensure!(during > 0, "no request was served during the reload ({reqs} in all)");
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after the reload: {:?} ({out})", phase_of(id));
    let now = children(pid);
    ensure!(now.len() >= 3 && workers.difference(&now).count() >= 2, "nginx did not start new workers: {workers:?} -> {now:?}");
    let r = probe_cmd(dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority (boot-only) after the reload: {r}, expected it denied again");
    let r = probe_cmd(dir, 3, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running set) after the reload: {r}");
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    let phases: Vec<&str> = st["switches"].as_array().into_iter().flatten().filter_map(|s| s["phase"].as_str()).collect();
    ensure!(phases.ends_with(&["running", "reload", "running"]), "switches recorded: {phases:?}");
    let d = run("speaker-ctl", &["denials", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
    let nginx: Vec<&serde_json::Value> = v.as_array().into_iter().flatten().filter(|d| d["comm"] != "speaker-probe").collect();
    ensure!(nginx.is_empty(), "nginx was denied syscalls: {nginx:?}");
    eprintln!("{id}: {reqs} requests, 0 failed, {during} during the reload; {out}");
    Ok(())
}

fn nginx_reload_keeps_serving() -> Outcome {
    let profile = reload_profile()?;
    remove_all_containers();
    let id = "nginxr1";
    let dir = probe_dir(id)?;
    let cmd = reload_cmd(&dir);
    let b = bundle(id, &["--profile", profile.to_str().unwrap()], &["sh", "-c", &cmd])?;
    run_detached(&b, id)?;
    wait_phase(id, "running", 90)?;
    wait_probe_ready(&dir, id)?;
    reload_under_load(id, &dir, || rt_ok(&["kill", id, "HUP"]).map(|o| o.trim().to_string()))?;
    let mlog = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
    ensure!(mlog.contains("reload: running -> reload") && mlog.contains("switched reload -> running"), "monitor log: {mlog}");
    stop_and_delete(id)
}

fn ctl_run_nginx_reload_keeps_serving() -> Outcome {
    let profile = reload_profile()?;
    remove_all_containers();
    let id = "nginxr2";
    let dir = probe_dir(id)?;
    let cmd = reload_cmd(&dir);
    let o = run("speaker-ctl", &["run", "-d", "--name", id, "--profile", profile.to_str().unwrap(), "--", "sh", "-c", &cmd]);
    ensure!(o.code == 0, "speaker-ctl run: {}{}", o.stdout, o.stderr);
    wait_probe_ready(&dir, id)?;
    wait_nginx(state_pid(id))?;
    // speaker-ctl run leaves the switch to the operator: once nginx has settled.
    std::thread::sleep(Duration::from_secs(2));
    let sw = run("speaker-ctl", &["switch", id]);
    ensure!(sw.code == 0 && sw.stdout.contains("boot -> running"), "speaker-ctl switch: {}{}", sw.stdout, sw.stderr);
    let res = reload_under_load(id, &dir, || {
        let o = run("speaker-ctl", &["signal", id, "HUP"]);
        ensure!(
            o.code == 0 && o.stdout.contains("running -> reload, SIGHUP") && o.stdout.contains("reload -> running"),
            "speaker-ctl signal {id} HUP: {}{}",
            o.stdout,
            o.stderr
        );
        Ok(o.stdout.trim().to_string())
    });
    let stop = run("speaker-ctl", &["stop", id]);
    res?;
    ensure!(stop.code == 0 && stop.stdout.contains("exited after SIGTERM"), "speaker-ctl stop: {}{}", stop.stdout, stop.stderr);
    Ok(())
}

/// Waits until container `id`'s recorded switches end with `tail`.
fn wait_switches_end(id: &str, tail: &[&str], secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
        let phases: Vec<&str> = st["switches"].as_array().into_iter().flatten().filter_map(|s| s["phase"].as_str()).collect();
        if phases.ends_with(tail) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{id}: switches {phases:?} after {secs} s, expected them to end with {tail:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `sig` to the foreground process `child` (speaker-ctl run or
/// speaker-runtime run), as a terminal or a supervisor would.
fn signal_child(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits for the foreground process `child` to exit; its exit code.
fn wait_child(child: &mut std::process::Child, secs: u64, what: &str) -> Result<Option<i32>, String> {
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

/// SIGHUP sent to a *foreground* `speaker-ctl run` or `speaker-runtime
/// run` (a terminal's hangup, a supervisor's reload) goes to the container
/// the speaker way, as `speaker-ctl signal` and `speaker-runtime kill` send
/// it: through the reload phase (nginx serves throughout, its new workers
/// may use boot syscalls, the boot-only one is denied again afterwards);
/// SIGTERM goes through the shutdown phase.  Before, both forwarded SIGHUP
/// as is, so nginx's new workers started under the running filter.
fn foreground_runs_send_reload_signals_through_the_reload_phase() -> Outcome {
    let profile = reload_profile()?;
    let p = profile.to_str().unwrap();
    remove_all_containers();
    for (id, tool) in [("nginxr3", "speaker-ctl"), ("nginxr4", "speaker-runtime")] {
        let dir = probe_dir(id)?;
        let cmd = reload_cmd(&dir);
        let out = format!("/srv/{id}.out");
        let mut child = if tool == "speaker-ctl" {
            let child = rt_to_file_cmd(tool, &["run", "--name", id, "--profile", p, "--", "sh", "-c", &cmd], &out)?;
            wait_probe_ready(&dir, id)?;
            wait_nginx(state_pid(id))?;
            // speaker-ctl run leaves the switch to the operator.
            std::thread::sleep(Duration::from_secs(2));
            let sw = run("speaker-ctl", &["switch", id]);
            ensure!(sw.code == 0 && sw.stdout.contains("boot -> running"), "speaker-ctl switch: {}{}", sw.stdout, sw.stderr);
            child
        } else {
            let b = bundle(id, &["--profile", p], &["sh", "-c", &cmd])?;
            let child = rt_to_file(&["run", "--bundle", b.to_str().unwrap(), id], &out)?;
            wait_phase(id, "running", 90)?;
            wait_probe_ready(&dir, id)?;
            child
        };
        let res = reload_under_load(id, &dir, || {
            signal_child(&child, libc::SIGHUP);
            wait_switches_end(id, &["running", "reload", "running"], 120)?;
            Ok(format!("SIGHUP to the foreground {tool} run"))
        });
        // The container's log survives its state directory (removed when
        // the run ends) through this descriptor.
        let mlog = fs::File::open(format!("/run/speaker/{id}/monitor.log"));
        signal_child(&child, libc::SIGTERM);
        let code = wait_child(&mut child, 60, &format!("{tool} run after SIGTERM"));
        let log = fs::read_to_string(&out).unwrap_or_default();
        res.map_err(|e| format!("{e}; {tool} run said: {log}"))?;
        ensure!(code?.is_some(), "{tool} run was killed by a signal: {log}");
        let mut switches = String::new();
        let _ = mlog.and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut switches));
        ensure!(
            switches.contains("phase running (enforce) -> shutdown (enforce)"),
            "{tool} run: SIGTERM did not go through the shutdown phase; the container's log: {switches}"
        );
        if tool == "speaker-ctl" {
            ensure!(
                log.contains(&format!("{id}: running -> reload, SIGHUP, ready after")) && log.contains("reload -> running"),
                "speaker-ctl run did not report the reload: {log}"
            );
        }
        ensure!(crun_status(id).is_none(), "crun still has {id}");
        ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left for {id}");
    }
    Ok(())
}

/// The demo services (`services` of services.sh) that have a profile in the
/// share (a guest may carry only some of them, e.g. nginx and redis).
fn demo_services() -> Vec<String> {
    service_var("services").split_whitespace().filter(|s| share().join(format!("profiles/{s}.json")).exists()).map(str::to_string).collect()
}

/// Empties a service's log if it exists (the service's user owns it: a
/// new file would be root's).
fn empty_log(log: &str) {
    if let Ok(f) = fs::OpenOptions::new().write(true).truncate(true).open(log) {
        drop(f);
    }
}

/// Every workload of every demo service with a profile (services.sh,
/// `demo_services`) runs with 0 errors
/// in its container after the automatic switch (committed profiles), the
/// container stays in its running phase, and the service's log holds no
/// permission error.
fn every_demo_workload_runs_after_the_switch() -> Outcome {
    let services = demo_services();
    ensure!(!services.is_empty(), "no service of services.sh has a profile in {}/profiles", share().display());
    eprintln!("demo services with a profile: {}", services.join(" "));
    for service in &services {
        let service = service.as_str();
        let log = service_var(&format!("{service}_log"));
        if service == "redis" {
            let _ = fs::remove_dir_all("/srv/redis/appendonlydir");
            let _ = fs::remove_file("/srv/redis/dump.rdb");
        }
        empty_log(&log);
        let id = format!("{service}-all");
        start_service(service, &id)?;
        for w in service_var(&format!("{service}_workloads")).split_whitespace() {
            let cmd = service_var(&format!("{service}_workload_{w}"));
            let o = run("sh", &["-c", &cmd]);
            ensure!(o.code == 0, "{service}: workload '{w}' failed after the switch ({}): {}{}", o.code, o.stdout, o.stderr);
            ensure!(phase_of(&id).as_deref() == Some("running"), "{service}: left its running phase during '{w}'");
        }
        let text = fs::read_to_string(&log).unwrap_or_default();
        let perm: Vec<&str> = text
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("operation not permitted") || l.contains("permission denied") || l.contains("(1: ") || l.contains("(13: ")
            })
            .collect();
        ensure!(perm.is_empty(), "{service}: permission errors in {log}: {perm:?}");
        let d = run("speaker-ctl", &["denials", &id, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
        ensure!(v.as_array().is_none_or(|a| a.is_empty()), "{service}: denials: {}", d.stdout);
        stop_and_delete(&id)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// the data stores across a restart

/// How a data store writes, reads back and checks its data and log.
struct Store {
    service: &'static str,
    /// Shell command that (re)creates a table of 500 rows.
    write: &'static str,
    /// Shell command printing the rows' count and checksum.
    read: &'static str,
    /// What its log says after a clean shutdown.
    clean_stop: &'static str,
    /// What its log says when it starts from an unclean stop (recovery).
    recovery: &'static [&'static str],
}

const STORES: [Store; 2] = [
    Store {
        service: "postgres",
        write: "/usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -c 'DROP TABLE IF EXISTS speaker_restart' \
                -c 'CREATE TABLE speaker_restart (id int PRIMARY KEY, v text NOT NULL)' \
                -c 'INSERT INTO speaker_restart SELECT i, md5(i::text) FROM generate_series(1, 500) i'",
        read: "/usr/lib/postgresql/15/bin/psql -X -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -tA \
               -c \"SELECT count(*) || ' ' || md5(string_agg(v, ',' ORDER BY id)) FROM speaker_restart\"",
        clean_stop: "database system is shut down",
        recovery: &["was interrupted", "not properly shut down", "automatic recovery"],
    },
    Store {
        service: "mariadb",
        write: "mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' && mysql speaker -e 'DROP TABLE IF EXISTS kept; \
                CREATE TABLE kept (id int PRIMARY KEY, v varchar(64) NOT NULL); \
                INSERT INTO kept SELECT seq, md5(seq) FROM seq_1_to_500'",
        read: "mysql -NB -e \"SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(v ORDER BY id))) FROM speaker.kept\"",
        clean_stop: "Shutdown complete",
        recovery: &["crash recovery", "Starting recovery"],
    },
];

/// `speaker-runtime run` in the foreground (it exits with the container's
/// status) of `service` as `id`, until its automatic switch.
fn run_store(service: &str, id: &str) -> Result<std::process::Child, String> {
    remove_all_containers();
    let cmd = service_var(&format!("{service}_cmd"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let profile = share().join(format!("profiles/{service}.json"));
    ensure!(profile.exists(), "no profile {} for {service} (examples/profiles/{service}.json, made by scripts/demo)", profile.display());
    let b = bundle(service, &["--profile", profile.to_str().unwrap()], &words)?;
    let mut child = rt_to_file(&["run", "--bundle", b.to_str().unwrap(), id], &format!("/srv/{id}.out"))?;
    if let Err(e) = wait_phase(id, "running", 180) {
        let _ = rt(&["delete", "--force", id]);
        let _ = child.wait();
        return Err(format!("{e}; output: {}", fs::read_to_string(format!("/srv/{id}.out")).unwrap_or_default()));
    }
    Ok(child)
}

/// Stops `id` with `speaker-runtime kill TERM` (its shutdown phase) and
/// checks a clean stop: exit status 0, the log says so, no denial.
fn stop_store(store: &Store, id: &str, mut child: std::process::Child, log: &str) -> Outcome {
    let d = run("speaker-ctl", &["denials", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
    ensure!(v.as_array().is_none_or(|a| a.is_empty()), "{}: denials in {id}: {}", store.service, d.stdout);
    rt_ok(&["kill", id, "TERM"])?;
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    ensure!(st["current"] == "shutdown", "{}: phase of {id} after kill TERM: {}", store.service, st["current"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = rt(&["delete", "--force", id]);
            let _ = child.wait();
            return Err(format!("{}: {id} did not stop within 120 s of SIGTERM; log: {}", store.service, tail(log)));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = fs::read_to_string(log).unwrap_or_default();
    ensure!(status.code() == Some(0), "{}: {id} exited {status} after SIGTERM; log: {}", store.service, tail(log));
    ensure!(text.contains(store.clean_stop), "{}: {log} does not say '{}' after SIGTERM: {}", store.service, store.clean_stop, tail(log));
    ensure!(crun_status(id).is_none() && !Path::new(&format!("/run/speaker/{id}")).exists(), "{}: {id} left behind", store.service);
    Ok(())
}

/// The last lines of a log, for messages.
fn tail(log: &str) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// PostgreSQL and MariaDB through speaker-runtime (committed profiles):
/// rows written after the switch, a clean stop in the shutdown phase
/// (exit 0, the log says so), and after a second start (no recovery) the
/// same rows read back.
fn postgres_and_mariadb_keep_their_data_across_restart() -> Outcome {
    for store in &STORES {
        let log = service_var(&format!("{}_log", store.service));
        let started = Instant::now();
        empty_log(&log);
        let id = format!("{}-r1", store.service);
        let child = run_store(store.service, &id)?;
        let o = run("sh", &["-c", store.write]);
        ensure!(o.code == 0, "{}: writing the rows failed ({}): {}{}", store.service, o.code, o.stdout, o.stderr);
        let o = run("sh", &["-c", store.read]);
        let written = o.stdout.trim().to_string();
        ensure!(o.code == 0 && written.starts_with("500 "), "{}: reading the rows back: {written} {}", store.service, o.stderr);
        stop_store(store, &id, child, &log)?;

        empty_log(&log);
        let id = format!("{}-r2", store.service);
        let child = run_store(store.service, &id)?;
        let o = run("sh", &["-c", store.read]);
        let read = o.stdout.trim().to_string();
        let text = fs::read_to_string(&log).unwrap_or_default();
        let recovered: Vec<&&str> = store.recovery.iter().filter(|r| text.contains(**r)).collect();
        let res = if o.code != 0 || read != written {
            Err(format!("{}: after the restart the rows read '{read}' ({}), before '{written}'", store.service, o.stderr.trim()))
        } else if !recovered.is_empty() {
            Err(format!("{}: the restart ran a recovery ({recovered:?}): the stop was not clean: {}", store.service, tail(&log)))
        } else {
            Ok(())
        };
        let stop = stop_store(store, &id, child, &log);
        res?;
        stop?;
        eprintln!("{}: {written} (count, md5) intact across the restart; {:.0} s", store.service, started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn main() {
    let scenarios: &[Scenario] = &[
        ("oci_container_without_annotation_is_untouched", oci_container_without_annotation_is_untouched),
        ("nginx_serves_after_automatic_switch", nginx_serves_after_automatic_switch),
        ("redis_serves_after_automatic_switch", redis_serves_after_automatic_switch),
        ("running_container_denies_boot_only_syscall", running_container_denies_boot_only_syscall),
        ("exec_into_running_container_gets_running_filter", exec_into_running_container_gets_running_filter),
        ("ctl_switch_and_status_work_on_runtime_ids", ctl_switch_and_status_work_on_runtime_ids),
        ("foreground_run_forwards_sigterm_and_cleans_up", foreground_run_forwards_sigterm_and_cleans_up),
        ("redis_saves_dump_in_shutdown_phase", redis_saves_dump_in_shutdown_phase),
        ("runtime_passes_through_unknown_commands", runtime_passes_through_unknown_commands),
        ("runtime_rejects_missing_profile", runtime_rejects_missing_profile),
        ("runtime_rejects_profile_for_other_arch", runtime_rejects_profile_for_other_arch),
        ("runtime_reports_missing_crun", runtime_reports_missing_crun),
        ("denial_is_reported_with_container_and_phase", denial_is_reported_with_container_and_phase),
        ("complain_mode_logs_and_allows_then_enforce_denies", complain_mode_logs_and_allows_then_enforce_denies),
        ("learn_adds_logged_syscall_to_the_right_phase", learn_adds_logged_syscall_to_the_right_phase),
        ("nginx_reload_keeps_serving", nginx_reload_keeps_serving),
        ("ctl_run_nginx_reload_keeps_serving", ctl_run_nginx_reload_keeps_serving),
        ("foreground_runs_send_reload_signals_through_the_reload_phase", foreground_runs_send_reload_signals_through_the_reload_phase),
        ("every_demo_workload_runs_after_the_switch", every_demo_workload_runs_after_the_switch),
        ("postgres_and_mariadb_keep_their_data_across_restart", postgres_and_mariadb_keep_their_data_across_restart),
        (
            "speaker_runtime_refuses_unparsed_flags_on_annotated_bundles",
            fail_closed::speaker_runtime_refuses_unparsed_flags_on_annotated_bundles,
        ),
        ("annotated_run_keeps_the_container_with_keep", fail_closed::annotated_run_keeps_the_container_with_keep),
    ];
    run_scenarios(scenarios)
}
