//! What every engine's scenarios check: a command's success, the container's
//! phase in speaker.ko, the probe's workload, and nothing left behind.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use speaker_tests::ensure;
use speaker_tests::guest::{run, Out, Outcome};

use crate::setup::PORT;

pub fn ok(what: &str, o: &Out) -> Result<String, String> {
    ensure!(o.code == 0, "{what} failed ({}): {}{}", o.code, o.stdout.trim(), o.stderr.trim());
    Ok(o.stdout.trim().to_string())
}

pub fn phase_of(id: &str) -> Option<String> {
    let o = run("speaker-ctl", &["status", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    v.get(0)?.get("phase")?.as_str().map(str::to_string)
}

pub fn wait_phase(id: &str, phase: &str, secs: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if phase_of(id).as_deref() == Some(phase) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
    Err(format!("container {id} not in phase {phase} after {secs}s (now {:?}); monitor log: {log}", phase_of(id)))
}

/// The workload: 200 requests, 4 at a time; 0 may fail.
pub fn workload() -> Outcome {
    let o = run("ab", &["-q", "-n", "200", "-c", "4", &format!("http://127.0.0.1:{PORT}/index.html")]);
    let out = ok("ab", &o)?;
    let failed = out.lines().find(|l| l.starts_with("Failed requests:")).ok_or_else(|| format!("ab printed no summary: {out}"))?;
    ensure!(failed.split_whitespace().last() == Some("0"), "workload: {failed}");
    let complete = out.lines().find(|l| l.starts_with("Complete requests:")).unwrap_or_default();
    ensure!(complete.split_whitespace().last() == Some("200"), "workload: {complete}");
    Ok(())
}

/// Nothing of `id` left in speaker.ko or /run/speaker, and speaker.ko
/// knows no container at all.
pub fn nothing_left(id: &str) -> Outcome {
    ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "/run/speaker/{id} left behind");
    ensure!(phase_of(id).is_none(), "speaker.ko still knows {id}");
    let all = run("speaker-ctl", &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&all.stdout).map_err(|e| format!("speaker-ctl status --json: {e}: {}", all.stdout))?;
    ensure!(v.as_array().is_some_and(|a| a.is_empty()), "speaker-ctl status is not empty: {}", all.stdout);
    Ok(())
}
