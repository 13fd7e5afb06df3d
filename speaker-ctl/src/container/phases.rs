//! Turning the profile files given to `speaker-ctl run` into one compiled
//! program per phase.
use anyhow::{Context, Result};
use std::path::Path;

use crate::profile::schema::{Phase, Profile, SyscallEntry};
use crate::profile::{self, Mode, PhaseFilter, SockFilter};

/// One phase, compiled in both modes.
pub struct CompiledPhase {
    pub phase: Phase,
    pub allowed: u32,
    /// Enforce mode: the profile's default action for everything else.
    pub prog: Vec<SockFilter>,
    /// Complain mode: everything else allowed and logged.
    pub complain: Vec<SockFilter>,
}

impl CompiledPhase {
    pub fn program(&self, mode: Mode) -> &[SockFilter] {
        match mode {
            Mode::Enforce => &self.prog,
            Mode::Complain => &self.complain,
        }
    }
}

/// Compiles phase `phase`'s filter (read from `origin`) in both modes.
pub fn compile_one(phase: Phase, filter: &PhaseFilter, origin: &Path) -> Result<CompiledPhase> {
    let what = || format!("cannot compile the {phase} phase of {}", origin.display());
    let prog = profile::compile(filter).with_context(what)?;
    let complain = profile::compile(&Mode::Complain.apply(filter)).with_context(what)?;
    Ok(CompiledPhase { phase, allowed: profile::allowed_count(filter) as u32, prog, complain })
}

/// The phases of a speaker multi-phase profile (boot required), each with
/// the safety margin (`profile::margin`) unless the profile turns it off.
///
/// The boot filter allows the boot *and* the running syscalls: a service
/// serves as soon as it is ready, and the switch to the running filter
/// lands a little later (after the readiness probe fires), so requests
/// served in between must not be denied.  Likewise the shutdown filter
/// allows shutdown ∪ running: the switch lands before the signal, and the
/// service goes on with its running-phase loop until it notices the signal
/// (redis, e.g., may call epoll_wait once more before it saves its dump;
/// whether a trace sees that call in its shutdown phase is a matter of
/// timing).  The running filter allows exactly the running set; `stop`
/// switches to the shutdown filter before it sends SIGTERM.
pub fn from_profile(path: &Path) -> Result<Vec<CompiledPhase>> {
    from_profile_with(path, true)
}

/// Like [`from_profile`]; `margin: false` leaves out the safety margin
/// (`profile::margin`) even if the profile asks for it.
pub fn from_profile_with(path: &Path, margin: bool) -> Result<Vec<CompiledPhase>> {
    let mut p = profile::load_profile(path)?;
    if !margin {
        p.margin = Some(false);
    }
    profile::margin::apply(&mut p);
    widen_for_switches(&mut p);
    let mut out = Vec::new();
    for phase in Phase::ALL {
        if p.phase(phase).is_none() {
            continue;
        }
        let f = profile::phase_filter_at(&p, phase, path)?;
        out.push(compile_one(phase, &f, path)?);
    }
    anyhow::ensure!(
        out.first().map(|c| c.phase) == Some(Phase::Boot),
        "{} has no boot phase: a profile for 'speaker-ctl run' needs phases.boot",
        path.display()
    );
    Ok(out)
}

/// Adds the running set to the boot and shutdown sets (see
/// [`from_profile`] for why), and makes the reload phase of a profile that
/// reloads (`reload`, or a traced `phases.reload`) boot ∪ running ∪ reload.
///
/// Why that union: a reload re-runs part of the boot (nginx re-reads its
/// configuration and forks new workers that set themselves up as at boot),
/// while requests go on being served (running); what the traced reload did
/// is added, so that timing differences between the trace and production
/// (which worker sets itself up when) cannot break a reload.  Every entry
/// was traced: a reload needs no more than what was traced, and a profile
/// with `reload` but no traced reload phase reloads under its boot filter.
pub fn widen_for_switches(p: &mut Profile) {
    if let Some(running) = p.phase(Phase::Running).cloned() {
        for phase in [Phase::Boot, Phase::Shutdown] {
            add_to_phase(p, phase, &running.syscalls);
        }
    }
    if p.reload.is_some() || p.phase(Phase::Reload).is_some() {
        let boot = p.phase(Phase::Boot).map(|s| s.syscalls.clone()).unwrap_or_default();
        p.phases.entry(Phase::Reload).or_default();
        add_to_phase(p, Phase::Reload, &boot);
    }
}

/// Adds `entries` missing from phase `phase` of `p` (if it has that phase).
pub fn add_to_phase(p: &mut Profile, phase: Phase, entries: &[SyscallEntry]) {
    if let Some(set) = p.phases.get_mut(&phase) {
        for e in entries {
            if !set.syscalls.iter().any(|b| b.name == e.name && b.arch == e.arch) {
                set.syscalls.push(e.clone());
            }
        }
    }
}

/// One file per phase (each OCI seccomp JSON or a one-phase speaker profile).
pub fn from_files(boot: &Path, running: &Path, shutdown: Option<&Path>) -> Result<Vec<CompiledPhase>> {
    let mut out = Vec::new();
    for (phase, path) in [(Phase::Boot, Some(boot)), (Phase::Running, Some(running)), (Phase::Shutdown, shutdown)] {
        let Some(path) = path else { continue };
        let f = profile::load_phase_file(path)?;
        out.push(compile_one(phase, &f, path)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::schema::{PhaseSet, Reload};

    fn set(names: &[&str]) -> PhaseSet {
        PhaseSet {
            syscalls: names
                .iter()
                .map(|n| SyscallEntry { name: n.to_string(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None })
                .collect(),
        }
    }

    fn names(p: &Profile, phase: Phase) -> Vec<String> {
        let mut v: Vec<String> = p.phase(phase).unwrap().syscalls.iter().map(|e| e.name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn reload_filter_is_boot_running_and_reload() {
        let mut p = Profile::new(None);
        p.phases.insert(Phase::Boot, set(&["execve"]));
        p.phases.insert(Phase::Running, set(&["accept4"]));
        p.phases.insert(Phase::Reload, set(&["kill"]));
        p.phases.insert(Phase::Shutdown, set(&["fsync"]));
        widen_for_switches(&mut p);
        assert_eq!(names(&p, Phase::Reload), ["accept4", "execve", "kill"]);
        assert_eq!(names(&p, Phase::Running), ["accept4"]);
        assert_eq!(names(&p, Phase::Boot), ["accept4", "execve"], "the reload set stays out of boot");
    }

    #[test]
    fn reload_without_traced_phase_is_the_boot_filter_and_old_profiles_get_none() {
        let mut p = Profile::new(None);
        p.phases.insert(Phase::Boot, set(&["execve"]));
        p.phases.insert(Phase::Running, set(&["accept4"]));
        let mut old = p.clone();
        widen_for_switches(&mut old);
        assert!(old.phase(Phase::Reload).is_none());
        p.reload = Some(Reload { signals: vec!["SIGHUP".into()], ready: None });
        widen_for_switches(&mut p);
        assert_eq!(names(&p, Phase::Reload), names(&p, Phase::Boot));
    }
}
