//! Starting the traced command: forked in its own process group, seized
//! with `PTRACE_SEIZE` before it execs (in filter mode, with the all-trap
//! seccomp filter installed right before the exec).
use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

use crate::container::seccomp;
use crate::profile::SockFilter;
use crate::sys::fs::errno_text;
use crate::sys::process::pipe_cloexec;

/// The options every tracee is seized with.
const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

/// How the traced command's standard streams are set up.
#[derive(Default)]
pub struct ChildIo {
    /// Replaces stdin (`/dev/null` when our stdin is a terminal).
    pub stdin: Option<RawFd>,
    /// Replaces stdout (the `--ready log:` pipe).
    pub stdout: Option<RawFd>,
    /// Replaces stderr (the `--ready log:` pipe).
    pub stderr: Option<RawFd>,
}

/// The root task, seized and released towards its exec.
pub struct Root {
    pub pid: i32,
    /// Read end of a close-on-exec pipe: EOF when the exec succeeded, else
    /// the exec's errno (4 bytes).
    exec_err: File,
}

impl Root {
    /// The errno of the root's failed exec (negative: installing the
    /// filter-mode seccomp filter failed with minus this errno), if it
    /// failed.  Call once the root has ended.
    pub fn exec_error(self) -> Option<i32> {
        let mut e = [0u8; 4];
        let mut f = self.exec_err;
        std::io::Read::read_exact(&mut f, &mut e).ok().map(|()| i32::from_ne_bytes(e))
    }
}

/// Forks the traced command (in its own process group), seizes it with
/// `PTRACE_SEIZE` and lets it exec `prog`.  With `filter` (filter mode) the
/// child is seized with `PTRACE_O_TRACESECCOMP` too and installs `filter` as
/// its seccomp filter once seized, right before the exec (whose own
/// syscall is then the first to trap).  Must be called on the thread that
/// runs [`super::tracer::trace_loop`].
pub fn spawn_seized(prog: &CString, argv: &[CString], io: &ChildIo, display: &str, filter: Option<&[SockFilter]>) -> Result<Root> {
    let (sync_r, sync_w) = pipe_cloexec().map_err(|e| anyhow!("cannot create a pipe: {}", errno_text(e as i32)))?;
    let (err_r, err_w) = pipe_cloexec().map_err(|e| anyhow!("cannot create a pipe: {}", errno_text(e as i32)))?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let (sync_r_fd, sync_w_fd, err_w_fd) = (sync_r.as_raw_fd(), sync_w.as_raw_fd(), err_w.as_raw_fd());

    // Raw libc from fork to exec: nix's exec wrappers allocate, which is not
    // async-signal-safe in the child of a process that may have threads.
    // SAFETY: between fork and exec the child only makes async-signal-safe
    // calls on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("cannot start '{display}': fork failed: {}", errno_text(Errno::last_raw()));
    }
    if pid == 0 {
        // SAFETY: see above; the child never returns from this block.
        unsafe {
            libc::close(sync_w_fd);
            libc::setpgid(0, 0);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Rust ignores SIGPIPE; the command gets the default back, as with
            // std::process::Command.  Our own handlers are reset too.
            for sig in [libc::SIGPIPE, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            for (fd, target) in [(io.stdin, 0), (io.stdout, 1), (io.stderr, 2)] {
                if let Some(fd) = fd {
                    libc::dup2(fd, target);
                }
            }
            let mut b = 0u8;
            let r = loop {
                let r = libc::read(sync_r_fd, &mut b as *mut u8 as *mut libc::c_void, 1);
                if r < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break r;
            };
            if r != 1 {
                libc::_exit(127);
            }
            if let Some(filter) = filter {
                // Seized (with TRACESECCOMP) by now: RET_TRACE reaches us.
                if let Err(e) = seccomp::install_with(filter, 0) {
                    // Told apart from an exec errno by its sign.
                    let e: i32 = -e.raw_os_error().unwrap_or(libc::EINVAL);
                    libc::write(err_w_fd, &e as *const i32 as *const libc::c_void, 4);
                    libc::_exit(127);
                }
            }
            libc::execv(prog.as_ptr(), argv_ptrs.as_ptr());
            let e: i32 = *libc::__errno_location();
            libc::write(err_w_fd, &e as *const i32 as *const libc::c_void, 4);
            libc::_exit(127);
        }
    }
    drop(sync_r);
    drop(err_w);

    let options = if filter.is_some() { OPTIONS | libc::PTRACE_O_TRACESECCOMP } else { OPTIONS };
    // SAFETY: plain ptrace request on our child.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, options as libc::c_long) };
    if r != 0 {
        let e = Errno::last_raw();
        // SAFETY: our own child; reap it so that no zombie is left.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
        }
        if e == libc::EPERM {
            bail!(
                "cannot trace '{display}': ptrace(PTRACE_SEIZE) was refused (Operation not \
                 permitted): check /proc/sys/kernel/yama/ptrace_scope (3 forbids ptrace, 2 needs \
                 CAP_SYS_PTRACE), give speaker-ctl CAP_SYS_PTRACE, and do not run it under \
                 another tracer (strace, gdb) or a seccomp policy that denies ptrace"
            );
        }
        bail!("cannot trace '{display}': ptrace(PTRACE_SEIZE) failed: {}", errno_text(e));
    }
    // Let the child exec: its first ptrace stop is PTRACE_EVENT_EXEC (in
    // filter mode, the seccomp stop of that exec before it).
    let b = 1u8;
    // SAFETY: valid 1-byte buffer.
    unsafe { libc::write(sync_w.as_raw_fd(), &b as *const u8 as *const libc::c_void, 1) };
    drop(sync_w);
    Ok(Root { pid, exec_err: err_r })
}

/// The error message of a failed exec of the traced command.
pub fn exec_error_message(display: &str, errno: i32) -> String {
    format!("cannot execute '{display}': {}", errno_text(errno))
}
