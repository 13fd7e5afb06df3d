//! The notify engine's one filter: the running phase's syscalls (with the
//! conditions of their low forms) are allowed by the kernel itself, at full
//! speed (the kernel's action cache keeps the unconditional ones); every
//! other syscall, whether another phase needs it or no phase does, is
//! notified to the supervisor.
//!
//! Why everything else is notified, not only the other phases' syscalls
//! (the denied rest could get the profile's errno from the kernel): a
//! syscall that no phase allows then also reaches the supervisor, so
//! complain mode can be switched on and off for a live container (the
//! filter never changes), and every denial is recorded by the supervisor
//! with container, phase and pid, exactly, instead of through the kernel
//! log (whose pid must be matched to a container afterwards).  The price is
//! a round trip for a denied syscall instead of the kernel's errno, paid
//! only by syscalls the profile forbids (not measured yet: docs/src/notify.md).
//! Without `SECCOMP_FILTER_FLAG_LOG`: a notified syscall is not a denial,
//! and the supervisor records the real ones.
use super::listener::kernel_has_wait_killable;
use crate::profile::{Action, OciProfile, PhaseFilter};

/// OCI name of `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (crun ≥ 1.8 knows it).
pub const FLAG_WAIT_KILLABLE: &str = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";

/// The filter from the running phase's filter (as the kmod engine would
/// install it): its allow rules kept, everything else notified (ABIs it
/// does not list too).
pub fn from_running(running: &PhaseFilter) -> PhaseFilter {
    let mut f = running.clone();
    f.rules.retain(|r| r.action.allows());
    for r in &mut f.rules {
        r.action = Action::Allow;
    }
    f.default_action = Action::Notify;
    f
}

/// The same as OCI seccomp JSON for crun, from the running phase's OCI
/// profile: `defaultAction` `SCMP_ACT_NOTIFY`, flags
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` where the kernel has it
/// (`wait_killable`), and `listenerPath`/`listenerMetadata` set by the
/// runtime in the configuration around it.
pub fn oci_from_running(running: &OciProfile, wait_killable: bool) -> OciProfile {
    let mut o = running.clone();
    o.syscalls.retain(|s| s.action == "SCMP_ACT_ALLOW" || s.action == "SCMP_ACT_LOG");
    for s in &mut o.syscalls {
        s.action = "SCMP_ACT_ALLOW".to_string();
        s.errno_ret = None;
    }
    o.default_action = "SCMP_ACT_NOTIFY".to_string();
    o.default_errno_ret = None;
    o.flags = if wait_killable { vec![FLAG_WAIT_KILLABLE.to_string()] } else { Vec::new() };
    o
}

/// [`oci_from_running`] for this kernel.
pub fn oci_for_this_kernel(running: &OciProfile) -> OciProfile {
    oci_from_running(running, kernel_has_wait_killable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_stays_allowed_and_the_rest_is_notified() {
        let running: OciProfile = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_LOG","flags":["SECCOMP_FILTER_FLAG_LOG"],"architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["accept4","read"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["mprotect"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":4,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        let o = oci_from_running(&running, true);
        assert_eq!(o.default_action, "SCMP_ACT_NOTIFY");
        assert_eq!(o.default_errno_ret, None);
        assert_eq!(o.flags, vec![FLAG_WAIT_KILLABLE.to_string()], "no SECCOMP_FILTER_FLAG_LOG: notifications are not denials");
        assert_eq!(o.syscalls.len(), 2);
        assert_eq!(o.syscalls[1].args.len(), 1, "the low form keeps its condition");
        assert!(oci_from_running(&running, false).flags.is_empty());
    }
}
