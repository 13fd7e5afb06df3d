//! The notify engine's decision table: per phase, which syscalls the
//! supervisor lets run (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`), and the errno
//! of everything else.  Pure data, saved with the container's state
//! (`notify-policy.json`) and loaded by its supervisor.
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::profile::schema::Phase;
use crate::profile::{Action, ArgCmp, Mode, PhaseFilter};

/// One allowed syscall of a phase: ABI (`AUDIT_ARCH_*`, as in
/// `seccomp_data.arch`), number (x32 numbers keep their bit) and the
/// conditions on its register arguments (none: always).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRule {
    pub arch: u32,
    pub nr: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCmp>,
}

/// What the supervisor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The phase allows it: the syscall runs.
    Continue,
    /// Not allowed, complain mode: it runs, and is recorded.
    Complain,
    /// Not allowed: fails with this errno, and is recorded.
    Deny(u16),
}

impl Verdict {
    /// Whether a denial record is kept.
    pub fn recorded(self) -> bool {
        !matches!(self, Verdict::Continue)
    }

    /// The `SECCOMP_RET_*` value a kernel filter would have returned (for
    /// the denial record, as in seccomp's audit records).
    pub fn ret_code(self) -> u32 {
        match self {
            Verdict::Continue => 0x7fff_0000,
            Verdict::Complain => 0x7ffc_0000,
            Verdict::Deny(e) => 0x0005_0000 | u32::from(e),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRules {
    pub phase: Phase,
    pub rules: Vec<NotifyRule>,
}

/// Every phase's rules and the errno of a denial.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyPolicy {
    /// The profile's default action as an errno (a kill or trap default is
    /// answered with EPERM: a supervisor can only fail a syscall).
    pub errno: u16,
    pub phases: Vec<PhaseRules>,
    #[serde(skip)]
    index: HashMap<(Phase, u32, u32), Vec<Vec<ArgCmp>>>,
}

impl NotifyPolicy {
    /// The table of `filters` (each phase's filter as the kmod engine
    /// would install it).
    pub fn from_filters(filters: &[(Phase, PhaseFilter)]) -> NotifyPolicy {
        let errno = filters
            .iter()
            .find_map(|(_, f)| match f.default_action {
                Action::Errno(e) => Some(e),
                _ => None,
            })
            .unwrap_or(libc::EPERM as u16);
        let phases = filters
            .iter()
            .map(|(phase, f)| PhaseRules {
                phase: *phase,
                rules: f
                    .rules
                    .iter()
                    .filter(|r| r.action.allows())
                    .filter_map(|r| {
                        let nr = r.arch.resolve(&r.name)?;
                        Some(NotifyRule { arch: r.arch.audit_arch(), nr: nr as u32, args: r.args.clone() })
                    })
                    .collect(),
            })
            .collect();
        NotifyPolicy { errno, phases, index: HashMap::new() }.indexed()
    }

    /// Builds the lookup index (after deserialising).
    pub fn indexed(mut self) -> NotifyPolicy {
        let mut index: HashMap<(Phase, u32, u32), Vec<Vec<ArgCmp>>> = HashMap::new();
        for p in &self.phases {
            for r in &p.rules {
                index.entry((p.phase, r.arch, r.nr)).or_default().push(r.args.clone());
            }
        }
        self.index = index;
        self
    }

    /// Whether phase `phase` allows syscall `nr` of ABI `arch` with
    /// register arguments `args`.
    pub fn allows(&self, phase: Phase, arch: u32, nr: u32, args: &[u64; 6]) -> bool {
        self.index.get(&(phase, arch, nr)).is_some_and(|alts| alts.iter().any(|conds| conds.iter().all(|c| c.holds(args))))
    }

    /// The answer to a notification, from the current phase and mode and
    /// the syscall's ABI, number and register arguments only.
    ///
    /// Never from user memory: the supervisor reads no pointer argument
    /// (no path, no sockaddr, no buffer).  `SECCOMP_USER_NOTIF_FLAG_CONTINUE`
    /// lets the kernel run the syscall with whatever the task's memory holds
    /// *then*, and another thread of the container can change that memory
    /// between our check and the syscall (time of check to time of use): a
    /// decision based on it would be worthless.  The number, the ABI and the
    /// six register values are a copy the kernel took when the task
    /// stopped, and the task cannot change its own registers while it
    /// waits for us, so what we check is exactly what runs.
    pub fn decide(&self, phase: Phase, mode: Mode, arch: u32, nr: u32, args: &[u64; 6]) -> Verdict {
        if self.allows(phase, arch, nr, args) {
            Verdict::Continue
        } else if mode == Mode::Complain {
            Verdict::Complain
        } else {
            Verdict::Deny(self.errno)
        }
    }

    /// Whether the policy knows phase `phase`.
    pub fn has(&self, phase: Phase) -> bool {
        self.phases.iter().any(|p| p.phase == phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Arch, CmpOp, Rule, AUDIT_ARCH_X86_64};

    fn filter(names: &[&str]) -> PhaseFilter {
        PhaseFilter {
            default_action: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: names.iter().map(|n| Rule { name: n.to_string(), arch: Arch::X86_64, action: Action::Allow, args: vec![] }).collect(),
            unresolved: vec![],
        }
    }

    fn nr(name: &str) -> u32 {
        Arch::X86_64.resolve(name).unwrap() as u32
    }

    #[test]
    fn each_phase_answers_by_number_and_mode() {
        let mut running = filter(&["accept4", "read"]);
        running.rules.push(Rule {
            name: "mprotect".into(),
            arch: Arch::X86_64,
            action: Action::Allow,
            args: vec![ArgCmp { index: 2, op: CmpOp::MaskedEq, value: 4, value_two: 0 }],
        });
        let policy = NotifyPolicy::from_filters(&[
            (Phase::Boot, filter(&["accept4", "read", "bind", "setuid"])),
            (Phase::Running, running),
            (Phase::Shutdown, filter(&["accept4", "read", "fsync"])),
        ]);
        let a = [0u64; 6];
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(policy.decide(Phase::Boot, Mode::Enforce, x, nr("bind"), &a), Verdict::Continue);
        assert_eq!(policy.decide(Phase::Running, Mode::Enforce, x, nr("bind"), &a), Verdict::Deny(1));
        assert_eq!(policy.decide(Phase::Running, Mode::Complain, x, nr("bind"), &a), Verdict::Complain);
        assert_eq!(policy.decide(Phase::Shutdown, Mode::Enforce, x, nr("fsync"), &a), Verdict::Continue);
        assert_eq!(policy.decide(Phase::Shutdown, Mode::Enforce, x, nr("setuid"), &a), Verdict::Deny(1));
        // A phase the profile lacks allows nothing.
        assert_eq!(policy.decide(Phase::Reload, Mode::Enforce, x, nr("read"), &a), Verdict::Deny(1));
        // Another ABI's number is another syscall.
        assert_eq!(policy.decide(Phase::Boot, Mode::Enforce, crate::profile::AUDIT_ARCH_I386, nr("bind"), &a), Verdict::Deny(1));
        // Register conditions (a low form): PROT_EXEC clear only.
        assert_eq!(policy.decide(Phase::Running, Mode::Enforce, x, nr("mprotect"), &[0, 0, 3, 0, 0, 0]), Verdict::Continue);
        assert_eq!(policy.decide(Phase::Running, Mode::Enforce, x, nr("mprotect"), &[0, 0, 7, 0, 0, 0]), Verdict::Deny(1));
        assert_eq!(Verdict::Deny(1).ret_code(), 0x0005_0001);
        // Saved and loaded, it answers the same.
        let again: NotifyPolicy = serde_json::from_str::<NotifyPolicy>(&serde_json::to_string(&policy).unwrap()).unwrap().indexed();
        assert_eq!(again.decide(Phase::Boot, Mode::Enforce, x, nr("bind"), &a), Verdict::Continue);
        assert_eq!(again.decide(Phase::Running, Mode::Enforce, x, nr("mprotect"), &[0, 0, 7, 0, 0, 0]), Verdict::Deny(1));
    }
}
