//! speaker's own multi-phase profile format (schema `speaker.profile/v1`).
//!
//! One JSON document holds the syscall sets of every phase of one service:
//!
//! ```json
//! {
//!   "schema": "speaker.profile/v1",
//!   "name": "nginx",
//!   "default_action": "SCMP_ACT_ERRNO",
//!   "architectures": ["SCMP_ARCH_X86_64"],
//!   "ready": "port:80",
//!   "phases": {
//!     "boot":     { "syscalls": [ { "name": "mount", "arch": "x86_64", "nr": 165, "count": 1, "first_seen_ms": 12 } ] },
//!     "running":  { "syscalls": [ ... ] },
//!     "shutdown": { "syscalls": [ ... ] }
//!   }
//! }
//! ```
//!
//! * `default_action` is what a syscall outside a phase's set gets:
//!   `SCMP_ACT_ERRNO` (EPERM, the default), `SCMP_ACT_KILL_PROCESS`,
//!   `SCMP_ACT_KILL_THREAD`, `SCMP_ACT_TRAP` or `SCMP_ACT_LOG` (complain mode).
//! * `architectures` lists the ABIs whose syscalls are allowed at all.  Only
//!   `SCMP_ARCH_X86_64` by default: the i386 compat ABI (int 0x80) is denied
//!   unless `SCMP_ARCH_X86` is listed, and then only the syscalls recorded
//!   with `"arch": "x86"` are allowed through it.
//! * Each syscall entry needs `name`; `arch` defaults to `x86_64`; `nr`,
//!   `count` and `first_seen_ms` are informational (written by
//!   `speaker-ctl trace`, ignored when compiling, since the name is resolved
//!   again by libseccomp).
//! * `learned` (optional), per phase, lists what `speaker-ctl profile
//!   learn` added to that phase from production logs (`name`, `arch`,
//!   `count`, `first_seen_unix_ms`, `container`): how often and since when
//!   it was logged (informational: compiling reads the phases only).
//! * `margin` (optional, default `true`): compiled phases also allow the
//!   low-risk set of `profile::margin` (clocks, sleeping, yielding,
//!   returning from signal handlers, the heap, unmapping, exiting);
//!   `false` compiles exactly what was traced.
//! * `ready` (optional) is the readiness condition that ends the boot phase,
//!   in `speaker-ctl trace --ready` syntax; runtimes use it to switch
//!   automatically.
//! * `running` and `shutdown` may be absent; `boot` is required.
//!
//! Each phase lists what the service was seen to do in it (see
//! `speaker-ctl trace` for the counting rule).  When `speaker-ctl run` or
//! `speaker-runtime` compiles a profile, the **boot filter allows boot ∪
//! running** (the service starts serving as soon as it is ready, before the
//! switch to the running filter lands) and the **shutdown filter allows
//! shutdown ∪ running** (the switch lands before SIGTERM, and the service
//! runs its running-phase loop until it notices the signal).  The running
//! filter allows exactly the running set.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `schema` value this version of speaker reads and writes.
pub const SCHEMA_V1: &str = "speaker.profile/v1";

/// The phases of a container's life, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Boot,
    Running,
    Shutdown,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Boot, Phase::Running, Phase::Shutdown];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Boot => "boot",
            Phase::Running => "running",
            Phase::Shutdown => "shutdown",
        }
    }

    /// The phase number used on the speaker.ko ABI.
    pub fn index(self) -> u32 {
        self as u32
    }

    pub fn from_index(i: u32) -> Option<Phase> {
        Phase::ALL.get(i as usize).copied()
    }

    pub fn next(self) -> Option<Phase> {
        Phase::from_index(self.index() + 1)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "boot" => Ok(Phase::Boot),
            "running" => Ok(Phase::Running),
            "shutdown" => Ok(Phase::Shutdown),
            _ => Err(format!("unknown phase '{s}' (expected boot, running or shutdown)")),
        }
    }
}

/// One syscall of a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallEntry {
    pub name: String,
    #[serde(default = "default_arch")]
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_ms: Option<u64>,
}

fn default_arch() -> String {
    "x86_64".to_string()
}

/// The syscalls of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSet {
    pub syscalls: Vec<SyscallEntry>,
}

/// A syscall a container was logged making in a phase (complain mode, or
/// a denial), as learned into its profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    pub name: String,
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Audit records seen (over every `learn` so far).
    pub count: u64,
    /// When it was first logged (milliseconds since the epoch).
    pub first_seen_unix_ms: u64,
    /// The container it was learned from (the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// A multi-phase profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_action")]
    pub default_action: String,
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    pub phases: BTreeMap<Phase, PhaseSet>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub learned: BTreeMap<Phase, Vec<Learned>>,
    /// Whether compiled phases also allow the safety margin
    /// (`profile::margin`; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<bool>,
}

fn default_action() -> String {
    "SCMP_ACT_ERRNO".to_string()
}

fn default_architectures() -> Vec<String> {
    vec!["SCMP_ARCH_X86_64".to_string()]
}

impl Profile {
    /// An empty profile with the defaults.
    pub fn new(name: Option<String>) -> Profile {
        Profile {
            schema: SCHEMA_V1.to_string(),
            name,
            default_action: default_action(),
            architectures: default_architectures(),
            ready: None,
            phases: BTreeMap::new(),
            learned: BTreeMap::new(),
            margin: None,
        }
    }

    pub fn phase(&self, p: Phase) -> Option<&PhaseSet> {
        self.phases.get(&p)
    }
}
