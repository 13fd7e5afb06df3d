//! Merging recordings of one service: the per-phase union.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::ProfileError;
use super::labels::{normalized_action, phase_labels};
use super::schema::{Phase, Profile};

/// Merges recordings (each with the file it came from, for errors): the
/// per-phase union of the syscalls. An entry seen in several inputs gets
/// the sum of the counts and the smallest `first_seen_ms`. The inputs must
/// have the same `default_action`; `architectures` are united; `name` and
/// `ready` come from the first input that has them.
pub fn merge(inputs: &[(PathBuf, Profile)]) -> Result<Profile, ProfileError> {
    let Some((path_a, first)) = inputs.first() else {
        return Ok(Profile::new(None));
    };
    let mut out = first.clone();
    let mut index: BTreeMap<Phase, BTreeMap<(String, String), usize>> = BTreeMap::new();
    for (phase, set) in &out.phases {
        let idx = index.entry(*phase).or_default();
        for (i, e) in set.syscalls.iter().enumerate() {
            idx.entry((e.name.clone(), e.arch.clone())).or_insert(i);
        }
    }
    for (path_b, p) in &inputs[1..] {
        let (a, b) = (normalized_action(&out.default_action), normalized_action(&p.default_action));
        if a != b {
            return Err(ProfileError::MergeMismatch {
                path_a: path_a.clone(),
                path_b: path_b.clone(),
                field: "default_action",
                a: out.default_action.clone(),
                b: p.default_action.clone(),
            });
        }
        for arch in &p.architectures {
            if !out.architectures.contains(arch) {
                out.architectures.push(arch.clone());
            }
        }
        if out.name.is_none() {
            out.name.clone_from(&p.name);
        }
        if out.ready.is_none() {
            out.ready.clone_from(&p.ready);
        }
        if out.compile.is_none() {
            out.compile = p.compile;
        }
        for (mine, theirs) in [(&mut out.allow, &p.allow), (&mut out.deny, &p.deny)] {
            for n in theirs {
                if !mine.contains(n) {
                    mine.push(n.clone());
                }
            }
        }
        match (&mut out.reload, &p.reload) {
            (None, Some(r)) => out.reload = Some(r.clone()),
            (Some(o), Some(r)) => {
                // One entry per signal, whatever its spelling (HUP, SIGHUP, 1).
                let number = |s: &String| super::validate::reload_signal(s).ok();
                for s in &r.signals {
                    if !o.signals.iter().any(|mine| mine == s || (number(mine).is_some() && number(mine) == number(s))) {
                        o.signals.push(s.clone());
                    }
                }
                if o.ready.is_none() {
                    o.ready.clone_from(&r.ready);
                }
            }
            _ => {}
        }
        for (phase, set) in &p.phases {
            let target = out.phases.entry(*phase).or_default();
            let idx = index.entry(*phase).or_default();
            for e in &set.syscalls {
                match idx.get(&(e.name.clone(), e.arch.clone())) {
                    Some(&i) => {
                        let t = &mut target.syscalls[i];
                        t.count = match (t.count, e.count) {
                            (Some(x), Some(y)) => Some(x.saturating_add(y)),
                            (x, y) => x.or(y),
                        };
                        t.first_seen_ms = match (t.first_seen_ms, e.first_seen_ms) {
                            (Some(x), Some(y)) => Some(x.min(y)),
                            (x, y) => x.or(y),
                        };
                        t.nr = t.nr.or(e.nr);
                    }
                    None => {
                        idx.insert((e.name.clone(), e.arch.clone()), target.syscalls.len());
                        target.syscalls.push(e.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// What one input of a merge added: per phase, the syscalls (`name`, or
/// `arch:name` for other ABIs) no earlier input had in that phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub input: PathBuf,
    pub added: BTreeMap<Phase, Vec<String>>,
}

/// For each input in order, what it added to each phase of the merge (the
/// first input adds everything it has): which workload made a profile
/// need what.
pub fn contributions(inputs: &[(PathBuf, Profile)]) -> Vec<Contribution> {
    let mut seen: BTreeMap<Phase, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (path, p) in inputs {
        let mut added = BTreeMap::new();
        for (phase, set) in &p.phases {
            let have = seen.entry(*phase).or_default();
            let mut new: Vec<String> = phase_labels(set).into_iter().filter(|l| have.insert(l.clone())).collect();
            new.sort();
            added.insert(*phase, new);
        }
        out.push(Contribution { input: path.clone(), added });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    pub(crate) use crate::profile::labels::tests::{entry, profile};
    use crate::profile::schema::{Phase, PhaseSet};

    #[test]
    fn merge_sums_and_mins() {
        let a = profile(Phase::Boot, vec![entry("read", 2, 10), entry("mount", 1, 5)]);
        let mut b = profile(Phase::Boot, vec![entry("read", 3, 4), entry("write", 1, 7)]);
        b.phases.insert(Phase::Running, PhaseSet { syscalls: vec![entry("read", 1, 100)] });
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        let boot = &m.phases[&Phase::Boot].syscalls;
        assert_eq!(boot.len(), 3);
        assert_eq!((boot[0].count, boot[0].first_seen_ms), (Some(5), Some(4)));
        assert_eq!(m.phases[&Phase::Running].syscalls.len(), 1);
        b.default_action = "SCMP_ACT_KILL_PROCESS".into();
        let e = merge(&[("a.json".into(), a), ("b.json".into(), b)]).unwrap_err().to_string();
        assert!(e.contains("a.json") && e.contains("b.json") && e.contains("default_action"), "{e}");
    }

    #[test]
    fn contributions_say_what_each_input_added() {
        let a = profile(Phase::Boot, vec![entry("read", 2, 10)]);
        let mut b = profile(Phase::Boot, vec![entry("read", 3, 4), entry("write", 1, 7)]);
        b.phases.insert(Phase::Reload, PhaseSet { syscalls: vec![entry("clone", 1, 100)] });
        b.reload = Some(crate::profile::schema::Reload { signals: vec!["SIGHUP".into()], ready: None });
        let c = contributions(&[("a".into(), a.clone()), ("b".into(), b.clone())]);
        assert_eq!(c[0].added[&Phase::Boot], ["read"]);
        assert_eq!(c[1].added[&Phase::Boot], ["write"]);
        assert_eq!(c[1].added[&Phase::Reload], ["clone"]);
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.reload.unwrap().signals, ["SIGHUP"]);
    }
}
