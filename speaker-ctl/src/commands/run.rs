//! `speaker-ctl run`: start a command as a container under its boot filter.
use crate::sys::output::errln;
use anyhow::Result;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::cell::Cell;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::container::confine::Confinement;
use crate::container::engine::EngineChoice;
use crate::container::launch::{launch_in, NewContainer};
use crate::container::phases;
use crate::container::reload::{self, kill_first_process, RELOAD_TIMEOUT};
use crate::container::rootfs::Volume;
use crate::container::state::ContainerState;
use crate::profile::Mode;
use crate::sys::output::outln;
use crate::sys::{process, signals};

pub fn run(args: RunArgs) -> Result<i32> {
    let phases = match (&args.profile, &args.boot, &args.running) {
        (Some(p), _, _) => phases::from_profile_with(p, &args.compile.options(args.no_margin))?,
        (None, Some(b), Some(r)) => phases::from_files(b, r, args.shutdown.as_deref())?,
        _ => anyhow::bail!("give --profile FILE, or --boot FILE and --running FILE"),
    };
    let mode = if args.complain { Mode::Complain } else { Mode::Enforce };
    let confine = Confinement::with_caps(&args.cap_add, !args.allow_new_privs)?;
    let volumes = args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<Vec<_>, _>>()?;
    let engine = args.engine.parse::<EngineChoice>()?.resolve()?;
    let spec = NewContainer {
        cid: args.name.clone(),
        phases,
        cmd: args.cmd.clone(),
        net: args.net,
        detach: args.detach,
        confine,
        volumes,
        engine,
    };
    let state = launch_in(spec, mode)?;
    if let Some(p) = &args.profile {
        if let Err(e) = crate::container::reload::remember(&state.cid, p) {
            errln!("speaker-ctl: warning: container '{}': its reload signals will only be delivered: {e:#}", state.cid);
        }
    }
    if args.detach {
        outln!("{} {}", state.cid, state.pid)?;
        return Ok(0);
    }
    // SIGINT, SIGTERM and SIGHUP sent to a foreground speaker-ctl go to
    // the container the speaker way, as `speaker-ctl signal` sends them: a
    // reload signal of the profile through the reload phase, SIGTERM and
    // SIGINT through the shutdown phase.
    signals::catch(&signals::STOP_SIGNALS, true);
    let pid = Pid::from_raw(state.pid);
    let code = loop {
        if let Some(sig) = signals::take_last() {
            deliver(&state, sig);
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break process::exit_code(st).unwrap_or(1),
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot wait for container '{}' (pid {pid}): {e}", state.cid)),
        }
    };
    ContainerState::remove(&state.cid);
    Ok(code)
}

/// Delivers `sig`, caught by the foreground speaker-ctl, to its container
/// (see `container::reload::signal`); if speaker cannot do its part (a
/// switch fails), the signal is still delivered, as is.
fn deliver(state: &ContainerState, sig: Signal) {
    let sent = Cell::new(false);
    let send = || {
        sent.set(true);
        kill_first_process(state, sig)
    };
    match reload::signal(&state.cid, sig, RELOAD_TIMEOUT, send) {
        Ok(outcome) => errln!("speaker-ctl: {}", outcome.describe(&state.cid, sig)),
        Err(e) => {
            errln!("speaker-ctl: warning: {e}");
            if !sent.get() {
                let _ = kill_first_process(state, sig);
            }
        }
    }
}
