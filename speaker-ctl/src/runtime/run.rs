//! `run`: create + start; unless `--detach`, wait for the container (we are
//! its subreaper), deliver SIGTERM/SIGINT/SIGHUP as `kill` does (a reload
//! signal through the reload phase, SIGTERM/SIGINT through shutdown), then
//! delete it and exit with its status.  A container with a terminal run
//! in the foreground gets its terminal relayed ([`super::console`]).
use crate::sys::output::errln;
use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::time::Duration;

use super::args::RunArgs;
use super::bundle::Bundle;
use super::console::{self, ConsoleSocket};
use super::crun::Invocation;
use super::delete::{crun_delete, forget};
use super::kill::{reload_if_reload_signal, to_shutdown};
use super::PROG;
use super::{create, start};
use crate::container::state::ContainerState;
use crate::sys::{process, signals};

/// How long crun may take to send the terminal (it does during `create`).
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(inv: &Invocation, args: &RunArgs) -> Result<i32> {
    let Some((bundle, _)) = Bundle::asks_for_speaker(&args.create.bundle, args.create.config.as_deref())? else {
        create::forget_stale(inv, &args.create.id);
        return inv.exec_crun();
    };
    let id = &args.create.id;
    let _ = process::become_subreaper();
    // A terminal in the foreground: we are its console socket (crun's
    // `create` needs one) and relay it, as crun's own `run` would.
    let own_terminal = !args.detach && args.create.console_socket.is_none() && console::wants_terminal(&bundle.config);
    let console = if own_terminal { Some(ConsoleSocket::bind(id)?) } else { None };
    let mut c = args.create.clone();
    if let Some(sock) = &console {
        c.console_socket = Some(sock.path().to_path_buf());
    }
    let code = create::create(inv, &c)?;
    if code != 0 {
        return Ok(code);
    }
    let undo = |e: anyhow::Error| -> Result<i32> {
        if let Some(st) = inv.ours(id) {
            let crun = inv.crun()?;
            let _ = inv.run_crun(&crun, &["delete", "--force", id]);
            forget(&st);
        }
        Err(e)
    };
    let master = match console.as_ref().map(|s| s.receive(CONSOLE_TIMEOUT)).transpose() {
        Ok(m) => m,
        Err(e) => return undo(e.context(format!("container '{id}' was not started"))),
    };
    drop(console);
    if let Err(e) = start::start(inv, id) {
        return undo(e);
    }
    if args.detach {
        return Ok(0);
    }
    let relay = match master.map(console::relay).transpose() {
        Ok(r) => r,
        Err(e) => return undo(e),
    };
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
    if let Some(r) = relay {
        r.finish(Duration::from_secs(2));
    }
    // `--keep`: the stopped container stays, for crun's and speaker's
    // `delete`.
    if !args.keep {
        let _ = crun_delete(inv, &crun, &["delete", "--force", id], id);
        if let Some(st) = inv.ours(id) {
            forget(&st);
        }
    }
    Ok(code)
}
