//! speaker-probe: the process that runs inside test containers and makes
//! real syscalls on request, from every thread and process it owns.
//!
//! ```text
//! speaker-probe serve DIR [--threads N] [--depth D] [--storm]
//! speaker-probe try NAME...      make each syscall once, print `NAME: 0` or `NAME: errno N` (`sleep:MS`: sleep)
//! speaker-probe known            the syscall names it knows
//! ```
//!
//! Every task (the main thread and N extra threads of each of the D
//! processes in a chain: process 0 forks process 1, which forks process 2,
//! ...) writes `DIR/ready.pPtT` once running, then runs each new command
//! of `DIR/cmd` (one line `GEN OP ARGS...`), which each process' first
//! thread polls for and hands to the others, and writes its result to
//! `DIR/res/GEN.pPtT`:
//!
//! * `sys NAME`: the raw syscall NAME (see `syscall_by_name`); the result
//!   is `0` on success or `errno N`.
//! * `fork NAME` (process 0, main thread only): a child forked now makes
//!   NAME and writes `DIR/res/GEN.forked`.
//! * `stack NAME ERRNO` (process 0, main thread only): installs an
//!   application filter on all threads of process 0 (TSYNC) that fails
//!   NAME with ERRNO.
//! * `selfswitch CID` (process 0, main thread only): the attack of a
//!   compromised service: opens `/dev/speaker` and switches container CID
//!   (its own) to `RET_ALLOW`; the result is `open errno N`, `switch errno
//!   N` or `switch 0`.
//! * `speaker-probe fdswitch CID FD` (one shot): the same through a
//!   `/dev/speaker` descriptor handed in as FD.
//!
//! * `race statfs N` (process 0, main thread only): N statfs calls while
//!   another thread flips the path between `/` and `/nonexistent`; the
//!   result is `ok=A enoent=B eperm=C other=D`.
//!
//! On SIGTERM process 0 makes the syscall named in `DIR/shutdown-op`
//! (default `uname`), writes `DIR/res/shutdown.p0t0` and exits 0; with
//! `ignore` there it writes `ignored` and sleeps on, no longer polling (a
//! service that ignores SIGTERM and waits for something that never comes).
//! `--storm`: the extra threads are storm threads instead of pollers:
//! between `storm on` and `storm off` (process 0's main thread; the result
//! is `storming N` once all N storm, `calm` once none does) they hammer
//! cheap syscalls and fork short-lived children; otherwise they wait,
//! asleep, so that the container starts and stops at the usual speed.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

static TERM: AtomicBool = AtomicBool::new(false);
/// The storm threads' switch (`storm on|off`): the flag they test between
/// two rounds, and the condition they sleep on while it is off.
static STORM: AtomicBool = AtomicBool::new(false);
static STORM_WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
/// How many storm threads there are, and how many storm now.
static STORM_THREADS: AtomicUsize = AtomicUsize::new(0);
static STORMING: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_term(_: libc::c_int) {
    TERM.store(true, Ordering::SeqCst);
}

