//! The notify engine (seccomp user notification, no speaker.ko) and the
//! choice of engine: tests/tests/debian12_oci.rs runs these on Debian 12's
//! stock kernel; the kmod side on Debian's kernel with speaker.ko.
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile, SyscallEntry};
use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{rt, start_service, state_pid, stop_and_delete, wait_phase, workload};
use crate::denials::wait_denial;
use crate::probe::{probe_cmd, probe_profile, probe_running, start_probe_with};

fn state(id: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default()
}

fn status_json(id: &str) -> serde_json::Value {
    let o = run("speaker-ctl", &["status", id, "--json"]);
    serde_json::from_str::<serde_json::Value>(&o.stdout).ok().and_then(|v| v.get(0).cloned()).unwrap_or_default()
}

/// The engine `speaker-ctl status --json` reports for `id`.
fn engine_of(id: &str) -> String {
    status_json(id)["engine"].as_str().unwrap_or("?").to_string()
}

/// SIGKILLs the monitor (the notify engine's supervisor) of `id`.
fn kill_monitor(id: &str) -> Outcome {
    let m = state(id)["runtime"]["monitor_pid"].as_i64().ok_or(format!("no monitor pid in {id}'s state"))? as i32;
    // SAFETY: plain kill(2).
    unsafe { libc::kill(m, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{m}/status")).exists()
        && !fs::read_to_string(format!("/proc/{m}/status")).unwrap_or_default().contains("State:\tZ")
    {
        ensure!(Instant::now() < deadline, "monitor {m} of {id} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn go(dir: &Path) -> Outcome {
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())
}

/// The supervisor must live: once it is SIGKILLed, every syscall the
/// running phase does not allow fails with ENOSYS (the kernel's answer when
/// a filter's listener is gone), never runs; what running allows still
/// runs, so the service keeps serving.
pub fn notify_engine_survives_a_supervisor_kill() -> Outcome {
    let dir = start_probe_with("kill1", &probe_profile()?, &[])?;
    ensure!(engine_of("kill1") == "notify", "kill1 runs under engine {}", engine_of("kill1"));
    go(&dir)?;
    wait_phase("kill1", "running", 20)?;
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after the switch: {r}, expected errno 1 (EPERM)");
    kill_monitor("kill1")?;
    for gen in 2..=4 {
        let r = probe_cmd(&dir, gen, "sys getpriority", "p0t0")?;
        ensure!(r == "errno 38", "getpriority with the supervisor dead: {r}, expected errno 38 (ENOSYS)");
    }
    let r = probe_cmd(&dir, 5, "fork getpriority", "forked")?;
    ensure!(r == "errno 38", "getpriority in a child forked after the supervisor died: {r}");
    let r = probe_cmd(&dir, 6, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running phase) with the supervisor dead: {r}");
    let _ = rt(&["delete", "--force", "kill1"]);
    // A real service keeps serving its running-phase work.
    start_service("nginx", "nginx-kill")?;
    kill_monitor("nginx-kill")?;
    let out = workload("nginx")?;
    ensure!(
        out.contains("Failed requests:        0") && out.contains("Complete requests:      1000"),
        "nginx after its supervisor died: {out}"
    );
    let _ = rt(&["delete", "--force", "nginx-kill"]);
    Ok(())
}

/// The probe's profile with statfs (a path argument) in the boot phase only.
fn race_profile() -> Result<PathBuf, String> {
    let mut p: Profile =
        serde_json::from_str(&fs::read_to_string(probe_profile()?).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let running = p.phase(Phase::Running).ok_or("no running phase")?;
    ensure!(!running.syscalls.iter().any(|e| e.name == "statfs"), "statfs in the probe's running phase");
    let entry = |n: &str| SyscallEntry { name: n.into(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None };
    // The racing thread itself (the probe was traced without threads).
    const THREAD: &[&str] = &[
        "clone3",
        "clone",
        "mmap",
        "munmap",
        "mprotect",
        "madvise",
        "set_robust_list",
        "rseq",
        "futex",
        "sigaltstack",
        "rt_sigprocmask",
        "sched_getaffinity",
        "gettid",
        "exit",
        "sched_yield",
    ];
    for phase in [Phase::Boot, Phase::Running] {
        let set = p.phases.get_mut(&phase).ok_or("no boot or running phase")?;
        for n in THREAD {
            if !set.syscalls.iter().any(|e| e.name == *n) {
                set.syscalls.push(entry(n));
            }
        }
    }
    p.phases.get_mut(&Phase::Boot).ok_or("no boot phase")?.syscalls.push(entry("statfs"));
    let out = PathBuf::from("/srv/probe/race.json");
    fs::write(&out, serde_json::to_string_pretty(&p).unwrap()).map_err(|e| e.to_string())?;
    Ok(out)
}

fn counts(r: &str) -> Result<[u32; 4], String> {
    let mut out = [0u32; 4];
    for (i, key) in ["ok", "enoent", "eperm", "other"].iter().enumerate() {
        out[i] = r
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|n| n.parse().ok())
            .ok_or(format!("no {key}= in '{r}'"))?;
    }
    Ok(out)
}

/// A racing thread flips a boot-only syscall's path between `/` and
/// `/nonexistent` while the container's task makes it: in the boot phase
/// both outcomes are seen (the memory really changes under the syscall);
/// after the switch every call is denied (EPERM): what the memory says
/// never changes the decision, since the supervisor does not read it.
pub fn notify_engine_ignores_arguments() -> Outcome {
    // Each boot-phase call is a supervisor round trip (slow under TCG).
    const N: u32 = 300;
    let dir = start_probe_with("race1", &race_profile()?, &[])?;
    let r = probe_cmd(&dir, 1, &format!("race statfs {N}"), "p0t0")?;
    let [ok, enoent, eperm, other] = counts(&r)?;
    ensure!(eperm == 0 && other == 0 && ok + enoent == N, "statfs in the boot phase: {r}");
    ensure!(ok > 0 && enoent > 0, "the racing thread never changed the outcome in the boot phase ({r}): no race to prove anything with");
    go(&dir)?;
    wait_phase("race1", "running", 20)?;
    let r = probe_cmd(&dir, 2, &format!("race statfs {N}"), "p0t0")?;
    let [ok, enoent, eperm, other] = counts(&r)?;
    ensure!(
        ok == 0 && enoent == 0 && other == 0 && eperm == N,
        "statfs after the switch, path racing: {r}; every call must fail with EPERM"
    );
    let o = run("speaker-ctl", &["denials", "race1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).map_err(|e| format!("denials --json: {e}: {}{}", o.stdout, o.stderr))?;
    let n = v.as_array().map(|a| a.iter().filter(|d| d["syscall"] == "statfs" && d["phase"] == "running").count()).unwrap_or(0);
    ensure!(n as u32 >= N, "speaker-ctl denials race1 shows {n} statfs denials in the running phase, expected {N}");
    let _ = rt(&["delete", "--force", "race1"]);
    Ok(())
}

/// `io.speaker.engine=auto` (the default): speaker.ko when /dev/speaker
/// works, else notify; `status` says which, and the notify engine's limits.
fn auto_engine_picks(expect: &str) -> Outcome {
    let module = Path::new("/dev/speaker").exists();
    ensure!(
        module == (expect == "kmod"),
        "this guest {} /dev/speaker: wrong kernel for this scenario",
        if module { "has" } else { "has no" }
    );
    let dir = start_probe_with("auto1", &probe_profile()?, &["--annotation", "io.speaker.engine=auto"])?;
    ensure!(engine_of("auto1") == expect, "auto picked {} (expected {expect})", engine_of("auto1"));
    let saved = state("auto1")["engine"].as_str().unwrap_or("kmod").to_string();
    ensure!(saved == expect, "state.json says engine {saved}");
    let limits = status_json("auto1")["limits"].as_array().map(|a| a.len()).unwrap_or(0);
    let text = run("speaker-ctl", &["status"]).stdout;
    if expect == "notify" {
        ensure!(
            limits == 3 && text.contains("notify engine limits:") && text.contains("ENOSYS"),
            "status does not state the limits: {text}"
        );
    } else {
        ensure!(limits == 0 && !text.contains("notify engine limits:"), "status states notify limits for a kmod container: {text}");
    }
    go(&dir)?;
    wait_phase("auto1", "running", 20)?;
    let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority after the switch under auto ({expect}): {r}");
    stop_and_delete("auto1")
}

pub fn auto_engine_picks_notify_without_module() -> Outcome {
    auto_engine_picks("notify")
}

pub fn auto_engine_picks_kmod_when_loaded() -> Outcome {
    auto_engine_picks("kmod")
}

/// One profile, both engines (speaker.ko loaded): the same syscalls are
/// denied in the same phases, and reported the same by `speaker-ctl denials`.
pub fn one_profile_same_denials_under_both_engines() -> Outcome {
    let profile = race_profile()?;
    let mut seen = Vec::new();
    for engine in ["kmod", "notify"] {
        let id = format!("same-{engine}");
        let dir = start_probe_with(&id, &profile, &["--annotation", &format!("io.speaker.engine={engine}")])?;
        ensure!(engine_of(&id) == engine, "{id} runs under {}", engine_of(&id));
        let mut results = vec![probe_cmd(&dir, 1, "sys getpriority", "p0t0")?, probe_cmd(&dir, 2, "race statfs 10", "p0t0")?];
        go(&dir)?;
        wait_phase(&id, "running", 20)?;
        for (gen, op) in [(3, "sys getpriority"), (4, "race statfs 10"), (5, "sys getppid"), (6, "sys personality")] {
            results.push(probe_cmd(&dir, gen, op, "p0t0")?);
        }
        // Boot's race outcome varies; only that nothing was denied counts.
        results[1] = if results[1].contains("eperm=0 other=0") { "allowed".into() } else { results[1].clone() };
        std::thread::sleep(Duration::from_millis(1500));
        let o = run("speaker-ctl", &["denials", &id, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).map_err(|e| format!("denials --json: {e}: {}{}", o.stdout, o.stderr))?;
        let mut denied: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| format!("{}/{}", d["phase"].as_str().unwrap_or("-"), d["syscall"].as_str().unwrap_or("?")))
            .collect();
        // Every denial is a record of its own: the racing thread's ten
        // statfs calls in the running phase are ten records under both
        // engines (the kernel log's rate limit once kept only some).
        let statfs = denied.iter().filter(|d| *d == "running/statfs").count();
        ensure!(statfs >= 10, "{engine}: {statfs} running/statfs denials recorded, 10 were made: {denied:?}");
        denied.sort();
        denied.dedup();
        let _ = rt(&["delete", "--force", &id]);
        seen.push((engine, results, denied));
    }
    ensure!(seen[0].1 == seen[1].1, "results differ: kmod {:?}, notify {:?}", seen[0].1, seen[1].1);
    ensure!(
        seen[0].2 == seen[1].2,
        "denials differ: kmod {:?}, notify {:?} (results {:?}; profile: {})",
        seen[0].2,
        seen[1].2,
        seen[0].1,
        fs::read_to_string(&profile).unwrap_or_default()
    );
    ensure!(seen[0].2.iter().any(|d| d == "running/getpriority"), "no running/getpriority denial: {:?}", seen[0].2);
    Ok(())
}

/// Under the notify engine a process exec'd after the switch runs under
/// crun's copy of the running phase's filter, not the supervised one: its
/// denials are the kernel's audit records, attributed to the container (by
/// its PID namespace: there is no kernel list of its processes) and to the
/// running phase, like the container's own.
pub fn exec_denials_are_attributed_under_notify() -> Outcome {
    let id = "execdeny";
    probe_running(id, &probe_profile()?, &["--annotation", "io.speaker.engine=notify"])?;
    ensure!(engine_of(id) == "notify", "{id} runs under {}", engine_of(id));
    // (A probe that serves needs its boot's syscalls; one that tries
    // getpriority and stays a while needs only the running phase's.)
    let o = run("speaker-runtime", &["exec", id, "speaker-probe", "try", "getpriority", "sleep:3000"]);
    ensure!(o.code == 0 && o.stdout.trim() == "getpriority: errno 1", "exec'd after the switch: exit {}: {}{}", o.code, o.stdout, o.stderr);
    let d = wait_denial(id, "getpriority", "SCMP_ACT_ERRNO", "running")?;
    ensure!(d["cid"] == id, "the exec'd process's denial is attributed to {}: {d}", d["cid"]);
    ensure!(d["pid"].as_i64() != Some(state_pid(id)), "the denial is the container's first process's, not the exec'd one's: {d}");
    stop_and_delete(id)
}
