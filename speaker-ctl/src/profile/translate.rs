//! Translating one phase of a speaker profile into a [`PhaseFilter`]: one
//! allow rule per syscall entry, checked against libseccomp's tables.
use std::collections::BTreeSet;
use std::path::Path;

use super::arch::Arch;
use super::error::ProfileError;
use super::filter::{Action, PhaseFilter, Rule};
use super::schema::{Phase, Profile};

/// The filter of phase `phase` of a speaker profile built in memory (errors
/// name it `<profile NAME>`). See [`phase_filter_at`] for the rules.
pub fn phase_filter(profile: &Profile, phase: Phase) -> Result<PhaseFilter, ProfileError> {
    let origin = format!("<profile {}>", profile.name.as_deref().unwrap_or("unnamed"));
    phase_filter_at(profile, phase, Path::new(&origin))
}

/// The filter of phase `phase` of `profile`, read from `origin` (for error
/// messages): default action `profile.default_action`, the ABIs of
/// `profile.architectures`, and one allow rule per syscall entry of the
/// phase, for the entry's `arch` (which `architectures` must list).
pub fn phase_filter_at(profile: &Profile, phase: Phase, origin: &Path) -> Result<PhaseFilter, ProfileError> {
    let default_action = Action::parse(&profile.default_action, None).ok_or_else(|| ProfileError::UnknownAction {
        path: origin.to_path_buf(),
        what: "default_action".to_string(),
        action: profile.default_action.clone(),
    })?;
    let mut arches = Vec::new();
    for a in &profile.architectures {
        let arch = Arch::from_scmp_name(a).ok_or_else(|| ProfileError::UnknownArch { path: origin.to_path_buf(), arch: a.clone() })?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    if arches.is_empty() {
        arches.push(Arch::native());
    }
    let set = profile.phase(phase).ok_or_else(|| ProfileError::MissingPhase { path: origin.to_path_buf(), phase })?;
    let mut rules: Vec<Rule> = Vec::with_capacity(set.syscalls.len());
    let mut seen = BTreeSet::new();
    for entry in &set.syscalls {
        let arch = Arch::from_name(&entry.arch).ok_or_else(|| ProfileError::UnknownEntryArch {
            path: origin.to_path_buf(),
            phase,
            name: entry.name.clone(),
            arch: entry.arch.clone(),
        })?;
        if !arches.contains(&arch) {
            return Err(ProfileError::ArchNotListed {
                path: origin.to_path_buf(),
                phase,
                name: entry.name.clone(),
                arch: entry.arch.clone(),
                scmp_arch: arch.scmp_name(),
            });
        }
        if arch.resolve(&entry.name).is_none() {
            return Err(ProfileError::UnknownSyscall {
                path: origin.to_path_buf(),
                phase,
                name: entry.name.clone(),
                arch: entry.arch.clone(),
            });
        }
        if seen.insert((arch, entry.name.as_str())) {
            rules.push(Rule { name: entry.name.clone(), arch, action: Action::Allow, args: Vec::new() });
        }
    }
    Ok(PhaseFilter { default_action, arches, rules, unresolved: Vec::new() })
}

/// Number of distinct syscalls the filter lets run (`Allow` or `Log` rules,
/// with or without argument conditions) on the native ABI.
pub fn allowed_count(filter: &PhaseFilter) -> usize {
    filter.rules.iter().filter(|r| r.arch == Arch::native() && r.action.allows()).map(|r| r.name.as_str()).collect::<BTreeSet<_>>().len()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::schema::{PhaseSet, SyscallEntry};

    fn entry(name: &str, arch: &str) -> SyscallEntry {
        SyscallEntry { name: name.to_string(), arch: arch.to_string(), nr: None, count: None, first_seen_ms: None }
    }

    pub(crate) fn profile(names: &[(&str, &str)]) -> Profile {
        let mut p = Profile::new(Some("t".into()));
        p.phases.insert(Phase::Boot, PhaseSet { syscalls: names.iter().map(|(n, a)| entry(n, a)).collect() });
        p
    }

    #[test]
    fn phase_filter_rules_and_count() {
        let p = profile(&[("read", "x86_64"), ("write", "x86_64"), ("read", "x86_64")]);
        let f = phase_filter(&p, Phase::Boot).unwrap();
        assert_eq!(f.default_action, Action::Errno(1));
        assert_eq!(f.arches, vec![Arch::X86_64]);
        assert_eq!(f.rules.len(), 2);
        assert_eq!(allowed_count(&f), 2);
    }

    #[test]
    fn phase_filter_errors() {
        let p = profile(&[("no_such_syscall", "x86_64")]);
        let e = phase_filter(&p, Phase::Boot).unwrap_err().to_string();
        assert!(e.contains("no_such_syscall") && e.contains("<profile t>"), "{e}");
        // socketcall exists on i386 only.
        let p = profile(&[("socketcall", "x86_64")]);
        assert!(matches!(phase_filter(&p, Phase::Boot), Err(ProfileError::UnknownSyscall { .. })));
        let p = profile(&[("read", "x86")]);
        let e = phase_filter(&p, Phase::Boot).unwrap_err();
        assert!(matches!(e, ProfileError::ArchNotListed { .. }), "{e}");
        assert!(e.to_string().contains("SCMP_ARCH_X86"), "{e}");
        let e = phase_filter(&p, Phase::Running).unwrap_err();
        assert!(matches!(e, ProfileError::MissingPhase { .. }), "{e}");
        let mut p = profile(&[("read", "x86_64")]);
        p.default_action = "SCMP_ACT_BOGUS".into();
        assert!(matches!(phase_filter(&p, Phase::Boot), Err(ProfileError::UnknownAction { .. })));
    }
}
