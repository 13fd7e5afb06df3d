//! One `speaker-ctl trace` run: option checks, starting the traced command,
//! the control loop (readiness, phase changes, workload, SIGTERM, profile
//! rewrites, progress) and the final report.
use anyhow::{anyhow, bail, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::filter::{self, FilterCtl};
use super::ptrace::{self, ChildIo};
use super::ready;
use super::record::{Abi, Recording};
use super::spec::{opt_duration, parse_duration, Mode, ReadySpec};
use super::write;
use crate::cli::TraceArgs;
use crate::device::DeviceError;
use crate::profile::schema::Phase;

/// State shared by the tracer (main thread) and the control thread.
pub struct Shared {
    /// The start of the trace; `first_seen_ms` counts from here.
    pub t0: Instant,
    /// The current phase ([`Phase::index`]), read at every syscall-entry stop.
    pub phase: AtomicU8,
    pub rec: Mutex<Recording>,
    pub root: AtomicI32,
    /// The root has not been reaped yet.
    pub root_alive: AtomicBool,
    /// The root's first exec (CMD itself) succeeded.
    pub exec_done: AtomicBool,
    pub live_tasks: AtomicUsize,
    pub tasks_seen: AtomicU64,
    /// The tracer has finished (no traced task left).
    pub done: AtomicBool,
    /// Filter mode: speaker.ko's side (`None` in ptrace mode).
    pub filter: Option<FilterCtl>,
}

impl Shared {
    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    pub fn phase(&self) -> Phase {
        Phase::from_index(self.phase.load(Ordering::Acquire) as u32).unwrap_or(Phase::Boot)
    }

    /// Makes `p` the current phase; the phase is begun in the recording
    /// before the tracer can see it.  In filter mode the filter is switched
    /// to the new phase's program before this returns.
    fn set_phase(&self, p: Phase) {
        match &self.filter {
            Some(f) => f.change_phase(self, p),
            None => self.enter_phase(p),
        }
    }

    /// [`Shared::set_phase`] without the filter switch.
    pub(super) fn enter_phase(&self, p: Phase) {
        let mut rec = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        rec.enter(p, self.ms());
        self.phase.store(p.index() as u8, Ordering::Release);
    }

    /// The syscalls `phase` has seen so far.
    pub(super) fn seen(&self, phase: Phase) -> Vec<(Abi, String)> {
        self.rec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen(phase)
    }
}

/// `speaker-ctl trace`'s options, checked.
struct Options {
    ready: ReadySpec,
    /// `ready` as recorded in the profile.
    ready_text: String,
    workload: Option<String>,
    running_for: Option<Duration>,
    stop_after: Option<Duration>,
    auto_window: Duration,
    auto_windows: u32,
    name: Option<String>,
    output: PathBuf,
    cmd: Vec<String>,
}

impl Options {
    fn from_args(a: &TraceArgs) -> Result<Options> {
        let (ready, ready_text) = match &a.ready {
            Some(s) => (ReadySpec::parse(s)?, s.trim().to_string()),
            None => (ReadySpec::Auto, "auto".to_string()),
        };
        let auto_window = parse_duration("--auto-window", &a.auto_window)?;
        if auto_window < Duration::from_millis(10) {
            bail!(
                "invalid --auto-window '{}': it must be at least 10ms",
                a.auto_window
            );
        }
        if a.auto_windows == 0 {
            bail!("invalid --auto-windows 0: it must be at least 1");
        }
        if a.cmd.first().is_none_or(|c| c.is_empty()) {
            bail!("no command to trace: give it after '--'");
        }
        Ok(Options {
            ready,
            ready_text,
            workload: a.workload.clone(),
            running_for: opt_duration("--running-for", a.running_for.as_deref())?,
            stop_after: opt_duration("--stop-after", a.stop_after.as_deref())?,
            auto_window,
            auto_windows: a.auto_windows,
            name: a.name.clone().or_else(|| {
                Path::new(&a.cmd[0])
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            }),
            output: a.output.clone(),
            cmd: a.cmd.clone(),
        })
    }
}

/// Picks the tracing mode: filter mode needs speaker.ko (`--mode auto`
/// falls back to ptrace without it, `--mode filter` fails).
fn choose_mode(mode: Mode) -> Result<Option<FilterCtl>> {
    if mode == Mode::Ptrace {
        return Ok(None);
    }
    match FilterCtl::open() {
        Ok(f) => Ok(Some(f)),
        Err(DeviceError::NotLoaded) if mode == Mode::Auto => {
            eprintln!("speaker-ctl: speaker.ko not loaded: using ptrace syscall-stops");
            Ok(None)
        }
        Err(e) if mode == Mode::Auto => {
            eprintln!("speaker-ctl: {e}: using ptrace syscall-stops");
            Ok(None)
        }
        Err(DeviceError::NotLoaded) => bail!(
            "--mode filter needs speaker.ko, which is not loaded (insmod speaker.ko, or use \
             --mode ptrace)"
        ),
        Err(e) => bail!("--mode filter needs speaker.ko: {e} (or use --mode ptrace)"),
    }
}

/// Finds `name` like execvp(3) would, so that a missing command is reported
/// before anything starts.
fn resolve_program(name: &str) -> Result<PathBuf> {
    let fail = |e: i32| {
        anyhow!(
            "cannot execute '{name}': {} (check the command's name, its permissions and PATH)",
            ptrace::errno_text(e)
        )
    };
    let check = |p: &Path| -> std::result::Result<(), i32> {
        let md = std::fs::metadata(p).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
        if md.is_dir() {
            return Err(libc::EISDIR);
        }
        if md.permissions().mode() & 0o111 == 0 {
            return Err(libc::EACCES);
        }
        let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
        // SAFETY: NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EACCES));
        }
        Ok(())
    };
    if name.contains('/') {
        check(Path::new(name)).map_err(fail)?;
        return Ok(PathBuf::from(name));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let mut err = libc::ENOENT;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(name);
        match check(&cand) {
            Ok(()) => return Ok(cand),
            Err(libc::ENOENT) | Err(libc::ENOTDIR) => {}
            Err(e) => err = e,
        }
    }
    Err(fail(err))
}