/// Makes syscall `name` with harmless arguments; `Ok(())` or the errno.
fn syscall_by_name(name: &str, dir: &Path) -> Result<(), i32> {
    let mut buf = [0u8; 4096];
    let b = buf.as_mut_ptr();
    let cdir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: every call gets valid pointers to `buf` (large enough for the
    // structs these syscalls write) or to `cdir`.
    let r = unsafe {
        match name {
            "getppid" => libc::syscall(libc::SYS_getppid),
            "gettid" => libc::syscall(libc::SYS_gettid),
            "getpriority" => libc::syscall(libc::SYS_getpriority, 0, 0),
            "uname" => libc::syscall(libc::SYS_uname, b),
            "umask" => libc::syscall(libc::SYS_umask, 0o022),
            "sysinfo" => libc::syscall(libc::SYS_sysinfo, b),
            "getcpu" => libc::syscall(libc::SYS_getcpu, b, b.add(8), 0),
            "personality" => libc::syscall(libc::SYS_personality, 0xffff_ffffu64),
            "getrusage" => libc::syscall(libc::SYS_getrusage, 0, b),
            "times" => libc::syscall(libc::SYS_times, b),
            "sethostname" => libc::syscall(libc::SYS_sethostname, c"probe".as_ptr(), 5),
            "mount" => libc::syscall(
                libc::SYS_mount,
                cdir.as_ptr(),
                cdir.as_ptr(),
                std::ptr::null::<libc::c_char>(),
                libc::MS_BIND,
                std::ptr::null::<libc::c_void>(),
            ),
            // Harmless forms of syscalls services make while they boot.
            "setuid" => libc::syscall(libc::SYS_setuid, libc::getuid()),
            "setgid" => libc::syscall(libc::SYS_setgid, libc::getgid()),
            "prlimit64" => libc::syscall(libc::SYS_prlimit64, 0, libc::RLIMIT_NOFILE, std::ptr::null::<u8>(), b),
            "getrlimit" => libc::syscall(libc::SYS_getrlimit, libc::RLIMIT_NOFILE, b),
            "statfs" => libc::syscall(libc::SYS_statfs, c"/".as_ptr(), b),
            "getcwd" => libc::syscall(libc::SYS_getcwd, b, 4096),
            "chdir" => libc::syscall(libc::SYS_chdir, c"/".as_ptr()),
            "sched_getaffinity" => libc::syscall(libc::SYS_sched_getaffinity, 0, 128, b),
            "capget" => {
                // version 3 header, pid 0 (self); data in the rest of `buf`.
                let hdr = b as *mut u32;
                *hdr = 0x2008_0522;
                *hdr.add(1) = 0;
                libc::syscall(libc::SYS_capget, hdr, b.add(64))
            }
            // Socket set-up every server makes while it boots, on no socket:
            // EBADF (9) when allowed, the filter's errno when not.
            "listen" => libc::syscall(libc::SYS_listen, -1, 0),
            "bind" => libc::syscall(libc::SYS_bind, -1, b, 16),
            _ => return Err(libc::ENOSYS),
        }
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

fn result_text(r: Result<(), i32>) -> String {
    match r {
        Ok(()) => "0".to_string(),
        Err(e) => format!("errno {e}"),
    }
}

fn write_file(path: &Path, text: &str) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    if let Ok(mut f) = fs::File::create(&tmp) {
        let _ = f.write_all(text.as_bytes());
        let _ = f.write_all(b"\n");
        let _ = fs::rename(&tmp, path);
    }
}

fn syscall_nr(name: &str) -> Option<u32> {
    Some(match name {
        "getppid" => libc::SYS_getppid,
        "getpriority" => libc::SYS_getpriority,
        "uname" => libc::SYS_uname,
        "umask" => libc::SYS_umask,
        "sysinfo" => libc::SYS_sysinfo,
        "personality" => libc::SYS_personality,
        "times" => libc::SYS_times,
        _ => return None,
    } as u32)
}

/// `AUDIT_ARCH_X86_64`, or `AUDIT_ARCH_AARCH64` on arm64.
#[cfg(not(target_arch = "aarch64"))]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;

/// A hand-written app filter (like the kernel selftests do): `name` fails
/// with `errno`, everything else is allowed.
fn stack_filter(name: &str, errno: u32) -> Result<(), i32> {
    let nr = syscall_nr(name).ok_or(libc::ENOSYS)?;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let prog = [
        f(0x20, 0, 0, 4),                   // ld [4] (arch)
        f(0x15, 0, 3, AUDIT_ARCH_NATIVE),   // jeq the native ABI
        f(0x20, 0, 0, 0),                   // ld [0] (nr)
        f(0x15, 0, 1, nr),                  // jeq nr
        f(0x06, 0, 0, 0x0005_0000 | errno), // ret ERRNO(errno)
        f(0x06, 0, 0, 0x7fff_0000),         // ret ALLOW
    ];
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
    // SAFETY: valid program; SECCOMP_SET_MODE_FILTER with TSYNC (flag 1).
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 1, &fprog) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Tries to switch container `cid` to a one-instruction `RET_ALLOW` program.
fn self_switch(cid: &str) -> String {
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return format!("open errno {}", std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    switch_to_allow(fd, cid)
}

/// Switches container `cid` to `RET_ALLOW` through `/dev/speaker` open as
/// `fd`, and closes it: `switch errno N` or `switch 0`.
fn switch_to_allow(fd: i32, cid: &str) -> String {
    use speaker::abi;
    let prog = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 }];
    let mut args = speaker_tests::ioctl::switch(speaker_tests::ioctl::encoded_cid(cid), &prog, abi::PHASE_RUNNING, 0, 0);
    // SAFETY: `args` is a valid SwitchArgs pointing to `prog`.
    let r = unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, &mut args) };
    let out = if r < 0 {
        format!("switch errno {}", std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        "switch 0".to_string()
    };
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    out
}

