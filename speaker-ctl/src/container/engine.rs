//! Which engine enforces a container's phases:
//!
//! - **kmod**: speaker.ko swaps the BPF program of the container's filter at
//!   every switch (`/dev/speaker`); needs a kernel with Rust and the module.
//! - **notify**: one filter, installed at start and never changed, lets the
//!   running phase's syscalls through in the kernel and asks a supervisor
//!   outside the container (seccomp user notification) about every other
//!   one; a switch changes the supervisor's phase (see [`super::notify`]).
//!   Needs only a stock kernel (5.10 or later).
use serde::{Deserialize, Serialize};

use crate::device::Device;

/// The engine of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Kmod,
    Notify,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Kmod => "kmod",
            Engine::Notify => "notify",
        }
    }

    /// What this engine cannot do, one line each (`status` prints them).
    pub fn limits(self) -> &'static [&'static str] {
        match self {
            Engine::Kmod => &[],
            Engine::Notify => &NOTIFY_LIMITS,
        }
    }
}

/// The notify engine's limits (also in docs/src/notify.md and the README).
pub const NOTIFY_LIMITS: [&str; 3] = [
    "shutdown cannot deny what running allows (the filter is fixed at start; only speaker.ko can tighten it)",
    "the supervisor (the container's monitor) must live: if it dies, every syscall the running phase does not allow fails with ENOSYS (fail-closed)",
    "each syscall outside the running set (boot, reload, shutdown, denials) costs a round trip to the supervisor",
];

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for (`--engine`, annotation `io.speaker.engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// speaker.ko when /dev/speaker works, else notify.
    #[default]
    Auto,
    Kmod,
    Notify,
}

/// Why an engine cannot be chosen.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown engine '{0}' (expected auto, kmod or notify)")]
    Unknown(String),
    #[error("engine kmod needs speaker.ko: {0:#}; load it (insmod speaker.ko) or use the notify engine")]
    NoModule(anyhow::Error),
}

impl std::str::FromStr for EngineChoice {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "auto" => Ok(EngineChoice::Auto),
            "kmod" => Ok(EngineChoice::Kmod),
            "notify" => Ok(EngineChoice::Notify),
            _ => Err(EngineError::Unknown(s.to_string())),
        }
    }
}

impl EngineChoice {
    /// The engine to use on this machine: `auto` is kmod when
    /// /dev/speaker opens (module loaded, same ABI), else notify.
    pub fn resolve(self) -> Result<Engine, EngineError> {
        self.resolve_with(|| Device::open().map(drop).map_err(anyhow::Error::from))
    }

    /// [`EngineChoice::resolve`] with `probe` telling whether speaker.ko works.
    pub fn resolve_with(self, probe: impl FnOnce() -> anyhow::Result<()>) -> Result<Engine, EngineError> {
        match self {
            EngineChoice::Notify => Ok(Engine::Notify),
            EngineChoice::Kmod => probe().map(|_| Engine::Kmod).map_err(EngineError::NoModule),
            EngineChoice::Auto => Ok(if probe().is_ok() { Engine::Kmod } else { Engine::Notify }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_kmod_only_when_the_module_works() {
        assert_eq!(EngineChoice::Auto.resolve_with(|| Ok(())).unwrap(), Engine::Kmod);
        assert_eq!(EngineChoice::Auto.resolve_with(|| anyhow::bail!("no /dev/speaker")).unwrap(), Engine::Notify);
        assert_eq!(EngineChoice::Notify.resolve_with(|| Ok(())).unwrap(), Engine::Notify);
        let e = EngineChoice::Kmod.resolve_with(|| anyhow::bail!("speaker.ko is not loaded")).unwrap_err();
        assert!(e.to_string().contains("engine kmod needs speaker.ko: speaker.ko is not loaded"), "{e}");
        assert!("modular".parse::<EngineChoice>().unwrap_err().to_string().contains("unknown engine 'modular'"));
        assert_eq!(serde_json::to_string(&Engine::Notify).unwrap(), "\"notify\"");
    }
}
