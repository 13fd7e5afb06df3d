//! Switching a live container to another phase's program through speaker.ko.
use crate::sys::output::errln;
use anyhow::{bail, Context, Result};

use super::engine::Engine;
use super::exec_filter;
use super::notify;
use super::state::{now_unix_ms, ContainerState, SwitchRecord};
use crate::device::{Device, SwitchReport};
use crate::profile::schema::Phase;
use crate::profile::Mode;

/// A switch that happened.
#[derive(Debug, Clone, Copy)]
pub struct Switch {
    pub from: Phase,
    pub to: Phase,
    pub from_mode: Mode,
    pub to_mode: Mode,
    /// What speaker.ko reported.
    pub report: SwitchReport,
}

/// Switches container `cid` to `to` (default: the phase after its current
/// one).
pub fn switch(cid: &str, to: Option<Phase>) -> Result<Switch> {
    switch_mode(cid, to, None)
}

/// Switches container `cid` to phase `to` in mode `mode` (each defaulting
/// to: the next phase in the current mode; with only a mode, the current
/// phase in that mode).  Only a swap of the program can loosen a live
/// filter, so a container goes from enforce to complain in place.
pub fn switch_mode(cid: &str, to: Option<Phase>, mode: Option<Mode>) -> Result<Switch> {
    switch_mode_with(cid, to, mode, false)
}

/// [`switch_mode`]; with `no_wait`, speaker.ko returns right after the swap
/// instead of after the RCU-tasks grace period (`SWITCH_DEFER_FREE`: a
/// system call that had already entered seccomp may still be decided by
/// the old program; the old program is kept either way).
pub fn switch_mode_with(cid: &str, to: Option<Phase>, mode: Option<Mode>, no_wait: bool) -> Result<Switch> {
    let Some(s) = switch_full(cid, to, mode, no_wait, |_| true)? else {
        bail!("container '{cid}' was not switched");
    };
    Ok(s)
}

/// Like [`switch`], under the container's lock, but only if `when(current
/// phase)` holds (else `Ok(None)`): the runtime's monitor switches to
/// running only from boot, `kill` to shutdown only from an earlier phase,
/// whoever comes first.
pub fn switch_if(cid: &str, to: Option<Phase>, when: impl Fn(Phase) -> bool) -> Result<Option<Switch>> {
    switch_full(cid, to, None, false, when)
}

fn switch_full(cid: &str, to: Option<Phase>, mode: Option<Mode>, no_wait: bool, when: impl Fn(Phase) -> bool) -> Result<Option<Switch>> {
    // Fail on an unknown container before creating its lock file.
    ContainerState::load(cid)?;
    let _lock = ContainerState::lock(cid)?;
    let mut state = ContainerState::load(cid)?;
    // kmod: the phase speaker.ko has; notify: the supervisor's (the state).
    let dev = match state.engine {
        Engine::Kmod => Some(Device::open()?),
        Engine::Notify => None,
    };
    let from = match &dev {
        Some(dev) => {
            let module = dev.status(Some(state.kernel_id()))?;
            let Some(entry) = module.first() else {
                bail!(
                    "speaker.ko knows no container '{cid}' (it has exited, or the module was reloaded); 'speaker-ctl status' lists the live ones"
                );
            };
            Phase::from_index(entry.phase).unwrap_or(state.current)
        }
        None => state.current,
    };
    if !when(from) {
        return Ok(None);
    }
    let from_mode = state.mode;
    let to_mode = mode.unwrap_or(from_mode);
    let to = match (to, mode) {
        (Some(p), _) => p,
        (None, Some(_)) => from,
        (None, None) => from
            .next()
            .filter(|p| state.record(*p).is_some())
            .with_context(|| format!("container '{cid}' is in its {from} phase and its profile has no later phase"))?,
    };
    let Some(rec) = state.record(to).cloned() else {
        bail!("container '{cid}' has no {to} phase in its profile");
    };
    let prog = match &dev {
        Some(_) => Some(state.program(to, to_mode)?),
        None => None,
    };
    // Recorded before the swap: the kernel log's records of the new phase
    // can be attributed (by the monitor's follower, as they arrive) while
    // the switch still waits for its grace period.  Taken back if the
    // switch fails.
    state.switches.push(SwitchRecord::now(to, to_mode));
    state.save()?;
    let switched = match (&dev, &prog) {
        (Some(dev), Some(prog)) => dev
            .switch_with(state.kernel_id(), prog, to.index(), rec.allowed, if no_wait { crate::abi::SWITCH_DEFER_FREE } else { 0 })
            .with_context(|| format!("cannot switch container '{cid}' to its {to} phase ({to_mode})")),
        _ => {
            // The filter stays; the supervisor answers in the new phase
            // from the next notification on.
            let started = std::time::Instant::now();
            notify::phase::set(cid, to, to_mode)
                .with_context(|| format!("cannot switch container '{cid}' to its {to} phase ({to_mode})"))
                .map(|()| SwitchReport { tasks: 0, filters_above: 0, cached_allow: 0, elapsed_ns: started.elapsed().as_nanos() as u64 })
        }
    };
    let report = match switched {
        Ok(r) => r,
        Err(e) => {
            state.switches.pop();
            let _ = state.save();
            return Err(e);
        }
    };
    state.current = to;
    state.mode = to_mode;
    state.last_switch_unix_ms = Some(now_unix_ms());
    state.save()?;
    // Every switch, whoever made it (monitor, reload, kill, stop, an
    // operator), in the container's log.
    state.log(&format!(
        "phase {from} ({from_mode}) -> {to} ({to_mode}): {} engine, {} tasks, {:.1} ms",
        state.engine,
        report.tasks,
        report.elapsed_ns as f64 / 1e6
    ));
    if let Some(rt) = &state.runtime {
        // Processes started later by `exec` get the current phase's filter.
        if let Err(e) = exec_filter::set_exec_phase(&state, rt, to) {
            let msg = format!(
                "warning: container '{cid}' switched to {to}, but processes exec'ed into it later will get the {from} filter: {e:#}"
            );
            errln!("speaker: {msg}");
            state.log(&msg);
        }
    }
    Ok(Some(Switch { from, to, from_mode, to_mode, report }))
}
