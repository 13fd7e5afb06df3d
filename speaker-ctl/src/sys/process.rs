//! Processes: pipes, PATH lookup, waiting and exit codes.
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{AccessFlags, Pid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A pipe whose both ends are close-on-exec: (read end, write end).
pub fn pipe_cloexec() -> nix::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// Finds `name` like execvp(3) would: a path containing '/' as is, else
/// the first executable `PATH` entry.  The error is the errno exec would
/// report (ENOENT when nothing is found).
pub fn find_executable(name: &str) -> Result<PathBuf, Errno> {
    let check = |p: &Path| -> Result<(), Errno> {
        let md = std::fs::metadata(p).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if md.is_dir() {
            return Err(Errno::EISDIR);
        }
        if md.permissions().mode() & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        nix::unistd::access(p, AccessFlags::X_OK)
    };
    if name.contains('/') {
        return check(Path::new(name)).map(|()| PathBuf::from(name));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let mut err = Errno::ENOENT;
    for dir in path.split(':') {
        let cand = Path::new(if dir.is_empty() { "." } else { dir }).join(name);
        match check(&cand) {
            Ok(()) => return Ok(cand),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// The shell's exit code of a wait status: the exit status, or 128 + the
/// signal; `None` for statuses that are not an end.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// The shell's exit code of a raw wait status (see [`exit_code`]).
pub fn raw_exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// A raw wait status in words: "exited with status 3", "was killed by
/// signal 9 (SIGKILL)".
pub fn describe_raw_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("was killed by signal {sig} ({s})"),
            Err(_) => format!("was killed by signal {sig}"),
        }
    } else {
        format!("ended (wait status {status:#x})")
    }
}

/// Waits for child `pid` to end and returns its exit code; `on_interrupt`
/// runs whenever a signal interrupts the wait.
pub fn wait_exit(pid: Pid, mut on_interrupt: impl FnMut()) -> nix::Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => on_interrupt(),
            Err(e) => return Err(e),
        }
    }
}

/// Reaps whatever children have ended, for at most `limit` (orphans
/// reparented to a subreaper).
pub fn reap_children(limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Err(_) => return,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            return;
        }
    }
}

/// Is `fd` a terminal?
pub fn is_tty(fd: std::os::fd::RawFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// Double fork: `prepare` runs in the daemon (own session, stdio on
/// /dev/null), which reports its pid (or `prepare`'s error) to the caller,
/// then runs `body` and exits.  The caller must be single-threaded (the
/// daemon is forked from it): speaker-runtime's monitors, the notify
/// engine's supervisor of `speaker-ctl run`.
pub fn daemon<T>(prepare: impl FnOnce() -> Result<T>, body: impl FnOnce(T)) -> Result<i32> {
    let (mut r, mut w) = pipe_cloexec().context("cannot create a pipe")?;
    // SAFETY: the caller is single-threaded here (contract); the child only
    // forks again and runs the monitor, which needs no lock held by
    // another thread.
    match unsafe { nix::unistd::fork() }.context("cannot fork a daemon")? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let _ = nix::unistd::setsid();
            // SAFETY: as above.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                        use std::os::fd::AsRawFd;
                        for fd in 0..3 {
                            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                        }
                    }
                    match prepare() {
                        Ok(t) => {
                            let _ = write!(w, "S{}", std::process::id());
                            drop(w);
                            body(t);
                            std::process::exit(0);
                        }
                        Err(e) => {
                            let _ = write!(w, "F{e:#}");
                            std::process::exit(1);
                        }
                    }
                }
                Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
                Err(e) => {
                    let _ = write!(w, "Fcannot fork the monitor: {e}");
                    std::process::exit(1);
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut msg = String::new();
            let _ = r.read_to_string(&mut msg);
            if let Some(p) = msg.strip_prefix('S') {
                return p.parse().map_err(|_| anyhow!("the monitor sent a bad pid '{p}'"));
            }
            if let Some(m) = msg.strip_prefix('F') {
                bail!("{m}");
            }
            bail!("the monitor died before attaching to the container")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_like_execvp() {
        assert!(find_executable("sh").unwrap().ends_with("sh"));
        assert_eq!(find_executable("no-such-program-speaker"), Err(Errno::ENOENT));
        assert_eq!(find_executable("/"), Err(Errno::EISDIR));
        assert_eq!(find_executable("/etc/passwd"), Err(Errno::EACCES));
    }
}
