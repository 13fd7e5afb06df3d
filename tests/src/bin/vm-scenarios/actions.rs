//! Scenarios of the profiles' actions: kill-process kills, log allows (complain
//! mode) and logs.

use std::fs;
use std::process::Command;
use std::time::Duration;

use speaker_tests::ensure;
use speaker_tests::guest::{LogSince, Outcome, PrintkUnlimited};

use crate::probe::Probe;
use crate::profiles::{deny_profile, ALLOWED, NR_GETPRIORITY};
use crate::support::wait_until;

pub fn kill_process_action_kills_on_denied_syscall() -> Outcome {
    let b = deny_profile("kill-boot", &["sysinfo"], "SCMP_ACT_ERRNO");
    let r = deny_profile("kill-running", &["getpriority"], "SCMP_ACT_KILL_PROCESS");
    let dir = "/tmp/c/killer";
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut child = Command::new("speaker-ctl")
        .args(["run", "--name", "killer", "--volume", dir, "--boot", b.to_str().unwrap(), "--running", r.to_str().unwrap(), "--"])
        .args(["speaker-probe", "serve", dir, "--threads", "2"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut p = Probe { cid: "killer".into(), dir: dir.into(), pid: 0, gen: 0, tasks: 3 };
    p.wait_ready()?;
    p.expect_all("sys getpriority", ALLOWED)?;
    p.switch("running")?;
    p.send("sys getpriority");
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure!(status.code() == Some(128 + libc::SIGSYS), "container exit {status:?}, want 128+SIGSYS");
    Ok(())
}

pub fn log_action_allows_in_complain_mode() -> Outcome {
    let b = deny_profile("log-boot", &["sysinfo"], "SCMP_ACT_ERRNO");
    let r = deny_profile("log-running", &["getpriority"], "SCMP_ACT_LOG");
    let mut p = Probe::start("complain", &[b.clone(), r, b], &[], 1)?;
    p.switch("running")?;
    let _unlimited = PrintkUnlimited::new()?;
    let mut since = LogSince::now()?;
    p.expect_all("sys getpriority", ALLOWED)?;
    // SCMP_ACT_LOG: allowed, and logged through audit (type 1326, action
    // SECCOMP_RET_LOG = 0x7ffc0000) with the syscall number (printk's rate
    // limit is off meanwhile, so the record cannot be dropped).
    let record = format!("syscall={NR_GETPRIORITY} ");
    wait_until("the audit record of the logged getpriority", Duration::from_secs(10), || {
        since.messages().iter().any(|l| l.contains("type=1326") && l.contains(&record) && l.contains("code=0x7ffc0000"))
    })
}
