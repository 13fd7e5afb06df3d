//! `speaker-ctl run --engine notify`: the notify engine without an OCI
//! runtime.  speaker-ctl copies the listener of the container's filter from
//! its first process and hands it to a supervisor daemon; the phases, the
//! switch, the denial records and the stop are those of every container.
use std::fs;
use std::path::Path;

use speaker_tests::ensure;
use speaker_tests::guest::{run, Outcome};

use crate::containers::remove_all_containers;
use crate::probe::{probe_cmd, probe_dir, probe_profile, wait_probe_ready};

fn ctl_ok(args: &[&str]) -> Result<String, String> {
    let o = run("speaker-ctl", args);
    ensure!(o.code == 0, "speaker-ctl {}: exit {}: {}{}", args.join(" "), o.code, o.stdout, o.stderr);
    Ok(o.stdout)
}

/// A probe started by `speaker-ctl run --engine notify` (on any kernel,
/// speaker.ko loaded or not): boot allows getpriority, `speaker-ctl
/// switch` makes it fail with the profile's errno while getppid (running)
/// still runs, `speaker-ctl denials` names container, phase and syscall,
/// and `speaker-ctl stop` ends it through its shutdown phase.
pub fn ctl_run_under_the_notify_engine_switches_and_records_denials() -> Outcome {
    remove_all_containers();
    let id = "nrun";
    let dir = probe_dir(id)?;
    let profile = probe_profile()?;
    let (p, d) = (profile.to_str().unwrap(), dir.to_str().unwrap());
    // The host is read-only inside but the probe's directory.
    ctl_ok(&["run", "--name", id, "--engine", "notify", "-d", "--volume", d, "--profile", p, "--", "speaker-probe", "serve", d])?;
    let outcome = (|| {
        wait_probe_ready(&dir, id)?;
        let st: serde_json::Value = serde_json::from_str(&ctl_ok(&["status", id, "--json"])?).map_err(|e| e.to_string())?;
        let engine = st.get(0).and_then(|e| e["engine"].as_str()).unwrap_or("?").to_string();
        ensure!(engine == "notify", "speaker-ctl status says engine {engine}: {st}");
        let r = probe_cmd(&dir, 1, "sys getpriority", "p0t0")?;
        ensure!(r == "0", "getpriority in the boot phase: {r}");
        let sw = ctl_ok(&["switch", id])?;
        ensure!(sw.contains("boot -> running"), "speaker-ctl switch {id}: {sw}");
        let r = probe_cmd(&dir, 2, "sys getpriority", "p0t0")?;
        ensure!(r == "errno 1", "getpriority after the switch: {r}, expected errno 1 (EPERM)");
        let r = probe_cmd(&dir, 3, "fork getpriority", "forked")?;
        ensure!(r == "errno 1", "getpriority in a child forked after the switch: {r}");
        let r = probe_cmd(&dir, 4, "sys getppid", "p0t0")?;
        ensure!(r == "0", "getppid (running phase) after the switch: {r}");
        let den = ctl_ok(&["denials", id])?;
        ensure!(
            den.lines().any(|l| l.contains("getpriority") && l.contains("running")),
            "speaker-ctl denials {id} does not record getpriority in the running phase: {den}"
        );
        ctl_ok(&["stop", id])?;
        ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left for {id} after stop");
        Ok(())
    })();
    if outcome.is_err() {
        let _ = run("speaker-ctl", &["stop", id, "--timeout", "1"]);
        let log = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
        return outcome.map_err(|e| format!("{e} | log: {log}"));
    }
    outcome
}
