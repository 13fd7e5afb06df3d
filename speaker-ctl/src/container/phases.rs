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
/// [`from_profile`] for why).
pub fn widen_for_switches(p: &mut Profile) {
    let Some(running) = p.phase(Phase::Running).cloned() else { return };
    for phase in [Phase::Boot, Phase::Shutdown] {
        add_to_phase(p, phase, &running.syscalls);
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
