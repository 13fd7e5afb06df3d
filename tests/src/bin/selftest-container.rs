//! selftest-container: runs a command (the kernel's seccomp selftests) as a
//! speaker container that is switched while it runs.
//!
//! `selftest-container [--no-register] [--cid CID] [--interval-ms MS] [--timeout SECS] -- CMD [ARGS...]`
//!
//! 1. fork; the child installs the boot filter (an allow-all program) with
//!    `seccomp(SECCOMP_SET_MODE_FILTER)`, tells the parent and waits;
//! 2. the parent registers the child's top filter with speaker.ko
//!    (`SPEAKER_IOC_REGISTER` with the child's `Seccomp_filters` count, as
//!    speaker-ctl does) and lets it exec CMD;
//! 3. until CMD exits, the parent switches the container every MS (50)
//!    milliseconds between two allow-all programs that differ only in a
//!    load whose result is ignored, alternating waiting and deferred-free
//!    switches: every test keeps its meaning, but each one runs across
//!    program swaps.
//!
//! CMD's stdout and stderr are passed through (on stdout) and parsed as TAP; the last line is
//! `SELFTEST-CONTAINER switches=N failed_switches=N status=S tap: pass=N fail=N skip=N of N`.
//! `--no-register` is the fair baseline: the same launcher and the same
//! pre-installed filter, without the module (no register, no switch).
//! Exits 0 if the launcher did its part (registered and switched at least
//! once, unless `--no-register`; every switch succeeded; CMD's TAP output is
//! complete), 1 otherwise, 2 on bad usage.
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use speaker_tests::guest::{cid_bytes, code_of, open_speaker, raw_ioctl, seccomp_filters};
use speaker_tests::tap;
use speaker_tests::{abi, ioctl};

/// speaker's mark (REGISTER takes a filter outside a PID namespace only
/// with it), then `RET_ALLOW`.
const ALLOW_ALL: [libc::sock_filter; 2] = [
    libc::sock_filter { code: abi::SPEAKER_MARK_CODE, jt: 0, jf: 0, k: abi::SPEAKER_MARK_K },
    libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 },
];
/// Loads `seccomp_data.arch`, then `RET_ALLOW`: allows exactly as much.
const ALLOW_ALL_TOO: [libc::sock_filter; 2] =
    [libc::sock_filter { code: 0x20, jt: 0, jf: 0, k: 4 }, libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];

struct Opts {
    register: bool,
    cid: String,
    interval: Duration,
    timeout: Duration,
    cmd: Vec<String>,
}

fn usage(why: &str) -> ! {
    eprintln!("selftest-container: {why}");
    eprintln!("usage: selftest-container [--no-register] [--cid CID] [--interval-ms MS] [--timeout SECS] -- CMD [ARGS...]");
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        register: true,
        cid: "selftests".into(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1800),
        cmd: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, what: &str| -> u64 {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(&format!("{what} wants a whole number")))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-register" => o.register = false,
            "--cid" => o.cid = args.next().unwrap_or_else(|| usage("--cid wants an id")),
            "--interval-ms" => o.interval = Duration::from_millis(num(args.next(), "--interval-ms")),
            "--timeout" => o.timeout = Duration::from_secs(num(args.next(), "--timeout")),
            "--" => {
                o.cmd = args.by_ref().collect();
                break;
            }
            _ => usage(&format!("unknown option '{a}'")),
        }
    }
    if o.cmd.is_empty() {
        usage("missing CMD (put it after --)");
    }
    o
}

fn pipe() -> (i32, i32) {
    let mut p = [0i32; 2];
    // SAFETY: `p` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    (p[0], p[1])
}

/// The child between fork and exec: only async-signal-safe calls on memory
/// prepared before the fork.  Never returns.
fn child(ready_w: i32, go_r: i32, out_w: i32, argv: &[*const libc::c_char]) -> ! {
    let prog = libc::sock_fprog { len: ALLOW_ALL.len() as u16, filter: ALLOW_ALL.as_ptr() as *mut _ };
    // SAFETY: raw syscalls on descriptors and memory this process owns; `argv`
    // is a NULL-terminated array of C strings built before the fork; every
    // path ends in exec or _exit.
    unsafe {
        if libc::dup2(out_w, 1) < 0 || libc::dup2(out_w, 2) < 0 {
            libc::_exit(120);
        }
        // Root (CAP_SYS_ADMIN) needs no no_new_privs, and the selftests test it.
        if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) != 0 {
            libc::_exit(121);
        }
        let b = 1u8;
        if libc::write(ready_w, &b as *const u8 as *const _, 1) != 1 {
            libc::_exit(122);
        }
        let mut g = 0u8;
        if libc::read(go_r, &mut g as *mut u8 as *mut _, 1) != 1 {
            libc::_exit(123);
        }
        libc::execvp(argv[0], argv.as_ptr());
        libc::_exit(127)
    }
}

