//! The low-overhead tracing mode (`--mode filter`): the traced processes run
//! under a seccomp filter that traps (`SECCOMP_RET_TRACE`) only the syscalls
//! not seen yet in the current phase, and speaker.ko replaces that filter's
//! program as the set grows and at every phase change.
//!
//! * The filter is compiled with libseccomp ([`program`]): default action
//!   `SCMP_ACT_TRACE(0)`, the x86_64 and x86 (i386) ABIs (and x32 once an
//!   x32 syscall has been seen), one allow rule per syscall of the current
//!   phase.  Syscalls of any other ABI trap too (bad-arch action = default).
//! * speaker-ctl's child installs the all-trap program after it has been
//!   seized with `PTRACE_O_TRACESECCOMP` (an unattended `RET_TRACE` would
//!   fail the syscall with ENOSYS) and right before its exec; that exec is
//!   the first syscall to trap, and at that stop the tracer registers the
//!   child's top filter with speaker.ko as container `trace-<pid>`
//!   ([`TrapFilter::register`]).  Every traced task inherits the filter
//!   (fork, clone, exec), so one switch changes the program for all of them.
//! * The tracer ([`super::tracer::trace_loop`]) resumes with `PTRACE_CONT`
//!   (no syscall-stops), records the syscall of each `PTRACE_EVENT_SECCOMP`
//!   stop, collects every stop already pending, then calls
//!   [`TrapFilter::sync`]: one switch (`SWITCH_DEFER_FREE`) to the program
//!   allowing what the current phase has seen, *before* it resumes the
//!   stopped tasks.  The trapped syscall itself then runs: seccomp re-runs
//!   the filters after a trace stop and lets a second `RET_TRACE` through.
//! * A phase change ([`TrapFilter::change_phase`], from the control thread)
//!   switches to the all-trap program of the new phase and waits for the
//!   grace period (no `SWITCH_DEFER_FREE`): when it returns, no syscall can
//!   be decided by the previous phase's program any more, so nothing of the
//!   new phase goes unseen (and SIGTERM is sent only after that).
//! * At the end the container is unregistered ([`TrapFilter::finish`]).
//!
//! The program only ever allows syscalls already recorded in the phase it
//! is installed for, so a late or failed switch costs extra stops, never a
//! missed syscall.  Each syscall thus traps about once per phase; the
//! profile's `count` is the number of stops (usually 1), not of calls.
use crate::sys::output::errln;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::abi;
use crate::container::register::register_at_exec_stop;
use crate::device::{Device, DeviceError};
use crate::profile::schema::Phase;
use crate::profile::SockFilter;
use crate::profile::{allowed_count, compile, Action, Arch, PhaseFilter, ProfileError, Rule};

/// The current phase and the syscalls it has seen: what the program must
/// allow.
pub type Seen = (Phase, Vec<(Arch, String)>);

/// The program of one phase: allow `seen` (ABI, libseccomp name), trap the
/// rest; returns it with the number of native syscalls it allows.
pub fn program(seen: &[(Arch, String)]) -> Result<(Vec<SockFilter>, u32), ProfileError> {
    let native = Arch::native();
    let mut arches = vec![native, native.compat()];
    if seen.iter().any(|(a, _)| *a == Arch::X32) {
        arches.push(Arch::X32);
    }
    let rules: Vec<Rule> = seen
        .iter()
        .map(|(arch, name)| (*arch, name))
        // A name libseccomp cannot map back on its ABI keeps trapping.
        .filter(|(arch, name)| arch.resolve(name).is_some())
        .map(|(arch, name)| Rule { name: name.clone(), arch, action: Action::Allow, args: Vec::new() })
        .collect();
    let filter = PhaseFilter { default_action: Action::Trace(0), arches, rules, unresolved: Vec::new() };
    Ok((compile(&filter)?, allowed_count(&filter) as u32))
}

/// What the registered filter's program allows right now.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Installed {
    phase: Phase,
    /// Syscalls of `phase` it allows (the phase's first `seen` entries:
    /// a phase's set only grows).
    seen: usize,
}

struct State {
    /// The container id, once registered.
    cid: Option<String>,
    installed: Installed,
    /// A failed switch or compilation was reported already.
    warned: bool,
}

/// speaker.ko's side of a filter-mode trace.
pub struct TrapFilter {
    dev: Device,
    state: Mutex<State>,
    /// Program switches done (phase changes included).
    pub switches: AtomicU64,
}

