//! How profiles' entries are named when shown and compared: one home for
//! what `diff`, `merge` and the commands share (so `diff` and `merge` do
//! not import each other).
use std::collections::BTreeSet;

use super::arch::Arch;
use super::filter::Action;
use super::schema::{PhaseSet, SyscallEntry};

/// A default action in one spelling (`SCMP_ACT_KILL` and
/// `SCMP_ACT_KILL_THREAD` are the same).
pub fn normalized_action(s: &str) -> String {
    Action::parse(s, None).map_or_else(|| s.to_string(), |a| a.scmp_name().to_string())
}

/// How a syscall entry is shown: `name` on x86_64, `name/ARCH` otherwise.
pub fn entry_label(e: &SyscallEntry) -> String {
    if e.arch == Arch::native().name() {
        e.name.clone()
    } else {
        format!("{}/{}", e.name, e.arch)
    }
}

/// The sorted, distinct labels ([`entry_label`]) of a phase.
pub fn phase_labels(set: &PhaseSet) -> Vec<String> {
    set.syscalls.iter().map(entry_label).collect::<BTreeSet<_>>().into_iter().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::profile::schema::{Phase, PhaseSet, Profile, SyscallEntry};

    pub(crate) fn entry(name: &str, count: u64, first: u64) -> SyscallEntry {
        SyscallEntry { name: name.into(), arch: "x86_64".into(), nr: None, count: Some(count), first_seen_ms: Some(first) }
    }

    pub(crate) fn profile(phase: Phase, entries: Vec<SyscallEntry>) -> Profile {
        let mut p = Profile::new(Some("m".into()));
        p.phases.insert(phase, PhaseSet { syscalls: entries });
        p
    }
}
