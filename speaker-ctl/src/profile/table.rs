//! `profile table`: per service and phase, how many syscalls a profile
//! allows (as traced, and with the safety margin of [`super::margin`]),
//! against a baseline (Docker's default) and the figures the released
//! SPEAKER code reports.
use serde::Serialize;

use super::diff::phase_labels;
use super::margin;
use super::schema::{Phase, Profile};

/// Boot/running/shutdown counts the released SPEAKER code reports for the
/// paper's data stores (its README), by the service names speaker's demo
/// uses.
pub const SPEAKER_RELEASED: &[(&str, [usize; 3])] = &[
    ("redis", [69, 24, 13]),
    ("postgres", [98, 53, 24]),
    ("postgresql", [98, 53, 24]),
    ("mariadb", [105, 42, 32]),
    ("mysql", [105, 42, 32]),
];

/// One phase's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    /// What the traces saw.
    pub traced: usize,
    /// With the safety margin (what is compiled by default).
    pub with_margin: usize,
}

/// One row of `profile table`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub baseline: usize,
    pub boot: Option<Count>,
    pub running: Option<Count>,
    pub reload: Option<Count>,
    pub shutdown: Option<Count>,
    /// Running phase, with the margin, against the baseline.
    pub running_reduction_percent: Option<f64>,
    /// The released SPEAKER figures (boot, running, shutdown), if any.
    pub speaker_released: Option<[usize; 3]>,
}

/// The row of `service`'s profile `p` against a baseline allowing `baseline`.
pub fn row(service: String, p: &Profile, baseline: usize) -> Row {
    let mut wide = p.clone();
    wide.margin = None;
    margin::apply(&mut wide);
    let count = |ph: Phase| Some(Count { traced: phase_labels(p.phase(ph)?).len(), with_margin: phase_labels(wide.phase(ph)?).len() });
    let running = count(Phase::Running);
    let released = SPEAKER_RELEASED.iter().find(|(n, _)| n.eq_ignore_ascii_case(&service)).map(|(_, c)| *c);
    Row {
        service,
        baseline,
        boot: count(Phase::Boot),
        running,
        reload: count(Phase::Reload),
        shutdown: count(Phase::Shutdown),
        running_reduction_percent: running.map(|r| 100.0 * (1.0 - r.with_margin as f64 / baseline as f64)),
        speaker_released: released,
    }
}

fn cell(c: Option<Count>) -> String {
    c.map(|c| format!("{} / {}", c.traced, c.with_margin)).unwrap_or_else(|| "-".into())
}

fn released(r: &Row) -> String {
    r.speaker_released.map(|[b, r, s]| format!("{b}/{r}/{s}")).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "-".into())
}

/// A row's cells, in the order of both renderings' columns.
fn cells(r: &Row) -> [String; 8] {
    [
        r.service.to_string(),
        r.baseline.to_string(),
        cell(r.boot),
        cell(r.running),
        cell(r.reload),
        cell(r.shutdown),
        pct(r.running_reduction_percent),
        released(r),
    ]
}

/// The table as text (one line per service).
pub fn render_text(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>16}\n",
        "SERVICE", "DOCKER", "BOOT", "RUNNING", "RELOAD", "SHUTDOWN", "REDUCTION", "SPEAKER B/R/S"
    );
    for r in rows {
        let [service, docker, boot, running, reload, shutdown, reduction, speaker] = cells(r);
        out.push_str(&format!("{service:<10} {docker:>8} {boot:>9} {running:>9} {reload:>9} {shutdown:>9} {reduction:>9} {speaker:>16}\n"));
    }
    out.push_str("(phases: traced / with the safety margin; reduction: the running phase with the margin vs Docker's default)\n");
    out
}

/// The table as Markdown.
pub fn render_markdown(rows: &[Row]) -> String {
    let mut md = String::from(
        "| service | Docker default (x86_64) | boot | running | reload | shutdown | running-phase reduction vs Docker default | released SPEAKER boot/running/shutdown |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        md.push_str(&format!("| {} |\n", cells(r).join(" | ")));
    }
    md.push_str("\nPhases: syscalls allowed as traced / with the safety margin (`profile/margin.rs`, compiled by default); the reduction is the running phase with the margin.\n");
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::schema::{PhaseSet, SyscallEntry};

    #[test]
    fn counts_with_and_without_margin_and_released_figures() {
        let mut p = Profile::new(Some("redis".into()));
        let e = |n: &str| SyscallEntry { name: n.into(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None };
        p.phases.insert(Phase::Boot, PhaseSet { syscalls: vec![e("execve"), e("brk")] });
        p.phases.insert(Phase::Running, PhaseSet { syscalls: vec![e("read")] });
        p.margin = Some(false);
        let r = row("redis".into(), &p, 300);
        let n = margin::names().count();
        assert_eq!(r.boot, Some(Count { traced: 2, with_margin: 1 + n }));
        assert_eq!(r.running, Some(Count { traced: 1, with_margin: 1 + n }));
        assert_eq!(r.reload, None);
        assert_eq!(r.speaker_released, Some([69, 24, 13]));
        assert!(render_markdown(std::slice::from_ref(&r)).contains("| 69/24/13 |"));
        assert!(render_text(&[r]).contains("1 / "));
    }
}