impl TrapFilter {
    /// Opens `/dev/speaker` (`DeviceError::NotLoaded` without the module).
    pub fn open() -> Result<TrapFilter, DeviceError> {
        Ok(TrapFilter {
            dev: Device::open()?,
            state: Mutex::new(State { cid: None, installed: Installed { phase: Phase::Boot, seen: 0 }, warned: false }),
            switches: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn registered(&self) -> bool {
        self.lock().cid.is_some()
    }

    /// Registers the top filter of `pid` (the traced command, stopped at
    /// its first trap, which runs the all-trap program it installed).
    pub fn register(&self, pid: i32, phase: Phase) -> anyhow::Result<()> {
        let mut st = self.lock();
        let cid = format!("trace-{pid}");
        register_at_exec_stop(&self.dev, &cid, pid, phase, 0)
            .map_err(|e| anyhow::anyhow!("cannot register the tracing filter of the traced command: {e}"))?;
        st.cid = Some(cid);
        st.installed = Installed { phase, seen: 0 };
        Ok(())
    }

    /// Makes the filter allow what the current phase has seen (the tracer,
    /// before it resumes the tasks it found stopped).
    /// `current` is asked under the filter's lock, so that a concurrent
    /// phase change cannot slip in between.
    pub fn sync(&self, current: impl FnOnce() -> Seen) {
        let mut st = self.lock();
        self.sync_locked(&mut st, current(), abi::SWITCH_DEFER_FREE, false);
    }

    /// Makes `p` the current phase and switches to its program (the control
    /// thread), waiting until the previous program can decide no syscall.
    /// `enter` makes the new phase current (under the filter's lock) and
    /// returns it with what it has seen.
    pub fn change_phase(&self, enter: impl FnOnce() -> Seen) {
        let mut st = self.lock();
        let seen = enter();
        self.sync_locked(&mut st, seen, 0, true);
    }

    fn sync_locked(&self, st: &mut State, (phase, seen): Seen, flags: u32, force: bool) {
        let Some(cid) = st.cid.clone() else {
            return;
        };
        let want = Installed { phase, seen: seen.len() };
        let same = st.installed.seen == want.seen && (want.seen == 0 || st.installed.phase == want.phase);
        if same && !force {
            return;
        }
        let (prog, allowed, after) = match program(&seen) {
            Ok((prog, allowed)) => (prog, allowed, want),
            Err(e) => {
                if !st.warned {
                    st.warned = true;
                    errln!("speaker-ctl: warning: cannot compile the tracing filter: {e}");
                }
                if want.phase == st.installed.phase && !force {
                    // The installed program allows a subset of the phase's
                    // set: keep it (more stops, nothing missed).
                    st.installed = want;
                    return;
                }
                // The all-trap program of the new phase.
                let Ok((prog, allowed)) = program(&[]) else {
                    return;
                };
                (prog, allowed, Installed { phase, seen: 0 })
            }
        };
        match self.dev.switch_with(&cid, &prog, phase.index(), allowed, flags) {
            Ok(_) => {
                self.switches.fetch_add(1, Ordering::Relaxed);
                st.installed = after;
            }
            // Every traced task has exited: nothing left to switch.
            Err(DeviceError::UnknownContainer(_)) => st.installed = after,
            Err(e) => {
                if !st.warned {
                    st.warned = true;
                    errln!(
                        "speaker-ctl: warning: cannot switch the tracing filter ({e}); \
                         the profile may miss syscalls of the {phase} phase"
                    );
                }
            }
        }
    }

    /// Unregisters the container (a no-op once its tasks are gone).
    pub fn finish(&self) {
        let mut st = self.lock();
        if let Some(cid) = st.cid.take() {
            match self.dev.unregister(&cid) {
                Ok(()) | Err(DeviceError::UnknownContainer(_)) => {}
                Err(e) => errln!("speaker-ctl: warning: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const BPF_RET_K: u16 = 0x06;
    const RET_TRACE: u32 = 0x7ff0_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;

    fn rets(prog: &[SockFilter]) -> BTreeSet<u32> {
        prog.iter().filter(|i| i.code == BPF_RET_K).map(|i| i.k).collect()
    }

    #[test]
    fn all_trap_program() {
        let (prog, allowed) = program(&[]).unwrap();
        assert_eq!(allowed, 0);
        assert_eq!(rets(&prog), BTreeSet::from([RET_TRACE]));
        // Both ABIs are checked.
        assert!(prog.iter().any(|i| i.k == crate::profile::AUDIT_ARCH_I386));
        assert!(prog.iter().any(|i| i.k == crate::profile::AUDIT_ARCH_X86_64));
    }

    #[test]
    fn seen_syscalls_are_allowed() {
        let seen = vec![
            (Arch::X86_64, "read".to_string()),
            (Arch::X86_64, "execve".to_string()),
            (Arch::X86, "getpid".to_string()),
            (Arch::X86, "socketcall".to_string()),
        ];
        let (prog, allowed) = program(&seen).unwrap();
        assert_eq!(allowed, 2);
        assert_eq!(rets(&prog), BTreeSet::from([RET_TRACE, RET_ALLOW]));
        // x86_64 read is 0, execve 59; i386 getpid 20.
        assert!(prog.iter().any(|i| i.code == 0x15 && i.k == 59));
        assert!(prog.iter().any(|i| i.code == 0x15 && i.k == 20));
        let with_x32 = vec![(Arch::X32, "read".to_string())];
        let (prog, _) = program(&with_x32).unwrap();
        assert!(rets(&prog).contains(&RET_ALLOW));
    }
}
