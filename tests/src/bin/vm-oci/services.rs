//! Scenarios of the runtime with real services: annotated and plain
//! containers, the automatic switch, exec, ctl on runtime ids, foreground
//! runs, the shutdown phase, and the runtime's refusals.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{
    bundle, crun_status, phase_of, remove_all_containers, rt, rt_ok, rt_to_file, share, start_service, stop_and_delete, wait_phase,
    wait_stopped, workload,
};
use crate::probe::{probe_cmd, probe_dir, probe_profile, start_probe, wait_probe_ready};
use crate::workloads::{demo_workloads_run, fresh_service_files, served};

pub fn oci_container_without_annotation_is_untouched() -> Outcome {
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

/// nginx serves 1000 requests after the automatic switch; then every demo
/// workload of nginx runs in the same container, for
/// `every_demo_workload_runs_after_the_switch` (which then does not start
/// nginx again in this boot).
pub fn nginx_serves_after_automatic_switch() -> Outcome {
    fresh_service_files("nginx");
    start_service("nginx", "nginx1")?;
    let out = workload("nginx")?;
    ensure!(out.contains("Failed requests:        0"), "nginx: failed requests after the switch: {out}");
    ensure!(out.contains("Complete requests:      1000"), "nginx: not all requests completed: {out}");
    ensure!(!out.contains("Non-2xx"), "nginx: non-2xx responses: {out}");
    ensure!(phase_of("nginx1").as_deref() == Some("running"), "nginx1 left its running phase");
    demo_workloads_run("nginx", "nginx1")?;
    stop_and_delete("nginx1")?;
    served("nginx");
    Ok(())
}

/// redis answers its benchmark and a SET/GET after the automatic switch;
/// then every demo workload of redis, as for nginx above.
pub fn redis_serves_after_automatic_switch() -> Outcome {
    fresh_service_files("redis");
    start_service("redis", "redis1")?;
    let out = workload("redis")?;
    ensure!(out.contains("total_error_replies:0"), "redis: error replies after the switch: {out}");
    let o = run("redis-cli", &["set", "speaker:key", "slim"]);
    ensure!(o.stdout.trim() == "OK", "redis-cli set: {}{}", o.stdout, o.stderr);
    let o = run("redis-cli", &["get", "speaker:key"]);
    ensure!(o.stdout.trim() == "slim", "redis-cli get: {}{}", o.stdout, o.stderr);
    demo_workloads_run("redis", "redis1")?;
    stop_and_delete("redis1")?;
    served("redis");
    Ok(())
}

pub fn running_container_denies_boot_only_syscall() -> Outcome {
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

pub fn exec_into_running_container_gets_running_filter() -> Outcome {
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
pub fn ctl_switch_and_status_work_on_runtime_ids() -> Outcome {
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
pub fn foreground_run_forwards_sigterm_and_cleans_up() -> Outcome {
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

pub fn redis_saves_dump_in_shutdown_phase() -> Outcome {
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

pub fn runtime_passes_through_unknown_commands() -> Outcome {
    // Same output and exit status as crun itself, whatever crun makes of
    // the line.
    for args in [&["--root", "/run/crun", "list"][..], &["ps", "no-such-container"], &["no-such-command"]] {
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
    // `features` is crun's answer with speaker's added (crun 1.8 has no
    // `features` yet: then both fail the same way).
    let (a, c) = (rt(&["features"]), run("crun", &["features"]));
    if c.code != 0 {
        ensure!(a.code == c.code, "speaker-runtime features: exit {} where crun's is {}: {}", a.code, c.code, a.stderr);
    } else {
        let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).map_err(|e| format!("features JSON: {e}: {t}"));
        let (mut ours, theirs) = (parse(&a.stdout)?, parse(&c.stdout)?);
        let ann = ours["annotations"].as_object_mut().ok_or("no annotations in speaker-runtime features")?;
        ensure!(ann.remove("io.speaker.version").is_some(), "speaker-runtime features names no speaker version: {}", a.stdout);
        ann.retain(|k, _| !k.starts_with("io.speaker."));
        let unsafe_list = ours["potentiallyUnsafeConfigAnnotations"].as_array_mut().ok_or("no potentiallyUnsafeConfigAnnotations")?;
        let before = unsafe_list.len();
        unsafe_list.retain(|v| v != "io.speaker.");
        ensure!(unsafe_list.len() + 1 == before, "io.speaker. is not among the potentially unsafe annotations: {}", a.stdout);
        ensure!(ours == theirs, "speaker-runtime features, without speaker's additions, differs from crun's: {ours} vs {theirs}");
    }
    // --version speaks for speaker first, then gives crun's own.
    let ours = rt_ok(&["--version"])?;
    let crun = run("crun", &["--version"]);
    ensure!(
        ours.starts_with("speaker-runtime ") && ours.contains(crun.stdout.trim()) && ours.contains("crun version"),
        "--version: {ours:?}, crun's: {:?}",
        crun.stdout
    );
    Ok(())
}

/// The error cases: clear message, nothing left behind.
pub fn check_create_fails(id: &str, profile: &str, env: &[(&str, &str)], want: &str) -> Outcome {
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

pub fn runtime_rejects_missing_profile() -> Outcome {
    check_create_fails(
        "bad1",
        "/srv/no-such-profile.json",
        &[],
        "profile /srv/no-such-profile.json named by annotation io.speaker.profile does not exist",
    )
}

pub fn runtime_rejects_profile_for_other_arch() -> Outcome {
    let p = "/srv/arm64-profile.json";
    fs::write(
        p,
        r#"{"schema":"speaker.profile/v1","architectures":["SCMP_ARCH_AARCH64"],
            "phases":{"boot":{"syscalls":[{"name":"read","arch":"aarch64"}]}}}"#,
    )
    .map_err(|e| e.to_string())?;
    check_create_fails("bad2", p, &[], "is for SCMP_ARCH_AARCH64 but this machine runs x86_64")
}

pub fn runtime_reports_missing_crun() -> Outcome {
    let profile = share().join("profiles/nginx.json");
    check_create_fails("bad3", profile.to_str().unwrap(), &[("SPEAKER_CRUN", "/nonexistent/crun")], "crun not found at /nonexistent/crun")
}
