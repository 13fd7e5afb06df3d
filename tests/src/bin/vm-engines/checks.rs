//! What every engine's scenarios check: a command's success, the container's
//! phase in speaker.ko, the probe's workload, and nothing left behind.

use std::path::Path;
use std::time::Duration;

use speaker_tests::ensure;
use speaker_tests::guest::{run, wait_phase_polling, Outcome};

use crate::setup::PORT;

pub use speaker_tests::engines::ok;

pub use speaker_tests::guest::phase_of;

/// [`speaker_tests::guest::wait_phase_polling`], every 200 ms.
pub fn wait_phase(id: &str, phase: &str, secs: u64) -> Outcome {
    wait_phase_polling(id, phase, secs, Duration::from_millis(200))
}

/// The workload: 200 requests, 4 at a time; 0 may fail.
pub fn workload() -> Outcome {
    let o = run("ab", &["-q", "-n", "200", "-c", "4", &format!("http://127.0.0.1:{PORT}/index.html")]);
    let out = ok("ab", &o).map_err(|e| format!("{e}\n{}", server_view()))?;
    let failed = out.lines().find(|l| l.starts_with("Failed requests:")).ok_or_else(|| format!("ab printed no summary: {out}"))?;
    ensure!(failed.split_whitespace().last() == Some("0"), "workload: {failed}\n{}", server_view());
    let complete = out.lines().find(|l| l.starts_with("Complete requests:")).unwrap_or_default();
    ensure!(complete.split_whitespace().last() == Some("200"), "workload: {complete}\n{}", server_view());
    Ok(())
}

/// The server's side of a workload that failed, for its message: the
/// port's sockets, the tasks with where they wait, and what speaker denied
/// in every container.
fn server_view() -> String {
    let port = format!("sport = :{PORT} or dport = :{PORT}");
    let sockets = run("ss", &["-tanp", &port]).stdout;
    let tasks = run("ps", &["-eo", "pid,ppid,stat,wchan:24,args"]).stdout;
    let tasks: Vec<&str> = tasks.lines().filter(|l| l.contains("httpd") || l.contains("start.sh")).collect();
    // (without an id: every container's, each line naming its container)
    let denials = run("speaker-ctl", &["denials"]).stdout;
    let denials: Vec<&str> = denials.lines().collect();
    format!("sockets of port {PORT}:\n{}tasks: {tasks:?}\ndenials: {denials:?}", sockets)
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
