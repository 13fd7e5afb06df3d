//! Scenarios of the phase switch: what each phase allows, threads and
//! processes covered, the action cache revoked, stacked filters and other
//! containers and the host left alone.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use speaker_tests::ensure;
use speaker_tests::guest::Outcome;

use crate::probe::Probe;
use crate::profiles::{allow_list_profile, std_phases, ALLOWED, DENY, NR_GETPRIORITY};
use crate::support::{ctl_ok, insn};

pub fn boot_phase_allows_boot_syscalls() -> Outcome {
    let mut p = Probe::start("boot-allows", &std_phases(), &[], 1)?;
    p.expect_all("sys mount", ALLOWED)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    p.expect_all("sys sethostname", ALLOWED)?;
    // The boot filter is in force: its one denial applies.
    p.expect_all("sys sysinfo", DENY)?;
    Ok(())
}

pub fn running_phase_denies_boot_only_syscall() -> Outcome {
    let mut p = Probe::start("run-denies", &std_phases(), &[], 1)?;
    p.expect_all("sys mount", ALLOWED)?;
    let out = p.switch("running")?;
    ensure!(out.contains("boot -> running"), "switch said {out:?}");
    p.expect_all("sys mount", DENY)?;
    p.expect_all("sys sethostname", DENY)?;
    Ok(())
}

