//! Turning the profile files given to `speaker-ctl run` into one compiled
//! program per phase.
use anyhow::{Context, Result};
use std::path::Path;

use crate::profile::schema::Phase;
use crate::profile::{self, CompileOptions, Mode, PhaseFilter, SockFilter};

/// One phase, compiled in both modes.
pub struct CompiledPhase {
    pub phase: Phase,
    pub allowed: u32,
    /// Enforce mode: the profile's default action for everything else.
    pub prog: Vec<SockFilter>,
    /// Complain mode: everything else allowed and logged.
    pub complain: Vec<SockFilter>,
    /// The filter it was compiled from (`None` for a raw program): the
    /// notify engine's table is made from it.
    pub filter: Option<PhaseFilter>,
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
    Ok(CompiledPhase { phase, allowed: profile::allowed_count(filter) as u32, prog, complain, filter: Some(filter.clone()) })
}

/// The phases of a speaker multi-phase profile (boot required), compiled
/// as the profile says (its `compile` mode, margin, `allow` and `deny`).
pub fn from_profile(path: &Path) -> Result<Vec<CompiledPhase>> {
    from_profile_with(path, &CompileOptions::default())
}

/// Like [`from_profile`], with the command line's say over the profile
/// (`--compile`, `--no-margin`, `--allow`, `--deny`).  Every phase's set
/// comes from [`profile::phase_sets`], the one place phases are compiled
/// from: the boot filter allows boot ∪ running, the shutdown filter
/// shutdown ∪ running, a reload filter boot ∪ running ∪ reload (see
/// [`widen_for_switches`]); the running filter the running set.
pub fn from_profile_with(path: &Path, opts: &CompileOptions) -> Result<Vec<CompiledPhase>> {
    let p = profile::load_profile(path)?;
    let sets = profile::phase_sets(&p, opts, path)?;
    let mut out = Vec::new();
    for phase in Phase::ALL {
        if sets.profile.phase(phase).is_none() {
            continue;
        }
        let f = sets.filter(phase, path)?;
        out.push(compile_one(phase, &f, path)?);
    }
    anyhow::ensure!(
        out.first().map(|c| c.phase) == Some(Phase::Boot),
        "{} has no boot phase: a profile for 'speaker-ctl run' needs phases.boot",
        path.display()
    );
    Ok(out)
}

/// Where they live now (the profile layer compiles phases).
pub use crate::profile::policy::{add_to_phase, widen_for_switches};

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
    use crate::profile::schema::{PhaseSet, Profile, Reload, SyscallEntry};

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