fn switch(fd: i32, cid: &str, prog: &[libc::sock_filter], flags: u32) -> Result<(), i32> {
    let mut args = ioctl::switch(cid_bytes(cid), prog, abi::PHASE_RUNNING, 0, flags);
    ioctl::call(fd, abi::SPEAKER_IOC_SWITCH, &mut args).map(|_| ())
}

/// Waits up to `limit` for child `pid` to be reapable; reaps it.
fn reaped_within(pid: i32, status: &mut i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        // SAFETY: polling our own child.
        if unsafe { libc::waitpid(pid, status, libc::WNOHANG) } == pid {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

fn main() {
    let o = parse_opts();
    let fd = if o.register {
        open_speaker().unwrap_or_else(|e| {
            eprintln!("selftest-container: {e}");
            std::process::exit(1)
        })
    } else {
        -1
    };
    let cstrs: Vec<CString> = o.cmd.iter().map(|a| CString::new(a.as_str()).unwrap_or_else(|_| usage("NUL byte in CMD"))).collect();
    let mut argv: Vec<*const libc::c_char> = cstrs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let (ready_r, ready_w) = pipe();
    let (go_r, go_w) = pipe();
    let (out_r, out_w) = pipe();
    // SAFETY: single-threaded here; the child only runs `child` (async-signal-safe).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child(ready_w, go_r, out_w, &argv);
    }
    // SAFETY: closing the child's ends in the parent.
    unsafe {
        libc::close(ready_w);
        libc::close(go_r);
        libc::close(out_w);
    }
    let fail = |why: String| -> ! {
        eprintln!("selftest-container: {why}");
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        std::process::exit(1)
    };
    let mut b = 0u8;
    // SAFETY: reading one byte into `b`.
    if unsafe { libc::read(ready_r, &mut b as *mut u8 as *mut _, 1) } != 1 {
        fail("the child died before installing its filter".into());
    }
    if o.register {
        let count = seccomp_filters(pid).unwrap_or_else(|| fail(format!("no Seccomp_filters in /proc/{pid}/status")));
        let args = ioctl::register(cid_bytes(&o.cid), pid as u32, count, abi::PHASE_BOOT, 0);
        if let Err(e) = raw_ioctl(fd, abi::SPEAKER_IOC_REGISTER, ioctl::addr(&args)) {
            fail(format!("register of pid {pid} (filters {count}) failed: {}", errno_name(e)));
        }
        println!("selftest-container: registered '{}' (pid {pid}, filter {count})", o.cid);
    }
    // SAFETY: one byte from a live buffer to our pipe.
    if unsafe { libc::write(go_w, &b as *const u8 as *const _, 1) } != 1 {
        fail("cannot start the child".into());
    }
    // SAFETY: `out_r` is ours alone from here on.
    let out = unsafe { std::fs::File::from_raw_fd(out_r) };
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(stdout.lock(), "{line}");
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    let start = Instant::now();
    let (mut switches, mut failed) = (0u64, 0u64);
    let mut status = 0;
    loop {
        // SAFETY: polling our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if start.elapsed() > o.timeout {
            eprintln!("selftest-container: {} did not finish within {:?}: killed", o.cmd[0], o.timeout);
            // SAFETY: killing our own child; the next waitpid reaps it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(o.interval);
        if !o.register {
            continue;
        }
        let (prog, flags): (&[libc::sock_filter], u32) = match switches % 4 {
            0 => (&ALLOW_ALL_TOO, 0),
            1 => (&ALLOW_ALL, abi::SWITCH_DEFER_FREE),
            2 => (&ALLOW_ALL_TOO, abi::SWITCH_DEFER_FREE),
            _ => (&ALLOW_ALL, 0),
        };
        match switch(fd, &o.cid, prog, flags) {
            Ok(()) => switches += 1,
            Err(e) => {
                // The module may see the child's tasks exit a moment before
                // the child can be reaped.
                if e == libc::ESRCH && reaped_within(pid, &mut status, Duration::from_secs(2)) {
                    break;
                }
                failed += 1;
                eprintln!("selftest-container: switch {} failed: {}", switches + failed, errno_name(e));
            }
        }
    }
    let text = reader.join().unwrap_or_default();
    if o.register {
        let args = ioctl::unregister(cid_bytes(&o.cid));
        match raw_ioctl(fd, abi::SPEAKER_IOC_UNREGISTER, ioctl::addr(&args)) {
            Ok(_) | Err(libc::ESRCH) => {}
            Err(e) => eprintln!("selftest-container: unregister failed: {}", errno_name(e)),
        }
    }
    let res = tap::parse(&text);
    let code = code_of(std::os::unix::process::ExitStatusExt::from_raw(status));
    println!(
        "SELFTEST-CONTAINER switches={switches} failed_switches={failed} status={code} time={:.0}s tap: {}",
        start.elapsed().as_secs_f64(),
        res.summary()
    );
    let ok = (!o.register || switches > 0) && failed == 0 && res.complete();
    std::process::exit(if ok { 0 } else { 1 });
}