// ------------------------------------------------------------------ signals

/// SIGINT/SIGTERM/SIGHUP received by speaker-ctl.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_sig: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only increments an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The processes (thread-group ids) speaker-ctl traces, from /proc.
fn traced_processes() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let traced = status
            .lines()
            .any(|l| l.strip_prefix("TracerPid:").is_some_and(|v| v.trim() == me));
        if traced {
            out.push(pid);
        }
    }
    out
}

/// One pid per network namespace among `pids`.
fn one_per_netns(pids: Vec<i32>) -> Vec<i32> {
    let mut seen = std::collections::HashSet::new();
    pids.into_iter()
        .filter(
            |pid| match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
                Ok(ns) => seen.insert(ns),
                Err(_) => false,
            },
        )
        .collect()
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty on any fd is safe.
    unsafe { libc::isatty(fd) == 1 }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended ({status:?})"),
    }
}

// ------------------------------------------------------------------ control

struct Workload {
    thread: JoinHandle<()>,
    /// The workload shell's process group (its pid).
    pgid: Arc<AtomicI32>,
    done: Arc<AtomicBool>,
}

struct Control {
    shared: Arc<Shared>,
    opts: Arc<Options>,
    tty: bool,
    log_ready: Arc<AtomicBool>,
    cmd_ready: Arc<AtomicBool>,
    cmd_stop: Arc<AtomicBool>,
    cmd_child: Arc<AtomicI32>,
    cmd_poller: Option<JoinHandle<()>>,
    workload: Option<Workload>,
    ready_at: Option<Instant>,
    written_gen: u64,
    last_write: Option<Instant>,
    write_failed: bool,
    signals_seen: usize,
    killed: bool,
    next_window: Instant,
    last_distinct: usize,
    stable_windows: u32,
    next_port_check: Instant,
    next_netns_check: Instant,
    next_progress: Instant,
}

