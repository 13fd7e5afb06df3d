//! `kill ID [SIGNAL]`: SIGTERM and SIGINT (the default is SIGTERM) first
//! switch the container to its shutdown phase; a reload signal of the
//! container's profile (`reload.signals`) switches it to its reload phase,
//! has crun deliver the signal, waits for the reload's readiness condition
//! and switches back to running (see `container::reload`) before `kill`
//! returns.
use crate::sys::output::errln;
use anyhow::Result;

use super::args::KillArgs;
use super::crun::Invocation;
use super::PROG;
use crate::container::reload::{self, is_reload_signal, parse_signal, SignalError, SignalOutcome, RELOAD_TIMEOUT};
use crate::container::switch::switch_if;
use crate::profile::schema::Phase;
use crate::sys::signals;

pub fn kill(inv: &Invocation, args: &KillArgs) -> Result<i32> {
    let sig = args.signal.as_deref().unwrap_or("SIGTERM");
    if !args.all && !args.regex {
        if let Some(code) = reload_if_reload_signal(inv, &args.id, sig)? {
            return Ok(code);
        }
    }
    if !args.regex && matches!(signals::parse(sig), Some(libc::SIGTERM) | Some(libc::SIGINT)) {
        to_shutdown(inv, &args.id);
    }
    inv.exec_crun()
}

/// If `sig` (as crun takes it: `HUP`, `SIGHUP`, `1`) is a reload signal of
/// registered container `id`: the reload, crun delivering the signal
/// between the two switches, and crun's exit code.  `None` for any other
/// signal or container.
pub fn reload_if_reload_signal(inv: &Invocation, id: &str, sig: &str) -> Result<Option<i32>> {
    let (Some(st), Ok(signal)) = (inv.ours(id), parse_signal(sig)) else { return Ok(None) };
    if !st.runtime.as_ref().is_some_and(|r| r.registered) || !is_reload_signal(&st, signal) {
        return Ok(None);
    }
    let crun = inv.crun()?;
    let mut code = 0;
    let send = || -> Result<(), SignalError> {
        code = inv.run_crun(&crun, &["kill", id, sig]).map_err(|error| SignalError::Switch { cid: id.into(), what: "crun kill", error })?;
        if code != 0 {
            return Err(SignalError::Switch { cid: id.into(), what: "crun kill", error: anyhow::anyhow!("exit status {code}") });
        }
        Ok(())
    };
    match reload::signal(id, signal, RELOAD_TIMEOUT, send) {
        Ok(SignalOutcome::Reload(r)) if r.timed_out => {
            errln!(
                "{PROG}: warning: container '{id}' was not ready {} s after {signal}: it stays in its reload phase ('speaker-ctl switch {id} --to running' once it is)",
                r.waited.as_secs(),
            );
            Ok(Some(0))
        }
        Ok(_) => Ok(Some(0)),
        Err(e) if code != 0 => {
            errln!("{PROG}: {e}");
            Ok(Some(code))
        }
        Err(e) => Err(e.into()),
    }
}

/// Switches `id` to its shutdown phase if it has one and is not there yet.
pub fn to_shutdown(inv: &Invocation, id: &str) {
    let Some(st) = inv.ours(id) else { return };
    if st.record(Phase::Shutdown).is_none() || !st.runtime.as_ref().is_some_and(|r| r.registered) {
        return;
    }
    if let Err(e) = switch_if(id, Some(Phase::Shutdown), |from| from < Phase::Shutdown) {
        errln!("{PROG}: warning: container '{id}': cannot switch to the shutdown phase before the signal: {e:#}");
    }
}
