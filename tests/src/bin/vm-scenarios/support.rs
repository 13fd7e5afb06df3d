//! Helpers of the scenarios: speaker-ctl runs, waiting, rmmod, raw ioctls on
//! `/dev/speaker`, classic BPF instructions and forked children.

use std::time::{Duration, Instant};

use speaker::abi;
use speaker_tests::guest::{run, Out, Outcome};
use speaker_tests::{ensure, ioctl};

pub fn ctl(args: &[&str]) -> Out {
    run("speaker-ctl", args)
}

pub fn ctl_ok(args: &[&str]) -> Result<String, String> {
    let o = ctl(args);
    ensure!(o.code == 0, "speaker-ctl {} failed ({}): {}", args.join(" "), o.code, o.stderr.trim());
    Ok(o.stdout)
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Outcome {
    let start = Instant::now();
    while !f() {
        ensure!(start.elapsed() < timeout, "timed out after {:?} waiting for {what}", timeout);
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Retries `rmmod speaker` until it succeeds: once the containers whose
/// replaced programs the module keeps have exited, the sweeper unpins the
/// module within about a second.
pub fn rmmod_within(within: Duration) -> Outcome {
    let mut last = String::new();
    wait_until("rmmod speaker to succeed", within, || {
        let o = run("rmmod", &["speaker"]);
        last = o.stderr;
        o.code == 0
    })
    .map_err(|e| format!("{e} (last rmmod said: {})", last.trim()))
}

pub fn errno_of(r: i64) -> i32 {
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

pub fn raw_switch(fd: i32, cid: &str, prog: *const libc::sock_filter, len: u32) -> i32 {
    let mut args = ioctl::switch_at(ioctl::encoded_cid(cid), prog as u64, len, 1, 0, 0);
    // SAFETY: `args` is a valid SwitchArgs; the program pointer may be
    // deliberately bad: the module must answer with an errno.
    errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, &mut args) } as i64)
}

pub fn open_dev() -> Result<i32, String> {
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    ensure!(fd >= 0, "cannot open /dev/speaker: {}", std::io::Error::last_os_error());
    Ok(fd)
}

pub fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Forks; the child runs `f` and exits with its return value.
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` (plain syscalls) and _exits.
    match unsafe { libc::fork() } {
        0 => {
            let c = f();
            // SAFETY: leave the child without running the parent's atexit.
            unsafe { libc::_exit(c) }
        }
        pid => {
            let mut st = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                -1
            }
        }
    }
}

pub fn one_line_error(o: &Out, needle: &str) -> Outcome {
    ensure!(o.code != 0, "exit code 0 (stdout {:?})", o.stdout);
    let lines: Vec<_> = o.stderr.trim().lines().collect();
    ensure!(lines.len() == 1 && lines[0].contains(needle), "stderr {:?} should be one line naming {needle:?}", o.stderr);
    Ok(())
}
