//! Learning: adding what a container was logged doing in production (its
//! filter's audit records, attributed to phases) to its profile.
use std::collections::BTreeMap;

use super::schema::{Learned, Phase, Profile, SyscallEntry};

/// One syscall seen in one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub phase: Phase,
    pub name: String,
    pub arch: String,
    pub count: u64,
    pub first_seen_unix_ms: u64,
    pub container: Option<String>,
}

/// Groups `(phase, name, arch, time)` sightings into observations.
pub fn observations(sightings: impl IntoIterator<Item = (Phase, String, String, u64)>, container: Option<&str>) -> Vec<Observation> {
    let mut by: BTreeMap<(Phase, String, String), Observation> = BTreeMap::new();
    for (phase, name, arch, at) in sightings {
        let o = by.entry((phase, name.clone(), arch.clone())).or_insert_with(|| Observation {
            phase,
            name,
            arch,
            count: 0,
            first_seen_unix_ms: at,
            container: container.map(str::to_string),
        });
        o.count += 1;
        o.first_seen_unix_ms = o.first_seen_unix_ms.min(at);
    }
    by.into_values().collect()
}

/// `base` with every observation added to its phase's set (a phase the
/// profile lacks is created) and recorded in the phase's `learned` list
/// (counts add up, the first sighting is kept).
pub fn learn(base: &Profile, obs: &[Observation]) -> Profile {
    let mut p = base.clone();
    for o in obs {
        let set = p.phases.entry(o.phase).or_default();
        if !set.syscalls.iter().any(|e| e.name == o.name && e.arch == o.arch) {
            set.syscalls.push(SyscallEntry {
                name: o.name.clone(),
                arch: o.arch.clone(),
                nr: None,
                count: Some(o.count),
                first_seen_ms: None,
            });
        }
        match p.learned.entry(o.phase).or_default().iter_mut().find(|l| l.name == o.name && l.arch == o.arch) {
            Some(l) => {
                l.count += o.count;
                l.first_seen_unix_ms = l.first_seen_unix_ms.min(o.first_seen_unix_ms);
            }
            None => p.learned.entry(o.phase).or_default().push(Learned {
                name: o.name.clone(),
                arch: o.arch.clone(),
                count: o.count,
                first_seen_unix_ms: o.first_seen_unix_ms,
                container: o.container.clone(),
            }),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::labels::tests::profile;

    #[test]
    fn learn_adds_to_the_right_phase_and_counts() {
        let base = profile(Phase::Running, vec![]);
        let s = |phase, name: &str, at| (phase, name.to_string(), "x86_64".to_string(), at);
        let obs =
            observations([s(Phase::Running, "sysinfo", 20), s(Phase::Running, "sysinfo", 10), s(Phase::Shutdown, "fsync", 30)], Some("c1"));
        assert_eq!(obs.len(), 2);
        let p = learn(&base, &obs);
        let running = p.phase(Phase::Running).unwrap();
        assert!(running.syscalls.iter().any(|e| e.name == "sysinfo"));
        assert_eq!((p.learned[&Phase::Running][0].count, p.learned[&Phase::Running][0].first_seen_unix_ms), (2, 10));
        assert!(p.phase(Phase::Shutdown).unwrap().syscalls.iter().any(|e| e.name == "fsync"));
        assert!(p.phase(Phase::Boot).is_none());
        let again = learn(&p, &obs);
        let running = again.phase(Phase::Running).unwrap();
        assert_eq!(running.syscalls.iter().filter(|e| e.name == "sysinfo").count(), 1);
        assert_eq!(again.learned[&Phase::Running][0].count, 4);
    }
}
