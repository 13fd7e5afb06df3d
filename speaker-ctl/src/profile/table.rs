//! `profile table`: per service and phase, how many syscalls a profile
//! allows (as traced, and with the safety margin of [`super::margin`]),
//! against a baseline (Docker's default) and the figures the released
//! SPEAKER code reports; and what each compile mode's filters allow, with
//! the critical syscalls they remove against the baseline (the figure
//! that measures security).
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::arch::Arch;
use super::diff::phase_labels;
use super::error::ProfileError;
use super::margin;
use super::oci::{docker_sets, OciProfile};
use super::policy::{phase_sets, CompileMode, CompileOptions, PhaseSets};
use super::risk;
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
    /// With the safety margin (the phase's own set, before widening).
    pub with_margin: usize,
    /// What the compiled filter allows in each mode (margin, widening for
    /// switches, allow/deny; balanced: also low-risk family members and
    /// low-risk boot syscalls; a syscall allowed in its low form counts).
    pub strict: usize,
    pub balanced: usize,
    /// Critical syscalls ([`super::risk`]) Docker's default allows that the
    /// compiled filter does not, in each mode.
    pub critical_removed_strict: usize,
    pub critical_removed_balanced: usize,
}

/// One row of `profile table`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub baseline: usize,
    /// Critical syscalls the baseline allows.
    pub baseline_critical: usize,
    pub boot: Option<Count>,
    pub running: Option<Count>,
    pub reload: Option<Count>,
    pub shutdown: Option<Count>,
    /// Running phase, with the margin, against the baseline.
    pub running_reduction_percent: Option<f64>,
    /// The released SPEAKER figures (boot, running, shutdown), if any.
    pub speaker_released: Option<[usize; 3]>,
}

/// The counts of every phase of `p` (for `profile table` and `profile
/// show`): `docker` is what the baseline allows (unconditionally or for
/// some arguments), `origin` the profile's file (for errors).
pub fn counts(p: &Profile, docker: &BTreeSet<String>, origin: &Path) -> Result<BTreeMap<Phase, Count>, ProfileError> {
    let mut wide = p.clone();
    wide.margin = None;
    margin::apply(&mut wide);
    let strict = phase_sets(p, &CompileOptions::mode(CompileMode::Strict), origin)?;
    let balanced = phase_sets(p, &CompileOptions::mode(CompileMode::Balanced), origin)?;
    let compiled = |s: &PhaseSets, ph: Phase| s.names(ph).len() + s.conditional_names(ph).len();
    let mut out = BTreeMap::new();
    for (&ph, set) in &p.phases {
        out.insert(
            ph,
            Count {
                traced: phase_labels(set).len(),
                with_margin: wide.phase(ph).map_or(0, |s| phase_labels(s).len()),
                strict: compiled(&strict, ph),
                balanced: compiled(&balanced, ph),
                critical_removed_strict: strict.critical_removed(ph, docker).len(),
                critical_removed_balanced: balanced.critical_removed(ph, docker).len(),
            },
        );
    }
    Ok(out)
}

/// What Docker's default-like baseline `oci` allows on x86_64 for an
/// unprivileged container (unconditionally or for some arguments).
pub fn docker_allowed(oci: &OciProfile) -> BTreeSet<String> {
    let s = docker_sets(oci, Arch::X86_64);
    s.unconditional.into_iter().chain(s.with_args).collect()
}

/// The row of `service`'s profile `p` against a baseline allowing
/// `baseline` syscalls unconditionally, `docker` (see [`docker_allowed`]).
pub fn row(service: String, p: &Profile, baseline: usize, docker: &BTreeSet<String>, origin: &Path) -> Result<Row, ProfileError> {
    let c = counts(p, docker, origin)?;
    let count = |ph: Phase| c.get(&ph).copied();
    let running = count(Phase::Running);
    let released = SPEAKER_RELEASED.iter().find(|(n, _)| n.eq_ignore_ascii_case(&service)).map(|(_, c)| *c);
    Ok(Row {
        service,
        baseline,
        baseline_critical: docker.iter().filter(|n| risk::table().is_critical(n)).count(),
        boot: count(Phase::Boot),
        running,
        reload: count(Phase::Reload),
        shutdown: count(Phase::Shutdown),
        running_reduction_percent: running.map(|r| 100.0 * (1.0 - r.with_margin as f64 / baseline as f64)),
        speaker_released: released,
    })
}

