//! Signals to a live container, and the reload phase.
//!
//! Many services re-run part of their boot on a signal (nginx re-reads its
//! configuration and starts new workers on SIGHUP).  For a signal the
//! profile's `reload` lists, speaker
//!
//! 1. switches the container from running to its reload filter (boot ∪
//!    running ∪ the traced reload, see
//!    [`widen_for_switches`](super::phases::widen_for_switches)); the
//!    switch is recorded in the state like any other, so denials made
//!    meanwhile are attributed to `reload`;
//! 2. forwards the signal;
//! 3. waits for the reload's readiness condition (the profile's
//!    `reload.ready`, default `auto`), seen from outside as the runtime's
//!    monitor sees boot's;
//! 4. switches back to running, unless something else (a `stop`, a `switch`)
//!    moved the container meanwhile.
//!
//! A reload signal that arrives outside the running phase (during boot,
//! during another reload, at shutdown) is only forwarded: the filter of
//! those phases already covers it.  SIGTERM and SIGINT switch to the
//! shutdown phase first, as `stop` and `speaker-runtime kill` do.
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

use super::ready::{Readiness, Waited};
use super::state::ContainerState;
use super::switch::{switch_if, Switch};
use crate::profile::schema::Phase;
use crate::sys::procfs::pid_alive;
use crate::sys::signals;

/// How long a reload may take before speaker gives up waiting (the
/// container then stays in its reload phase).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// What can go wrong around a container's signal.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal '{0}' (expected a name like HUP or SIGHUP, or a number)")]
    BadSignal(String),
    #[error("container '{cid}': its reload readiness condition '{ready}' is invalid: {reason}")]
    BadReady { cid: String, ready: String, reason: String },
    #[error("container '{cid}' is not running (its first process {pid} has exited)")]
    NotRunning { cid: String, pid: i32 },
    #[error("cannot send {sig} to container '{cid}' (pid {pid}): {errno}")]
    Send { cid: String, sig: Signal, pid: i32, errno: nix::Error },
    #[error("container '{cid}': {what}: {error:#}")]
    Switch { cid: String, what: &'static str, error: anyhow::Error },
}

/// What a reload did.
#[derive(Debug)]
pub struct ReloadReport {
    /// The switch to the reload phase (`None`: the container was not in
    /// its running phase, so the signal was only forwarded).
    pub to_reload: Option<Switch>,
    /// How long the service took to be ready again.
    pub waited: Duration,
    /// The switch back to running (`None`: not ready in time, the
    /// container exited, or it left its reload phase meanwhile).
    pub back: Option<Switch>,
    /// The service was not ready within the timeout.
    pub timed_out: bool,
}

/// What a signal made speaker do.
#[derive(Debug)]
pub enum SignalOutcome {
    /// A reload signal: see the report.
    Reload(ReloadReport),
    /// SIGTERM or SIGINT: switched to shutdown first (if the profile has
    /// that phase and the container was not there yet).
    Shutdown(Option<Switch>),
    /// Any other signal: forwarded.
    Forwarded,
}

impl SignalOutcome {
    /// Whether a reload was left unfinished because the service was not
    /// ready in time (the container stays in its reload phase).
    pub fn timed_out(&self) -> bool {
        matches!(self, SignalOutcome::Reload(r) if r.timed_out)
    }

    /// One line for the operator: what `sig` made speaker do to container
    /// `cid` (`speaker-ctl signal`, foreground `run`s).
    pub fn describe(&self, cid: &str, sig: Signal) -> String {
        match self {
            SignalOutcome::Reload(r) => match (&r.to_reload, &r.back) {
                (None, _) => format!("{cid}: {sig} forwarded (not in its running phase: no reload switch)"),
                (Some(_), Some(b)) => format!(
                    "{cid}: running -> reload, {sig}, ready after {} ms, reload -> running ({} tasks, {:.1} ms)",
                    r.waited.as_millis(),
                    b.report.tasks,
                    b.report.elapsed_ns as f64 / 1e6
                ),
                (Some(_), None) if r.timed_out => format!(
                    "{cid}: running -> reload, {sig}, not ready after {} s: it stays in its reload phase ('speaker-ctl switch {cid} --to running' once it is)",
                    r.waited.as_secs()
                ),
                (Some(_), None) => format!("{cid}: running -> reload, {sig}; the container exited or left its reload phase meanwhile"),
            },
            SignalOutcome::Shutdown(Some(s)) => format!("{cid}: {} -> {}, {sig}", s.from, s.to),
            SignalOutcome::Shutdown(None) | SignalOutcome::Forwarded => format!("{cid}: {sig}"),
        }
    }
}

/// Parses a signal as runc/crun do (`HUP`, `SIGHUP`, `1`).
pub fn parse_signal(s: &str) -> Result<Signal, SignalError> {
    signals::parse(s).and_then(|n| Signal::try_from(n).ok()).ok_or_else(|| SignalError::BadSignal(s.to_string()))
}

