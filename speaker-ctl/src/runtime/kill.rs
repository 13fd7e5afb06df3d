//! `kill ID [SIGNAL]`: SIGTERM and SIGINT (the default is SIGTERM) first
//! switch the container to its shutdown phase.
use anyhow::Result;

use super::args::KillArgs;
use super::crun::{ours, Invocation};
use super::PROG;
use crate::container::switch::switch_if;
use crate::profile::schema::Phase;
use crate::sys::signals;

pub fn kill(inv: &Invocation, args: &KillArgs) -> Result<i32> {
    let sig = args.signal.as_deref().unwrap_or("SIGTERM");
    if matches!(signals::parse(sig), Some(libc::SIGTERM) | Some(libc::SIGINT)) {
        to_shutdown(&args.id);
    }
    inv.exec_crun()
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
