//! `speaker-ctl trace --one-shot` on processes that fork a lot, spawn
//! threads, die by signal, fail to exec, stop themselves or handle
//! signals: the trace ends, it succeeds (0) if the command exited 0 and
//! fails (1, saying how the command ended) otherwise, every task's
//! syscalls are recorded and nothing is left behind.
#[path = "trace_util.rs"]
mod util;

use speaker::profile::schema::Phase;
use util::*;

fn trace_mode(name: &str, args: &[&str]) -> (Run, speaker::profile::schema::Profile) {
    let dir = tmpdir(name);
    let out = dir.join("p.json");
    let mut a = vec!["trace", "--one-shot", "-o", out.to_str().unwrap(), "--", fixture_str()];
    a.extend_from_slice(args);
    let run = trace(&a);
    let p = load(&out);
    (run, p)
}

#[test]
fn fork_100_children() {
    let (run, p) = trace_mode("fork", &["--fork-many", "100"]);
    assert_eq!(run.code(), 0);
    assert_eq!(count_all(&p, "getsid"), 100, "every child's syscalls");
    assert!(count_all(&p, "wait4") >= 100, "wait4 (restarted by SIGCHLD: maybe more)");
    assert!(run.stderr.contains("101 tasks traced"), "{}", run.stderr);
    assert_no_leftovers("--fork-many");
}

#[test]
fn threads_64() {
    let (run, p) = trace_mode("threads", &["--threads", "64"]);
    assert_eq!(run.code(), 0);
    assert_eq!(count_all(&p, "getresgid"), 64, "every thread's syscalls");
    assert!(count_all(&p, "clone3") >= 64);
    assert!(run.stderr.contains("65 tasks traced"), "{}", run.stderr);
    assert_no_leftovers("--threads");
}

/// posix_spawn (clone3 with CLONE_VFORK) then exec, 10 times.
#[test]
fn vfork_and_exec() {
    let (run, p) = trace_mode("spawn", &["--spawn", "10"]);
    assert_eq!(run.code(), 0);
    assert_eq!(count_all(&p, "getresgid"), 10);
    assert_eq!(count_all(&p, "execve"), 11, "CMD's exec and the 10 spawned");
    assert!(count(&p, Phase::Boot, "execve") >= 1, "CMD's exec is in boot");
    assert_no_leftovers("--spawn");
}

#[test]
fn killed_by_signal() {
    let (run, p) = trace_mode("kill", &["--kill-self"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("was killed by signal 9 (SIGKILL): the profile records a failed run"), "{}", run.stderr);
    assert!(names_all(&p).contains("tgkill") || names_all(&p).contains("kill"));
    assert_no_leftovers("--kill-self");
}

#[test]
fn exec_of_a_missing_binary() {
    let (run, p) = trace_mode("exec-missing", &["--exec-missing"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("exited with status 127"), "{}", run.stderr);
    assert!(run.stderr.contains("cannot execute '/nonexistent/speaker-missing-binary': No such file or directory"));
    assert_eq!(count_all(&p, "execve"), 2, "CMD's exec and the failed one");
    assert!(count(&p, Phase::Boot, "execve") >= 1, "CMD's exec is in boot");
    assert_no_leftovers("--exec-missing");
}

/// A child stops itself; its parent sees the stop (waitpid WUNTRACED) and
/// continues it: group-stops behave as without tracing.
#[test]
fn group_stop_and_continue() {
    let (run, p) = trace_mode("stop-cont", &["--stop-cont"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(names_all(&p).contains("kill"));
    assert_no_leftovers("--stop-cont");
}

/// Signals are delivered to the tracee's handlers.
#[test]
fn signal_reaches_its_handler() {
    let (run, p) = trace_mode("signal", &["--signal-handler"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(names_all(&p).contains("rt_sigreturn"));
    assert_no_leftovers("--signal-handler");
}

/// A shell pipeline with background jobs and a command that is not found.
#[test]
fn shell_jobs_and_missing_command() {
    let dir = tmpdir("shell");
    let out = dir.join("p.json");
    let run = trace(&[
        "trace",
        "--one-shot",
        "-o",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do (echo $i | cat >/dev/null) & done; wait; \
         /nonexistent/speaker-missing-in-shell; exit $?",
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("'sh' exited with status 127"), "{}", run.stderr);
    let p = load(&out);
    assert!(names_all(&p).contains("execve"));
    assert_no_leftovers("speaker-missing-in-shell");
}
