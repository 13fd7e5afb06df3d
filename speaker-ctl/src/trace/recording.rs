//! The syscalls observed so far, per phase, and their conversion to a
//! [`Profile`].
use std::collections::HashMap;

use crate::profile::schema::{Phase, PhaseSet, Profile, SyscallEntry};
use crate::profile::Arch;

/// One syscall of one phase.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub count: u64,
    pub first_seen_ms: u64,
}

/// What one phase saw.
#[derive(Debug, Clone, Default)]
pub struct PhaseRec {
    pub entries: HashMap<(Arch, u64), Entry>,
    /// Syscall entries counted in this phase.
    pub calls: u64,
    /// Filter mode: seccomp stops in this phase (unnamed syscalls included).
    pub stops: u64,
    /// When the phase began (ms since the start).
    pub entered_ms: u64,
}

/// The syscalls observed so far.
#[derive(Debug, Default)]
pub struct Recording {
    /// Indexed by [`Phase::index`]; `None` until the phase is entered.
    pub phases: [Option<PhaseRec>; 4],
    /// Bumped whenever a phase gets a syscall it did not have yet.
    pub generation: u64,
    /// Syscall entries whose number no name is known for (not recorded).
    pub unknown_calls: u64,
    /// One of them, for the warning.
    pub unknown_example: Option<(Arch, u64)>,
}

impl Recording {
    /// Marks `phase` as begun at `ms` (no-op if it already is).
    pub fn enter(&mut self, phase: Phase, ms: u64) {
        let slot = &mut self.phases[phase.index() as usize];
        if slot.is_none() {
            *slot = Some(PhaseRec { entered_ms: ms, ..PhaseRec::default() });
            self.generation += 1;
        }
    }

    /// Counts one seccomp stop (filter mode) in `phase`.
    pub fn count_stop(&mut self, phase: Phase, ms: u64) {
        let rec = self.phases[phase.index() as usize].get_or_insert_with(|| PhaseRec { entered_ms: ms, ..PhaseRec::default() });
        rec.stops += 1;
    }

    /// The syscalls `phase` has seen so far, as (ABI, name) pairs.
    pub fn seen(&self, phase: Phase) -> Vec<(Arch, String)> {
        self.phases[phase.index() as usize]
            .as_ref()
            .map(|p| p.entries.iter().map(|(k, e)| (k.0, e.name.clone())).collect())
            .unwrap_or_default()
    }

    /// Counts one syscall entry in `phase`; `name` resolves its name the
    /// first time the phase sees it.
    pub fn record(&mut self, phase: Phase, abi: Arch, nr: u64, ms: u64, name: impl FnOnce() -> Option<String>) {
        let rec = self.phases[phase.index() as usize].get_or_insert_with(|| PhaseRec { entered_ms: ms, ..PhaseRec::default() });
        rec.calls += 1;
        if let Some(e) = rec.entries.get_mut(&(abi, nr)) {
            e.count += 1;
            return;
        }
        match name() {
            Some(name) => {
                rec.entries.insert((abi, nr), Entry { name, count: 1, first_seen_ms: ms });
                self.generation += 1;
            }
            None => {
                rec.calls -= 1;
                self.unknown_calls += 1;
                self.unknown_example.get_or_insert((abi, nr));
            }
        }
    }

    /// Distinct syscalls of `phase` so far.
    pub fn distinct(&self, phase: Phase) -> usize {
        self.phases[phase.index() as usize].as_ref().map_or(0, |p| p.entries.len())
    }

    /// Distinct (abi, nr) pairs over all phases.
    pub fn distinct_total(&self) -> usize {
        let mut all: Vec<(Arch, u64)> = self.phases.iter().flatten().flat_map(|p| p.entries.keys().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    /// The profile of everything recorded so far: the phases begun, each
    /// with its syscalls sorted by ABI then name.
    pub fn to_profile(&self, name: Option<String>, ready: Option<String>) -> Profile {
        let mut p = Profile::new(name);
        p.ready = ready;
        let mut others: Vec<Arch> = Vec::new();
        for phase in Phase::ALL {
            let Some(rec) = &self.phases[phase.index() as usize] else {
                continue;
            };
            let mut list: Vec<(&(Arch, u64), &Entry)> = rec.entries.iter().collect();
            list.sort_by(|a, b| (a.0 .0, &a.1.name).cmp(&(b.0 .0, &b.1.name)));
            let syscalls = list
                .into_iter()
                .map(|((abi, nr), e)| {
                    if *abi != Arch::native() && !others.contains(abi) {
                        others.push(*abi);
                    }
                    SyscallEntry {
                        name: e.name.clone(),
                        arch: abi.name().to_string(),
                        nr: Some(*nr as i32),
                        count: Some(e.count),
                        first_seen_ms: Some(e.first_seen_ms),
                    }
                })
                .collect();
            p.phases.insert(phase, PhaseSet { syscalls });
        }
        // The ABIs seen besides the native one (i386 and x32 on x86_64,
        // 32-bit ARM on arm64) must be allowed at all.
        others.sort();
        for a in others {
            p.architectures.push(a.scmp_name().to_string());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_profile() {
        let mut r = Recording::default();
        r.enter(Phase::Boot, 0);
        r.record(Phase::Boot, Arch::X86_64, 59, 1, || Some("execve".into()));
        r.record(Phase::Boot, Arch::X86_64, 59, 2, || unreachable!());
        r.record(Phase::Boot, Arch::X86, 20, 3, || Some("getpid".into()));
        r.record(Phase::Boot, Arch::X86_64, 9999, 3, || None);
        r.enter(Phase::Running, 5);
        r.record(Phase::Running, Arch::X86_64, 0, 6, || Some("read".into()));
        assert_eq!(r.distinct(Phase::Boot), 2);
        assert_eq!(r.distinct_total(), 3);
        assert_eq!(r.unknown_calls, 1);
        let p = r.to_profile(Some("x".into()), Some("auto".into()));
        assert_eq!(p.phases.len(), 2);
        let boot = &p.phases[&Phase::Boot].syscalls;
        assert_eq!(boot[0].name, "execve");
        assert_eq!(boot[0].count, Some(2));
        assert_eq!(boot[0].first_seen_ms, Some(1));
        assert_eq!(boot[1].arch, "x86");
        assert!(p.architectures.contains(&"SCMP_ARCH_X86".to_string()));
    }
}
