//! A notify-engine container's current phase and mode, as its supervisor
//! reads them: `/run/speaker/<cid>/notify-phase` (`running enforce`),
//! replaced atomically by every switch (under the container's lock) and
//! read by the supervisor for every notification, so a switch takes effect
//! for every syscall notified after it returns.
use std::path::PathBuf;

use crate::container::state::ContainerState;
use crate::profile::schema::Phase;
use crate::profile::Mode;
use crate::sys::fs::write_atomic;

/// What can go wrong with the phase file.
#[derive(Debug, thiserror::Error)]
pub enum PhaseFileError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is corrupt ('{text}'); switch the container again ('speaker-ctl switch')")]
    Corrupt { path: String, text: String },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

pub fn path(cid: &str) -> PathBuf {
    ContainerState::dir_of(cid).join("notify-phase")
}

/// The phase and mode the supervisor of `cid` answers in.
pub fn current(cid: &str) -> Result<(Phase, Mode), PhaseFileError> {
    let p = path(cid);
    let text = std::fs::read_to_string(&p).map_err(|error| PhaseFileError::Read { path: p.display().to_string(), error })?;
    parse(&text).ok_or_else(|| PhaseFileError::Corrupt { path: p.display().to_string(), text: text.trim().to_string() })
}

fn parse(text: &str) -> Option<(Phase, Mode)> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    let phase = Phase::ALL.into_iter().find(|p| p.name() == first)?;
    let mode = words.next()?.parse::<Mode>().ok()?;
    Some((phase, mode))
}

/// Sets the phase and mode of `cid`'s supervisor.
pub fn set(cid: &str, phase: Phase, mode: Mode) -> Result<(), PhaseFileError> {
    let p = path(cid);
    write_atomic(&p, format!("{} {}\n", phase.name(), mode.name()).as_bytes())
        .map_err(|error| PhaseFileError::Write { path: p.display().to_string(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lines_parse() {
        assert_eq!(parse("running enforce\n"), Some((Phase::Running, Mode::Enforce)));
        assert_eq!(parse("reload complain"), Some((Phase::Reload, Mode::Complain)));
        assert_eq!(parse("running"), None);
        assert_eq!(parse("later enforce"), None);
    }
}
