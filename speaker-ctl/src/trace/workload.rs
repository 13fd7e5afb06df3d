//! `--workload CMD`: `sh -c CMD`, run untraced once boot has ended, in its
//! own process group with stdin from /dev/null.
use crate::sys::output::errln;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running (or finished) workload.
pub struct Workload {
    thread: JoinHandle<()>,
    /// The workload shell's process group (its pid).
    pgid: Arc<AtomicI32>,
    done: Arc<AtomicBool>,
    /// How it failed (`None`: not ended yet, or exited 0).
    failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl Workload {
    /// Starts `sh -c CMD`; its end is reported on stderr (`tty`: clear the
    /// status line first).
    /// `out_to_stderr`: its standard output goes to our standard error
    /// (the profile is on standard output, `-o -`).
    pub fn start(cmd: String, tty: bool, out_to_stderr: bool) -> Workload {
        let pgid = Arc::new(AtomicI32::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(std::sync::Mutex::new(None));
        let (p, d, f) = (pgid.clone(), done.clone(), failed.clone());
        let fail = move |why: String| *f.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        let thread = std::thread::spawn(move || {
            let clear = if tty { "\r\x1b[2K" } else { "" };
            // Its own process group (killed as a whole at the end), stdin
            // from /dev/null (a background group must not read the terminal).
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c").arg(&cmd).stdin(Stdio::null()).process_group(0);
            if out_to_stderr {
                if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
                    sh.stdout(Stdio::from(err));
                }
            }
            match sh.spawn() {
                Ok(mut child) => {
                    p.store(child.id() as i32, Ordering::Release);
                    match child.wait() {
                        Ok(st) => {
                            errln!("{clear}speaker-ctl: workload {}", describe(st));
                            if !st.success() {
                                fail(describe(st));
                            }
                        }
                        Err(e) => {
                            errln!("{clear}speaker-ctl: workload: wait failed: {e}");
                            fail(format!("could not be waited for: {e}"));
                        }
                    }
                }
                Err(e) => {
                    errln!("{clear}speaker-ctl: cannot run the workload (sh -c): {e}");
                    fail(format!("could not be started (sh -c): {e}"));
                }
            }
            d.store(true, Ordering::Release);
        });
        Workload { thread, pgid, done, failed }
    }

    /// How the workload failed, once it has ended (`None` if it exited 0).
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// SIGTERMs the workload's process group (whatever it left running:
    /// the group outlives the shell while any member is alive) and waits
    /// for the shell.
    pub fn stop(self) {
        let pgid = self.pgid.load(Ordering::Acquire);
        if pgid > 0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        }
        let _ = self.thread.join();
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended ({status:?})"),
    }
}
