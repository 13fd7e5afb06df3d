//! Helpers shared by the `trace_*` tests (included with `#[path]`; as a test
//! target of its own it has no tests).
#![allow(dead_code)]
// Test output goes to the harness: println!/eprintln! are fine here.
#![allow(clippy::disallowed_macros)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile};

/// The fixture's phase-specific syscalls (tests/src/bin/fixture-service.rs).
pub const BOOT_ONLY: &[&str] = &["umask", "uname", "getpriority", "getpgid", "getrusage"];
pub const RUNNING_ONLY: &[&str] = &["sysinfo", "times"];
pub const SHUTDOWN_ONLY: &[&str] = &["getitimer", "fsync"];
pub const SENTINEL: &str = "acct";

pub fn speaker_ctl() -> &'static str {
    env!("CARGO_BIN_EXE_speaker-ctl")
}

/// The fixture binary, next to speaker-ctl; built (or brought up to date)
/// once per test binary with `cargo build -p speaker-tests --bin
/// fixture-service`.
pub fn fixture() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let ctl = Path::new(speaker_ctl());
        let dir = ctl.parent().unwrap();
        let bin = dir.join("fixture-service");
        // <target-dir>/<triple>/<profile>/speaker-ctl
        let profile = dir.file_name().unwrap().to_str().unwrap().to_string();
        let target_dir = dir.parent().and_then(Path::parent).unwrap();
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "--quiet", "-p", "speaker-tests", "--bin", "fixture-service"])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile == "release" {
            cmd.arg("--release");
        }
        let st = cmd.status();
        if !matches!(st, Ok(s) if s.success()) {
            assert!(bin.exists(), "cannot build fixture-service ({st:?})");
            eprintln!("warning: cargo build of fixture-service failed ({st:?}); using {bin:?}");
        }
        assert!(bin.exists(), "{bin:?} missing after the build");
        bin
    })
}

pub fn fixture_str() -> &'static str {
    fixture().to_str().unwrap()
}

