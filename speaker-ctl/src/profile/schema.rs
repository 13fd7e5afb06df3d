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
//!   the host's native ABI by default (`SCMP_ARCH_X86_64`; `SCMP_ARCH_AARCH64`
//!   on arm64): the i386 compat ABI (int 0x80) is denied unless
//!   `SCMP_ARCH_X86` is listed (32-bit ARM: `SCMP_ARCH_ARM`), and then only
//!   the syscalls recorded with `"arch": "x86"` (`"arm"`) are allowed through it.
//! * Each syscall entry needs `name`; `arch` defaults to the host's native
//!   ABI (`x86_64` or `aarch64`); `nr`,
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
//! * `compile` (optional, `"balanced"` by default, or `"strict"`): how the
//!   phases are compiled (see `profile::policy`): `strict` allows what was
//!   traced (and the margin), `balanced` also the low-risk members of the
//!   syscall families each phase used and the low-risk syscalls boot used
//!   (`profile::risk`).  Not the enforce/complain mode of a container.
//! * `allow`, `deny` (optional lists of x86_64 syscall names): what the
//!   operator decided, for every phase: `allow` adds a syscall
//!   unconditionally (e.g. `mprotect` for a JIT), `deny` removes it (even
//!   if traced).  `--allow`/`--deny` on the command line win over them.
//! * `ready` (optional) is the readiness condition that ends the boot phase,
//!   in `speaker-ctl trace --ready` syntax; runtimes use it to switch
//!   automatically.
//! * `running`, `reload` and `shutdown` may be absent; `boot` is required.
//! * `reload` (optional, beside `phases`) says which signals make the
//!   service re-run part of its boot (`{"signals": ["SIGHUP"], "ready":
//!   "auto"}`) and when that reload is over (`ready`, default `auto`: a
//!   service keeps listening through a reload, so `port:` would hold at
//!   once).  `phases.reload` is what `speaker-ctl trace --reload-signal`
//!   saw between such a signal and that readiness.
//!
//! Each phase lists what the service was seen to do in it (see
//! `speaker-ctl trace` for the counting rule).  When `speaker-ctl run` or
//! `speaker-runtime` compiles a profile, the **boot filter allows boot ∪
//! running** (the service starts serving as soon as it is ready, before the
//! switch to the running filter lands) and the **shutdown filter allows
//! shutdown ∪ running** (the switch lands before SIGTERM, and the service
//! runs its running-phase loop until it notices the signal).  The running
//! filter allows the running set (in `balanced` mode, with its low-risk
//! family members and the low-risk syscalls boot used: `profile::policy`).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use super::policy::CompileMode;

/// The `schema` value this version of speaker reads and writes.
pub const SCHEMA_V1: &str = "speaker.profile/v1";

/// The phases of a container's life: boot → running ⇄ reload → shutdown
/// (ordered so: a reload comes after running and before shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Boot,
    Running,
    Reload,
    Shutdown,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Boot, Phase::Running, Phase::Reload, Phase::Shutdown];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Boot => "boot",
            Phase::Running => "running",
            Phase::Reload => "reload",
            Phase::Shutdown => "shutdown",
        }
    }

    /// The phase number used on the speaker.ko ABI (and to index
    /// per-phase arrays): boot 0, running 1, shutdown 2 as ever, reload 3.
    pub fn index(self) -> u32 {
        match self {
            Phase::Boot => 0,
            Phase::Running => 1,
            Phase::Shutdown => 2,
            Phase::Reload => 3,
        }
    }

    pub fn from_index(i: u32) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.index() == i)
    }

    /// The phase a container goes to next when nothing else is asked:
    /// boot → running → shutdown; a reload goes back to running.
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::Boot => Some(Phase::Running),
            Phase::Running => Some(Phase::Shutdown),
            Phase::Reload => Some(Phase::Running),
            Phase::Shutdown => None,
        }
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
            "reload" => Ok(Phase::Reload),
            "shutdown" => Ok(Phase::Shutdown),
            _ => Err(format!("unknown phase '{s}' (expected boot, running, reload or shutdown)")),
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