/// The last command the process' first thread read from `DIR/cmd` (`GEN
/// OP ARGS...`), for the process' other threads (see [`follow_loop`]).
static CMD: (Mutex<(u64, String)>, Condvar) = (Mutex::new((0, String::new())), Condvar::new());

/// The first thread of each process: polls `DIR/cmd`, hands each new
/// command to the process' other threads and runs it.  (One reader per
/// process: 17 threads that each read the file every 5 ms kept the
/// guest's vCPUs busy and slowed every scenario under TCG.)
fn poll_loop(dir: PathBuf, id: String, main: bool) {
    write_file(&dir.join(format!("ready.{id}")), "1");
    let mut last = 0u64;
    loop {
        if main && TERM.swap(false, Ordering::SeqCst) {
            let op = fs::read_to_string(dir.join("shutdown-op")).unwrap_or_else(|_| "uname".into());
            if op.trim() == "ignore" {
                write_file(&dir.join("res").join(format!("shutdown.{id}")), "ignored");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            let r = syscall_by_name(op.trim(), &dir);
            write_file(&dir.join("res").join(format!("shutdown.{id}")), &result_text(r));
            std::process::exit(0);
        }
        if let Ok(cmd) = fs::read_to_string(dir.join("cmd")) {
            let gen: u64 = cmd.split_whitespace().next().and_then(|g| g.parse().ok()).unwrap_or(0);
            if gen > last {
                last = gen;
                *CMD.0.lock().unwrap() = (gen, cmd.clone());
                CMD.1.notify_all();
                run_op(&dir, &id, main, gen, &cmd);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every other thread: waits, asleep, for the next command the process'
/// first thread read, and runs it itself.
fn follow_loop(dir: PathBuf, id: String) {
    write_file(&dir.join(format!("ready.{id}")), "1");
    let mut last = 0u64;
    loop {
        let (gen, cmd) = {
            let mut c = CMD.0.lock().unwrap();
            while c.0 <= last {
                c = CMD.1.wait(c).unwrap();
            }
            c.clone()
        };
        last = gen;
        run_op(&dir, &id, false, gen, &cmd);
    }
}

/// Runs command `GEN OP ARGS...` on this task (`main`: process 0's first
/// thread) and writes its result to `DIR/res/GEN.ID`.
fn run_op(dir: &Path, id: &str, main: bool, gen: u64, cmd: &str) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let res = dir.join("res").join(format!("{gen}.{id}"));
    match (words.get(1).copied(), words.get(2).copied()) {
        (Some("sys"), Some(name)) => write_file(&res, &result_text(syscall_by_name(name, dir))),
        (Some("fork"), Some(name)) if main => {
            // SAFETY: the child only makes a syscall, writes a file and _exits.
            match unsafe { libc::fork() } {
                0 => {
                    let r = syscall_by_name(name, dir);
                    write_file(&dir.join("res").join(format!("{gen}.forked")), &result_text(r));
                    // SAFETY: plain exit of the forked child.
                    unsafe { libc::_exit(0) };
                }
                pid if pid > 0 => {
                    let mut st = 0;
                    // SAFETY: reaping our own child.
                    unsafe { libc::waitpid(pid, &mut st, 0) };
                    write_file(&res, "0");
                }
                _ => write_file(&res, "errno fork"),
            }
        }
        (Some("stack"), Some(name)) if main => {
            let errno = words.get(3).and_then(|e| e.parse().ok()).unwrap_or(1001);
            write_file(&res, &result_text(stack_filter(name, errno)));
        }
        (Some("selfswitch"), Some(cid)) if main => write_file(&res, &self_switch(cid)),
        (Some("race"), Some("statfs")) if main => {
            let n = words.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
            write_file(&res, &race_statfs(n));
        }
        (Some("storm"), Some(state)) if main => write_file(&res, &set_storm(state == "on")),
        // _exit (exit_group, no atexit handlers): any thread may get here
        // first, and glibc's exit() is not safe to call from two at once.
        // SAFETY: ends the process; nothing is left to flush.
        (Some("exit"), _) => unsafe { libc::_exit(0) },
        _ => {}
    }
}

/// `race statfs N`: N statfs(2) calls on a path that another thread flips
/// between `/` (exists) and `/nonexistent` all the while (the memory a
/// supervisor would read if it looked at arguments); the result counts
/// `ok=A enoent=B eperm=C other=D`.
fn race_statfs(n: u32) -> String {
    use std::sync::atomic::AtomicU8;
    use std::sync::Arc;
    // Atomics: the two threads share the bytes (AtomicU8 is a u8 in memory).
    let path: Arc<Vec<AtomicU8>> = Arc::new(b"/nonexistent\0".iter().map(|b| AtomicU8::new(*b)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                path[1].store(0, Ordering::Relaxed);
                path[1].store(b'n', Ordering::Relaxed);
            }
        })
    };
    let (mut ok, mut enoent, mut eperm, mut other) = (0, 0, 0, 0);
    let mut out = [0u8; 256];
    for _ in 0..n {
        // SAFETY: `path` is a NUL-terminated byte string that lives for the
        // call (its bytes change, its terminator does not); `out` is large
        // enough for struct statfs.
        let r = unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr() as *const libc::c_char, out.as_mut_ptr()) };
        match (r, std::io::Error::last_os_error().raw_os_error()) {
            (0, _) => ok += 1,
            (_, Some(libc::ENOENT)) => enoent += 1,
            (_, Some(libc::EPERM)) => eperm += 1,
            _ => other += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    format!("ok={ok} enoent={enoent} eperm={eperm} other={other}")
}

/// `storm on|off`: switches the storm threads and waits (up to 2 minutes)
/// until all of them storm, or none does.
fn set_storm(on: bool) -> String {
    STORM.store(on, Ordering::SeqCst);
    *STORM_WAKE.0.lock().unwrap() = on;
    STORM_WAKE.1.notify_all();
    let want = if on { STORM_THREADS.load(Ordering::SeqCst) } else { 0 };
    let deadline = Instant::now() + Duration::from_secs(120);
    while STORMING.load(Ordering::SeqCst) != want {
        if Instant::now() > deadline {
            return format!("{} of {want} storming", STORMING.load(Ordering::SeqCst));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if on {
        format!("storming {want}")
    } else {
        "calm".into()
    }
}

fn storm_loop() {
    loop {
        let mut on = STORM_WAKE.0.lock().unwrap();
        while !*on {
            on = STORM_WAKE.1.wait(on).unwrap();
        }
        drop(on);
        STORMING.fetch_add(1, Ordering::SeqCst);
        storm_rounds();
        STORMING.fetch_sub(1, Ordering::SeqCst);
    }
}

fn storm_rounds() {
    let mut i = 0u64;
    while STORM.load(Ordering::Relaxed) {
        // SAFETY: harmless syscalls without pointers.
        unsafe {
            libc::syscall(libc::SYS_getppid);
            libc::syscall(libc::SYS_getpriority, 0, 0);
        }
        i += 1;
        if i.is_multiple_of(200) {
            // SAFETY: the child only makes syscalls and _exits; we reap it.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::syscall(libc::SYS_getpriority, 0, 0);
                    libc::_exit(0);
                } else if pid > 0 {
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }
}

fn serve(dir: PathBuf, threads: usize, depth: usize, storm: bool) -> ! {
    fs::create_dir_all(dir.join("res")).expect("cannot create the result directory");
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
    let mut level = 0;
    while level + 1 < depth {
        // SAFETY: single-threaded at this point; the child continues below.
        match unsafe { libc::fork() } {
            0 => level += 1,
            pid if pid > 0 => break,
            _ => panic!("fork failed"),
        }
    }
    if storm {
        STORM_THREADS.store(threads, Ordering::SeqCst);
    }
    for t in 1..=threads {
        let dir = dir.clone();
        let id = format!("p{level}t{t}");
        std::thread::spawn(move || if storm { storm_loop() } else { follow_loop(dir, id) });
    }
    poll_loop(dir, format!("p{level}t0"), level == 0);
    unreachable!()
}

/// The syscalls `try` and `sys` know (see `syscall_by_name`).
const KNOWN: &[&str] = &[
    "getppid",
    "gettid",
    "getpriority",
    "uname",
    "umask",
    "sysinfo",
    "getcpu",
    "personality",
    "getrusage",
    "times",
    "sethostname",
    "mount",
    "setuid",
    "setgid",
    "prlimit64",
    "getrlimit",
    "statfs",
    "getcwd",
    "chdir",
    "sched_getaffinity",
    "capget",
    "listen",
    "bind",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `speaker-probe try NAME...`: make each syscall once, print
    // `NAME: 0` or `NAME: errno N`, exit 0.  `speaker-probe known`: list them.
    if args.get(1).map(String::as_str) == Some("known") {
        println!("{}", KNOWN.join("\n"));
        return;
    }
    // `fdswitch CID FD`: the attack with the device handed in as FD.
    if args.get(1).map(String::as_str) == Some("fdswitch") && args.len() == 4 {
        let fd: i32 = args[3].parse().expect("fdswitch CID FD");
        println!("{}", switch_to_allow(fd, &args[2]));
        return;
    }
    if args.get(1).map(String::as_str) == Some("try") && args.len() > 2 {
        for name in &args[2..] {
            // `sleep:MS`: stay alive that long (a process whose denial must
            // be attributed while it lives).
            if let Some(ms) = name.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                continue;
            }
            println!("{name}: {}", result_text(syscall_by_name(name, Path::new("/"))));
        }
        return;
    }
    if args.len() < 3 || args[1] != "serve" {
        eprintln!("usage: speaker-probe serve DIR [--threads N] [--depth D] [--storm] | try NAME... | fdswitch CID FD | known");
        std::process::exit(2);
    }
    let mut threads = 0;
    let mut depth = 1;
    let mut storm = false;
    let mut i = 3;
    while i < args.len() {
        match args[i].as_str() {
            "--threads" => {
                threads = args[i + 1].parse().expect("--threads N");
                i += 1;
            }
            "--depth" => {
                depth = args[i + 1].parse().expect("--depth D");
                i += 1;
            }
            "--storm" => storm = true,
            a => {
                eprintln!("speaker-probe: unknown argument {a}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    serve(PathBuf::from(&args[2]), threads, depth, storm)
}
