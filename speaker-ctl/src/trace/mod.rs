//! Tracing a service syscall by syscall, per phase (`speaker-ctl trace`;
//! docs/src/profiles.md and `speaker-ctl trace --help` are its manual).
//!
//! [`session::run`] checks the [`TraceOptions`], starts the command
//! ([`spawn`]) and runs the trace loop ([`tracer`]) on the main thread
//! while the [`supervisor`] thread ends the phases; both share a
//! [`state::TraceState`].  In filter mode, [`trap_filter`] keeps the
//! seccomp filter that traps only syscalls not seen yet in the phase.
pub mod log_reader;
pub mod options;
pub mod output;
pub mod recording;
pub mod session;
pub mod spawn;
pub mod state;
pub mod summary;
pub mod supervisor;
pub mod tracer;
pub mod trap_filter;
pub mod workload;

pub use options::TraceOptions;
pub use session::run;