impl Control {
    fn note(&self, msg: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("speaker-ctl: {msg}");
    }

    fn write_profile(&mut self) {
        if !self.shared.exec_done.load(Ordering::Acquire) {
            return;
        }
        let (profile, gen) = {
            let rec = self.shared.rec.lock().unwrap_or_else(|e| e.into_inner());
            let p = rec.to_profile(self.opts.name.clone(), Some(self.opts.ready_text.clone()));
            (p, rec.generation)
        };
        match write::write_profile(&self.opts.output, &profile) {
            Ok(()) => self.written_gen = gen,
            Err(e) if !self.write_failed => {
                self.write_failed = true;
                self.note(&format!("warning: {e:#}; will retry"));
            }
            Err(_) => {}
        }
        self.last_write = Some(Instant::now());
    }

    fn end_boot(&mut self, why: &str) {
        self.shared.set_phase(Phase::Running);
        self.ready_at = Some(Instant::now());
        self.cmd_stop.store(true, Ordering::Release);
        if self.tty {
            let s = self.shared.t0.elapsed().as_secs_f64();
            self.note(&format!("boot ended after {s:.2}s ({why}): running"));
        }
        self.write_profile();
        if let Some(cmd) = self.opts.workload.clone() {
            self.start_workload(cmd);
        }
    }

    fn start_workload(&mut self, cmd: String) {
        let pgid = Arc::new(AtomicI32::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d, tty) = (pgid.clone(), done.clone(), self.tty);
        let thread = std::thread::spawn(move || {
            let clear = if tty { "\r\x1b[2K" } else { "" };
            // Its own process group (killed as a whole at the end), stdin
            // from /dev/null (a background group must not read the terminal).
            let child = Command::new("/bin/sh")
                .arg("-c")
                .arg(&cmd)
                .stdin(Stdio::null())
                .process_group(0)
                .spawn();
            match child {
                Ok(mut child) => {
                    p.store(child.id() as i32, Ordering::Release);
                    let st = child.wait();
                    match st {
                        Ok(st) => eprintln!("{clear}speaker-ctl: workload {}", describe(st)),
                        Err(e) => eprintln!("{clear}speaker-ctl: workload: wait failed: {e}"),
                    }
                }
                Err(e) => eprintln!("{clear}speaker-ctl: cannot run the workload (sh -c): {e}"),
            }
            d.store(true, Ordering::Release);
        });
        self.workload = Some(Workload { thread, pgid, done });
    }

