//! The phase supervisor (the control thread of a trace).
use crate::sys::output::{err, errln};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::Settings;
use super::output;
use super::state::TraceState;
use super::trap_filter::TrapFilter;
use super::workload::Workload;
use crate::container::ready::{spawn_cmd_poller, Readiness};
use crate::profile::schema::Phase;
use crate::sys::duration::show;
use crate::sys::output::Target;
use crate::sys::{procfs, signals};

fn plural_es(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "es"
    }
}

/// `a, b and 3 more`.
fn list(items: &[String]) -> String {
    match items.len() {
        0 => "no process".to_string(),
        n if n <= 5 => items.join(", "),
        n => format!("{} and {} more", items[..5].join(", "), n - 5),
    }
}

/// Makes `p` the current phase; in filter mode the filter is switched to
/// the new phase's program before this returns.
pub fn set_phase(state: &TraceState, trap: Option<&TrapFilter>, p: Phase) {
    match trap {
        Some(t) => t.change_phase(|| {
            state.enter_phase(p);
            (p, state.seen(p))
        }),
        None => state.enter_phase(p),
    }
}

/// The control thread: decides when each phase ends (readiness, workload,
/// durations, signals), sends SIGTERM, rewrites the profile and shows
/// progress, while the main thread traces.
pub struct PhaseSupervisor {
    pub state: Arc<TraceState>,
    pub trap: Option<Arc<TrapFilter>>,
    pub opts: Arc<Settings>,
    pub tty: bool,
    pub log_ready: Arc<AtomicBool>,
    pub cmd_ready: Arc<AtomicBool>,
    pub cmd_stop: Arc<AtomicBool>,
    pub cmd_child: Arc<AtomicI32>,
    pub cmd_poller: Option<JoinHandle<()>>,
    pub workload: Option<Workload>,
    pub ready_at: Option<Instant>,
    pub written_gen: u64,
    pub last_write: Option<Instant>,
    pub write_failed: bool,
    pub signals_seen: usize,
    pub killed: bool,
    pub next_window: Instant,
    pub last_distinct: usize,
    pub stable_windows: u32,
    pub next_port_check: Instant,
    pub next_netns_check: Instant,
    pub next_progress: Instant,
    /// The reload (`--reload-signal`) has been made.
    pub reloaded: bool,
    /// The reload's readiness condition held (the reload phase is complete).
    pub reload_over: bool,
    /// When speaker-ctl sent SIGTERM (the shutdown phase began).
    pub shutdown_at: Option<Instant>,
    /// When the next "waiting in shutdown" line is due.
    pub next_wait_note: Instant,
}

/// How often a shutdown that takes its time is reported.
const WAIT_NOTE_EVERY: Duration = Duration::from_secs(5);

impl PhaseSupervisor {
    fn note(&self, msg: &str) {
        if self.tty {
            err!("\r\x1b[2K");
        }
        errln!("speaker-ctl: {msg}");
    }

