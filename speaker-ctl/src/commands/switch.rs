//! `speaker-ctl switch`: move a live container to its next phase's filter.
use anyhow::{bail, Context, Result};

use crate::cli::SwitchArgs;
use crate::container::state::{now_unix_ms, ContainerState};
use crate::device::{Device, SwitchReport};
use crate::profile::schema::Phase;

/// Switches container `cid` to `to` (default: the phase after its current
/// one); returns the phases and the module's report.
pub fn switch(cid: &str, to: Option<Phase>) -> Result<(Phase, Phase, SwitchReport)> {
    Ok(switch_when(cid, to, |_| true)?.expect("unconditional switch"))
}

/// Like [`switch`], under the container's lock, but only if `when(current
/// phase)` holds (else `Ok(None)`): the runtime's monitor switches to
/// running only from boot, `kill` to shutdown only from an earlier phase,
/// whoever comes first.
pub fn switch_when(cid: &str, to: Option<Phase>, when: impl Fn(Phase) -> bool) -> Result<Option<(Phase, Phase, SwitchReport)>> {
    // Fail on an unknown container before creating its lock file.
    ContainerState::load(cid)?;
    let _lock = ContainerState::lock(cid)?;
    let dev = Device::open()?;
    let mut state = ContainerState::load(cid)?;
    let module = dev.status(Some(state.kcid()))?;
    let Some(entry) = module.first() else {
        bail!("speaker.ko knows no container '{cid}' (it has exited, or the module was reloaded); 'speaker-ctl status' lists the live ones");
    };
    let from = Phase::from_index(entry.phase).unwrap_or(state.current);
    if !when(from) {
        return Ok(None);
    }
    let to = match to {
        Some(p) => p,
        None => from.next().filter(|p| state.record(*p).is_some()).with_context(|| {
            format!("container '{cid}' is in its {from} phase and its profile has no later phase")
        })?,
    };
    let Some(rec) = state.record(to).cloned() else {
        bail!("container '{cid}' has no {to} phase in its profile");
    };
    let prog = state.program(to)?;
    let report = dev
        .switch(state.kcid(), &prog, to.index(), rec.allowed)
        .with_context(|| format!("cannot switch container '{cid}' to its {to} phase"))?;
    state.current = to;
    state.last_switch_unix_ms = Some(now_unix_ms());
    state.save()?;
    if let Some(rt) = &state.runtime {
        // Processes started later by `exec` get the current phase's filter.
        if let Err(e) = crate::runtime::bundle::set_exec_phase(&state, rt, to) {
            let msg = format!("warning: container '{cid}' switched to {to}, but processes exec'ed into it later will get the {from} filter: {e:#}");
            eprintln!("speaker: {msg}");
            crate::runtime::monitor::log(cid, &msg);
        }
    }
    Ok(Some((from, to, report)))
}

pub fn run(args: SwitchArgs) -> Result<i32> {
    let (from, to, r) = switch(&args.cid, args.to)?;
    println!(
        "{}: {from} -> {to}: {} task{}, {} syscalls cached as allowed, {} filter{} above trimmed, {:.1} ms",
        args.cid,
        r.tasks,
        if r.tasks == 1 { "" } else { "s" },
        r.cached_allow,
        r.filters_above,
        if r.filters_above == 1 { "" } else { "s" },
        r.elapsed_ns as f64 / 1e6
    );
    Ok(0)
}
