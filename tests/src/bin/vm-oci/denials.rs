//! Production scenarios of denials: the report of a denied syscall,
//! complain mode, and `learn` adding a logged syscall to its phase.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{crun_status, phase_of, state_pid, stop_and_delete};
use crate::probe::{probe_cmd, probe_profile, probe_running};

pub const COMPLAIN: [&str; 2] = ["--annotation", "io.speaker.mode=complain"];

/// Waits until `speaker-ctl denials ID --json` lists `syscall` with
/// `action`; returns that entry.
/// The switches container `id`'s state records (for a failure's message).
pub fn switches_of(id: &str) -> String {
    let st = std::fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_default();
    format!("started_unix_ms {} switches {}", v["started_unix_ms"], v["switches"])
}

/// Waits until `speaker-ctl denials ID --json` reports a record of
/// `syscall` with `action` in `phase` (the one the scenario's own call
/// made), and returns it.  Records of the same syscall in another phase
/// are not it: in complain mode crun's own start-up, under the boot filter,
/// is logged too and attributed (rightly) to boot.  If the scenario's call
/// were attributed to another phase, no record in `phase` ever comes and
/// the failure lists what there is.
pub fn wait_denial(id: &str, syscall: &str, action: &str, phase: &str) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = run("speaker-ctl", &["denials", id, "--json"]);
        ensure!(o.code == 0, "speaker-ctl denials {id} --json: {}{}", o.stdout, o.stderr);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).map_err(|e| format!("denials --json: {e}: {}", o.stdout))?;
        let same = |d: &&serde_json::Value| d["syscall"] == syscall && d["action"] == action;
        if let Some(d) = v.as_array().into_iter().flatten().filter(same).find(|d| d["phase"] == phase) {
            return Ok(d.clone());
        }
        if Instant::now() > deadline {
            let others: Vec<String> = v.as_array().into_iter().flatten().filter(same).map(|d| d.to_string()).collect();
            let kmsg: Vec<String> = run("dmesg", &[]).stdout.lines().filter(|l| l.contains("type=1326")).map(str::to_string).collect();
            return Err(format!(
                "no {syscall} {action} record in the {phase} phase for {id}; its {syscall} records: {others:?}; {}; audit lines in the kernel log: {kmsg:?}",
                switches_of(id)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn denial_is_reported_with_container_and_phase() -> Outcome {
    // (No printk_ratelimit change: the runtime's monitor reads every
    // record from the audit socket, as it must on a real node.)
    let id = "deny1";
    let dir = probe_running(id, &probe_profile()?, &[])?;
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority in the running phase: {r}");
    let d = wait_denial(id, "getpriority", "SCMP_ACT_ERRNO", "running")?;
    ensure!(d["cid"] == id && d["phase"] == "running", "denial attributed to {} / {}: {d}; {}", d["cid"], d["phase"], switches_of(id));
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

pub fn complain_mode_logs_and_allows_then_enforce_denies() -> Outcome {
    // (No printk_ratelimit change: the runtime's monitor reads every
    // record from the audit socket, as it must on a real node.)
    let id = "complain1";
    let dir = probe_running(id, &probe_profile()?, &COMPLAIN)?;
    let pid = state_pid(id);
    let st = run("speaker-ctl", &["status", id, "--json"]);
    ensure!(st.stdout.contains("\"mode\": \"complain\""), "status does not show complain mode: {}", st.stdout);
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority in the running phase in complain mode: {r}, expected it allowed");
    let d = wait_denial(id, "getpriority", "SCMP_ACT_LOG", "running")?;
    ensure!(d["phase"] == "running", "logged in phase {}: {d}; {}", d["phase"], switches_of(id));
    let sw = run("speaker-ctl", &["switch", id, "--enforce"]);
    ensure!(sw.code == 0 && sw.stdout.contains("running (complain) -> running (enforce)"), "switch --enforce: {}{}", sw.stdout, sw.stderr);
    let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after switch --enforce: {r}");
    let r = probe_cmd(&dir, 3, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running set) after switch --enforce: {r}");
    wait_denial(id, "getpriority", "SCMP_ACT_ERRNO", "running")?;
    ensure!(state_pid(id) == pid && crun_status(id).as_deref() == Some("running"), "the container was restarted");
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after --enforce: {:?}", phase_of(id));
    // And back: only a swap can loosen a live filter.
    let sw = run("speaker-ctl", &["switch", id, "--complain"]);
    ensure!(sw.code == 0, "switch --complain: {}{}", sw.stdout, sw.stderr);
    let r = probe_cmd(&dir, 4, "sys getpriority", "p0t0")?;
    ensure!(r == "0", "getpriority after switch --complain: {r}");
    stop_and_delete(id)
}

pub fn phase_names(profile: &str, phase: &str) -> Vec<String> {
    run("speaker-ctl", &["profile", "show", "--phase", phase, profile]).stdout.lines().map(str::to_string).collect()
}

pub fn learn_adds_logged_syscall_to_the_right_phase() -> Outcome {
    // (No printk_ratelimit change: the runtime's monitor reads every
    // record from the audit socket, as it must on a real node.)
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
    // (Learned only once the running call's record is in the log.)
    wait_denial(id, "sysinfo", "SCMP_ACT_LOG", "running")?;
    let out = "/srv/learned.json";
    let o = run("speaker-ctl", &["profile", "learn", id, "-o", out]);
    ensure!(o.code == 0 && o.stdout.contains("+sysinfo"), "profile learn: {}{}", o.stdout, o.stderr);
    ensure!(
        phase_names(out, "running").contains(&"sysinfo".to_string()),
        "sysinfo not learned into running: {}; {}",
        o.stdout,
        switches_of(id)
    );
    // Learned into exactly the phases its records are in: the running call,
    // and boot only if crun's start-up under the (complain-mode) boot
    // filter made one too.
    let records = run("speaker-ctl", &["denials", id, "--json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&records).unwrap_or_default();
    let in_boot = v.as_array().into_iter().flatten().any(|d| d["syscall"] == "sysinfo" && d["phase"] == "boot");
    ensure!(
        phase_names(out, "boot").contains(&"sysinfo".to_string()) == in_boot,
        "sysinfo learned into boot: {}, but its boot records: {in_boot}",
        !in_boot
    );
    ensure!(!phase_names(out, "shutdown").contains(&"sysinfo".to_string()), "sysinfo learned into shutdown too");
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
