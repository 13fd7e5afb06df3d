//! fixture-service: a small, deterministic TCP service whose syscalls differ
//! per phase, used to test `speaker-ctl trace` (and later `run`/`switch`).
//!
//! Usage:
//!
//! ```text
//! fixture-service --port N [--pidfile PATH]   the service (see the phases below)
//! fixture-service --client N [--count K]      K times: connect, send "ping", expect "pong"
//! fixture-service --fork-many N               fork N children, each calls getsid(0), wait for all
//! fixture-service --threads N                 spawn N threads, each calls getresgid once, join all
//! fixture-service --spawn N                   run itself N times with `--threads 1` through
//!                                             std::process::Command (posix_spawn: clone with
//!                                             CLONE_VFORK, then exec)
//! fixture-service --kill-self                 raise SIGKILL (exit status 128+9 under a shell)
//! fixture-service --exec-missing              execv a file that does not exist, exit 127
//! fixture-service --stop-cont                 fork a child that stops itself (SIGSTOP); the parent
//!                                             sees the stop (waitpid WUNTRACED), sends SIGCONT and
//!                                             reaps it; exits 0 only if every step behaved
//! fixture-service --signal-handler            raise SIGUSR1 with a handler installed; exits 0 only
//!                                             if the handler ran
//! fixture-service --int80                     one i386 compat syscall (int 0x80, getpid = 20)
//! ```
//!
//! The service's phase-specific syscalls (x86_64; made explicitly with
//! `libc::syscall`, and neither Rust's std nor glibc make them on their own in
//! this program: checked with strace):
//!
//! * boot only: `umask`, `uname`, `getpriority` (main thread), `getpgid` (in a
//!   forked child), `getrusage` (in a spawned thread).  Then it binds and
//!   listens on 127.0.0.1:N, writes the pidfile (if asked) and prints
//!   `fixture-service: listening on 127.0.0.1:N` on stdout.
//! * running only: for each connection whose first line is `ping`: `sysinfo`
//!   and `times`, then it answers `pong`.
//! * shutdown only (after SIGTERM, caught through a self-pipe): `getitimer`
//!   and `fsync` (on a temporary file), then it prints
//!   `fixture-service: shutting down` on stdout and exits 0.
//! * never: `acct` (the sentinel).
//!
//! The same sets are listed as [`BOOT_ONLY`], [`RUNNING_ONLY`],
//! [`SHUTDOWN_ONLY`] and [`SENTINEL`] below; speaker-ctl's tests repeat them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// Syscalls made only during boot.
pub const BOOT_ONLY: &[&str] = &["umask", "uname", "getpriority", "getpgid", "getrusage"];
/// Syscalls made only while serving a `ping` (running phase).
pub const RUNNING_ONLY: &[&str] = &["sysinfo", "times"];
/// Syscalls made only after SIGTERM (shutdown phase).
pub const SHUTDOWN_ONLY: &[&str] = &["getitimer", "fsync"];
/// A syscall the fixture never makes.
pub const SENTINEL: &str = "acct";

fn die(msg: &str) -> ! {
    eprintln!("fixture-service: {msg}");
    std::process::exit(2);
}

fn usage() -> ! {
    die("usage: fixture-service --port N [--pidfile PATH] | --client N [--count K] | \
         --fork-many N | --threads N | --spawn N | --kill-self | --exec-missing | --stop-cont | \
         --signal-handler | --int80")
}

