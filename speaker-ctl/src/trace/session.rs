//! One `speaker-ctl trace` run: checks, the traced command's start, the
//! supervisor thread, the trace loop on this (main) thread, the report.
use crate::sys::output::errln;
use anyhow::{anyhow, bail, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log_reader::spawn_log_reader;
use super::options::{Mode, Settings, TraceOptions};
use super::spawn::{exec_error_message, spawn_seized, ChildIo};
use super::state::TraceState;
use super::supervisor::{set_phase, PhaseSupervisor};
use super::trap_filter::{self, TrapFilter};
use super::{output, summary, tracer};
use crate::container::ready::{spawn_cmd_poller, Readiness};
use crate::device::DeviceError;
use crate::profile::schema::Phase;
use crate::sys::fs::errno_text;
use crate::sys::output::Target;
use crate::sys::process::{self, find_executable, pipe_cloexec};
use crate::sys::signals;

/// Picks the tracing mode: filter mode needs speaker.ko (`--mode auto`
/// falls back to ptrace without it, `--mode filter` fails).
fn choose_mode(mode: Mode) -> Result<Option<TrapFilter>> {
    if mode == Mode::Ptrace {
        return Ok(None);
    }
    match TrapFilter::open() {
        Ok(f) => Ok(Some(f)),
        Err(DeviceError::NotLoaded) if mode == Mode::Auto => {
            errln!("speaker-ctl: speaker.ko not loaded: using ptrace syscall-stops");
            Ok(None)
        }
        Err(e) if mode == Mode::Auto => {
            errln!("speaker-ctl: {e}: using ptrace syscall-stops");
            Ok(None)
        }
        Err(DeviceError::NotLoaded) => {
            bail!("--mode filter needs speaker.ko, which is not loaded (insmod speaker.ko, or use --mode ptrace)")
        }
        Err(e) => bail!("--mode filter needs speaker.ko: {e} (or use --mode ptrace)"),
    }
}

/// Finds the command like execvp(3) would, so that a missing command is
/// reported before anything starts.
fn resolve_program(name: &str) -> Result<PathBuf> {
    find_executable(name)
        .map_err(|e| anyhow!("cannot execute '{name}': {} (check the command's name, its permissions and PATH)", errno_text(e as i32)))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe_cloexec().map_err(|e| anyhow!("cannot create a pipe: {}", errno_text(e as i32)))?;
    Ok((r.into(), w.into()))
}

/// Runs `speaker-ctl trace`: 0 when the trace went as planned, else an
/// error saying why (the profile is written either way).
pub fn run(options: &TraceOptions) -> Result<i32> {
    let opts = Settings::check(options)?;
    let prog = resolve_program(&opts.cmd[0])?;
    let target = Target::parse(opts.output.as_os_str());
    output::check_writable(&target)?;
    let trap = choose_mode(opts.mode)?.map(Arc::new);
    // The program the traced command starts under (filter mode): trap all.
    let first_prog = match &trap {
        Some(_) => Some(trap_filter::program(&[]).map_err(|e| anyhow!("cannot compile the tracing filter: {e}"))?.0),
        None => None,
    };
    errln!("speaker-ctl: tracing mode: {}", if trap.is_some() { "filter (speaker.ko)" } else { "ptrace" });

    let to_c = |s: &[u8], what: &str| CString::new(s).map_err(|_| anyhow!("{what} contains a NUL byte"));
    let prog_c = to_c(prog.as_os_str().as_bytes(), "the command")?;
    let argv: Vec<CString> = opts.cmd.iter().map(|a| to_c(a.as_bytes(), "an argument")).collect::<Result<_>>()?;

    signals::catch(&signals::STOP_SIGNALS, true);
    // Orphaned tracees are reparented to us (and reaped by the trace loop),
    // not to init.
    let _ = process::become_subreaper();

    let devnull = if process::is_tty(0) { Some(std::fs::File::open("/dev/null").map(OwnedFd::from)?) } else { None };
    let log_pipes = match &opts.ready {
        Readiness::Log(_) => Some((pipe()?, pipe()?)),
        _ => None,
    };
    // With the profile on standard output (`-o -`), whatever the traced
    // tree prints goes to standard error: stdout holds the profile only.
    let profile_on_stdout = target == Target::Stdout;
    let io = ChildIo {
        stdin: devnull.as_ref().map(|f| f.as_raw_fd()),
        stdout: log_pipes.as_ref().map(|p| p.0 .1.as_raw_fd()).or(profile_on_stdout.then_some(2)),
        stderr: log_pipes.as_ref().map(|p| p.1 .1.as_raw_fd()),
    };

    let state = Arc::new(TraceState::new());
    set_phase(&state, trap.as_deref(), Phase::Boot);

    let root = spawn_seized(&prog_c, &argv, &io, &opts.cmd[0], first_prog.as_deref())?;
    state.root.store(root.pid, Ordering::Release);
    drop(devnull);

    let log_ready = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    if let (Some(((out_r, out_w), (err_r, err_w))), Readiness::Log(re)) = (log_pipes, &opts.ready) {
        drop(out_w);
        drop(err_w);
        readers.push(spawn_log_reader(out_r, profile_on_stdout, re.clone(), log_ready.clone()));
        readers.push(spawn_log_reader(err_r, true, re.clone(), log_ready.clone()));
    }

    let opts = Arc::new(opts);
    let now = Instant::now();
    let mut supervisor = PhaseSupervisor {
        state: state.clone(),
        trap: trap.clone(),
        opts: opts.clone(),
        tty: process::is_tty(2),
        log_ready,
        cmd_ready: Arc::new(AtomicBool::new(false)),
        cmd_stop: Arc::new(AtomicBool::new(false)),
        cmd_child: Arc::new(AtomicI32::new(0)),
        cmd_poller: None,
        workload: None,
        ready_at: None,
        written_gen: 0,
        last_write: None,
        write_failed: false,
        signals_seen: 0,
        killed: false,
        next_window: now + opts.auto_window,
        last_distinct: 0,
        stable_windows: 0,
        next_port_check: now,
        next_netns_check: now + Duration::from_millis(250),
        next_progress: now + Duration::from_secs(1),
        reloaded: false,
        reload_over: false,
        shutdown_at: None,
        next_wait_note: now,
    };
    if let Readiness::Cmd(cmd) = &opts.ready {
        supervisor.cmd_poller = Some(spawn_cmd_poller(
            cmd.clone(),
            Duration::from_millis(100),
            supervisor.cmd_ready.clone(),
            supervisor.cmd_stop.clone(),
            supervisor.cmd_child.clone(),
        ));
    }
    let supervisor = std::thread::spawn(move || supervisor.run());

    let end = tracer::trace_loop(&state, root, trap.as_deref());
    if let Some(t) = &trap {
        t.finish();
    }
    state.done.store(true, Ordering::Release);
    let _ = supervisor.join();
    // What is left among our children: orphans of the (killed) workload or
    // readiness probes, reparented to us as subreaper.
    process::reap_children(Duration::from_secs(1));
    // The service's output pipes reach EOF now that no traced task is left.
    for r in readers {
        let _ = r.join();
    }
    let end = end?;

    if let Some(e) = end.exec_error {
        if e < 0 {
            bail!("cannot install the tracing seccomp filter for '{}': {}", opts.cmd[0], errno_text(-e));
        }
        bail!("{}", exec_error_message(&opts.cmd[0], e));
    }
    let total_ms = state.ms();
    let rec = state.rec();
    let profile = opts.profile_of(&rec);
    output::write_profile(&target, &profile)?;
    let switches = trap.as_ref().map(|t| t.switches.load(Ordering::Relaxed));
    summary::print(&rec, total_ms, switches, state.tasks_seen.load(Ordering::Relaxed), &target.display());
    drop(rec);

    let status = end.root_status.ok_or_else(|| anyhow!("the traced command was never reaped"))?;
    // The trace succeeded only if it went as planned (see `--help`).
    let cmd = &opts.cmd[0];
    let how = process::describe_raw_status(status);
    if opts.one_shot && !state.stopped.load(Ordering::Acquire) && process::raw_exit_code(status) != 0 {
        state.fail(format!("'{cmd}' {how}: the profile records a failed run"));
    } else if !opts.one_shot && !state.stopped.load(Ordering::Acquire) {
        let secs = total_ms as f64 / 1000.0;
        match state.phase() {
            Phase::Boot => state.fail(format!(
                "'{cmd}' {how} after {secs:.1}s, before it was ready (--ready {}): the profile has only its boot phase; \
                 see its output above (a command that runs to its end, not a service, is traced with --one-shot)",
                opts.ready_text
            )),
            phase => state.fail(format!(
                "the service ended on its own in its {phase} phase ('{cmd}' {how}), before speaker-ctl stopped it: the profile has no shutdown phase"
            )),
        }
    }
    match state.failure() {
        Some(why) => bail!("{why} (profile written to {})", target.display()),
        None => Ok(0),
    }
}
