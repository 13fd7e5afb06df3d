//! `run`: create + start; unless `--detach`, wait for the container (we are
//! its subreaper), deliver SIGTERM/SIGINT/SIGHUP as `kill` does (a reload
//! signal through the reload phase, SIGTERM/SIGINT through shutdown), then
//! delete it and exit with its status.
use crate::sys::output::errln;
use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::time::Duration;

use super::args::RunArgs;
use super::bundle::Bundle;
use super::crun::Invocation;
use super::delete::forget;
use super::kill::{reload_if_reload_signal, to_shutdown};
use super::PROG;
use super::{create, start};
use crate::container::state::ContainerState;
use crate::sys::{process, signals};

pub fn run(inv: &Invocation, args: &RunArgs) -> Result<i32> {
    let c = &args.create;
    if Bundle::asks_for_speaker(&c.bundle, c.config.as_deref())?.is_none() {
        create::forget_stale(inv, &c.id);
        return inv.exec_crun();
    }
    let id = &c.id;
    let _ = process::become_subreaper();
    let code = create::create(inv, c)?;
    if code != 0 {
        return Ok(code);
    }
    if let Err(e) = start::start(inv, id) {
        if let Some(st) = inv.ours(id) {
            let crun = inv.crun()?;
            let _ = inv.run_crun(&crun, &["delete", "--force", id]);
            forget(&st);
        }
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    let pid = ContainerState::load(id).map(|s| s.pid)?;
    signals::catch(&signals::STOP_SIGNALS, true);
    let crun = inv.crun()?;
    let code = loop {
        if let Some(sig) = signals::take_last() {
            // As `kill` would: a reload signal through the reload phase,
            // SIGTERM and SIGINT through the shutdown phase.
            let name = (sig as i32).to_string();
            match reload_if_reload_signal(inv, id, &name) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    if matches!(sig, nix::sys::signal::Signal::SIGTERM | nix::sys::signal::Signal::SIGINT) {
                        to_shutdown(inv, id);
                    }
                    let _ = inv.run_crun(&crun, &["kill", id, &name]);
                }
                Err(e) => errln!("{PROG}: warning: container '{id}': {sig}: {e:#}"),
            }
        }
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(st @ (WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _))) if p.as_raw() == pid => {
                break process::exit_code(st).unwrap_or(1)
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR | Errno::ECHILD) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => {}
            Err(e) => bail!("cannot wait for container '{id}': {e}"),
        }
    };
    // `--keep`: the stopped container stays, for crun's and speaker's
    // `delete`.
    if !args.keep {
        let _ = inv.run_crun(&crun, &["delete", "--force", id]);
        if let Some(st) = inv.ours(id) {
            forget(&st);
        }
    }
    Ok(code)
}
