//! The probe container: speaker-probe serve, with a traced profile whose boot
//! phase also allows getpriority (the boot-only syscall) and whose running
//! phase does not; it switches when /srv/probe/<id>/go exists.  It runs one
//! syscall on request.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile, SyscallEntry};
use speaker::profile::CompileMode;
use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::{bundle, remove_all_containers, run_detached, wait_phase};

pub fn probe_profile() -> Result<PathBuf, String> {
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
        // Filter mode needs speaker.ko; without it (Debian 12's kernel), ptrace.
        let mode = if Path::new("/dev/speaker").exists() { "filter" } else { "ptrace" };
        let o = run(
            "speaker-ctl",
            &[
                "trace",
                "--mode",
                mode,
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
        // The scenarios prove the mechanism with getpriority, a low-risk
        // syscall that `balanced` would give the running phase back.
        p.compile = Some(CompileMode::Strict);
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
pub fn start_probe(id: &str) -> Result<PathBuf, String> {
    start_probe_with(id, &probe_profile()?, &[])
}

/// Starts probe container `id` from `profile` with more `oci-bundle`
/// arguments (boot phase), returns its directory.
pub fn start_probe_with(id: &str, profile: &Path, extra: &[&str]) -> Result<PathBuf, String> {
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
pub fn probe_dir(id: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/srv/probe/{id}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("res")).map_err(|e| e.to_string())?;
    Ok(dir)
}

pub fn wait_probe_ready(dir: &Path, id: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("ready.p0t0").exists() {
        ensure!(Instant::now() < deadline, "the probe in {id} never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Asks the probe's first task for `op` as generation `gen`; its result.
pub fn probe_cmd(dir: &Path, gen: u32, op: &str, file: &str) -> Result<String, String> {
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

/// Probe container `id` from `profile` (`extra` bundle arguments), switched
/// to its running phase.
pub fn probe_running(id: &str, profile: &Path, extra: &[&str]) -> Result<PathBuf, String> {
    let dir = start_probe_with(id, profile, extra)?;
    fs::write(dir.join("go"), "").map_err(|e| e.to_string())?;
    wait_phase(id, "running", 20)?;
    Ok(dir)
}

/// Hands the probe `op` as generation `gen` without waiting for a result.
pub fn probe_cmd_nowait(dir: &Path, gen: u32, op: &str) -> std::io::Result<()> {
    fs::write(dir.join("cmd.tmp"), format!("{gen} {op}\n"))?;
    fs::rename(dir.join("cmd.tmp"), dir.join("cmd"))
}