fn num(v: Option<&String>) -> u64 {
    match v.and_then(|s| s.parse().ok()) {
        Some(n) => n,
        None => usage(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = None;
    let mut client = None;
    let mut count = 1;
    let mut pidfile = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let v = args.get(i + 1);
        match a {
            "--port" => port = Some(num(v) as u16),
            "--client" => client = Some(num(v) as u16),
            "--count" => count = num(v),
            "--pidfile" => pidfile = Some(v.cloned().unwrap_or_else(|| usage())),
            "--fork-many" => std::process::exit(fork_many(num(v))),
            "--threads" => std::process::exit(threads(num(v))),
            "--spawn" => std::process::exit(spawn(num(v))),
            "--kill-self" => kill_self(),
            "--exec-missing" => exec_missing(),
            "--stop-cont" => std::process::exit(stop_cont()),
            "--signal-handler" => std::process::exit(signal_handler()),
            "--int80" => std::process::exit(int80()),
            _ => usage(),
        }
        i += 2;
    }
    if let Some(p) = client {
        std::process::exit(run_client(p, count));
    }
    match port {
        Some(p) => std::process::exit(serve(p, pidfile)),
        None => usage(),
    }
}

// ---------------------------------------------------------------- service

static SIG_PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigterm(_sig: libc::c_int) {
    let fd = SIG_PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is valid.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

fn boot_syscalls() {
    // SAFETY: plain syscalls with valid (or no) pointer arguments.
    unsafe {
        libc::syscall(libc::SYS_umask, 0o022);
        let mut uts: libc::utsname = std::mem::zeroed();
        libc::syscall(libc::SYS_uname, &mut uts as *mut libc::utsname);
        libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0);
        match libc::fork() {
            -1 => die("fork failed"),
            0 => {
                libc::syscall(libc::SYS_getpgid, 0);
                libc::_exit(0);
            }
            child => {
                let mut st = 0;
                libc::waitpid(child, &mut st, 0);
            }
        }
    }
    std::thread::spawn(|| {
        // SAFETY: valid out-pointer.
        unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::syscall(libc::SYS_getrusage, libc::RUSAGE_THREAD, &mut ru as *mut libc::rusage);
        }
    })
    .join()
    .unwrap();
}

fn serve_one(stream: TcpStream) {
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    if line.trim_end() == "ping" {
        // SAFETY: valid out-pointers.
        unsafe {
            let mut si: libc::sysinfo = std::mem::zeroed();
            libc::syscall(libc::SYS_sysinfo, &mut si as *mut libc::sysinfo);
            let mut t: libc::tms = std::mem::zeroed();
            libc::syscall(libc::SYS_times, &mut t as *mut libc::tms);
        }
        let _ = (&stream).write_all(b"pong\n");
    }
}

fn shutdown_syscalls() {
    // SAFETY: valid out-pointer; fsync on an fd we own.
    unsafe {
        let mut it: libc::itimerval = std::mem::zeroed();
        libc::syscall(libc::SYS_getitimer, libc::ITIMER_REAL, &mut it as *mut libc::itimerval);
    }
    let path = std::env::temp_dir().join(format!("fixture-service-{}.bye", std::process::id()));
    if let Ok(mut f) = std::fs::File::create(&path) {
        let _ = f.write_all(b"bye\n");
        // SAFETY: fsync on a valid fd.
        unsafe { libc::syscall(libc::SYS_fsync, f.as_raw_fd()) };
    }
    let _ = std::fs::remove_file(&path);
}

fn serve(port: u16, pidfile: Option<String>) -> i32 {
    boot_syscalls();

    let mut fds = [0; 2];
    // SAFETY: valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        die("pipe2 failed");
    }
    SIG_PIPE_W.store(fds[1], Ordering::Relaxed);
    // SAFETY: installing an async-signal-safe handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigterm as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => die(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    if let Some(p) = pidfile {
        let tmp = format!("{p}.tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id())).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
    println!("fixture-service: listening on 127.0.0.1:{port}");
    let _ = std::io::stdout().flush();

    loop {
        let mut pfd = [
            libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: fds[0], events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: valid array of pollfds.
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if pfd[1].revents != 0 {
            break;
        }
        if pfd[0].revents != 0 {
            if let Ok((s, _)) = listener.accept() {
                serve_one(s);
            }
        }
    }

    shutdown_syscalls();
    println!("fixture-service: shutting down");
    let _ = std::io::stdout().flush();
    0
}

// ---------------------------------------------------------------- client

fn run_client(port: u16, count: u64) -> i32 {
    for i in 0..count {
        let mut tries = 0;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    eprintln!("fixture-service: client: cannot connect to 127.0.0.1:{port}: {e}");
                    return 1;
                }
            }
        };
        if (&stream).write_all(b"ping\n").is_err() {
            eprintln!("fixture-service: client: write failed");
            return 1;
        }
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() || line.trim_end() != "pong" {
            eprintln!("fixture-service: client: ping {i}: bad answer {line:?}");
            return 1;
        }
    }
    0
}

