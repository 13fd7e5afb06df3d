//! `speaker-ctl trace` on the fixture service: each phase gets its own
//! syscalls, whatever ends boot (port, log, cmd, auto) and running
//! (workload, --running-for, SIGINT, --stop-after).
#[path = "trace_util.rs"]
mod util;

use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, SCHEMA_V1};
use util::*;

#[test]
fn port_ready_and_workload() {
    let dir = tmpdir("port");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let workload = format!("{} --client {port} --count 3", fixture_str());
    let ready = format!("port:{port}");
    let run =
        trace(&["trace", "--ready", &ready, "--workload", &workload, "-o", out.to_str().unwrap(), "--", fixture_str(), "--port", &port]);
    assert_eq!(run.code(), 0);
    assert!(run.stderr.contains("speaker.ko not loaded: using ptrace syscall-stops"));
    assert!(run.stderr.contains("workload exited with status 0"), "{}", run.stderr);
    for phase in ["boot", "running", "shutdown"] {
        assert!(run.stderr.contains(&format!("speaker-ctl: {phase}: ")), "summary of {phase}");
    }
    let p = load(&out);
    assert_eq!(p.schema, SCHEMA_V1);
    assert_eq!(p.name.as_deref(), Some("fixture-service"));
    assert_eq!(p.ready.as_deref(), Some(ready.as_str()));
    assert_eq!(p.architectures, vec!["SCMP_ARCH_X86_64".to_string()]);
    assert_fixture_phases(&p, 3);
    // Every entry carries its number, count and first-seen time; boot's
    // syscalls were first seen before running's.
    let first = |phase: Phase, name: &str| {
        let e = p.phase(phase).unwrap().syscalls.iter().find(|e| e.name == name).unwrap();
        assert!(e.nr.is_some() && e.count.unwrap() > 0);
        e.first_seen_ms.unwrap()
    };
    assert_eq!(p.phase(Phase::Boot).unwrap().syscalls.iter().find(|e| e.name == "execve").unwrap().nr, Some(59));
    assert!(first(Phase::Boot, "listen") <= first(Phase::Running, "sysinfo"));
    assert!(first(Phase::Running, "times") <= first(Phase::Shutdown, "getitimer"));
    // The profile module loads and validates it.
    let loaded = speaker::profile::load_profile(&out).expect("a valid speaker profile");
    assert_eq!(loaded, p);
    // No temporary file is left next to the profile.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_no_leftovers(&format!("--port {port}"));
}

#[test]
fn log_ready_echoes_output() {
    let dir = tmpdir("log");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let workload = format!("{} --client {port} --count 2", fixture_str());
    let ready = format!(r"log:listening on 127\.0\.0\.1:{port}$");
    let run =
        trace(&["trace", "--ready", &ready, "--workload", &workload, "-o", out.to_str().unwrap(), "--", fixture_str(), "--port", &port]);
    assert_eq!(run.code(), 0);
    // The service's stdout went through speaker-ctl to its stdout.
    assert!(run.stdout.contains(&format!("fixture-service: listening on 127.0.0.1:{port}\n")));
    assert!(run.stdout.contains("fixture-service: shutting down\n"));
    let p = load(&out);
    assert_eq!(p.ready.as_deref(), Some(ready.as_str()));
    assert_fixture_phases(&p, 2);
    assert_no_leftovers(&format!("--port {port}"));
}