/// Whether `sig` is one of the reload signals of container `state`.
pub fn is_reload_signal(state: &ContainerState, sig: Signal) -> bool {
    state.record(Phase::Reload).is_some()
        && state.reload.as_ref().is_some_and(|r| r.signals.iter().any(|s| parse_signal(s).ok() == Some(sig)))
}

/// Sends `sig` to container `cid` the speaker way (see the module's doc):
/// `send` delivers it (a kill(2) of the container's first process, or
/// crun's `kill` for the runtime).
pub fn signal(
    cid: &str,
    sig: Signal,
    timeout: Duration,
    send: impl FnOnce() -> Result<(), SignalError>,
) -> Result<SignalOutcome, SignalError> {
    let state = ContainerState::load(cid).map_err(|error| SignalError::Switch { cid: cid.into(), what: "no state", error })?;
    if is_reload_signal(&state, sig) {
        return reload(&state, sig, timeout, send).map(SignalOutcome::Reload);
    }
    if matches!(sig, Signal::SIGTERM | Signal::SIGINT) && state.record(Phase::Shutdown).is_some() {
        let s = switch_if(cid, Some(Phase::Shutdown), |from| from < Phase::Shutdown).map_err(|error| SignalError::Switch {
            cid: cid.into(),
            what: "cannot switch to the shutdown phase before the signal",
            error,
        })?;
        send()?;
        return Ok(SignalOutcome::Shutdown(s));
    }
    send()?;
    Ok(SignalOutcome::Forwarded)
}

/// Records the `reload` of the profile at `profile` (if it has one) in
/// container `cid`'s state (`speaker-ctl run`; the runtime's `create`
/// writes it with the rest of the state).
pub fn remember(cid: &str, profile: &std::path::Path) -> anyhow::Result<()> {
    let Some(reload) = crate::profile::load_profile(profile)?.reload else { return Ok(()) };
    let _lock = ContainerState::lock(cid)?;
    let mut st = ContainerState::load(cid)?;
    st.reload = Some(reload);
    st.save()
}

/// kill(2) of the container's first process (what crun's `kill` does too).
pub fn kill_first_process(state: &ContainerState, sig: Signal) -> Result<(), SignalError> {
    if !state.alive() {
        return Err(SignalError::NotRunning { cid: state.cid.clone(), pid: state.pid });
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), sig).map_err(|errno| SignalError::Send {
        cid: state.cid.clone(),
        sig,
        pid: state.pid,
        errno,
    })
}

fn reload(
    state: &ContainerState,
    sig: Signal,
    timeout: Duration,
    send: impl FnOnce() -> Result<(), SignalError>,
) -> Result<ReloadReport, SignalError> {
    let cid = state.cid.as_str();
    let spec = state.reload.as_ref().map(|r| r.ready().to_string()).unwrap_or_default();
    let ready = Readiness::parse_for_runtime(&spec).map_err(|e| SignalError::BadReady {
        cid: cid.into(),
        ready: spec.clone(),
        reason: format!("{e:#}"),
    })?;
    let to_reload = switch_if(cid, Some(Phase::Reload), |from| from == Phase::Running).map_err(|error| SignalError::Switch {
        cid: cid.into(),
        what: "cannot switch to the reload phase",
        error,
    })?;
    let sent = send();
    if to_reload.is_none() {
        // Not in running: the current filter already covers a reload.
        sent?;
        return Ok(ReloadReport { to_reload, waited: Duration::ZERO, back: None, timed_out: false });
    }
    if let Err(e) = sent {
        let _ = switch_if(cid, Some(Phase::Running), |from| from == Phase::Reload);
        return Err(e);
    }
    state.log(&format!("{sig}: reload: running -> reload; waiting for '{spec}'"));
    let started = Instant::now();
    let is_ready = ready.wait_outside(state.pid, Some(started + timeout), false) == Waited::Ready;
    let waited = started.elapsed();
    if !is_ready {
        let timed_out = pid_alive(state.pid);
        if timed_out {
            state
                .log(&format!("warning: not ready ('{spec}') {} s after {sig}: the container stays in its reload phase", waited.as_secs()));
        }
        return Ok(ReloadReport { to_reload, waited, back: None, timed_out });
    }
    let back = switch_if(cid, Some(Phase::Running), |from| from == Phase::Reload).map_err(|error| SignalError::Switch {
        cid: cid.into(),
        what: "cannot switch back to the running phase after the reload",
        error,
    })?;
    if let Ok(st) = ContainerState::load(cid) {
        st.log(&format!(
            "reload ready ('{spec}') after {} ms; switched {}",
            waited.as_millis(),
            if back.is_some() { "reload -> running" } else { "nothing (the container left its reload phase)" }
        ));
    }
    Ok(ReloadReport { to_reload, waited, back, timed_out: false })
}