    /// Ends the running phase (or boot, if still there): from now on,
    /// everything is shutdown; then SIGTERM goes to the root.
    fn begin_shutdown(&mut self, why: &str) {
        if self.shared.phase() == Phase::Shutdown {
            return;
        }
        self.shared.set_phase(Phase::Shutdown);
        self.cmd_stop.store(true, Ordering::Release);
        if self.tty {
            let s = self.shared.t0.elapsed().as_secs_f64();
            self.note(&format!("{why} after {s:.2}s: SIGTERM, shutdown"));
        }
        self.write_profile();
        let root = self.shared.root.load(Ordering::Acquire);
        if self.shared.root_alive.load(Ordering::Acquire) {
            // SAFETY: signalling our own (traced) child.
            unsafe { libc::kill(root, libc::SIGTERM) };
        } else {
            // The root is gone (e.g. a daemonizing service): tell every
            // traced process instead.
            for pid in traced_processes() {
                // SAFETY: signalling a process we trace.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }

    fn kill_all(&mut self) {
        self.killed = true;
        self.note("interrupted again: killing the traced processes");
        let root = self.shared.root.load(Ordering::Acquire);
        let mut pids = traced_processes();
        if self.shared.root_alive.load(Ordering::Acquire) {
            pids.push(root);
        }
        for pid in pids {
            // SAFETY: signalling processes we trace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    fn boot_ready(&mut self, now: Instant) -> Option<String> {
        match &self.opts.ready {
            ReadySpec::Port(port) => {
                if now < self.next_port_check {
                    return None;
                }
                self.next_port_check = now + Duration::from_millis(25);
                // The root's network namespace every time; every 250ms (or
                // once the root is gone), that of every traced process, in
                // case the service lives in a namespace of its own.
                let mut pids = Vec::new();
                let root_alive = self.shared.root_alive.load(Ordering::Acquire);
                if root_alive {
                    pids.push(self.shared.root.load(Ordering::Acquire));
                }
                if !root_alive || now >= self.next_netns_check {
                    self.next_netns_check = now + Duration::from_millis(250);
                    pids.extend(one_per_netns(traced_processes()));
                }
                pids.into_iter()
                    .any(|pid| ready::port_listening(pid, *port) == Some(true))
                    .then(|| format!("port {port} listening"))
            }
            ReadySpec::Cmd(_) => self
                .cmd_ready
                .load(Ordering::Acquire)
                .then(|| "ready command succeeded".into()),
            ReadySpec::Log(_) => self
                .log_ready
                .load(Ordering::Acquire)
                .then(|| "ready line logged".into()),
            ReadySpec::Auto => {
                if !self.shared.exec_done.load(Ordering::Acquire) {
                    self.next_window = now + self.opts.auto_window;
                    return None;
                }
                while now >= self.next_window {
                    self.next_window += self.opts.auto_window;
                    let d = self
                        .shared
                        .rec
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .distinct(Phase::Boot);
                    if d == self.last_distinct {
                        self.stable_windows += 1;
                    } else {
                        self.last_distinct = d;
                        self.stable_windows = 0;
                    }
                }
                (self.stable_windows >= self.opts.auto_windows)
                    .then(|| format!("no new syscall for {} windows", self.opts.auto_windows))
            }
        }
    }

    fn progress(&mut self, now: Instant) {
        if !self.tty || now < self.next_progress {
            return;
        }
        self.next_progress = now + Duration::from_secs(1);
        let distinct = self
            .shared
            .rec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .distinct_total();
        eprint!(
            "\r\x1b[2Kspeaker-ctl: {} phase, {:.0}s elapsed, {} distinct syscalls, {} tasks traced",
            self.shared.phase(),
            self.shared.t0.elapsed().as_secs_f64(),
            distinct,
            self.shared.live_tasks.load(Ordering::Relaxed)
        );
    }

    fn run(mut self) {
        let tick = Duration::from_millis(10);
        while !self.shared.done.load(Ordering::Acquire) {
            std::thread::sleep(tick);
            let now = Instant::now();
            let phase = self.shared.phase();

            let sigs = SIGNALS.load(Ordering::SeqCst);
            if sigs > self.signals_seen {
                self.signals_seen = sigs;
                if phase != Phase::Shutdown {
                    self.begin_shutdown("interrupted");
                } else if !self.killed {
                    self.kill_all();
                }
            }
            if let Some(d) = self.opts.stop_after {
                if now >= self.shared.t0 + d {
                    self.begin_shutdown("--stop-after");
                }
            }
            let phase = self.shared.phase();
            if phase == Phase::Boot {
                if let Some(why) = self.boot_ready(now) {
                    self.end_boot(&why);
                }
            } else if phase == Phase::Running {
                let workload_done = self
                    .workload
                    .as_ref()
                    .map(|w| w.done.load(Ordering::Acquire));
                let running_for_done = self
                    .opts
                    .running_for
                    .map(|d| now >= self.ready_at.unwrap_or(now) + d);
                let stop = match (workload_done, running_for_done) {
                    (None, None) => false,
                    (w, r) => w.unwrap_or(true) && r.unwrap_or(true),
                };
                if stop {
                    let why = if workload_done.is_some() {
                        "workload done"
                    } else {
                        "--running-for"
                    };
                    self.begin_shutdown(why);
                }
            }
            let gen = self
                .shared
                .rec
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .generation;
            if gen != self.written_gen
                && self
                    .last_write
                    .is_none_or(|t| now >= t + Duration::from_secs(1))
            {
                self.write_profile();
            }
            self.progress(now);
        }
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        // Nothing is traced any more: stop the helpers.
        self.cmd_stop.store(true, Ordering::Release);
        let probe = self.cmd_child.load(Ordering::Acquire);
        if probe > 0 {
            // SAFETY: our own child's process group (the readiness probe).
            unsafe { libc::kill(-probe, libc::SIGKILL) };
        }
        if let Some(h) = self.cmd_poller.take() {
            let _ = h.join();
        }
        if let Some(w) = self.workload.take() {
            let pgid = w.pgid.load(Ordering::Acquire);
            if pgid > 0 {
                // The workload (or what it left in the background): its
                // process group, which outlives the shell while any member
                // is alive.
                // SAFETY: signalling the process group we created.
                unsafe { libc::kill(-pgid, libc::SIGTERM) };
            }
            let _ = w.thread.join();
        }
    }
}

// ------------------------------------------------------------------ run

/// Reaps what is left among our children once the trace is over: orphans of
/// the (killed) workload or readiness probes, reparented to us as subreaper.
/// Gives them a second at most.
fn reap_strays() {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        // SAFETY: no status wanted.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL | libc::WNOHANG) };
        if r < 0 || Instant::now() > deadline {
            return;
        }
        if r == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot create a pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fresh fds, ours.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// Runs `speaker-ctl trace`; returns the traced command's exit status.
pub fn run(args: &TraceArgs) -> Result<i32> {
    let opts = Options::from_args(args)?;
    let mode = Mode::parse(&args.mode)?;
    let prog = resolve_program(&opts.cmd[0])?;
    write::check_writable(&opts.output)?;
    let filter_ctl = choose_mode(mode)?;
    // The program the traced command starts under (filter mode): trap all.
    let first_prog = match &filter_ctl {
        Some(_) => Some(
            filter::program(&[])
                .map_err(|e| anyhow!("cannot compile the tracing filter: {e}"))?
                .0,
        ),
        None => None,
    };
    eprintln!(
        "speaker-ctl: tracing mode: {}",
        if filter_ctl.is_some() {
            "filter (speaker.ko)"
        } else {
            "ptrace"
        }
    );

    let to_c =
        |s: &[u8], what: &str| CString::new(s).map_err(|_| anyhow!("{what} contains a NUL byte"));
    let prog_c = to_c(prog.as_os_str().as_bytes(), "the command")?;
    let argv: Vec<CString> = opts
        .cmd
        .iter()
        .map(|a| to_c(a.as_bytes(), "an argument"))
        .collect::<Result<_>>()?;

    install_signal_handlers();
    // Orphaned tracees are reparented to us (and reaped by the trace loop),
    // not to init.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let devnull = if is_tty(0) {
        Some(std::fs::File::open("/dev/null").map(OwnedFd::from)?)
    } else {
        None
    };
    let log_pipes = match &opts.ready {
        ReadySpec::Log(_) => Some((pipe_cloexec()?, pipe_cloexec()?)),
        _ => None,
    };
    let io = ChildIo {
        stdin: devnull.as_ref().map(|f| f.as_raw_fd()),
        stdout: log_pipes.as_ref().map(|p| p.0 .1.as_raw_fd()),
        stderr: log_pipes.as_ref().map(|p| p.1 .1.as_raw_fd()),
    };

    let shared = Arc::new(Shared {
        t0: Instant::now(),
        phase: AtomicU8::new(Phase::Boot.index() as u8),
        rec: Mutex::new(Recording::default()),
        root: AtomicI32::new(0),
        root_alive: AtomicBool::new(true),
        exec_done: AtomicBool::new(false),
        live_tasks: AtomicUsize::new(0),
        tasks_seen: AtomicU64::new(0),
        done: AtomicBool::new(false),
        filter: filter_ctl,
    });
    shared.set_phase(Phase::Boot);

    let root = ptrace::spawn_seized(&prog_c, &argv, &io, &opts.cmd[0], first_prog.as_deref())?;
    shared.root.store(root.pid, Ordering::Release);
    drop(devnull);

    let log_ready = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    if let (Some(((out_r, out_w), (err_r, err_w))), ReadySpec::Log(re)) = (log_pipes, &opts.ready) {
        drop(out_w);
        drop(err_w);
        readers.push(ready::spawn_log_reader(
            out_r,
            false,
            re.clone(),
            log_ready.clone(),
        ));
        readers.push(ready::spawn_log_reader(
            err_r,
            true,
            re.clone(),
            log_ready.clone(),
        ));
    }

    let opts = Arc::new(opts);
    let now = Instant::now();
    let mut control = Control {
        shared: shared.clone(),
        opts: opts.clone(),
        tty: is_tty(2),
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
    };
    if let ReadySpec::Cmd(cmd) = &opts.ready {
        control.cmd_poller = Some(ready::spawn_cmd_poller(
            cmd.clone(),
            Duration::from_millis(100),
            control.cmd_ready.clone(),
            control.cmd_stop.clone(),
            control.cmd_child.clone(),
        ));
    }
    let control = std::thread::spawn(move || control.run());

    let end = ptrace::trace_loop(&shared, root, shared.filter.as_ref());
    if let Some(f) = &shared.filter {
        f.finish();
    }
    shared.done.store(true, Ordering::Release);
    let _ = control.join();
    reap_strays();
    // The service's output pipes reach EOF now that no traced task is left.
    for r in readers {
        let _ = r.join();
    }
    let end = end?;

    if let Some(e) = end.exec_error {
        if e < 0 {
            bail!(
                "cannot install the tracing seccomp filter for '{}': {}",
                opts.cmd[0],
                ptrace::errno_text(-e)
            );
        }
        bail!("{}", ptrace::exec_error_message(&opts.cmd[0], e));
    }
    let total_ms = shared.ms();
    let rec = shared.rec.lock().unwrap_or_else(|e| e.into_inner());
    let profile = rec.to_profile(opts.name.clone(), Some(opts.ready_text.clone()));
    write::write_profile(&opts.output, &profile)?;

    // The summary: one line per phase begun.
    let begun: Vec<(Phase, &super::record::PhaseRec)> = Phase::ALL
        .iter()
        .filter_map(|&p| rec.phases[p.index() as usize].as_ref().map(|r| (p, r)))
        .collect();
    for (i, (phase, r)) in begun.iter().enumerate() {
        let end_ms = begun.get(i + 1).map_or(total_ms, |n| n.1.entered_ms);
        let secs = end_ms.saturating_sub(r.entered_ms) as f64 / 1000.0;
        if shared.filter.is_some() {
            eprintln!(
                "speaker-ctl: {phase}: {} syscalls, {} seccomp stops, {secs:.2}s",
                r.entries.len(),
                r.stops
            );
        } else {
            eprintln!(
                "speaker-ctl: {phase}: {} syscalls, {} calls, {secs:.2}s",
                r.entries.len(),
                r.calls
            );
        }
    }
    if rec.unknown_calls > 0 {
        if let Some((abi, nr)) = rec.unknown_example {
            eprintln!(
                "speaker-ctl: warning: {} calls of syscall numbers libseccomp has no name for \
                 were not recorded (e.g. {} {nr})",
                rec.unknown_calls,
                abi.name()
            );
        }
    }
    if let Some(f) = &shared.filter {
        let stops: u64 = begun.iter().map(|(_, r)| r.stops).sum();
        eprintln!(
            "speaker-ctl: filter mode: {stops} seccomp stops, {} filter switches through speaker.ko",
            f.switches.load(Ordering::Relaxed)
        );
    }
    eprintln!(
        "speaker-ctl: {} tasks traced; profile written to {}",
        shared.tasks_seen.load(Ordering::Relaxed),
        opts.output.display()
    );
    drop(rec);

    let status = end
        .root_status
        .ok_or_else(|| anyhow!("the traced command was never reaped"))?;
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    })
}
