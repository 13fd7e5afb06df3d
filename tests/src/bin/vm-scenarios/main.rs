//! vm-scenarios: speaker's behaviour tests, run as root inside the VM
//! (`qemu/run -- vm-scenarios [NAME...]`).
//!
//! Each scenario is named for the behaviour it proves, like the kernel's
//! seccomp selftests, and prints one line: `SCENARIO <name> PASS` or
//! `SCENARIO <name> FAIL: <why>`.  Probes are real syscalls made inside
//! test containers by `speaker-probe`; denials use errno 1000, which no
//! probed syscall can return on its own.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use speaker::abi;
use speaker::device::{encode_cid, Device};
use speaker_tests::ensure;
use speaker_tests::guest::{dmesg, kernel_trouble, run, run_scenarios, LogSince, Out, Outcome, PrintkUnlimited, Scenario};
use speaker_tests::ioctl;

mod cache;
mod raw;
mod trust;

/// The errno every test profile's deny rules return.
const DENY: &str = "errno 1000";
const ALLOWED: &str = "0";
/// `getpriority` on x86_64: the syscall used to probe the action cache.
const NR_GETPRIORITY: u32 = 140;

// ---------------------------------------------------------------------------
// helpers

fn ctl(args: &[&str]) -> Out {
    run("speaker-ctl", args)
}