#[test]
fn cmd_ready() {
    let dir = tmpdir("cmd");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let pidfile = dir.join("pid");
    let workload = format!("{} --client {port} --count 1", fixture_str());
    let ready = format!("cmd:'test -s {}'", pidfile.display());
    let run = trace(&[
        "trace",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "-o",
        out.to_str().unwrap(),
        "--",
        fixture_str(),
        "--port",
        &port,
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0);
    let p = load(&out);
    assert_fixture_phases(&p, 1);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the service is still there");
    assert_no_leftovers(&format!("--port {port}"));
}

#[test]
fn auto_ready_is_the_default() {
    let dir = tmpdir("auto");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let workload = format!("{} --client {port} --count 2", fixture_str());
    let run = trace(&[
        "trace",
        "--auto-window",
        "150ms",
        "--auto-windows",
        "3",
        "--workload",
        &workload,
        "-o",
        out.to_str().unwrap(),
        "--",
        fixture_str(),
        "--port",
        &port,
    ]);
    assert_eq!(run.code(), 0);
    let p = load(&out);
    assert_eq!(p.ready.as_deref(), Some("auto"));
    assert_fixture_phases(&p, 2);
    // Boot lasted at least the 3 quiet windows.
    let running = p.phase(Phase::Running).unwrap();
    let sysinfo = running.syscalls.iter().find(|e| e.name == "sysinfo").unwrap();
    assert!(sysinfo.first_seen_ms.unwrap() >= 450);
    assert_no_leftovers(&format!("--port {port}"));
}

/// SIGINT to speaker-ctl: SIGTERM to the service, whose shutdown syscalls
/// land in the shutdown phase; the profile on disk is whole at all times.
#[test]
fn sigint_forwards_sigterm_and_shutdown_is_traced() {
    let dir = tmpdir("sigint");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    // Pings, then keeps the running phase open until the SIGINT.
    let workload = format!("{} --client {port} --count 2; exec sleep 60", fixture_str());
    let ready = format!("port:{port}");
    let child = spawn_ctl(&[
        "trace",
        "--ready",
        &ready,
        "--workload",
        &workload,
        "-o",
        out.to_str().unwrap(),
        "--",
        fixture_str(),
        "--port",
        &port,
    ]);
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    loop {
        assert!(Instant::now() < deadline, "the running phase never showed the pings");
        if out.exists() {
            // Rewritten atomically: every read parses.
            let p = load(&out);
            reads += 1;
            if count(&p, Phase::Running, "times") == 2 {
                assert!(p.phase(Phase::Shutdown).is_none());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reads >= 1);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGINT).expect("SIGINT to speaker-ctl");
    let run = finish(child, Duration::from_secs(30));
    assert_eq!(run.code(), 0, "the service exits 0 on SIGTERM");
    let p = load(&out);
    assert_fixture_phases(&p, 2);
    assert_no_leftovers(&format!("--port {port}"));
    assert_no_leftovers("sleep 60");
}

#[test]
fn running_for_ends_running() {
    let dir = tmpdir("running-for");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let ready = format!("port:{port}");
    let start = Instant::now();
    let run =
        trace(&["trace", "--ready", &ready, "--running-for", "400ms", "-o", out.to_str().unwrap(), "--", fixture_str(), "--port", &port]);
    assert_eq!(run.code(), 0);
    assert!(start.elapsed() >= Duration::from_millis(400));
    let p = load(&out);
    assert!(p.phase(Phase::Running).is_some());
    let shutdown = names(&p, Phase::Shutdown);
    for name in SHUTDOWN_ONLY {
        assert!(shutdown.contains(*name), "{name} not in shutdown");
    }
    for name in BOOT_ONLY {
        assert!(!names(&p, Phase::Running).contains(*name));
        assert!(!shutdown.contains(*name));
    }
    assert_no_leftovers(&format!("--port {port}"));
}

/// `--stop-after` during boot (the ready command never succeeds): boot goes
/// straight to shutdown.
#[test]
fn stop_after_in_boot() {
    let dir = tmpdir("stop-after");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let run = trace(&[
        "trace",
        "--ready",
        "cmd:false",
        "--stop-after",
        "700ms",
        "-o",
        out.to_str().unwrap(),
        "--",
        fixture_str(),
        "--port",
        &port,
    ]);
    // Never ready: the trace failed, and says so (the profile is written).
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("was stopped (--stop-after) before it was ready (--ready cmd:false)"), "{}", run.stderr);
    let p = load(&out);
    assert!(p.phase(Phase::Running).is_none(), "running was never begun");
    let boot = names(&p, Phase::Boot);
    let shutdown = names(&p, Phase::Shutdown);
    for name in BOOT_ONLY {
        assert!(boot.contains(*name) && !shutdown.contains(*name), "{name}");
    }
    for name in SHUTDOWN_ONLY {
        assert!(shutdown.contains(*name) && !boot.contains(*name), "{name}");
    }
    assert_no_leftovers(&format!("--port {port}"));
}

/// A service whose root process exits right away (it "daemonizes"): the
/// trace follows the orphan, SIGTERM goes to the traced processes left.
#[test]
fn daemonized_service() {
    let dir = tmpdir("daemon");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    let script = format!("{} --port {port} >/dev/null & exit 3", fixture_str());
    let workload = format!("{} --client {port} --count 1", fixture_str());
    let ready = format!("port:{port}");
    let run = trace(&["trace", "--ready", &ready, "--workload", &workload, "-o", out.to_str().unwrap(), "--", "sh", "-c", &script]);
    assert_eq!(run.code(), 0, "ready, then shut down by speaker-ctl: whatever the root exited with");
    let p = load(&out);
    assert_eq!(p.name.as_deref(), Some("sh"));
    assert_fixture_phases(&p, 1);
    assert_no_leftovers(&format!("--port {port}"));
}

/// i386 compat syscalls are recorded as such (the machine's kernel must have
/// IA32 emulation, as speaker's own VM kernel does).
#[test]
fn compat_syscalls_recorded_with_their_arch() {
    let dir = tmpdir("int80");
    let out = dir.join("p.json");
    let run = trace(&["trace", "--one-shot", "-o", out.to_str().unwrap(), "--", fixture_str(), "--int80"]);
    assert_ne!(
        run.code(),
        128 + libc::SIGSEGV,
        "int 0x80 crashed: this kernel lacks IA32 emulation (CONFIG_IA32_EMULATION), which this test needs"
    );
    assert_eq!(run.code(), 0);
    let p = load(&out);
    let boot = p.phase(Phase::Boot).unwrap();
    let e = boot.syscalls.iter().find(|e| e.arch == "x86").expect("an x86 entry");
    assert_eq!((e.name.as_str(), e.nr, e.count), ("getpid", Some(20), Some(1)));
    assert!(p.architectures.contains(&"SCMP_ARCH_X86".to_string()));
    speaker::profile::load_profile(&out).expect("a valid speaker profile");
    assert_no_leftovers("--int80");
}

/// A workload that leaves a job in the background: the trace still ends
/// when the service is gone, and the job is terminated.
#[test]
fn workload_background_job_does_not_outlive_the_trace() {
    let dir = tmpdir("bg");
    let port = free_port().to_string();
    let out = dir.join("p.json");
    // The job outlives any plausible trace by far: if the trace waited for
    // it, it would take 317 s (an unusual duration, so that no unrelated
    // `sleep` on the machine matches the leftover check); under a loaded CI
    // machine a fast trace can still take tens of seconds, so the bound is
    // generous.
    let workload = format!("sleep 317 & {} --client {port} --count 1", fixture_str());
    let ready = format!("port:{port}");
    let start = Instant::now();
    let run =
        trace(&["trace", "--ready", &ready, "--workload", &workload, "-o", out.to_str().unwrap(), "--", fixture_str(), "--port", &port]);
    assert_eq!(run.code(), 0);
    assert!(start.elapsed() < Duration::from_secs(150), "the trace waited for the background job");
    assert_fixture_phases(&load(&out), 1);
    assert_no_leftovers("sleep 317");
    assert_no_leftovers(&format!("--port {port}"));
}