/// The host's native ABI (`x86_64`, or `aarch64` for speaker-ctl built for arm64).
fn default_arch() -> String {
    crate::profile::Arch::native().name().to_string()
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

/// How a service reloads (the profile's `reload`): the signals that make
/// it re-run part of its boot, and when the reload is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    /// Signal names (`SIGHUP`, `HUP`, `USR2`) or numbers.
    pub signals: Vec<String>,
    /// Readiness condition after the signal (`auto`, `cmd:'...'`,
    /// `port:N`); default `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
}

/// The readiness condition of a reload when the profile names none.
pub const RELOAD_READY_DEFAULT: &str = "auto";

impl Reload {
    /// The readiness condition after a reload.
    pub fn ready(&self) -> &str {
        self.ready.as_deref().unwrap_or(RELOAD_READY_DEFAULT)
    }
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
    /// Which signals reload the service (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Reload>,
    /// How the phases are compiled (default balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileMode>,
    /// Syscalls every phase allows, whatever was traced (operator's decision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Syscalls no phase allows, whatever was traced (operator's decision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

fn default_action() -> String {
    "SCMP_ACT_ERRNO".to_string()
}

/// The host's native ABI (`SCMP_ARCH_X86_64`, or `SCMP_ARCH_AARCH64` for
/// speaker-ctl built for arm64).
fn default_architectures() -> Vec<String> {
    vec![crate::profile::Arch::native().scmp_name().to_string()]
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
            reload: None,
            compile: None,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }

    pub fn phase(&self, p: Phase) -> Option<&PhaseSet> {
        self.phases.get(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_keeps_the_abi_numbers_and_orders_before_shutdown() {
        assert_eq!([Phase::Boot, Phase::Running, Phase::Shutdown].map(Phase::index), [0, 1, 2]);
        assert_eq!(Phase::from_index(3), Some(Phase::Reload));
        assert!(Phase::Running < Phase::Reload && Phase::Reload < Phase::Shutdown);
        assert_eq!(Phase::Running.next(), Some(Phase::Shutdown));
        assert_eq!(Phase::Reload.next(), Some(Phase::Running));
        assert_eq!("reload".parse::<Phase>(), Ok(Phase::Reload));
    }

    #[test]
    fn old_profiles_stay_valid_and_reload_round_trips() {
        let old = r#"{"schema":"speaker.profile/v1","phases":{"boot":{"syscalls":[{"name":"read"}]}}}"#;
        let p: Profile = serde_json::from_str(old).unwrap();
        assert!(p.reload.is_none());
        assert!(!serde_json::to_string(&p).unwrap().contains("reload"));
        let new = r#"{"schema":"speaker.profile/v1","reload":{"signals":["SIGHUP"]},
            "phases":{"boot":{"syscalls":[]},"reload":{"syscalls":[{"name":"clone"}]}}}"#;
        let p: Profile = serde_json::from_str(new).unwrap();
        assert_eq!(p.reload.as_ref().unwrap().ready(), "auto");
        assert_eq!(p.phase(Phase::Reload).unwrap().syscalls[0].name, "clone");
    }

    #[test]
    fn compile_allow_and_deny_are_optional_and_round_trip() {
        let old = r#"{"schema":"speaker.profile/v1","phases":{"boot":{"syscalls":[{"name":"read"}]}}}"#;
        let p: Profile = serde_json::from_str(old).unwrap();
        assert_eq!((p.compile, p.allow.len(), p.deny.len()), (None, 0, 0));
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("compile") && !text.contains("allow") && !text.contains("deny"), "{text}");
        let new = r#"{"schema":"speaker.profile/v1","compile":"strict","allow":["mprotect"],"deny":["ptrace"],
            "phases":{"boot":{"syscalls":[]}}}"#;
        let p: Profile = serde_json::from_str(new).unwrap();
        assert_eq!(p.compile, Some(CompileMode::Strict));
        assert_eq!((p.allow.as_slice(), p.deny.as_slice()), (&["mprotect".to_string()][..], &["ptrace".to_string()][..]));
        let back: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<Profile>(&new.replace("strict", "loose")).is_err());
    }
}