fn ctl_ok(args: &[&str]) -> Result<String, String> {
    let o = ctl(args);
    ensure!(o.code == 0, "speaker-ctl {} failed ({}): {}", args.join(" "), o.code, o.stderr.trim());
    Ok(o.stdout)
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Outcome {
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
fn rmmod_within(within: Duration) -> Outcome {
    let mut last = String::new();
    wait_until("rmmod speaker to succeed", within, || {
        let o = run("rmmod", &["speaker"]);
        last = o.stderr;
        o.code == 0
    })
    .map_err(|e| format!("{e} (last rmmod said: {})", last.trim()))
}

fn write_json(path: &Path, v: &serde_json::Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// An OCI profile that allows everything but `deny`, which fail with errno 1000.
fn deny_profile(name: &str, deny: &[&str], action: &str) -> PathBuf {
    let path = PathBuf::from(format!("/tmp/profiles/{name}.json"));
    let mut rule = serde_json::json!({ "names": deny, "action": action });
    if action == "SCMP_ACT_ERRNO" {
        rule["errnoRet"] = 1000.into();
    }
    write_json(
        &path,
        &serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [rule],
        }),
    );
    path
}

/// The standard three phases of the tests: boot denies only `sysinfo`;
/// running also denies `mount`, `sethostname` and `getpriority`; shutdown
/// also denies `uname`.
fn std_phases() -> [PathBuf; 3] {
    [
        deny_profile("boot", &["sysinfo"], "SCMP_ACT_ERRNO"),
        deny_profile("running", &["sysinfo", "mount", "sethostname", "getpriority"], "SCMP_ACT_ERRNO"),
        deny_profile("shutdown", &["sysinfo", "mount", "sethostname", "getpriority", "uname"], "SCMP_ACT_ERRNO"),
    ]
}

/// A test container running speaker-probe.
struct Probe {
    cid: String,
    dir: PathBuf,
    pid: i32,
    gen: u64,
    tasks: usize,
}

impl Probe {
    fn start(cid: &str, phases: &[PathBuf], probe_args: &[&str], tasks: usize) -> Result<Probe, String> {
        let dir = PathBuf::from(format!("/tmp/c/{cid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("res")).map_err(|e| e.to_string())?;
        // The probes make mount and sethostname, which need CAP_SYS_ADMIN on
        // top of the default set (`run_container_gets_no_keys` checks the default).
        let mut args = vec!["run".to_string(), "--name".into(), cid.into(), "--cap-add".into(), "SYS_ADMIN".into()];
        if phases.len() == 1 {
            args.extend(["--profile".into(), phases[0].display().to_string()]);
        } else {
            for (flag, p) in ["--boot", "--running", "--shutdown"].iter().zip(phases) {
                args.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        args.extend(["--detach".into(), "--".into(), "speaker-probe".into(), "serve".into(), dir.display().to_string()]);
        args.extend(probe_args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = ctl_ok(&argv)?;
        let pid = out.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or(format!("bad run output {out:?}"))?;
        let p = Probe { cid: cid.into(), dir, pid, gen: 0, tasks };
        p.wait_ready()?;
        Ok(p)
    }

    fn wait_ready(&self) -> Outcome {
        wait_until(&format!("{} tasks of {} to be ready", self.tasks, self.cid), Duration::from_secs(60), || {
            fs::read_dir(&self.dir)
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("ready.")).count())
                .unwrap_or(0)
                >= self.tasks
        })
    }

    fn send(&mut self, op: &str) -> u64 {
        self.gen += 1;
        let tmp = self.dir.join("cmd.tmp");
        fs::write(&tmp, format!("{} {op}\n", self.gen)).unwrap();
        fs::rename(&tmp, self.dir.join("cmd")).unwrap();
        self.gen
    }

    fn result(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.join("res").join(name)).ok().map(|s| s.trim().to_string())
    }

    /// Runs `op` on every task; returns each task's result.
    fn all(&mut self, op: &str) -> Result<Vec<(String, String)>, String> {
        let gen = self.send(op);
        let prefix = format!("{gen}.");
        let dir = self.dir.join("res");
        let collect = || -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            let task = n.strip_prefix(&prefix)?.to_string();
                            if task.ends_with(".tmp") || task == "forked" {
                                return None;
                            }
                            Some((task, fs::read_to_string(e.path()).ok()?.trim().to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        wait_until(&format!("{} tasks of {} to answer '{op}'", self.tasks, self.cid), Duration::from_secs(60), || {
            collect().len() >= self.tasks
        })?;
        Ok(collect())
    }

    /// `op` on every task must give `want`.
    fn expect_all(&mut self, op: &str, want: &str) -> Outcome {
        let res = self.all(op)?;
        let bad: Vec<_> = res.iter().filter(|(_, r)| r != want).collect();
        ensure!(bad.is_empty(), "{}: '{op}' gave {bad:?} (want '{want}' in all {} tasks)", self.cid, res.len());
        Ok(())
    }

    /// Runs `op` on process 0's main thread only.
    fn main(&mut self, op: &str) -> Result<String, String> {
        let gen = self.send(op);
        let name = format!("{gen}.p0t0");
        wait_until(&format!("{} to answer '{op}'", self.cid), Duration::from_secs(60), || self.result(&name).is_some())?;
        Ok(self.result(&name).unwrap())
    }

    fn switch(&self, to: &str) -> Result<String, String> {
        ctl_ok(&["switch", &self.cid, "--to", to])
    }

    /// Whether the container's action cache allows native syscall `nr`
    /// (see [`cache`]: read or derived, depending on the kernel).
    fn cache_allows(&self, nr: u32) -> Result<bool, String> {
        cache::allows(self.pid, cache::Abi::X8664, nr)
    }

    fn alive(&self) -> bool {
        fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')).unwrap_or(false))
            .unwrap_or(false)
    }

    fn wait_gone(&self) -> Outcome {
        // The container is an orphan of init (PID 1, this runner's shell);
        // reap it if it became ours.
        wait_until(&format!("{} to exit", self.cid), Duration::from_secs(30), || {
            // SAFETY: non-blocking reap of any child.
            unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            !self.alive()
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.alive() {
            let _ = ctl(&["stop", &self.cid, "--timeout", "2"]);
        }
        let _ = fs::remove_dir_all(format!("/run/speaker/{}", self.cid));
    }
}

fn errno_of(r: i64) -> i32 {
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

fn raw_switch(fd: i32, cid: &str, prog: *const libc::sock_filter, len: u32) -> i32 {
    let mut args = ioctl::switch_at(ioctl::encoded_cid(cid), prog as u64, len, 1, 0, 0);
    // SAFETY: `args` is a valid SwitchArgs; the program pointer may be
    // deliberately bad: the module must answer with an errno.
    errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, &mut args) } as i64)
}

fn open_dev() -> Result<i32, String> {
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    ensure!(fd >= 0, "cannot open /dev/speaker: {}", std::io::Error::last_os_error());
    Ok(fd)
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Forks; the child runs `f` and exits with its return value.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
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

// ---------------------------------------------------------------------------
// Foundation

fn module_loads_and_creates_device() -> Outcome {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = fs::metadata("/dev/speaker").map_err(|e| format!("/dev/speaker: {e}"))?;
    ensure!(md.file_type().is_char_device(), "/dev/speaker is not a character device");
    ensure!(md.mode() & 0o777 == 0o600 && md.uid() == 0, "/dev/speaker has mode {:o} uid {}", md.mode() & 0o777, md.uid());
    ensure!(Path::new("/sys/class/misc/speaker/dev").exists(), "/sys/class/misc/speaker missing");
    let mods = fs::read_to_string("/proc/modules").unwrap_or_default();
    ensure!(mods.lines().any(|l| l.starts_with("speaker ")), "speaker not in /proc/modules");
    Ok(())
}

fn device_is_root_only() -> Outcome {
    let errno = in_child(|| {
        // SAFETY: dropping to nobody in the forked child.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return 99;
            }
            let fd = libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR);
            if fd >= 0 {
                return 0;
            }
            errno_of(-1)
        }
    });
    ensure!(errno == libc::EACCES || errno == libc::EPERM, "open as uid 65534 gave {errno}, want EACCES/EPERM");
    Ok(())
}

fn version_ioctl_reports_abi() -> Outcome {
    let out = ctl_ok(&["version"])?;
    ensure!(out.contains("speaker.ko 0.1.0 (ABI 1"), "speaker-ctl version said {out:?}");
    let v = Device::open().map_err(|e| e.to_string())?.version().map_err(|e| e.to_string())?;
    ensure!(v.abi_version == abi::SPEAKER_ABI_VERSION, "module ABI {}", v.abi_version);
    Ok(())
}

fn unknown_ioctl_returns_enotty() -> Outcome {
    let fd = open_dev()?;
    let mut buf = [0u8; 256];
    for cmd in [abi::ioc(0, 0x7f, 0), abi::ioc(abi::IOC_READ, 0x01, 8), 0x5401 /* TCGETS */] {
        // SAFETY: `buf` is large enough for anything the kernel might write.
        let e = errno_of(unsafe { libc::ioctl(fd, cmd as _, buf.as_mut_ptr()) } as i64);
        ensure!(e == libc::ENOTTY, "ioctl {cmd:#x} gave errno {e}, want ENOTTY");
    }
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

fn module_unloads_cleanly() -> Outcome {
    // Earlier scenarios' containers have exited; the programs kept for them
    // are freed (and the module unpinned) within a sweep, about a second.
    rmmod_within(Duration::from_secs(10))?;
    ensure!(!Path::new("/dev/speaker").exists(), "/dev/speaker still exists after rmmod");
    ensure!(dmesg().contains("speaker: unloaded"), "no unload message in the kernel log");
    let o = ctl(&["version"]);
    ensure!(
        o.code != 0 && o.stderr.contains("speaker.ko is not loaded (insmod speaker.ko)") && o.stderr.trim().lines().count() == 1,
        "speaker-ctl version without module: code {} stderr {:?}",
        o.code,
        o.stderr
    );
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod after rmmod failed: {}", o.stderr);
    ctl_ok(&["version"])?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Phases

fn boot_phase_allows_boot_syscalls() -> Outcome {
    let mut p = Probe::start("boot-allows", &std_phases(), &[], 1)?;
    p.expect_all("sys mount", ALLOWED)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    p.expect_all("sys sethostname", ALLOWED)?;
    // The boot filter is in force: its one denial applies.
    p.expect_all("sys sysinfo", DENY)?;
    Ok(())
}

fn running_phase_denies_boot_only_syscall() -> Outcome {
    let mut p = Probe::start("run-denies", &std_phases(), &[], 1)?;
    p.expect_all("sys mount", ALLOWED)?;
    let out = p.switch("running")?;
    ensure!(out.contains("boot -> running"), "switch said {out:?}");
    p.expect_all("sys mount", DENY)?;
    p.expect_all("sys sethostname", DENY)?;
    Ok(())
}

/// A speaker multi-phase profile with allow lists (default: EPERM), built
/// from every syscall libseccomp knows minus `deny`.
fn allow_list_profile(name: &str) -> PathBuf {
    let all: Vec<String> = (0..512)
        .filter_map(|nr| libseccomp::ScmpSyscall::from(nr).get_name_by_arch(libseccomp::ScmpArch::X8664).ok())
        .filter(|n| !n.is_empty() && !n.starts_with('_'))
        .collect();
    let phase = |deny: &[&str]| {
        let list: Vec<serde_json::Value> =
            all.iter().filter(|n| !deny.contains(&n.as_str())).map(|n| serde_json::json!({ "name": n })).collect();
        serde_json::json!({ "syscalls": list })
    };
    let path = PathBuf::from(format!("/tmp/profiles/{name}.json"));
    write_json(
        &path,
        &serde_json::json!({
            "schema": "speaker.profile/v1",
            "name": name,
            "default_action": "SCMP_ACT_ERRNO",
            "phases": {
                "boot": phase(&["sysinfo"]),
                "running": phase(&["sysinfo", "mount", "sethostname", "getpriority"]),
                "shutdown": phase(&["sysinfo", "mount", "sethostname", "getpriority", "uname"]),
            }
        }),
    );
    path
}

fn running_phase_allows_running_syscalls() -> Outcome {
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

fn shutdown_phase_applies_after_stop() -> Outcome {
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

// ---------------------------------------------------------------------------
// Coverage of tasks

fn switch_covers_all_threads() -> Outcome {
    let mut p = Probe::start("threads", &std_phases(), &["--threads", "16"], 17)?;
    p.expect_all("sys getpriority", ALLOWED)?;
    let out = p.switch("running")?;
    ensure!(out.contains("17 tasks"), "switch said {out:?}");
    p.expect_all("sys getpriority", DENY)?;
    p.expect_all("sys getppid", ALLOWED)?;
    Ok(())
}

fn switch_covers_all_processes() -> Outcome {
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

fn children_forked_after_switch_inherit_running_filter() -> Outcome {
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

fn cached_allow_is_revoked_after_switch() -> Outcome {
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

fn app_stacked_filter_still_applies_after_switch() -> Outcome {
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
fn host_filter_below_container_is_untouched() -> Outcome {
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

// ---------------------------------------------------------------------------
// Isolation

fn switch_leaves_other_containers_alone() -> Outcome {
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

fn switch_leaves_host_alone() -> Outcome {
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

fn switch_under_syscall_storm_is_safe() -> Outcome {
    let before = kernel_trouble(&dmesg()).len();
    let c1 = Probe::start("storm-1", &std_phases(), &["--threads", "32", "--storm"], 1)?;
    let c2 = Probe::start("storm-2", &std_phases(), &["--threads", "32", "--storm"], 1)?;
    let start = Instant::now();
    for i in 0..200 {
        let (c, to) = match i % 4 {
            0 => (&c1, "running"),
            1 => (&c2, "running"),
            2 => (&c1, "boot"),
            _ => (&c2, "boot"),
        };
        c.switch(to)?;
    }
    let took = start.elapsed();
    ensure!(c1.alive() && c2.alive(), "a storm container died");
    let trouble = kernel_trouble(&dmesg());
    ensure!(trouble.len() == before, "kernel log after 200 switches: {:?}", &trouble[before..]);
    println!("  200 switches under storm in {:.1}s", took.as_secs_f64());
    Ok(())
}

// ---------------------------------------------------------------------------
// Lifetimes

fn exited_container_is_forgotten() -> Outcome {
    let mut p = Probe::start("exits", &std_phases(), &["--threads", "2"], 3)?;
    ensure!(ctl_ok(&["status"])?.contains("exits"), "status does not list the container");
    p.send("exit");
    p.wait_gone()?;
    let st = ctl_ok(&["status"])?;
    ensure!(!st.contains("exits"), "status still lists the exited container: {st}");
    let o = ctl(&["switch", "exits"]);
    ensure!(
        o.code != 0 && o.stderr.contains("exits") && o.stderr.trim().lines().count() == 1,
        "switch of exited: {} {:?}",
        o.code,
        o.stderr
    );
    Ok(())
}

fn rmmod_with_live_container_is_safe() -> Outcome {
    let before = kernel_trouble(&dmesg()).len();
    let mut p = Probe::start("survivor", &std_phases(), &["--threads", "4"], 5)?;
    p.switch("running")?;
    // speaker.ko keeps the replaced boot program until the container's
    // filter dies (a PTRACE_SECCOMP_GET_FILTER reader may hold it), so it
    // refuses to unload meanwhile.
    let o = run("rmmod", &["speaker"]);
    ensure!(o.code != 0, "rmmod succeeded while a switched container lives");
    // The container keeps its current (running) filter.
    p.expect_all("sys getpriority", DENY)?;
    p.expect_all("sys getppid", ALLOWED)?;
    let g = p.gen + 1;
    p.main("fork getpriority")?;
    ensure!(p.result(&format!("{g}.forked")).as_deref() == Some(DENY), "child forked after rmmod: {:?}", p.result(&format!("{g}.forked")));
    p.send("exit");
    p.wait_gone()?;
    // Once it has exited, the module unloads (within a sweep) and loads again.
    rmmod_within(Duration::from_secs(10))?;
    let o = run("insmod", &["/speaker.ko"]);
    ensure!(o.code == 0, "insmod again failed: {}", o.stderr);
    let trouble = kernel_trouble(&dmesg());
    ensure!(trouble.len() == before, "kernel log: {:?}", &trouble[before..]);
    Ok(())
}

// ---------------------------------------------------------------------------
// Bad input to the module

fn switch_by_unprivileged_caller_is_refused() -> Outcome {
    let _p = Probe::start("unpriv", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let prog = [insn(0x06, 0, 0, 0x7fff_0000)];
    let errno = in_child(|| {
        // SAFETY: dropping every privilege in the forked child; the fd stays open.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
                return 99;
            }
        }
        raw_switch(fd, "unpriv", prog.as_ptr(), 1)
    });
    ensure!(errno == libc::EPERM, "switch as uid 65534 gave errno {errno}, want EPERM");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

fn bad_user_pointer_returns_efault() -> Outcome {
    let mut p = Probe::start("efault", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    // SAFETY: deliberately bad pointers; the module must not dereference them unchecked.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_SWITCH as _, 8usize) } as i64);
    ensure!(e == libc::EFAULT, "switch with args at 0x8: errno {e}");
    let e = raw_switch(fd, "efault", 0x1000 as *const _, 4);
    ensure!(e == libc::EFAULT, "switch with program at 0x1000: errno {e}");
    // SAFETY: as above.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_VERSION as _, 16usize) } as i64);
    ensure!(e == libc::EFAULT, "version to 0x10: errno {e}");
    let mut st = ioctl::status(0x1000, 4, [0; abi::CID_LEN]);
    // SAFETY: `st` is valid; its entries pointer is not.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_STATUS as _, &mut st) } as i64);
    ensure!(e == libc::EFAULT, "status into 0x1000: errno {e}");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    p.expect_all("sys getpriority", ALLOWED)?;
    Ok(())
}

fn malformed_program_returns_einval() -> Outcome {
    let mut p = Probe::start("einval", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let ret_allow = insn(0x06, 0, 0, 0x7fff_0000);
    let cases: Vec<(&str, Vec<libc::sock_filter>)> = vec![
        ("unknown opcode", vec![insn(0xffff, 0, 0, 0), ret_allow]),
        ("load outside seccomp_data", vec![insn(0x20, 0, 0, 64), ret_allow]),
        ("misaligned load", vec![insn(0x20, 0, 0, 2), ret_allow]),
        ("jump past the end", vec![insn(0x15, 5, 5, 0), ret_allow]),
        ("no return at the end", vec![insn(0x20, 0, 0, 0)]),
        ("socket-only load (BPF_LD|BPF_B|BPF_ABS)", vec![insn(0x30, 0, 0, 0), ret_allow]),
        ("indirect load (BPF_LD|BPF_W|BPF_IND)", vec![insn(0x40, 0, 0, 0), ret_allow]),
    ];
    for (what, prog) in &cases {
        let e = raw_switch(fd, "einval", prog.as_ptr(), prog.len() as u32);
        ensure!(e == libc::EINVAL, "{what}: errno {e}, want EINVAL");
    }
    let e = raw_switch(fd, "einval", [ret_allow].as_ptr(), 0);
    ensure!(e == libc::EINVAL, "empty program: errno {e}, want EINVAL");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    // The container still runs its boot program.
    p.expect_all("sys getpriority", ALLOWED)?;
    p.expect_all("sys sysinfo", DENY)?;
    Ok(())
}

fn oversized_program_is_refused() -> Outcome {
    let _p = Probe::start("e2big", &std_phases(), &[], 1)?;
    let fd = open_dev()?;
    let prog = vec![insn(0x06, 0, 0, 0x7fff_0000); 4097];
    let e = raw_switch(fd, "e2big", prog.as_ptr(), 4097);
    ensure!(e == libc::E2BIG, "4097 instructions: errno {e}, want E2BIG");
    let e = raw_switch(fd, "e2big", prog.as_ptr(), u32::MAX);
    ensure!(e == libc::E2BIG, "u32::MAX instructions: errno {e}, want E2BIG");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

fn unknown_container_returns_esrch() -> Outcome {
    let fd = open_dev()?;
    let prog = [insn(0x06, 0, 0, 0x7fff_0000)];
    let e = raw_switch(fd, "no-such-container", prog.as_ptr(), 1);
    ensure!(e == libc::ESRCH, "unknown container: errno {e}, want ESRCH");
    let args = ioctl::unregister(encode_cid("no-such-container").unwrap());
    // SAFETY: valid CidArgs.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_UNREGISTER as _, &args) } as i64);
    ensure!(e == libc::ESRCH, "unregister unknown: errno {e}, want ESRCH");
    let bad = ioctl::register(encode_cid("ghost").unwrap(), 999_999, 1, 0, 0);
    // SAFETY: valid RegisterArgs naming a PID that does not exist.
    let e = errno_of(unsafe { libc::ioctl(fd, abi::SPEAKER_IOC_REGISTER as _, &bad) } as i64);
    ensure!(e == libc::ESRCH, "register of a missing pid: errno {e}, want ESRCH");
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

// ---------------------------------------------------------------------------
// Bad input to speaker-ctl

fn one_line_error(o: &Out, needle: &str) -> Outcome {
    ensure!(o.code != 0, "exit code 0 (stdout {:?})", o.stdout);
    let lines: Vec<_> = o.stderr.trim().lines().collect();
    ensure!(lines.len() == 1 && lines[0].contains(needle), "stderr {:?} should be one line naming {needle:?}", o.stderr);
    Ok(())
}

fn ctl_reports_bad_input_clearly() -> Outcome {
    one_line_error(&ctl(&["switch", "nosuch"]), "nosuch")?;
    one_line_error(&ctl(&["status", "nosuch"]), "nosuch")?;
    fs::write("/tmp/profiles/broken.json", "{ not json").unwrap();
    one_line_error(&ctl(&["run", "--name", "x", "--profile", "/tmp/profiles/broken.json", "--", "true"]), "/tmp/profiles/broken.json")?;
    one_line_error(&ctl(&["run", "--name", "x", "--profile", "/tmp/profiles/missing.json", "--", "true"]), "/tmp/profiles/missing.json")?;
    let [b, r, _] = std_phases();
    let o = ctl(&["run", "--name", "x", "--boot", b.to_str().unwrap(), "--running", r.to_str().unwrap(), "--", "/no/such/binary"]);
    one_line_error(&o, "/no/such/binary")?;
    ensure!(!ctl_ok(&["status"])?.contains(" x "), "a failed run left container x registered");
    Ok(())
}

fn kill_process_action_kills_on_denied_syscall() -> Outcome {
    let b = deny_profile("kill-boot", &["sysinfo"], "SCMP_ACT_ERRNO");
    let r = deny_profile("kill-running", &["getpriority"], "SCMP_ACT_KILL_PROCESS");
    let dir = "/tmp/c/killer";
    let _ = fs::remove_dir_all(dir);
    let mut child = Command::new("speaker-ctl")
        .args(["run", "--name", "killer", "--boot", b.to_str().unwrap(), "--running", r.to_str().unwrap(), "--"])
        .args(["speaker-probe", "serve", dir, "--threads", "2"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut p = Probe { cid: "killer".into(), dir: dir.into(), pid: 0, gen: 0, tasks: 3 };
    p.wait_ready()?;
    p.expect_all("sys getpriority", ALLOWED)?;
    p.switch("running")?;
    p.send("sys getpriority");
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure!(status.code() == Some(128 + libc::SIGSYS), "container exit {status:?}, want 128+SIGSYS");
    Ok(())
}

fn log_action_allows_in_complain_mode() -> Outcome {
    let b = deny_profile("log-boot", &["sysinfo"], "SCMP_ACT_ERRNO");
    let r = deny_profile("log-running", &["getpriority"], "SCMP_ACT_LOG");
    let mut p = Probe::start("complain", &[b.clone(), r, b], &[], 1)?;
    p.switch("running")?;
    let _unlimited = PrintkUnlimited::new()?;
    let mut since = LogSince::now()?;
    p.expect_all("sys getpriority", ALLOWED)?;
    // SCMP_ACT_LOG: allowed, and logged through audit (type 1326, action
    // SECCOMP_RET_LOG = 0x7ffc0000) with the syscall number (printk's rate
    // limit is off meanwhile, so the record cannot be dropped).
    let record = format!("syscall={NR_GETPRIORITY} ");
    wait_until("the audit record of the logged getpriority", Duration::from_secs(10), || {
        since.messages().iter().any(|l| l.contains("type=1326") && l.contains(&record) && l.contains("code=0x7ffc0000"))
    })
}

// ---------------------------------------------------------------------------

const SCENARIOS: &[Scenario] = &[
    ("module_loads_and_creates_device", module_loads_and_creates_device),
    ("device_is_root_only", device_is_root_only),
    ("version_ioctl_reports_abi", version_ioctl_reports_abi),
    ("unknown_ioctl_returns_enotty", unknown_ioctl_returns_enotty),
    ("boot_phase_allows_boot_syscalls", boot_phase_allows_boot_syscalls),
    ("running_phase_denies_boot_only_syscall", running_phase_denies_boot_only_syscall),
    ("running_phase_allows_running_syscalls", running_phase_allows_running_syscalls),
    ("shutdown_phase_applies_after_stop", shutdown_phase_applies_after_stop),
    ("switch_covers_all_threads", switch_covers_all_threads),
    ("switch_covers_all_processes", switch_covers_all_processes),
    ("children_forked_after_switch_inherit_running_filter", children_forked_after_switch_inherit_running_filter),
    ("cached_allow_is_revoked_after_switch", cached_allow_is_revoked_after_switch),
    ("app_stacked_filter_still_applies_after_switch", app_stacked_filter_still_applies_after_switch),
    ("host_filter_below_container_is_untouched", host_filter_below_container_is_untouched),
    ("switch_leaves_other_containers_alone", switch_leaves_other_containers_alone),
    ("switch_leaves_host_alone", switch_leaves_host_alone),
    ("kill_process_action_kills_on_denied_syscall", kill_process_action_kills_on_denied_syscall),
    ("log_action_allows_in_complain_mode", log_action_allows_in_complain_mode),
    ("switch_by_unprivileged_caller_is_refused", switch_by_unprivileged_caller_is_refused),
    ("bad_user_pointer_returns_efault", bad_user_pointer_returns_efault),
    ("malformed_program_returns_einval", malformed_program_returns_einval),
    ("oversized_program_is_refused", oversized_program_is_refused),
    ("unknown_container_returns_esrch", unknown_container_returns_esrch),
    ("ctl_reports_bad_input_clearly", ctl_reports_bad_input_clearly),
    ("exited_container_is_forgotten", exited_container_is_forgotten),
    ("switch_under_syscall_storm_is_safe", switch_under_syscall_storm_is_safe),
    ("rmmod_with_live_container_is_safe", rmmod_with_live_container_is_safe),
    ("switch_from_inside_container_is_refused", trust::switch_from_inside_container_is_refused),
    ("run_container_gets_no_keys", trust::run_container_gets_no_keys),
    ("get_filter_during_switch_is_safe", trust::get_filter_during_switch_is_safe),
    ("register_of_shared_filter_is_refused", trust::register_of_shared_filter_is_refused),
    ("status_requires_cap_sys_admin", trust::status_requires_cap_sys_admin),
    ("layout_is_checked_against_a_live_filter_at_load", trust::layout_is_checked_against_a_live_filter_at_load),
    ("switch_beyond_max_insns_per_path_is_refused", trust::switch_beyond_max_insns_per_path_is_refused),
    ("rmmod_after_deferred_switches_is_safe", trust::rmmod_after_deferred_switches_is_safe),
    ("compat_cached_allow_is_revoked_after_switch", trust::compat_cached_allow_is_revoked_after_switch),
    ("tsync_stacking_during_switch_is_safe", trust::tsync_stacking_during_switch_is_safe),
    ("module_unloads_cleanly", module_unloads_cleanly),
];

fn main() {
    let view = cache::View::current();
    println!("ACTION-CACHE {}: {}", view.name(), view.describe());
    run_scenarios(SCENARIOS)
}
