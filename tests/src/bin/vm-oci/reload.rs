//! Reload scenarios: nginx keeps serving through the reload phase (under
//! client load), with speaker-runtime and with `speaker-ctl run`, and
//! foreground runs pass reload signals through it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile, SyscallEntry};
use speaker::profile::CompileMode;
use speaker_tests::ensure;
use speaker_tests::guest::{run, Out, Outcome};

use crate::containers::{
    bundle, crun_status, phase_of, remove_all_containers, rt_ok, rt_to_file, rt_to_file_cmd, run_detached, signal_child, state_pid,
    stop_and_delete, wait_child, wait_phase,
};
use crate::probe::{probe_cmd, probe_cmd_nowait, probe_dir, wait_probe_ready};

/// The command of the reload containers: a probe (to make syscalls inside
/// the container's filter on request) beside nginx, which becomes the
/// container's first process.
/// What nginx writes under `speaker-ctl run` (its logs, temporary files and
/// pid file): the rest of the host is read-only inside, but the probe's
/// directory, given beside.
const NGINX_VOLUMES: [&str; 3] = ["/var/log/nginx", "/var/lib/nginx", "/run"];

pub fn reload_cmd(dir: &Path) -> String {
    format!("speaker-probe serve {} & exec nginx", dir.display())
}

/// nginx (with a probe beside it) traced with `--reload-signal HUP`: boot,
/// running under ab, a reload, shutdown.  getpriority is added to the boot
/// phase as the boot-only syscall the probe makes.
pub fn reload_profile() -> Result<PathBuf, String> {
    static P: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    P.get_or_init(|| {
        remove_all_containers();
        let dir = probe_dir("nginx-trace")?;
        let out = "/srv/probe/nginx-reload.json";
        let cmd = reload_cmd(&dir);
        // The running phase: requests, and the probe answering a request
        // (as the scenarios ask it to).
        let work = format!(
            "ab -q -n 300 -c 4 http://127.0.0.1/ > /dev/null && echo '1 sys getppid' > {0}/cmd && \
             while [ ! -e {0}/res/1.p0t0 ]; do sleep 0.1; done",
            dir.display()
        );
        // Filter mode needs speaker.ko; without it (Debian 12's kernel), ptrace.
        let mode = if std::path::Path::new("/dev/speaker").exists() { "filter" } else { "ptrace" };
        let args = [
            "trace",
            "--mode",
            mode,
            "--name",
            "nginx",
            // Boot ends once nginx has both workers and answers (on a loaded
            // machine a 2 s lull can come before nginx forks them), the
            // reload once nothing new happened for 4 s.
            "--ready",
            "cmd:test $(pgrep -c -x nginx) -ge 3 && ab -q -n 4 http://127.0.0.1/ > /dev/null 2>&1",
            "--auto-windows",
            "8",
            "--workload",
            &work,
            "--running-for",
            "2s",
            "--reload-signal",
            "HUP",
            "-o",
            out,
            "--",
            "sh",
            "-c",
            &cmd,
        ];
        let log = "/srv/probe/nginx-reload.trace.log";
        let mut child = rt_to_file_cmd("speaker-ctl", &args, log)?;
        // nginx exits at SIGTERM; the probe beside it (no PID namespace
        // here to take it along) is told to exit once shutdown has begun.
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut told = false;
        let status = loop {
            if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
                break st;
            }
            if !told && fs::read_to_string(out).is_ok_and(|t| t.contains("\"shutdown\"")) {
                let _ = probe_cmd_nowait(&dir, 99, "exit");
                told = true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("the trace of nginx did not end: {}", fs::read_to_string(log).unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let o = Out { code: status.code().unwrap_or(-1), stdout: String::new(), stderr: fs::read_to_string(log).unwrap_or_default() };
        ensure!(o.code == 0, "tracing nginx with --reload-signal HUP failed: {}", o.stderr);
        let mut p: Profile = serde_json::from_str(&fs::read_to_string(out).unwrap()).map_err(|e| e.to_string())?;
        ensure!(p.phase(Phase::Reload).is_some_and(|s| !s.syscalls.is_empty()), "no reload phase traced: {}", o.stderr);
        ensure!(p.reload.as_ref().is_some_and(|r| r.signals == ["SIGHUP"]), "no reload entry: {:?}", p.reload);
        for ph in [Phase::Running, Phase::Reload] {
            ensure!(!p.phase(ph).unwrap().syscalls.iter().any(|e| e.name == "getpriority"), "getpriority in the traced {ph} phase");
        }
        let boot = p.phases.get_mut(&Phase::Boot).ok_or("no boot phase")?;
        boot.syscalls.push(SyscallEntry { name: "getpriority".into(), arch: "x86_64".into(), nr: None, count: None, first_seen_ms: None });
        // The runtime's monitor: same ports and tasks for 2 s.
        p.ready = Some("auto".into());
        // getpriority is low-risk: only `strict` keeps it boot-only.
        p.compile = Some(CompileMode::Strict);
        fs::write(out, serde_json::to_string_pretty(&p).unwrap()).map_err(|e| e.to_string())?;
        Ok(PathBuf::from(out))
    })
    .clone()
}

/// An HTTP client that runs until stopped: (requests, failures, first failure).
pub struct Client {
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub threads: Vec<std::thread::JoinHandle<(u64, u64, Option<String>)>>,
    pub done: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Client {
    pub fn start(n: usize) -> Client {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                std::thread::spawn(move || {
                    let (mut reqs, mut fails, mut first) = (0, 0, None);
                    while !stop.load(Ordering::Acquire) {
                        reqs += 1;
                        if let Err(e) = http_get() {
                            fails += 1;
                            first.get_or_insert(e);
                        }
                        done.fetch_add(1, Ordering::AcqRel);
                    }
                    (reqs, fails, first)
                })
            })
            .collect();
        Client { stop, threads, done }
    }

    pub fn requests(&self) -> u64 {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn finish(self) -> (u64, u64, Option<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let mut total = (0, 0, None);
        for t in self.threads {
            let (r, f, e) = t.join().unwrap_or((0, 1, Some("client thread panicked".into())));
            total.0 += r;
            total.1 += f;
            if total.2.is_none() {
                total.2 = e;
            }
        }
        total
    }
}

/// One `GET /` (HTTP/1.0, a new connection): Ok if nginx answered 200.
pub fn http_get() -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", 80)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    ensure!(text.starts_with("HTTP/1.1 200") && text.contains("nginx"), "answer: {}", text.lines().next().unwrap_or(""));
    Ok(())
}

/// The pids of the children of `pid` (nginx's workers, and the probe).
pub fn children(pid: i64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
        if ppid.as_deref() == Some(pid.to_string().as_str()) {
            out.insert(name);
        }
    }
    out
}