pub fn running_phase_allows_running_syscalls() -> Outcome {
    let prof = allow_list_profile("allow-lists");
    let mut p = Probe::start("run-allows", &[prof], &["--threads", "2"], 3)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    p.switch("running")?;
    for s in ["getppid", "uname", "getcpu", "times", "umask", "getrusage"] {
        p.expect_all(&format!("sys {s}"), ALLOWED)?;
    }
    // Allow-list profiles deny with EPERM by default.
    p.expect_all("sys getpriority", "errno 1")?;
    p.expect_all("sys mount", "errno 1")?;
    let st = ctl_ok(&["status", "run-allows", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(&st).map_err(|e| format!("status --json: {e}: {st}"))?;
    ensure!(v[0]["phase"] == "running" && v[0]["tasks"] == 3, "status says {v}");
    ensure!(v[0]["allowed_syscalls"].as_u64().unwrap_or(0) > 300, "status allowed: {v}");
    Ok(())
}

pub fn shutdown_phase_applies_after_stop() -> Outcome {
    let mut p = Probe::start("shutdown", &std_phases(), &[], 1)?;
    p.switch("running")?;
    p.expect_all("sys uname", ALLOWED)?;
    fs::write(p.dir.join("shutdown-op"), "uname").unwrap();
    let out = ctl_ok(&["stop", "shutdown", "--timeout", "10"])?;
    ensure!(out.contains("running -> shutdown"), "stop said {out:?}");
    ensure!(out.contains("exited after SIGTERM"), "stop said {out:?}");
    ensure!(p.result("shutdown.p0t0").as_deref() == Some(DENY), "uname in the shutdown handler gave {:?}", p.result("shutdown.p0t0"));
    Ok(())
}

/// A service that ignores SIGTERM: `stop` kills it after `--timeout` and
/// says where it was waiting, so that an operator can tell why.
pub fn stop_kills_a_service_that_ignores_sigterm() -> Outcome {
    let p = Probe::start("ignores-term", &std_phases(), &[], 1)?;
    fs::write(p.dir.join("shutdown-op"), "ignore").unwrap();
    let out = ctl_ok(&["stop", "ignores-term", "--timeout", "2"])?;
    ensure!(out.contains("boot -> shutdown"), "stop said {out:?}");
    ensure!(p.result("shutdown.p0t0").as_deref() == Some("ignored"), "the probe's SIGTERM handler gave {:?}", p.result("shutdown.p0t0"));
    let why = out.split_once("(SIGKILL after timeout: 2s after SIGTERM it still ran, ").map(|(_, w)| w.trim_end().trim_end_matches(')'));
    // A task state letter, and the kernel function it sleeps in if it sleeps.
    ensure!(why.is_some_and(|w| w.split(", ").all(|point| point.len() == 1 || point.get(1..5) == Some(" in "))), "stop said {out:?}");
    // After SIGTERM the probe only sleeps: its one task is named asleep, where.
    ensure!(why.is_some_and(|w| w.starts_with("S in ") && !w.contains(", ")), "stop named no wait point: {out:?}");
    println!("  {}", out.lines().last().unwrap_or_default());
    let st = ctl_ok(&["status"])?;
    ensure!(!st.lines().any(|l| l.starts_with("ignores-term ")), "status still lists it: {st:?}");
    Ok(())
}

pub fn switch_covers_all_threads() -> Outcome {
    let mut p = Probe::start("threads", &std_phases(), &["--threads", "16"], 17)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    let out = p.switch("running")?;
    ensure!(out.contains("17 tasks"), "switch said {out:?}");
    p.expect_all("sys getpriority", DENY)?;
    p.expect_all("sys getppid", ALLOWED)?;
    Ok(())
}

pub fn switch_covers_all_processes() -> Outcome {
    let mut p = Probe::start("tree", &std_phases(), &["--depth", "3", "--threads", "2"], 9)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    let out = p.switch("running")?;
    ensure!(out.contains("9 tasks"), "switch said {out:?}");
    let res = p.all("sys getpriority")?;
    let procs: std::collections::BTreeSet<_> = res.iter().map(|(t, _)| t.split('t').next().unwrap().to_string()).collect();
    ensure!(procs.len() == 3, "answers from processes {procs:?}, want 3 levels");
    ensure!(res.iter().all(|(_, r)| r == DENY), "after switch: {res:?}");
    Ok(())
}

pub fn children_forked_after_switch_inherit_running_filter() -> Outcome {
    let mut p = Probe::start("forked", &std_phases(), &[], 1)?;
    let g = p.gen + 1;
    p.main("fork getpriority")?;
    ensure!(p.result(&format!("{g}.forked")).as_deref() == Some(ALLOWED), "child forked in boot: {:?}", p.result(&format!("{g}.forked")));
    p.switch("running")?;
    let g = p.gen + 1;
    p.main("fork getpriority")?;
    ensure!(p.result(&format!("{g}.forked")).as_deref() == Some(DENY), "child forked after switch: {:?}", p.result(&format!("{g}.forked")));
    Ok(())
}

pub fn cached_allow_is_revoked_after_switch() -> Outcome {
    let mut p = Probe::start("cache", &std_phases(), &[], 1)?;
    ensure!(p.cache_allows(NR_GETPRIORITY)?, "boot filter: getpriority is not in the action cache");
    p.expect_all("sys getpriority", ALLOWED)?;
    p.switch("running")?;
    ensure!(!p.cache_allows(NR_GETPRIORITY)?, "after switch: getpriority still cached as allowed");
    p.expect_all("sys getpriority", DENY)?;
    // Syscalls the running program still allows stay cached.
    ensure!(p.cache_allows(110)?, "getppid (110) lost from the cache");
    Ok(())
}

pub fn app_stacked_filter_still_applies_after_switch() -> Outcome {
    let mut p = Probe::start("stacked", &std_phases(), &["--threads", "3"], 4)?;
    ensure!(p.main("stack umask 1001")? == ALLOWED, "stacking the app filter failed");
    p.expect_all("sys umask", "errno 1001")?;
    p.expect_all("sys getpriority", ALLOWED)?;
    ensure!(p.cache_allows(NR_GETPRIORITY)?, "app filter's cache lacks getpriority before the switch");
    let out = p.switch("running")?;
    ensure!(out.contains("1 filter above trimmed"), "switch said {out:?}");
    p.expect_all("sys umask", "errno 1001")?;
    // Denied through the app filter's (trimmed) cache too.
    ensure!(!p.cache_allows(NR_GETPRIORITY)?, "app filter still caches getpriority as allowed");
    p.expect_all("sys getpriority", DENY)?;
    p.expect_all("sys getppid", ALLOWED)?;
    Ok(())
}

/// Starts, from a forked child carrying a host filter (personality fails
/// with errno 1002), both a host probe and a container: both sit on top of
/// the same host filter.
pub fn host_filter_below_container_is_untouched() -> Outcome {
    let [b, r, s] = std_phases();
    let hostdir = PathBuf::from("/tmp/c/hostprobe");
    let _ = fs::remove_dir_all(&hostdir);
    fs::create_dir_all(hostdir.join("res")).unwrap();
    let cdir = "/tmp/c/above-host";
    let _ = fs::remove_dir_all(cdir);
    fs::create_dir_all(format!("{cdir}/res")).unwrap();
    let prog = [
        insn(0x20, 0, 0, 0),
        insn(0x15, 0, 1, libc::SYS_personality as u32),
        insn(0x06, 0, 0, 0x0005_0000 | 1002),
        insn(0x06, 0, 0, 0x7fff_0000),
    ];
    let argv: Vec<std::ffi::CString> = [
        "speaker-ctl",
        "run",
        "--name",
        "above-host",
        "--volume",
        cdir,
        "--boot",
        b.to_str().unwrap(),
        "--running",
        r.to_str().unwrap(),
        "--shutdown",
        s.to_str().unwrap(),
        "--detach",
        "--",
        "speaker-probe",
        "serve",
        cdir,
    ]
    .iter()
    .map(|a| std::ffi::CString::new(*a).unwrap())
    .collect();
    let host_argv: Vec<std::ffi::CString> =
        ["speaker-probe", "serve", hostdir.to_str().unwrap()].iter().map(|a| std::ffi::CString::new(*a).unwrap()).collect();
    // SAFETY: the forked child installs a filter and execs; nothing else.
    let host_pid = unsafe { libc::fork() };
    if host_pid == 0 {
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
        // SAFETY: valid program; we are root (CAP_SYS_ADMIN).
        unsafe {
            if libc::syscall(libc::SYS_seccomp, 1, 0, &fprog) != 0 {
                libc::_exit(90);
            }
            if libc::fork() == 0 {
                let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
                ptrs.push(std::ptr::null());
                libc::execvp(ptrs[0], ptrs.as_ptr());
                libc::_exit(91);
            }
            let mut ptrs: Vec<*const libc::c_char> = host_argv.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            libc::execvp(ptrs[0], ptrs.as_ptr());
            libc::_exit(92);
        }
    }
    let mut host = Probe { cid: "hostprobe".into(), dir: hostdir, pid: host_pid, gen: 0, tasks: 1 };
    host.wait_ready()?;
    let mut c = Probe { cid: "above-host".into(), dir: cdir.into(), pid: 0, gen: 0, tasks: 1 };
    c.wait_ready()?;
    c.pid = speaker::container::state::ContainerState::load("above-host").map_err(|e| e.to_string())?.pid;
    c.expect_all("sys personality", "errno 1002")?;
    host.expect_all("sys personality", "errno 1002")?;
    c.switch("running")?;
    c.expect_all("sys getpriority", DENY)?;
    c.expect_all("sys personality", "errno 1002")?;
    host.expect_all("sys personality", "errno 1002")?;
    host.expect_all("sys getpriority", ALLOWED)?;
    host.send("exit");
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(host_pid, std::ptr::null_mut(), 0) };
    Ok(())
}

pub fn switch_leaves_other_containers_alone() -> Outcome {
    let mut a = Probe::start("iso-a", &std_phases(), &["--threads", "2"], 3)?;
    let mut b = Probe::start("iso-b", &std_phases(), &["--threads", "2"], 3)?;
    a.switch("running")?;
    a.expect_all("sys getpriority", DENY)?;
    b.expect_all("sys getpriority", ALLOWED)?;
    ensure!(b.cache_allows(NR_GETPRIORITY)?, "container B's cache lost getpriority when A switched");
    let st = ctl_ok(&["status", "iso-b", "--json"])?;
    ensure!(st.contains("\"phase\": \"boot\""), "iso-b status: {st}");
    Ok(())
}

pub fn switch_leaves_host_alone() -> Outcome {
    let hostdir = PathBuf::from("/tmp/c/host-nofilter");
    let _ = fs::remove_dir_all(&hostdir);
    let child = Command::new("speaker-probe").args(["serve", hostdir.to_str().unwrap()]).spawn().map_err(|e| e.to_string())?;
    let mut host = Probe { cid: "host-nofilter".into(), dir: hostdir, pid: child.id() as i32, gen: 0, tasks: 1 };
    host.wait_ready()?;
    let a = Probe::start("host-a", &std_phases(), &[], 1)?;
    a.switch("running")?;
    a.switch("shutdown")?;
    host.expect_all("sys getpriority", ALLOWED)?;
    host.expect_all("sys uname", ALLOWED)?;
    let status = fs::read_to_string(format!("/proc/{}/status", host.pid)).unwrap_or_default();
    ensure!(status.contains("Seccomp:\t0"), "host process got a seccomp mode: {status}");
    // SAFETY: plain syscall in this (host) process.
    ensure!(unsafe { libc::syscall(libc::SYS_getpriority, 0, 0) } >= 0, "the runner's own getpriority failed");
    host.send("exit");
    let mut child = child;
    let _ = child.wait();
    Ok(())
}
