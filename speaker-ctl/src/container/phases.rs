//! Turning the profile files given to `speaker-ctl run` into one compiled
//! program per phase.
use anyhow::{Context, Result};
use std::path::Path;

use crate::profile::schema::Phase;
use crate::profile::{self, PhaseFilter, SockFilter};

/// One phase, compiled.
pub struct CompiledPhase {
    pub phase: Phase,
    pub allowed: u32,
    pub prog: Vec<SockFilter>,
}

fn compile_one(phase: Phase, filter: &PhaseFilter, origin: &Path) -> Result<CompiledPhase> {
    let prog = profile::compile(filter)
        .with_context(|| format!("cannot compile the {phase} phase of {}", origin.display()))?;
    Ok(CompiledPhase { phase, allowed: profile::allowed_count(filter) as u32, prog })
}

/// The phases of a speaker multi-phase profile (boot required).
pub fn from_profile(path: &Path) -> Result<Vec<CompiledPhase>> {
    let p = profile::load_profile(path)?;
    let mut out = Vec::new();
    for phase in Phase::ALL {
        if p.phase(phase).is_none() {
            continue;
        }
        let f = profile::compile::phase_filter_at(&p, phase, path)?;
        out.push(compile_one(phase, &f, path)?);
    }
    anyhow::ensure!(
        out.first().map(|c| c.phase) == Some(Phase::Boot),
        "{} has no boot phase: a profile for 'speaker-ctl run' needs phases.boot",
        path.display()
    );
    Ok(out)
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
