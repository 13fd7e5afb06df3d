//! What the tracer (main thread) and the phase supervisor (control thread)
//! share about a trace in progress.
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::recording::Recording;
use crate::profile::schema::Phase;
use crate::profile::Arch;

/// The state of a trace in progress.
pub struct TraceState {
    /// The start of the trace; `first_seen_ms` counts from here.
    pub t0: Instant,
    /// The current phase ([`Phase::index`]), read at every syscall-entry stop.
    phase: AtomicU8,
    pub rec: Mutex<Recording>,
    /// The traced command's pid.
    pub root: AtomicI32,
    /// The root has not been reaped yet.
    pub root_alive: AtomicBool,
    /// The root's first exec (CMD itself) succeeded.
    pub exec_done: AtomicBool,
    pub live_tasks: AtomicUsize,
    pub tasks_seen: AtomicU64,
    /// The tracer has finished (no traced task left).
    pub done: AtomicBool,
    /// speaker-ctl began the shutdown (SIGTERM), as opposed to the
    /// service ending on its own.
    pub stopped: AtomicBool,
    /// Why the trace failed, if it did (the first reason; the exit status
    /// is then 1).
    failure: Mutex<Option<String>>,
}

impl TraceState {
    /// A trace starting now, in its boot phase.
    pub fn new() -> TraceState {
        TraceState {
            t0: Instant::now(),
            phase: AtomicU8::new(Phase::Boot.index() as u8),
            rec: Mutex::new(Recording::default()),
            root: AtomicI32::new(0),
            root_alive: AtomicBool::new(true),
            exec_done: AtomicBool::new(false),
            live_tasks: AtomicUsize::new(0),
            tasks_seen: AtomicU64::new(0),
            done: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// Milliseconds since the start.
    pub fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// The recording (a panicked holder does not make it unusable).
    pub fn rec(&self) -> MutexGuard<'_, Recording> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn phase(&self) -> Phase {
        Phase::from_index(self.phase.load(Ordering::Acquire) as u32).unwrap_or(Phase::Boot)
    }

    /// Makes `p` the current phase; the phase is begun in the recording
    /// before the tracer can see it.
    pub fn enter_phase(&self, p: Phase) {
        self.rec().enter(p, self.ms());
        self.phase.store(p.index() as u8, Ordering::Release);
    }

    /// Records why the trace failed (the first reason given is kept).
    pub fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(why);
        }
    }

    /// Why the trace failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The syscalls `phase` has seen so far.
    pub fn seen(&self, phase: Phase) -> Vec<(Arch, String)> {
        self.rec().seen(phase)
    }
}

impl Default for TraceState {
    fn default() -> Self {
        Self::new()
    }
}
