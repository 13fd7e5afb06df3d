//! Tracing a service syscall by syscall, per phase (`speaker-ctl trace`).
//!
//! `speaker-ctl trace [--mode M] [--ready SPEC] [--workload CMD]
//! [--running-for D] [--stop-after D] -o PROFILE -- CMD [ARGS...]` runs CMD
//! and follows every process and thread it creates (fork, vfork, clone,
//! clone3, exec) with ptrace: `PTRACE_SEIZE` with `TRACESYSGOOD | TRACEFORK |
//! TRACEVFORK | TRACECLONE | TRACEEXEC | EXITKILL`.  Signals reach the
//! tracees as they would untraced: signal-delivery-stops re-inject the
//! signal, group-stops are kept with `PTRACE_LISTEN` (so a parent's
//! `waitpid(WUNTRACED)` and `SIGCONT` work).  Each syscall is recorded by ABI
//! (x86_64, or `x86` for the i386 compat ABI, from
//! `PTRACE_GET_SYSCALL_INFO`'s `arch`), number and libseccomp name, with its
//! count and first-seen time (ms since the start) per phase.
//!
//! # Modes
//!
//! * **ptrace** (`--mode ptrace`): a stop at every syscall entry and exit
//!   (`PTRACE_SYSCALL`), like strace; works anywhere ptrace does.
//! * **filter** (`--mode filter`, needs speaker.ko and root): the traced
//!   processes run under a seccomp filter (compiled with libseccomp) that
//!   returns `SECCOMP_RET_TRACE` only for the syscalls the current phase has
//!   not seen yet and allows the rest; tasks run with `PTRACE_CONT` and
//!   `PTRACE_O_TRACESECCOMP`, and each `PTRACE_EVENT_SECCOMP` stop records
//!   one syscall.  Before the stopped tasks are resumed the filter's program
//!   is replaced through speaker.ko (the filter is registered as container
//!   `trace-<pid>`) so that it allows that syscall too; at a phase change it
//!   goes back to trapping everything.  Each syscall thus traps about once
//!   per phase: the per-phase sets are the same as in ptrace mode, but a
//!   syscall's `count` in the profile is its number of seccomp stops
//!   (usually 1), not of calls.  See [`filter`].
//! * **auto** (the default): filter mode when speaker.ko can be used, else
//!   ptrace mode (with a note saying why).  `--mode filter` without the
//!   module fails with one error line and starts nothing.
//!
//! The mode that runs is printed on stderr (`speaker-ctl: tracing mode:
//! filter (speaker.ko)` or `speaker-ctl: tracing mode: ptrace`).
//!
//! # Phases
//!
//! * **boot** starts with CMD's exec and ends when `--ready` says so:
//!   `port:N` (a TCP socket in LISTEN state on local port N in
//!   `/proc/<traced pid>/net/tcp{,6}`, i.e. in the tracee's network
//!   namespace: the root's every 25ms, those of all traced processes every
//!   250ms), `cmd:'...'` (`sh -c '...'`, run outside the traced tree with
//!   its output discarded, exits 0; polled every 100ms),
//!   `log:REGEX` (a line of CMD's stdout or stderr matches; in this mode both
//!   go through pipes to speaker-ctl, which echoes them to its own stdout and
//!   stderr), or `auto` (the default: the set of distinct syscalls seen has
//!   not grown for `--auto-windows` consecutive windows of `--auto-window`).
//! * **running** ends when speaker-ctl sends SIGTERM to the root process (to
//!   every traced process if the root has already exited): once the
//!   `--workload` has finished *and* `--running-for` has elapsed since boot
//!   ended (when only one of them is given, that one alone decides; with
//!   neither, running lasts until speaker-ctl is interrupted, `--stop-after`
//!   or the service exits by itself), when speaker-ctl gets SIGINT, SIGTERM or
//!   SIGHUP, or at `--stop-after` (counted from the start, whatever the
//!   phase; boot then goes straight to shutdown).
//! * **shutdown** lasts until the last traced task has exited.  A second
//!   signal to speaker-ctl during shutdown SIGKILLs the traced processes.
//!
//! **Counting rule.** Each phase lists exactly the syscalls observed while the
//! tracer considered that phase current: the syscall-entry stop (filter
//! mode: the seccomp stop, which happens at entry too) decides (a syscall
//! that blocks across a phase change, e.g. `accept` or `poll`, counts in the
//! phase it was entered in).  The phase is switched *before* SIGTERM is sent
//! (in filter mode, together with the filter, whose old program can decide
//! no syscall any more by then), so everything the signal causes is
//! shutdown.  The
//! `execve` of CMD itself counts in boot; what speaker-ctl's child does before
//! it is not recorded.  Syscall numbers libseccomp cannot name (e.g. -1) are
//! not recorded (a warning gives their count).
//!
//! # The traced command
//!
//! CMD is looked up in PATH before anything starts (and the output path is
//! checked), runs in its own process group (so a terminal's Ctrl-C reaches
//! speaker-ctl only, which turns it into SIGTERM + shutdown), with stdin from
//! /dev/null when speaker-ctl's stdin is a terminal.  CMD's exit status is
//! speaker-ctl's (128+N if killed by signal N).  `--workload CMD` runs
//! `sh -c CMD` untraced once boot has ended, in its own process group with
//! stdin from /dev/null; its exit status is reported on stderr, and when the
//! trace ends its process group gets SIGTERM (whatever it left running).
//! speaker-ctl is a child subreaper: tracees orphaned on the way are reaped
//! by it, and `EXITKILL` kills the traced tree if speaker-ctl dies, so no
//! zombie or stopped process is left behind.
//!
//! # Output
//!
//! The profile (`speaker.profile/v1`, only the phases begun, `ready` = the
//! `--ready` spec or `auto`) is rewritten atomically (temporary file, fsync,
//! rename) at every phase change, at most once a second while new syscalls
//! show up, and at the end.  On a terminal, a status line is refreshed every
//! second; at the end a one-line summary per phase is printed on stderr
//! (`speaker-ctl: boot: 40 syscalls, 73 calls, 0.48s`; in filter mode
//! `..., 39 seccomp stops, ...`, then `speaker-ctl: filter mode: N seccomp
//! stops, M filter switches through speaker.ko`).
pub mod filter;
pub mod ptrace;
pub mod ready;
pub mod record;
pub mod session;
pub mod spec;
mod write;

pub use session::run;