fn cell(c: Option<Count>) -> String {
    c.map(|c| format!("{} / {}", c.traced, c.with_margin)).unwrap_or_else(|| "-".into())
}

/// A phase's compiled counts: `strict/balanced (critical removed strict/balanced)`.
fn mode_cell(c: Option<Count>) -> String {
    c.map(|c| format!("{}/{} ({}/{})", c.strict, c.balanced, c.critical_removed_strict, c.critical_removed_balanced))
        .unwrap_or_else(|| "-".into())
}

fn released(r: &Row) -> String {
    r.speaker_released.map(|[b, r, s]| format!("{b}/{r}/{s}")).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "-".into())
}

/// A row's cells, in the order of both renderings' columns.
fn cells(r: &Row) -> [String; 12] {
    [
        r.service.to_string(),
        format!("{} ({})", r.baseline, r.baseline_critical),
        cell(r.boot),
        cell(r.running),
        cell(r.reload),
        cell(r.shutdown),
        pct(r.running_reduction_percent),
        released(r),
        mode_cell(r.boot),
        mode_cell(r.running),
        mode_cell(r.reload),
        mode_cell(r.shutdown),
    ]
}

/// The table as text (two lines per service: as traced, then compiled).
pub fn render_text(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<10} {:>9} {:>15} {:>15} {:>15} {:>15} {:>9} {:>16}\n",
        "SERVICE", "DOCKER", "BOOT", "RUNNING", "RELOAD", "SHUTDOWN", "REDUCTION", "SPEAKER B/R/S"
    );
    for r in rows {
        let [service, docker, boot, running, reload, shutdown, reduction, speaker, mboot, mrunning, mreload, mshutdown] = cells(r);
        out.push_str(&format!(
            "{service:<10} {docker:>9} {boot:>15} {running:>15} {reload:>15} {shutdown:>15} {reduction:>9} {speaker:>16}\n"
        ));
        out.push_str(&format!("{:<10} {:>9} {mboot:>15} {mrunning:>15} {mreload:>15} {mshutdown:>15}\n", "", "compiled"));
    }
    out.push_str(
        "(phases: traced / with the safety margin; compiled: strict/balanced allowed (critical syscalls removed vs Docker's default, strict/balanced); \
         DOCKER: its unconditional allows (critical syscalls it allows); reduction: the running phase with the margin vs Docker's default)\n",
    );
    out
}

/// The table as Markdown.
pub fn render_markdown(rows: &[Row]) -> String {
    let mut md = String::from(
        "| service | Docker default (x86_64; critical) | boot | running | reload | shutdown | running-phase reduction vs Docker default | released SPEAKER boot/running/shutdown | boot compiled | running compiled | reload compiled | shutdown compiled |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        md.push_str(&format!("| {} |\n", cells(r).join(" | ")));
    }
    md.push_str("\nPhases: syscalls allowed as traced / with the safety margin (`profile/margin.rs`); the reduction is the running phase with the margin. Compiled: what the filter allows in `strict`/`balanced` mode (`profile/policy.rs`), and in parentheses the critical syscalls (`speaker-ctl/data/syscall-risk.json`) Docker's default allows that the filter removes, strict/balanced.\n");
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
        let docker: BTreeSet<String> = ["execve", "setuid", "read", "pread64"].iter().map(|s| s.to_string()).collect();
        let r = row("redis".into(), &p, 300, &docker, Path::new("redis.json")).unwrap();
        let n = margin::names().count();
        let b = r.boot.unwrap();
        assert_eq!((b.traced, b.with_margin), (2, 1 + n));
        let run = r.running.unwrap();
        assert_eq!((run.traced, run.with_margin), (1, 1 + n));
        // margin false: strict is exactly traced (boot ∪ running); balanced adds read's family.
        assert_eq!((b.strict, run.strict), (3, 1));
        assert!(run.balanced >= 5, "{run:?}");
        // execve and setuid removed from running in both modes, setuid from boot too.
        assert_eq!((run.critical_removed_strict, run.critical_removed_balanced), (2, 2));
        assert_eq!((b.critical_removed_strict, b.critical_removed_balanced), (1, 1));
        assert_eq!(r.baseline_critical, 2);
        assert_eq!(r.reload, None);
        assert_eq!(r.speaker_released, Some([69, 24, 13]));
        assert!(render_markdown(std::slice::from_ref(&r)).contains("| 69/24/13 |"));
        let text = render_text(&[r]);
        assert!(text.contains("1 / ") && text.contains("compiled") && text.contains("(2/2)"), "{text}");
    }
}
