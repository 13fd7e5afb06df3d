//! Comparing two profiles phase by phase, and how syscall entries are shown.
use std::collections::BTreeSet;

use super::labels::normalized_action;
pub use super::labels::{entry_label, phase_labels};
use super::schema::{Phase, PhaseSet, Profile};

/// The difference of one phase between two profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseDiff {
    pub phase: Phase,
    pub in_a: bool,
    pub in_b: bool,
    /// Labels ([`entry_label`]) only in A, sorted.
    pub only_a: Vec<String>,
    /// Labels only in B, sorted.
    pub only_b: Vec<String>,
}

impl PhaseDiff {
    pub fn is_empty(&self) -> bool {
        self.in_a == self.in_b && self.only_a.is_empty() && self.only_b.is_empty()
    }
}

/// The differences between two profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDiff {
    /// `(a, b)` when the default actions differ.
    pub default_action: Option<(String, String)>,
    /// `(a, b)` when the architectures differ (as sets).
    pub architectures: Option<(Vec<String>, Vec<String>)>,
    /// Every phase present in A or B, in order.
    pub phases: Vec<PhaseDiff>,
}

impl ProfileDiff {
    pub fn is_empty(&self) -> bool {
        self.default_action.is_none() && self.architectures.is_none() && self.phases.iter().all(PhaseDiff::is_empty)
    }
}

/// Compares two profiles phase by phase.
pub fn diff(a: &Profile, b: &Profile) -> ProfileDiff {
    let default_action = (normalized_action(&a.default_action) != normalized_action(&b.default_action))
        .then(|| (a.default_action.clone(), b.default_action.clone()));
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    let architectures = (set(&a.architectures) != set(&b.architectures)).then(|| (a.architectures.clone(), b.architectures.clone()));
    let empty = PhaseSet::default();
    let phases = Phase::ALL
        .into_iter()
        .filter(|p| a.phases.contains_key(p) || b.phases.contains_key(p))
        .map(|phase| {
            let la: BTreeSet<String> = phase_labels(a.phase(phase).unwrap_or(&empty)).into_iter().collect();
            let lb: BTreeSet<String> = phase_labels(b.phase(phase).unwrap_or(&empty)).into_iter().collect();
            PhaseDiff {
                phase,
                in_a: a.phases.contains_key(&phase),
                in_b: b.phases.contains_key(&phase),
                only_a: la.difference(&lb).cloned().collect(),
                only_b: lb.difference(&la).cloned().collect(),
            }
        })
        .collect();
    ProfileDiff { default_action, architectures, phases }
}

/// `d` as `profile diff` prints it.
pub fn render(a: &str, b: &str, d: &ProfileDiff) -> String {
    let mut out = String::new();
    out.push_str(&format!("--- {a}\n+++ {b}\n"));
    if let Some((x, y)) = &d.default_action {
        out.push_str(&format!("default_action: {x} vs {y}\n"));
    }
    if let Some((x, y)) = &d.architectures {
        out.push_str(&format!("architectures: [{}] vs [{}]\n", x.join(", "), y.join(", ")));
    }
    for p in d.phases.iter().filter(|p| !p.is_empty()) {
        let presence = match (p.in_a, p.in_b) {
            (true, false) => " (only in A)",
            (false, true) => " (only in B)",
            _ => "",
        };
        out.push_str(&format!("@@ {}{presence}: {} only in A, {} only in B @@\n", p.phase, p.only_a.len(), p.only_b.len()));
        for n in &p.only_a {
            out.push_str(&format!("-{n}\n"));
        }
        for n in &p.only_b {
            out.push_str(&format!("+{n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::labels::tests::{entry, profile};

    #[test]
    fn diff_phases() {
        let a = profile(Phase::Boot, vec![entry("read", 1, 1), entry("mount", 1, 1)]);
        let b = profile(Phase::Boot, vec![entry("read", 9, 9), entry("write", 1, 1)]);
        assert!(diff(&a, &a.clone()).is_empty());
        let d = diff(&a, &b);
        assert!(!d.is_empty());
        assert_eq!(d.phases[0].only_a, vec!["mount".to_string()]);
        assert_eq!(d.phases[0].only_b, vec!["write".to_string()]);
    }
}