/// Waits until nginx (the container's first process `pid`) has its two
/// workers and answers.
pub fn wait_nginx(pid: i64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    while children(pid).len() < 3 || http_get().is_err() {
        ensure!(Instant::now() < deadline, "nginx (pid {pid}) never came up: children {:?}, {:?}", children(pid), http_get());
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The reload under load: `reload` sends SIGHUP the container's way; checks
/// 0 failed requests (some served during the reload), new workers, the
/// container back in running with the boot-only syscall denied again, the
/// reload recorded as a switch, and no denial for nginx.
pub fn reload_under_load(id: &str, dir: &Path, reload: impl FnOnce() -> Result<String, String>) -> Outcome {
    let pid = state_pid(id);
    wait_nginx(pid)?;
    let r = probe_cmd(dir, 1, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority (boot-only) in the running phase before the reload: {r}");
    let workers = children(pid);
    let client = Client::start(3);
    std::thread::sleep(Duration::from_millis(1500));
    let before = client.requests();
    let out = reload();
    let during = client.requests() - before;
    std::thread::sleep(Duration::from_millis(1500));
    let (reqs, fails, first) = client.finish();
    let out = out?;
    ensure!(fails == 0, "{fails} of {reqs} requests failed around the reload (first: {first:?}); reload: {out}");
    ensure!(during > 0, "no request was served during the reload ({reqs} in all)");
    ensure!(phase_of(id).as_deref() == Some("running"), "phase after the reload: {:?} ({out})", phase_of(id));
    let now = children(pid);
    ensure!(now.len() >= 3 && workers.difference(&now).count() >= 2, "nginx did not start new workers: {workers:?} -> {now:?}");
    let r = probe_cmd(dir, 2, "sys getpriority", "p0t0")?;
    ensure!(r == "errno 1", "getpriority (boot-only) after the reload: {r}, expected it denied again");
    let r = probe_cmd(dir, 3, "sys getppid", "p0t0")?;
    ensure!(r == "0", "getppid (running set) after the reload: {r}");
    let st: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
    let phases: Vec<&str> = st["switches"].as_array().into_iter().flatten().filter_map(|s| s["phase"].as_str()).collect();
    ensure!(phases.ends_with(&["running", "reload", "running"]), "switches recorded: {phases:?}");
    let d = run("speaker-ctl", &["denials", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).unwrap_or_default();
    let nginx: Vec<&serde_json::Value> = v.as_array().into_iter().flatten().filter(|d| d["comm"] != "speaker-probe").collect();
    ensure!(nginx.is_empty(), "nginx was denied syscalls: {nginx:?}");
    eprintln!("{id}: {reqs} requests, 0 failed, {during} during the reload; {out}");
    Ok(())
}

pub fn nginx_reload_keeps_serving() -> Outcome {
    let profile = reload_profile()?;
    remove_all_containers();
    let id = "nginxr1";
    let dir = probe_dir(id)?;
    let cmd = reload_cmd(&dir);
    let b = bundle(id, &["--profile", profile.to_str().unwrap()], &["sh", "-c", &cmd])?;
    run_detached(&b, id)?;
    wait_phase(id, "running", 90)?;
    wait_probe_ready(&dir, id)?;
    reload_under_load(id, &dir, || rt_ok(&["kill", id, "HUP"]).map(|o| o.trim().to_string()))?;
    let mlog = fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
    ensure!(mlog.contains("reload: running -> reload") && mlog.contains("switched reload -> running"), "monitor log: {mlog}");
    stop_and_delete(id)
}

pub fn ctl_run_nginx_reload_keeps_serving() -> Outcome {
    let profile = reload_profile()?;
    remove_all_containers();
    let id = "nginxr2";
    let dir = probe_dir(id)?;
    let cmd = reload_cmd(&dir);
    let d = dir.display().to_string();
    let mut args = vec!["run", "-d", "--name", id, "--profile", profile.to_str().unwrap()];
    args.extend(NGINX_VOLUMES.iter().flat_map(|v| ["--volume", v]));
    args.extend(["--volume", d.as_str(), "--", "sh", "-c", &cmd]);
    let o = run("speaker-ctl", &args);
    ensure!(o.code == 0, "speaker-ctl run: {}{}", o.stdout, o.stderr);
    wait_probe_ready(&dir, id)?;
    wait_nginx(state_pid(id))?;
    // speaker-ctl run leaves the switch to the operator: once nginx has settled.
    std::thread::sleep(Duration::from_secs(2));
    let sw = run("speaker-ctl", &["switch", id]);
    ensure!(sw.code == 0 && sw.stdout.contains("boot -> running"), "speaker-ctl switch: {}{}", sw.stdout, sw.stderr);
    let res = reload_under_load(id, &dir, || {
        let o = run("speaker-ctl", &["signal", id, "HUP"]);
        ensure!(
            o.code == 0 && o.stdout.contains("running -> reload, SIGHUP") && o.stdout.contains("reload -> running"),
            "speaker-ctl signal {id} HUP: {}{}",
            o.stdout,
            o.stderr
        );
        Ok(o.stdout.trim().to_string())
    });
    let stop = run("speaker-ctl", &["stop", id]);
    res?;
    ensure!(stop.code == 0 && stop.stdout.contains("exited after SIGTERM"), "speaker-ctl stop: {}{}", stop.stdout, stop.stderr);
    Ok(())
}

/// Waits until container `id`'s recorded switches end with `tail`.
pub fn wait_switches_end(id: &str, tail: &[&str], secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(format!("/run/speaker/{id}/state.json")).unwrap_or_default()).unwrap_or_default();
        let phases: Vec<&str> = st["switches"].as_array().into_iter().flatten().filter_map(|s| s["phase"].as_str()).collect();
        if phases.ends_with(tail) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{id}: switches {phases:?} after {secs} s, expected them to end with {tail:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGHUP sent to a *foreground* `speaker-ctl run` or `speaker-runtime
/// run` (a terminal's hangup, a supervisor's reload) goes to the container
/// the speaker way, as `speaker-ctl signal` and `speaker-runtime kill` send
/// it: through the reload phase (nginx serves throughout, its new workers
/// may use boot syscalls, the boot-only one is denied again afterwards);
/// SIGTERM goes through the shutdown phase.  Before, both forwarded SIGHUP
/// as is, so nginx's new workers started under the running filter.
pub fn foreground_runs_send_reload_signals_through_the_reload_phase() -> Outcome {
    let profile = reload_profile()?;
    let p = profile.to_str().unwrap();
    remove_all_containers();
    for (id, tool) in [("nginxr3", "speaker-ctl"), ("nginxr4", "speaker-runtime")] {
        let dir = probe_dir(id)?;
        let cmd = reload_cmd(&dir);
        let out = format!("/srv/{id}.out");
        let mut child = if tool == "speaker-ctl" {
            let d = dir.display().to_string();
            let mut args = vec!["run", "--name", id, "--profile", p];
            args.extend(NGINX_VOLUMES.iter().flat_map(|v| ["--volume", v]));
            args.extend(["--volume", d.as_str(), "--", "sh", "-c", &cmd]);
            let child = rt_to_file_cmd(tool, &args, &out)?;
            wait_probe_ready(&dir, id)?;
            wait_nginx(state_pid(id))?;
            // speaker-ctl run leaves the switch to the operator.
            std::thread::sleep(Duration::from_secs(2));
            let sw = run("speaker-ctl", &["switch", id]);
            ensure!(sw.code == 0 && sw.stdout.contains("boot -> running"), "speaker-ctl switch: {}{}", sw.stdout, sw.stderr);
            child
        } else {
            let b = bundle(id, &["--profile", p], &["sh", "-c", &cmd])?;
            let child = rt_to_file(&["run", "--bundle", b.to_str().unwrap(), id], &out)?;
            wait_phase(id, "running", 90)?;
            wait_probe_ready(&dir, id)?;
            child
        };
        let res = reload_under_load(id, &dir, || {
            signal_child(&child, libc::SIGHUP);
            wait_switches_end(id, &["running", "reload", "running"], 120)?;
            Ok(format!("SIGHUP to the foreground {tool} run"))
        });
        // The container's log survives its state directory (removed when
        // the run ends) through this descriptor.
        let mlog = fs::File::open(format!("/run/speaker/{id}/monitor.log"));
        signal_child(&child, libc::SIGTERM);
        let code = wait_child(&mut child, 60, &format!("{tool} run after SIGTERM"));
        let log = fs::read_to_string(&out).unwrap_or_default();
        res.map_err(|e| format!("{e}; {tool} run said: {log}"))?;
        ensure!(code?.is_some(), "{tool} run was killed by a signal: {log}");
        let mut switches = String::new();
        let _ = mlog.and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut switches));
        ensure!(
            switches.contains("phase running (enforce) -> shutdown (enforce)"),
            "{tool} run: SIGTERM did not go through the shutdown phase; the container's log: {switches}"
        );
        if tool == "speaker-ctl" {
            ensure!(
                log.contains(&format!("{id}: running -> reload, SIGHUP, ready after")) && log.contains("reload -> running"),
                "speaker-ctl run did not report the reload: {log}"
            );
        }
        ensure!(crun_status(id).is_none(), "crun still has {id}");
        ensure!(!Path::new(&format!("/run/speaker/{id}")).exists(), "speaker state left for {id}");
    }
    Ok(())
}
