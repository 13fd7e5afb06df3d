//! `speaker-ctl signal CID SIG`: send a signal to a container the speaker
//! way (reload signals through the reload phase, SIGTERM/SIGINT through
//! the shutdown phase; see `container::reload`).
use anyhow::Result;
use std::time::Duration;

use crate::cli::SignalArgs;
use crate::container::reload::{self, kill_first_process, parse_signal, SignalOutcome};
use crate::container::state::ContainerState;

pub fn run(args: SignalArgs) -> Result<i32> {
    let sig = parse_signal(&args.signal)?;
    let state = ContainerState::load(&args.cid)?;
    let outcome = reload::signal(&args.cid, sig, Duration::from_secs(args.timeout), || kill_first_process(&state, sig))?;
    let cid = &args.cid;
    match outcome {
        SignalOutcome::Reload(r) => match (&r.to_reload, &r.back) {
            (None, _) => println!("{cid}: {sig} forwarded (not in its running phase: no reload switch)"),
            (Some(_), Some(b)) => println!(
                "{cid}: running -> reload, {sig}, ready after {} ms, reload -> running ({} tasks, {:.1} ms)",
                r.waited.as_millis(),
                b.report.tasks,
                b.report.elapsed_ns as f64 / 1e6
            ),
            (Some(_), None) if r.timed_out => {
                eprintln!(
                    "speaker-ctl: {cid}: running -> reload, {sig}, not ready after {} s: it stays in its reload phase ('speaker-ctl switch {cid} --to running' once it is)",
                    r.waited.as_secs()
                );
                return Ok(1);
            }
            (Some(_), None) => println!("{cid}: running -> reload, {sig}; the container exited or left its reload phase meanwhile"),
        },
        SignalOutcome::Shutdown(Some(s)) => println!("{cid}: {} -> {}, {sig}", s.from, s.to),
        SignalOutcome::Shutdown(None) | SignalOutcome::Forwarded => println!("{cid}: {sig}"),
    }
    Ok(0)
}