    fn write_profile(&mut self) {
        // Only a regular file is rewritten as the trace goes (a device, a
        // FIFO or standard output gets the profile once, at the end).
        let target = Target::parse(self.opts.output.as_os_str());
        if !self.state.exec_done.load(Ordering::Acquire) || !target.is_replaced() {
            return;
        }
        let (profile, gen) = {
            let rec = self.state.rec();
            (self.opts.profile_of(&rec), rec.generation)
        };
        match output::write_profile(&target, &profile) {
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
        set_phase(&self.state, self.trap.as_deref(), Phase::Running);
        self.ready_at = Some(Instant::now());
        self.cmd_stop.store(true, Ordering::Release);
        let s = self.state.t0.elapsed().as_secs_f64();
        let until = match (&self.opts.workload, self.opts.running_for) {
            (Some(_), Some(d)) => format!("until the workload has ended and {} have passed", show(d)),
            (Some(_), None) => "until the workload ends".to_string(),
            (None, Some(d)) => format!("for {} (--running-for)", show(d)),
            (None, None) => "until Ctrl-C (SIGINT or SIGTERM to speaker-ctl)".to_string(),
        };
        let then = if self.opts.reload.is_some() { ", then the reload" } else { "" };
        self.note(&format!("boot ended after {s:.2}s ({why}): running {until}{then}"));
        self.write_profile();
        if let Some(cmd) = self.opts.workload.clone() {
            let profile_on_stdout = Target::parse(self.opts.output.as_os_str()) == Target::Stdout;
            self.workload = Some(Workload::start(cmd, self.tty, profile_on_stdout));
        }
    }

    /// Ends the running phase (or boot, if still there): from now on,
    /// everything is shutdown; then SIGTERM goes to the root.
    fn begin_shutdown(&mut self, why: &str) {
        if self.state.phase() == Phase::Shutdown {
            return;
        }
        let from = self.state.phase();
        set_phase(&self.state, self.trap.as_deref(), Phase::Shutdown);
        self.cmd_stop.store(true, Ordering::Release);
        let s = self.state.t0.elapsed().as_secs_f64();
        if from == Phase::Boot {
            let what = if self.opts.one_shot {
                "before it ended".to_string()
            } else {
                format!("before it was ready (--ready {})", self.opts.ready_text)
            };
            self.state.fail(format!("'{}' was stopped ({why}) {what}: the profile has no running phase", self.opts.cmd[0]));
        } else if from == Phase::Reload && !self.reload_over {
            self.state
                .fail(format!("'{}' was stopped ({why}) before its reload was over: the reload phase may be incomplete", self.opts.cmd[0]));
        }
        let tasks = self.live_processes();
        let limit = match self.opts.shutdown_timeout {
            Some(d) => format!(", SIGKILL after {} (--shutdown-timeout)", show(d)),
            None => String::new(),
        };
        self.note(&format!(
            "{why} after {s:.2}s: SIGTERM, shutdown: waiting for {} process{} to exit{limit}",
            tasks.len(),
            plural_es(tasks.len())
        ));
        self.write_profile();
        self.state.stopped.store(true, Ordering::Release);
        let now = Instant::now();
        self.shutdown_at = Some(now);
        self.next_wait_note = now + WAIT_NOTE_EVERY;
        self.signal_service(Signal::SIGTERM);
    }

    /// The traced processes still alive: `pid (comm)`.
    fn live_processes(&self) -> Vec<String> {
        let mut pids = procfs::traced_by(std::process::id());
        let root = self.state.root.load(Ordering::Acquire);
        if self.state.root_alive.load(Ordering::Acquire) && !pids.contains(&root) {
            pids.insert(0, root);
        }
        pids.into_iter()
            .map(|pid| match procfs::status_field(pid, "Name").ok().flatten() {
                Some(comm) => format!("{pid} ({comm})"),
                None => pid.to_string(),
            })
            .collect()
    }

    /// In shutdown: says which processes it waits for, every few
    /// seconds, and SIGKILLs them at `--shutdown-timeout`.
    fn watch_shutdown(&mut self, now: Instant) {
        let Some(at) = self.shutdown_at else { return };
        if let Some(limit) = self.opts.shutdown_timeout {
            if !self.killed && now >= at + limit {
                let left = self.live_processes();
                self.state.fail(format!(
                    "the service did not exit within {} of SIGTERM (--shutdown-timeout): {} killed with SIGKILL; its shutdown phase may be incomplete",
                    show(limit),
                    left.join(", ")
                ));
                self.note(&format!("{} still running {} after SIGTERM (--shutdown-timeout): SIGKILL", list(&left), show(limit)));
                self.kill_traced();
                return;
            }
        }
        if now >= self.next_wait_note && !self.killed {
            self.next_wait_note = now + WAIT_NOTE_EVERY;
            let left = self.live_processes();
            if !left.is_empty() {
                self.note(&format!(
                    "still waiting {:.0}s after SIGTERM for {}{}",
                    (now - at).as_secs_f64(),
                    list(&left),
                    if self.opts.shutdown_timeout.is_none() {
                        " (Ctrl-C again kills them; --shutdown-timeout bounds the wait)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }

    /// Sends `sig` to the traced command, or, once it is gone (e.g. a
    /// daemonizing service), to every traced process.
    fn signal_service(&self, sig: Signal) {
        let root = self.state.root.load(Ordering::Acquire);
        if self.state.root_alive.load(Ordering::Acquire) {
            let _ = kill(Pid::from_raw(root), sig);
        } else {
            for pid in procfs::traced_by(std::process::id()) {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }

    /// Ends the running phase with the reload signal (`--reload-signal`):
    /// from now on everything is the reload phase, until the reload's
    /// readiness condition holds.
    fn begin_reload(&mut self, why: &str) {
        let opts = self.opts.clone();
        let Some(reload) = &opts.reload else { return };
        let sig = reload.signal;
        self.reloaded = true;
        set_phase(&self.state, self.trap.as_deref(), Phase::Reload);
        self.reset_readiness();
        if let Readiness::Cmd(cmd) = &reload.ready {
            if let Some(h) = self.cmd_poller.take() {
                let _ = h.join();
            }
            self.cmd_ready = Arc::new(AtomicBool::new(false));
            self.cmd_stop = Arc::new(AtomicBool::new(false));
            self.cmd_poller = Some(spawn_cmd_poller(
                cmd.clone(),
                Duration::from_millis(100),
                self.cmd_ready.clone(),
                self.cmd_stop.clone(),
                self.cmd_child.clone(),
            ));
        }
        let s = self.state.t0.elapsed().as_secs_f64();
        self.note(&format!("{why} after {s:.2}s: {sig}, reload"));
        self.write_profile();
        self.signal_service(sig);
    }

    /// Starts the `auto` heuristic afresh (a new phase).
    fn reset_readiness(&mut self) {
        let now = Instant::now();
        self.next_window = now + self.opts.auto_window;
        self.last_distinct = 0;
        self.stable_windows = 0;
        self.next_port_check = now;
    }

    fn kill_all(&mut self) {
        self.note("interrupted again: killing the traced processes");
        self.state.fail("interrupted twice: the traced processes were killed (SIGKILL); the shutdown phase may be incomplete".to_string());
        self.kill_traced();
    }

    /// SIGKILLs every traced process.
    fn kill_traced(&mut self) {
        self.killed = true;
        let root = self.state.root.load(Ordering::Acquire);
        let mut pids = procfs::traced_by(std::process::id());
        if self.state.root_alive.load(Ordering::Acquire) {
            pids.push(root);
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Whether the current phase's readiness condition (`--ready` in boot,
    /// `--reload-ready` in reload) holds now; why, if it does.
    fn ready_now(&mut self, ready: &Readiness, phase: Phase, now: Instant) -> Option<String> {
        match ready {
            Readiness::Port(port) => {
                if now < self.next_port_check {
                    return None;
                }
                self.next_port_check = now + Duration::from_millis(25);
                // The root's network namespace every time; every 250ms (or
                // once the root is gone), that of every traced process, in
                // case the service lives in a namespace of its own.
                let mut pids = Vec::new();
                let root_alive = self.state.root_alive.load(Ordering::Acquire);
                if root_alive {
                    pids.push(self.state.root.load(Ordering::Acquire));
                }
                if !root_alive || now >= self.next_netns_check {
                    self.next_netns_check = now + Duration::from_millis(250);
                    pids.extend(procfs::one_per_netns(procfs::traced_by(std::process::id())));
                }
                pids.into_iter().any(|pid| procfs::port_listening(pid, *port) == Some(true)).then(|| format!("port {port} listening"))
            }
            Readiness::Cmd(_) => self.cmd_ready.load(Ordering::Acquire).then(|| "ready command succeeded".into()),
            Readiness::Log(_) => self.log_ready.load(Ordering::Acquire).then(|| "ready line logged".into()),
            Readiness::Auto => {
                if !self.state.exec_done.load(Ordering::Acquire) {
                    self.next_window = now + self.opts.auto_window;
                    return None;
                }
                while now >= self.next_window {
                    self.next_window += self.opts.auto_window;
                    let d = self.state.rec().distinct(phase);
                    if d == self.last_distinct {
                        self.stable_windows += 1;
                    } else {
                        self.last_distinct = d;
                        self.stable_windows = 0;
                    }
                }
                // A reload is over only once the service has reacted to it.
                let reacted = phase != Phase::Reload || self.last_distinct > 0;
                (reacted && self.stable_windows >= self.opts.auto_windows)
                    .then(|| format!("no new syscall for {} windows", self.opts.auto_windows))
            }
        }
    }

    fn progress(&mut self, now: Instant) {
        if !self.tty || now < self.next_progress {
            return;
        }
        self.next_progress = now + Duration::from_secs(1);
        let distinct = self.state.rec().distinct_total();
        err!(
            "\r\x1b[2Kspeaker-ctl: {} phase, {:.0}s elapsed, {} distinct syscalls, {} tasks traced",
            self.state.phase(),
            self.state.t0.elapsed().as_secs_f64(),
            distinct,
            self.state.live_tasks.load(Ordering::Relaxed)
        );
    }

    pub fn run(mut self) {
        let tick = Duration::from_millis(10);
        while !self.state.done.load(Ordering::Acquire) {
            std::thread::sleep(tick);
            let now = Instant::now();
            let phase = self.state.phase();

            let sigs = signals::count();
            if sigs > self.signals_seen {
                self.signals_seen = sigs;
                if phase != Phase::Shutdown {
                    self.begin_shutdown("interrupted");
                } else if !self.killed {
                    self.kill_all();
                }
            }
            if let Some(d) = self.opts.stop_after {
                if now >= self.state.t0 + d {
                    self.begin_shutdown("--stop-after");
                }
            }
            let phase = self.state.phase();
            let opts = self.opts.clone();
            if phase == Phase::Boot && !opts.one_shot {
                if let Some(why) = self.ready_now(&opts.ready, Phase::Boot, now) {
                    self.end_boot(&why);
                }
            } else if phase == Phase::Reload {
                if let Some(why) = opts.reload.as_ref().and_then(|r| self.ready_now(&r.ready, Phase::Reload, now)) {
                    self.cmd_stop.store(true, Ordering::Release);
                    self.reload_over = true;
                    self.begin_shutdown(&format!("reload over ({why})"));
                }
            } else if phase == Phase::Running {
                let workload_done = self.workload.as_ref().map(Workload::done);
                let running_for_done = self.opts.running_for.map(|d| now >= self.ready_at.unwrap_or(now) + d);
                let stop = match (workload_done, running_for_done) {
                    (None, None) => false,
                    (w, r) => w.unwrap_or(true) && r.unwrap_or(true),
                };
                if stop {
                    if let Some(how) = self.workload.as_ref().and_then(Workload::failure) {
                        self.state.fail(format!(
                            "the workload {how}: the running phase recorded its failure, not the features it asks for; fix the workload (it runs as sh -c CMD) and trace again"
                        ));
                    }
                    let why = if workload_done.is_some() { "workload done" } else { "--running-for" };
                    if self.opts.reload.is_some() && !self.reloaded {
                        self.begin_reload(why);
                    } else {
                        self.begin_shutdown(why);
                    }
                }
            }
            let gen = self.state.rec().generation;
            if gen != self.written_gen && self.last_write.is_none_or(|t| now >= t + Duration::from_secs(1)) {
                self.write_profile();
            }
            if self.state.phase() == Phase::Shutdown {
                self.watch_shutdown(now);
            }
            self.progress(now);
        }
        if self.tty {
            err!("\r\x1b[2K");
        }
        // Nothing is traced any more: stop the helpers.
        self.cmd_stop.store(true, Ordering::Release);
        let probe = self.cmd_child.load(Ordering::Acquire);
        if probe > 0 {
            let _ = killpg(Pid::from_raw(probe), Signal::SIGKILL);
        }
        if let Some(h) = self.cmd_poller.take() {
            let _ = h.join();
        }
        if let Some(w) = self.workload.take() {
            w.stop();
        }
    }
}
