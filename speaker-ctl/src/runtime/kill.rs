//! `kill ID [SIGNAL]`: SIGTERM and SIGINT (the default is SIGTERM) first
//! switch the container to its shutdown phase; a reload signal of the
//! container's profile (`reload.signals`) switches it to its reload phase,
//! has crun deliver the signal, waits for the reload's readiness condition
//! and switches back to running (see `container::reload`) before `kill`
//! returns.
use anyhow::Result;

use super::args::KillArgs;
use super::crun::{ours, Invocation};
use super::PROG;
use crate::container::reload::{self, is_reload_signal, parse_signal, SignalError, SignalOutcome, RELOAD_TIMEOUT};
use crate::container::switch::switch_if;
use crate::profile::schema::Phase;
use crate::sys::signals;

pub fn kill(inv: &Invocation, args: &KillArgs) -> Result<i32> {
    let sig = args.signal.as_deref().unwrap_or("SIGTERM");
    if let (Some(st), Ok(signal)) = (ours(&args.id), parse_signal(sig)) {
        if st.runtime.as_ref().is_some_and(|r| r.registered) && is_reload_signal(&st, signal) && !args.all {
            return reload_through_crun(inv, args, signal);
        }
    }
    if matches!(signals::parse(sig), Some(libc::SIGTERM) | Some(libc::SIGINT)) {
        to_shutdown(&args.id);
    }
    inv.exec_crun()
}

/// A reload: crun delivers the signal between the two switches.
fn reload_through_crun(inv: &Invocation, args: &KillArgs, signal: nix::sys::signal::Signal) -> Result<i32> {
    let crun = inv.crun()?;
    let mut code = 0;
    let send = || -> Result<(), SignalError> {
        let mut line = vec!["kill".to_string(), args.id.clone()];
        line.extend(args.signal.clone());
        code = inv.run_crun(&crun, &line).map_err(|error| SignalError::Switch { cid: args.id.clone(), what: "crun kill", error })?;
        if code != 0 {
            return Err(SignalError::Switch { cid: args.id.clone(), what: "crun kill", error: anyhow::anyhow!("exit status {code}") });
        }
        Ok(())
    };
    match reload::signal(&args.id, signal, RELOAD_TIMEOUT, send) {
        Ok(SignalOutcome::Reload(r)) if r.timed_out => {
            eprintln!(
                "{PROG}: warning: container '{}' was not ready {} s after {signal}: it stays in its reload phase ('speaker-ctl switch {} --to running' once it is)",
                args.id,
                r.waited.as_secs(),
                args.id
            );
            Ok(0)
        }
        Ok(_) => Ok(0),
        Err(e) if code != 0 => {
            eprintln!("{PROG}: {e}");
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}

/// Switches `id` to its shutdown phase if it has one and is not there yet.
pub fn to_shutdown(id: &str) {
    let Some(st) = ours(id) else { return };
    if st.record(Phase::Shutdown).is_none() || !st.runtime.as_ref().is_some_and(|r| r.registered) {
        return;
    }
    if let Err(e) = switch_if(id, Some(Phase::Shutdown), |from| from < Phase::Shutdown) {
        eprintln!("{PROG}: warning: container '{id}': cannot switch to the shutdown phase before the signal: {e:#}");
    }
}
