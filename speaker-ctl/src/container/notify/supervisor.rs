//! The supervisor of a notify-engine container: answers every notification
//! of its filter by the container's current phase and mode and the
//! syscall's ABI, number and register arguments ([`NotifyPolicy::decide`]:
//! never user memory), and keeps a denial record (container, phase,
//! syscall, pid) in the container's `denials.jsonl`, the store `speaker-ctl
//! denials` reads.
//!
//! If the supervisor dies, the kernel fails every notified syscall with
//! ENOSYS (no listener): fail-closed.
use std::os::fd::{AsFd, OwnedFd};

use super::listener::{receive, respond, Notification};
use super::phase;
use super::policy::{NotifyPolicy, Verdict};
use crate::container::denials::{append, Denial};
use crate::container::state::{now_unix_ms, ContainerState};
use crate::profile::schema::Phase;
use crate::profile::{Arch, Mode, SeccompRecord};

/// Why a supervisor stopped.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("container '{cid}': cannot receive seccomp notifications: {errno}")]
    Receive { cid: String, errno: nix::Error },
}

/// One answered notification (for the caller's log and counters).
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub phase: Phase,
    pub verdict: Verdict,
}

/// Serves `listener` until it fails; `each` sees every answer.  The
/// phase is read for every notification: a failure to read it denies
/// (fail-closed) and is recorded like any denial.
pub fn supervise(cid: &str, listener: OwnedFd, policy: &NotifyPolicy, mut each: impl FnMut(&Answered, Option<&Denial>)) -> SupervisorError {
    loop {
        let n = match receive(listener.as_fd()) {
            Ok(n) => n,
            // The task went away or was interrupted before we got it.
            Err(nix::Error::ENOENT) | Err(nix::Error::EINTR) => continue,
            Err(errno) => return SupervisorError::Receive { cid: cid.to_string(), errno },
        };
        let (phase, mode) = phase::current(cid).unwrap_or((Phase::Running, Mode::Enforce));
        // Decided here, from the notification's number, ABI and registers
        // only (see `NotifyPolicy::decide` for why never user memory).
        let verdict = policy.decide(phase, mode, n.data.arch, n.data.nr as u32, &n.data.args);
        let errno = match verdict {
            Verdict::Continue | Verdict::Complain => None,
            Verdict::Deny(e) => Some(e),
        };
        // ENOENT: the task died or a signal interrupted the syscall; it is
        // notified again if it restarts.
        let _ = respond(listener.as_fd(), n.id, errno);
        let denial = verdict.recorded().then(|| record(cid, phase, &n, verdict));
        if let Some(d) = &denial {
            append(d);
        }
        each(&Answered { phase, verdict }, denial.as_ref());
    }
}

/// The denial record of notification `n`, answered `verdict` in `phase`.
pub fn record(cid: &str, phase: Phase, n: &Notification, verdict: Verdict) -> Denial {
    use nix::time::{clock_gettime, ClockId};
    let nr = u64::from(n.data.nr as u32);
    let arch = Arch::from_audit(n.data.arch, nr);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", n.pid)).map(|c| c.trim_end().to_string()).unwrap_or_default();
    let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).ok().map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000);
    Denial {
        cid: Some(cid.to_string()),
        phase: Some(phase),
        record: SeccompRecord {
            time_unix_ms: now_unix_ms(),
            // The notification id: unique per filter (its start is random).
            serial: n.id,
            monotonic_us: mono,
            pid: n.pid,
            comm,
            exe: None,
            arch: arch.map(|a| a.name().to_string()),
            nr,
            syscall: arch.and_then(|a| a.syscall_name(nr & !u64::from(crate::profile::X32_SYSCALL_BIT))),
            code: verdict.ret_code(),
        },
    }
}

/// The policy saved with `cid`'s state.
pub fn load_policy(cid: &str) -> anyhow::Result<NotifyPolicy> {
    use anyhow::Context;
    let path = policy_path(cid);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let p: NotifyPolicy = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    Ok(p.indexed())
}

/// Saves `policy` with `cid`'s state.
pub fn save_policy(cid: &str, policy: &NotifyPolicy) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = policy_path(cid);
    crate::sys::fs::write_atomic(&path, serde_json::to_string(policy)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn policy_path(cid: &str) -> std::path::PathBuf {
    ContainerState::dir_of(cid).join("notify-policy.json")
}
