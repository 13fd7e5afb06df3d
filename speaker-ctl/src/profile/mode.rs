//! Enforce and complain modes of a phase.
use serde::{Deserialize, Serialize};

use super::filter::{Action, PhaseFilter};

/// How a phase's program treats a syscall outside the phase's set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The profile's `default_action` (EPERM unless it says otherwise).
    #[default]
    Enforce,
    /// `SCMP_ACT_LOG`: allowed, and reported in the kernel log (audit
    /// `type=1326`), so that `speaker-ctl profile learn` can add it.
    Complain,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Complain => "complain",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "complain" => Ok(Mode::Complain),
            _ => Err(format!("unknown mode '{s}' (expected complain or enforce)")),
        }
    }
}

impl Mode {
    /// `filter` in this mode: unchanged when enforcing; when complaining,
    /// the default action (and the bad-architecture action) become
    /// `SCMP_ACT_LOG`, so the phase's own set stays allowed silently and
    /// everything else is allowed and logged.
    pub fn apply(self, filter: &PhaseFilter) -> PhaseFilter {
        let mut f = filter.clone();
        if self == Mode::Complain {
            f.default_action = Action::Log;
            f.rules.retain(|r| r.action != Action::Log || !r.args.is_empty());
        }
        f
    }
}