// ---------------------------------------------------------------- robustness modes

fn fork_many(n: u64) -> i32 {
    let mut kids = Vec::new();
    for _ in 0..n {
        // SAFETY: the child only makes raw syscalls and _exits.
        match unsafe { libc::fork() } {
            -1 => die("fork failed"),
            0 => unsafe {
                libc::syscall(libc::SYS_getsid, 0);
                libc::_exit(0);
            },
            pid => kids.push(pid),
        }
    }
    let mut bad = 0;
    for pid in kids {
        let mut st = 0;
        // SAFETY: valid status pointer.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            bad += 1;
        }
    }
    i32::from(bad != 0)
}

fn threads(n: u64) -> i32 {
    let go = std::sync::Arc::new(std::sync::Barrier::new(n as usize));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                let (mut r, mut e, mut s): (libc::gid_t, libc::gid_t, libc::gid_t) = (0, 0, 0);
                // SAFETY: valid out-pointers.
                unsafe {
                    libc::syscall(libc::SYS_getresgid, &mut r as *mut libc::gid_t, &mut e as *mut libc::gid_t, &mut s as *mut libc::gid_t)
                };
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    0
}

fn spawn(n: u64) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let mut bad = 0;
    for _ in 0..n {
        match std::process::Command::new(&exe).args(["--threads", "1"]).status() {
            Ok(st) if st.success() => {}
            _ => bad += 1,
        }
    }
    i32::from(bad != 0)
}

fn kill_self() -> ! {
    // SAFETY: plain syscall.
    unsafe { libc::raise(libc::SIGKILL) };
    unreachable!()
}

fn exec_missing() -> ! {
    let path = c"/nonexistent/speaker-missing-binary";
    let argv = [path.as_ptr(), std::ptr::null()];
    // SAFETY: NUL-terminated argv.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    let e = std::io::Error::last_os_error();
    eprintln!("fixture-service: cannot execute '/nonexistent/speaker-missing-binary': {e}");
    std::process::exit(127)
}

fn stop_cont() -> i32 {
    // SAFETY: the child only makes raw syscalls and _exits.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            libc::raise(libc::SIGSTOP);
            libc::_exit(7);
        }
        let mut st = 0;
        if libc::waitpid(child, &mut st, libc::WUNTRACED) != child || !libc::WIFSTOPPED(st) {
            eprintln!("fixture-service: stop-cont: child did not stop (status {st:#x})");
            return 1;
        }
        libc::kill(child, libc::SIGCONT);
        if libc::waitpid(child, &mut st, 0) != child || !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 7 {
            eprintln!("fixture-service: stop-cont: child did not exit 7 (status {st:#x})");
            return 1;
        }
    }
    0
}

static HANDLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_sig: libc::c_int) {
    HANDLED.store(true, Ordering::SeqCst);
}

fn signal_handler() -> i32 {
    // SAFETY: installing a handler that only stores an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        libc::raise(libc::SIGUSR1);
    }
    if HANDLED.load(Ordering::SeqCst) {
        0
    } else {
        eprintln!("fixture-service: the SIGUSR1 handler did not run");
        1
    }
}

#[cfg(target_arch = "x86_64")]
fn int80() -> i32 {
    let ret: i64;
    // SAFETY: i386 getpid (20) through the compat entry point; it takes no
    // arguments and touches no memory.  r8-r11 are clobbered by int 0x80.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") 20i64 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack)
        );
    }
    if ret == std::process::id() as i64 {
        0
    } else {
        eprintln!("fixture-service: int 0x80 getpid returned {ret}");
        1
    }
}

/// An AArch64 process has no instruction that enters the 32-bit ARM ABI:
/// compat syscalls come from AArch32 programs only (vm-scenarios' compat
/// probe on arm64).
#[cfg(not(target_arch = "x86_64"))]
fn int80() -> i32 {
    eprintln!("fixture-service: --int80 is an x86_64 probe (the i386 ABI); this is {}", std::env::consts::ARCH);
    2
}
