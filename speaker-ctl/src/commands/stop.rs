//! `speaker-ctl stop`: shutdown phase, SIGTERM, then SIGKILL after a timeout.
use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use crate::cli::StopArgs;
use crate::container::state::ContainerState;
use crate::container::switch::switch;
use crate::profile::schema::Phase;
use crate::sys::duration::show;
use crate::sys::output::outln;
use crate::sys::procfs::wait_points;

pub fn run(args: StopArgs) -> Result<i32> {
    let state = ContainerState::load(&args.cid)?;
    if state.runtime.is_some() {
        anyhow::bail!(
            "container '{}' is an OCI container run by speaker-runtime; stop it through its engine or with 'speaker-runtime kill {0}' and 'speaker-runtime delete {0}'",
            args.cid
        );
    }
    if !state.alive() {
        ContainerState::remove(&args.cid);
        outln!("{}: already exited", args.cid)?;
        return Ok(0);
    }
    if state.record(Phase::Shutdown).is_some() && state.current < Phase::Shutdown {
        let s = switch(&args.cid, Some(Phase::Shutdown))?;
        outln!("{}: {} -> {} ({} tasks)", args.cid, s.from, s.to, s.report.tasks)?;
    }
    let pid = Pid::from_raw(state.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + args.timeout;
    while state.alive() && Instant::now() < deadline {
        // Reap it if it is our child (it is not when started with --detach).
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        std::thread::sleep(Duration::from_millis(20));
    }
    let how = if state.alive() {
        // Where it waited tells an operator why the service ignored SIGTERM.
        let waiting = wait_points(state.pid);
        let _ = kill(pid, Signal::SIGKILL);
        while state.alive() {
            std::thread::sleep(Duration::from_millis(20));
        }
        format!("SIGKILL after timeout: {} after SIGTERM it still ran, {waiting}", show(args.timeout))
    } else {
        "exited after SIGTERM".to_string()
    };
    ContainerState::remove(&args.cid);
    outln!("{}: stopped ({how})", args.cid)?;
    Ok(0)
}