/// A free local TCP port, never the same twice in one test binary.
pub fn free_port() -> u16 {
    static USED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if USED.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A fresh directory for one test, removed when the test passes (kept for a
/// look when it fails).
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn tmpdir(name: &str) -> TestDir {
    let d = std::env::temp_dir().join(format!("speaker-trace-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TestDir(d)
}

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Makes the test process a child subreaper, so that anything left behind
/// by a speaker-ctl run is reparented to it and seen by [`assert_no_leftovers`].
fn subreaper() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// Set in speaker-ctl's environment (and so in every process it starts) to
/// this test process's pid: [`assert_no_leftovers`] counts only its own
/// runs' processes, not those of another checkout's tests running at the
/// same time on the same machine.
const OWNER_VAR: &str = "SPEAKER_TEST_OWNER";

/// Starts speaker-ctl with `args`, stdout and stderr piped.
pub fn spawn_ctl(args: &[&str]) -> Child {
    subreaper();
    Command::new(speaker_ctl())
        .args(args)
        .env(OWNER_VAR, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most `timeout`, then SIGKILLs it and panics) for a child and
/// collects its output.
pub fn finish(mut child: Child, timeout: Duration) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("speaker-ctl did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() };
    eprintln!("--- speaker-ctl stdout:\n{}--- stderr:\n{}---", run.stdout, run.stderr);
    run
}

/// Runs speaker-ctl with `args` to completion (60s at most).
pub fn trace(args: &[&str]) -> Run {
    finish(spawn_ctl(args), Duration::from_secs(60))
}

pub fn load(path: &Path) -> Profile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}\n{text}"))
}

/// The x86_64 syscall names of a phase (empty if the phase is absent).
pub fn names(p: &Profile, phase: Phase) -> BTreeSet<String> {
    p.phase(phase).map(|s| s.syscalls.iter().filter(|e| e.arch == "x86_64").map(|e| e.name.clone()).collect()).unwrap_or_default()
}

pub fn count(p: &Profile, phase: Phase, name: &str) -> u64 {
    p.phase(phase).and_then(|s| s.syscalls.iter().find(|e| e.name == name && e.arch == "x86_64")).and_then(|e| e.count).unwrap_or(0)
}

/// The count of x86_64 syscall `name` over all phases.
pub fn count_all(p: &Profile, name: &str) -> u64 {
    Phase::ALL.iter().map(|&ph| count(p, ph, name)).sum()
}

/// The x86_64 syscall names of all phases.
pub fn names_all(p: &Profile) -> BTreeSet<String> {
    Phase::ALL.iter().flat_map(|&ph| names(p, ph)).collect()
}

/// Prints the per-phase numbers of a profile.
pub fn show(p: &Profile) {
    for phase in Phase::ALL {
        if let Some(s) = p.phase(phase) {
            let calls: u64 = s.syscalls.iter().filter_map(|e| e.count).sum();
            eprintln!("{phase}: {} distinct syscalls, {calls} calls", s.syscalls.len());
        }
    }
}

/// Asserts the fixture's phase-specific syscalls: each set present in its
/// phase and absent from the others; the sentinel absent everywhere.
pub fn assert_fixture_phases(p: &Profile, pings: u64) {
    show(p);
    let boot = names(p, Phase::Boot);
    let running = names(p, Phase::Running);
    let shutdown = names(p, Phase::Shutdown);
    for (phase, set, own) in [("boot", &boot, BOOT_ONLY), ("running", &running, RUNNING_ONLY), ("shutdown", &shutdown, SHUTDOWN_ONLY)] {
        for name in own {
            assert!(set.contains(*name), "{name} missing from {phase}: {set:?}");
        }
        for (other, other_set) in [("boot", &boot), ("running", &running), ("shutdown", &shutdown)] {
            if other == phase {
                continue;
            }
            for name in own {
                assert!(!other_set.contains(*name), "{phase}-only {name} found in {other}");
            }
        }
        assert!(!set.contains(SENTINEL), "sentinel {SENTINEL} in {phase}");
    }
    assert!(boot.contains("execve"), "execve of CMD not in boot");
    assert!(boot.contains("listen"), "listen not in boot");
    for name in RUNNING_ONLY {
        assert_eq!(count(p, Phase::Running, name), pings, "{name} count");
    }
    for name in SHUTDOWN_ONLY {
        assert_eq!(count(p, Phase::Shutdown, name), 1, "{name} count");
    }
}

/// `(pid, comm, state, ppid)` of every process.
fn processes() -> Vec<(i32, String, char, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[l + 1..r].to_string();
        let mut rest = stat[r + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, comm, state, ppid));
    }
    out
}

/// Whether process `pid` was started (directly or not) by this test process.
fn started_by_us(pid: i32) -> bool {
    let mine = format!("{OWNER_VAR}={}", std::process::id());
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|b| b.split(|&c| c == 0).any(|v| v == mine.as_bytes()))
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

/// Asserts that nothing of a finished speaker-ctl run is left: no process
/// of ours whose command line contains `tag`, and no zombie, stopped or stray child
/// of the test process (a child subreaper, so orphans would land here).
pub fn assert_no_leftovers(tag: &str) {
    let me = std::process::id() as i32;
    // Give the kernel a moment to finish reparenting and reaping (on a
    // loaded 2-core host, with VMs running beside, seconds).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut bad = Vec::new();
        for (pid, comm, state, ppid) in processes() {
            if pid == me {
                continue;
            }
            let cl = cmdline(pid);
            let ours = ppid == me && !matches!(comm.as_str(), "speaker-ctl" | "cargo");
            let tagged = !tag.is_empty() && cl.contains(tag) && comm != "speaker-ctl" && started_by_us(pid);
            if ours || tagged || (ppid == me && state == 'T') {
                bad.push(format!("{pid} ({comm}) state {state} ppid {ppid}: {cl}"));
            }
        }
        if bad.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("left behind:\n{}", bad.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
