//! `speaker-ctl run`: start a command as a container under its boot filter.
use anyhow::Result;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cli::RunArgs;
use crate::container::confine::Confinement;
use crate::container::launch::{launch_in, NewContainer};
use crate::container::phases;
use crate::container::state::ContainerState;
use crate::profile::Mode;

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn run(args: RunArgs) -> Result<i32> {
    let phases = match (&args.profile, &args.boot, &args.running) {
        (Some(p), _, _) => phases::from_profile_with(p, !args.no_margin)?,
        (None, Some(b), Some(r)) => phases::from_files(b, r, args.shutdown.as_deref())?,
        _ => anyhow::bail!("give --profile FILE, or --boot FILE and --running FILE"),
    };
    let mode = if args.complain { Mode::Complain } else { Mode::Enforce };
    let confine = Confinement::with_caps(&args.cap_add, !args.allow_new_privs)?;
    let spec = NewContainer { cid: args.name.clone(), phases, cmd: args.cmd.clone(), net: args.net, detach: args.detach, confine };
    let state = launch_in(spec, mode)?;
    if let Some(p) = &args.profile {
        if let Err(e) = crate::container::reload::remember(&state.cid, p) {
            eprintln!("speaker-ctl: warning: container '{}': its reload signals will only be delivered: {e:#}", state.cid);
        }
    }
    if args.detach {
        println!("{} {}", state.cid, state.pid);
        return Ok(0);
    }
    CHILD.store(state.pid, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `forward` only calls async-signal-safe functions.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    let code = loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(state.pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(anyhow::anyhow!("cannot wait for container '{}': {e}", state.cid)),
        }
    };
    ContainerState::remove(&state.cid);
    Ok(code)
}
