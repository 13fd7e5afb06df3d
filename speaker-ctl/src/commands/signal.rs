//! `speaker-ctl signal CID SIG`: send a signal to a container the speaker
//! way (reload signals through the reload phase, SIGTERM/SIGINT through
//! the shutdown phase; see `container::reload`).
use crate::sys::output::errln;
use anyhow::Result;

use crate::cli::SignalArgs;
use crate::container::reload::{self, kill_first_process, parse_signal};
use crate::container::state::ContainerState;
use crate::sys::output::outln;

pub fn run(args: SignalArgs) -> Result<i32> {
    let sig = parse_signal(&args.signal)?;
    let state = ContainerState::load(&args.cid)?;
    let outcome = reload::signal(&args.cid, sig, args.timeout, || kill_first_process(&state, sig))?;
    let line = outcome.describe(&args.cid, sig);
    if outcome.timed_out() {
        errln!("speaker-ctl: {line}");
        return Ok(1);
    }
    outln!("{line}")?;
    Ok(0)
}
