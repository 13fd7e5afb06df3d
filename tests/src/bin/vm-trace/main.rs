//! vm-trace: `speaker-ctl trace`'s filter mode (seccomp `RET_TRACE` for the
//! syscalls not seen yet in the phase, the filter switched through
//! speaker.ko) against its ptrace mode, run as root inside the VM
//! (`qemu/run -- vm-trace [NAME...]`).
//!
//! Same output protocol as vm-scenarios: one line per scenario,
//! `SCENARIO <name> PASS` or `SCENARIO <name> FAIL: <why>`, then
//! `SCENARIOS DONE pass=N fail=M`.
//!
//! The service traced is `fixture-service` (its phase-only syscall sets are
//! repeated below).  Boot ends with `--ready log:...` (its "listening" line):
//! with `port:N` the service's `write` of that line races with the tracer's
//! 25ms port poll and may land in boot or running, which would make two runs
//! differ for reasons that have nothing to do with the tracing mode.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use speaker::profile::schema::{Phase, Profile};
use speaker::profile::Arch;
use speaker_tests::ensure;
use speaker_tests::guest::{code_of, run, run_scenarios, run_selected, LogSince, Out, Outcome, PrintkUnlimited, Scenario};

const BOOT_ONLY: &[&str] = &["umask", "uname", "getpriority", "getpgid", "getrusage"];
const RUNNING_ONLY: &[&str] = &["sysinfo", "times"];
const SHUTDOWN_ONLY: &[&str] = &["getitimer", "fsync"];
const SENTINEL: &str = "acct";
const FIXTURE: &str = "/bin/fixture-service";
const READY: &str = "log:fixture-service: listening on";

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

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/vm-trace/{name}"));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// One `speaker-ctl trace` run.
struct Traced {
    code: i32,
    stderr: String,
    profile: Option<Profile>,
}

impl Traced {
    fn describe(&self) -> String {
        format!("exit {}, stderr: {}", self.code, self.stderr.trim())
    }

    fn profile(&self) -> Result<&Profile, String> {
        self.profile.as_ref().ok_or_else(|| format!("no profile written ({})", self.describe()))
    }
}

/// `speaker-ctl trace --mode MODE [extra] -o DIR/MODE.json -- cmd`.
fn trace(dir: &Path, mode: &str, extra: &[&str], cmd: &[&str]) -> Traced {
    let out = dir.join(format!("{mode}.json"));
    let mut args = vec!["trace", "--mode", mode];
    args.extend_from_slice(extra);
    let o = out.to_str().unwrap();
    args.extend_from_slice(&["-o", o, "--"]);
    args.extend_from_slice(cmd);
    let r = ctl(&args);
    Traced { code: r.code, stderr: r.stderr, profile: fs::read_to_string(&out).ok().and_then(|t| serde_json::from_str(&t).ok()) }
}

/// Traces the fixture service: boot until its "listening" line, running
/// while a client sends `pings` pings, then SIGTERM and shutdown.
fn trace_service(dir: &Path, mode: &str, port: u16, pings: u32) -> Traced {
    let workload = format!("{FIXTURE} --client {port} --count {pings}");
    let port = port.to_string();
    trace(dir, mode, &["--ready", READY, "--workload", &workload], &[FIXTURE, "--port", &port])
}

/// Per phase, the syscalls as `name` (the native ABI: x86_64, or aarch64
/// when the runner is built for arm64) or `arch:name` (others).
fn sets(p: &Profile) -> BTreeMap<Phase, BTreeSet<String>> {
    let native = Arch::native().name();
    p.phases
        .iter()
        .map(|(ph, set)| {
            let names =
                set.syscalls.iter().map(|e| if e.arch == native { e.name.clone() } else { format!("{}:{}", e.arch, e.name) }).collect();
            (*ph, names)
        })
        .collect()
}

fn union(p: &Profile) -> BTreeSet<String> {
    sets(p).into_values().flatten().collect()
}

/// The summary lines of a trace: phase -> (syscalls, calls or seccomp stops).
fn summary(stderr: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for l in stderr.lines() {
        let l = l.trim_start_matches("\r\x1b[2K");
        let Some(rest) = l.strip_prefix("speaker-ctl: ") else {
            continue;
        };
        let Some((phase, rest)) = rest.split_once(": ") else {
            continue;
        };
        if !["boot", "running", "reload", "shutdown"].contains(&phase) {
            continue;
        }
        let nums: Vec<u64> = rest.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
        if nums.len() >= 2 {
            out.insert(phase.to_string(), (nums[0], nums[1]));
        }
    }
    out
}

/// `filter mode: N seccomp stops, M filter switches` -> (N, M).
fn filter_totals(stderr: &str) -> Option<(u64, u64)> {
    let l = stderr.lines().find_map(|l| l.split_once("speaker-ctl: filter mode: ").map(|x| x.1))?;
    let nums: Vec<u64> = l.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    Some((*nums.first()?, *nums.get(1)?))
}

fn trace_containers() -> Result<Vec<String>, String> {
    Ok(ctl_ok(&["status"])?.lines().filter(|l| l.starts_with("trace-")).map(|l| l.to_string()).collect())
}

/// The per-phase checks every trace of the fixture service must pass.
fn check_service_sets(what: &str, p: &Profile) -> Outcome {
    let s = sets(p);
    let phase = |ph: Phase| s.get(&ph).cloned().unwrap_or_default();
    let (boot, running, shutdown) = (phase(Phase::Boot), phase(Phase::Running), phase(Phase::Shutdown));
    ensure!(s.len() == 3, "{what}: phases {:?}, want boot, running, shutdown", s.keys().collect::<Vec<_>>());
    for (ph, set, only) in [("boot", &boot, BOOT_ONLY), ("running", &running, RUNNING_ONLY), ("shutdown", &shutdown, SHUTDOWN_ONLY)] {
        for n in only {
            ensure!(set.contains(*n), "{what}: {ph} lacks {n}: {set:?}");
            for (other, oset) in [("boot", &boot), ("running", &running), ("shutdown", &shutdown)] {
                ensure!(other == ph || !oset.contains(*n), "{what}: {ph}-only {n} is in {other} too");
            }
        }
    }
    ensure!(boot.contains("execve"), "{what}: boot lacks execve");
    for (ph, set) in [("boot", &boot), ("running", &running), ("shutdown", &shutdown)] {
        ensure!(!set.contains(SENTINEL), "{what}: sentinel {SENTINEL} in {ph}");
    }
    Ok(())
}

/// Syscalls a multithreaded service makes only when its threads happen to
/// contend (futex: a lock found taken): whether a run sees them is a matter
/// of timing, not of the tracing mode, so the two modes' sets may differ in
/// them and nothing else.
const CONTENTION_ONLY: [&str; 1] = ["futex"];

fn diff_sets(a: &Profile, b: &Profile) -> Vec<String> {
    let (sa, sb) = (sets(a), sets(b));
    let mut out = Vec::new();
    for ph in Phase::ALL {
        let (x, y) = (sa.get(&ph).cloned().unwrap_or_default(), sb.get(&ph).cloned().unwrap_or_default());
        let only_a: Vec<_> = x.difference(&y).filter(|n| !CONTENTION_ONLY.contains(&n.as_str())).collect();
        let only_b: Vec<_> = y.difference(&x).filter(|n| !CONTENTION_ONLY.contains(&n.as_str())).collect();
        if !only_a.is_empty() || !only_b.is_empty() {
            out.push(format!("{ph}: only filter {only_a:?}, only ptrace {only_b:?}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// scenarios

mod cross_arch;

fn filter_mode_is_reported() -> Outcome {
    let dir = workdir("reported");
    for (mode, want) in
        [("filter", "tracing mode: filter (speaker.ko)"), ("auto", "tracing mode: filter (speaker.ko)"), ("ptrace", "tracing mode: ptrace")]
    {
        let t = trace(&dir, mode, &["--one-shot"], &[FIXTURE, "--threads", "2"]);
        ensure!(t.code == 0, "--mode {mode}: {}", t.describe());
        let lines: Vec<&str> = t.stderr.lines().filter(|l| l.contains("tracing mode:")).collect();
        ensure!(
            lines.len() == 1 && lines[0] == format!("speaker-ctl: {want}"),
            "--mode {mode}: mode lines {lines:?}, want one 'speaker-ctl: {want}'"
        );
        let filter = want.contains("filter");
        ensure!(
            filter_totals(&t.stderr).is_some() == filter,
            "--mode {mode}: filter totals line {}: {}",
            if filter { "missing" } else { "present" },
            t.stderr.trim()
        );
        ensure!(!t.stderr.contains("not loaded") && !t.stderr.contains("warning"), "--mode {mode}: {}", t.stderr.trim());
        let u = union(t.profile()?);
        ensure!(u.contains("getresgid") && u.contains("execve"), "--mode {mode}: profile {u:?}");
        let left = trace_containers()?;
        ensure!(left.is_empty(), "--mode {mode}: speaker.ko still has {left:?}");
    }
    Ok(())
}

fn filter_mode_matches_ptrace_mode() -> Outcome {
    let dir = workdir("matches");
    let f = trace_service(&dir, "filter", 7101, 5);
    ensure!(f.code == 0, "filter mode: {}", f.describe());
    ensure!(f.stderr.contains("tracing mode: filter (speaker.ko)"), "filter mode did not run: {}", f.stderr.trim());
    let p = trace_service(&dir, "ptrace", 7102, 5);
    ensure!(p.code == 0, "ptrace mode: {}", p.describe());
    ensure!(p.stderr.contains("tracing mode: ptrace"), "{}", p.stderr.trim());
    let (fp, pp) = (f.profile()?, p.profile()?);
    check_service_sets("filter mode", fp)?;
    check_service_sets("ptrace mode", pp)?;
    let d = diff_sets(fp, pp);
    ensure!(d.is_empty(), "per-phase sets differ: {}", d.join("; "));
    ensure!(fp.architectures == pp.architectures, "architectures {:?} vs {:?}", fp.architectures, pp.architectures);
    println!("  per phase: {}", sets(fp).iter().map(|(ph, s)| format!("{ph} {}", s.len())).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn filter_mode_traps_each_syscall_once_per_phase() -> Outcome {
    let dir = workdir("once");
    let pings = 40;
    let f = trace_service(&dir, "filter", 7201, pings);
    ensure!(f.code == 0, "filter mode: {}", f.describe());
    let p = trace_service(&dir, "ptrace", 7202, pings);
    ensure!(p.code == 0, "ptrace mode: {}", p.describe());
    let (fs_, ps) = (summary(&f.stderr), summary(&p.stderr));
    ensure!(fs_.len() == 3 && ps.len() == 3, "summaries {fs_:?} / {ps:?}: {}", f.stderr.trim());
    // Races between threads trapping the same new syscall, and the
    // (deferred-free) switch, may cost a few extra stops; never one per call.
    const SLACK: u64 = 3;
    for (phase, (distinct, stops)) in &fs_ {
        ensure!(*stops <= distinct + SLACK, "{phase}: {stops} seccomp stops for {distinct} syscalls");
        let (_, calls) = ps[phase];
        println!("  {phase}: {distinct} syscalls, filter {stops} seccomp stops, ptrace {calls} calls");
    }
    // The running phase served `pings` requests: ptrace saw every call,
    // the filter trapped each syscall once.
    let (r_distinct, r_calls) = ps["running"];
    ensure!(r_calls >= u64::from(pings) * r_distinct / 2, "ptrace running: only {r_calls} calls for {pings} pings");
    let fp = f.profile()?;
    let running = &fp.phases[&Phase::Running].syscalls;
    for e in running {
        ensure!(e.count.unwrap_or(0) <= 1 + SLACK, "running {}: count {:?} in filter mode ({pings} pings)", e.name, e.count);
    }
    let sysinfo = running.iter().find(|e| e.name == "sysinfo");
    ensure!(sysinfo.and_then(|e| e.count) == Some(1), "running sysinfo trapped {:?} times", sysinfo.map(|e| e.count));
    let (stops, switches) = filter_totals(&f.stderr).ok_or_else(|| format!("no filter totals: {}", f.stderr))?;
    let distinct: u64 = fs_.values().map(|v| v.0).sum();
    ensure!(stops <= distinct + 3 * SLACK, "{stops} seccomp stops in all for {distinct} syscalls");
    // One switch per batch of new syscalls plus one per phase change.
    ensure!(switches >= 2 && switches <= distinct + 3, "{switches} filter switches for {distinct} syscalls");
    Ok(())
}

/// The compat-ABI case of [`filter_mode_follows_children_threads_and_i386`]:
/// an i386 syscall (`int $0x80`) on x86_64; on arm64, whose AArch64 tasks
/// cannot enter the 32-bit ABI, the AArch32 program `compat-getpriority`
/// (tests/compat/getpriority-arm32.c: getpriority, write, exit_group).
#[cfg(target_arch = "x86_64")]
const COMPAT_CASE: (&[&str], i32, &[&str]) = (&[FIXTURE, "--int80"], 0, &["x86:getpid"]);
#[cfg(target_arch = "aarch64")]
const COMPAT_CASE: (&[&str], i32, &[&str]) = (&["/bin/compat-getpriority"], 0, &["arm:getpriority", "arm:write", "execve"]);

/// Processes, threads, posix_spawn, signals, group-stops and compat (i386,
/// or 32-bit ARM on arm64) syscalls: filter mode follows them exactly like
/// ptrace mode.
fn filter_mode_follows_children_threads_and_i386() -> Outcome {
    let dir = workdir("follows");
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&[FIXTURE, "--fork-many", "20"], 0, &["getsid"]),
        (&[FIXTURE, "--threads", "16"], 0, &["getresgid"]),
        (&[FIXTURE, "--spawn", "3"], 0, &["getresgid", "wait4"]),
        COMPAT_CASE,
        (&[FIXTURE, "--stop-cont"], 0, &["kill"]),
        (&[FIXTURE, "--signal-handler"], 0, &["rt_sigreturn"]),
        // One-shot commands: trace fails (1) when the command does.
        (&[FIXTURE, "--kill-self"], 1, &["tgkill"]),
        (&[FIXTURE, "--exec-missing"], 1, &["execve", "write"]),
    ];
    for (args, code, want) in cases {
        let cmd = args.to_vec();
        let mut unions = Vec::new();
        for mode in ["filter", "ptrace"] {
            let t = trace(&dir, mode, &["--one-shot"], &cmd);
            ensure!(t.code == *code, "{args:?} --mode {mode}: exit {}, want {code}: {}", t.code, t.stderr.trim());
            let u = union(t.profile()?);
            for w in *want {
                ensure!(u.contains(*w), "{args:?} --mode {mode}: no {w} in {u:?}");
            }
            unions.push(u);
        }
        let only_f: Vec<_> = unions[0].difference(&unions[1]).collect();
        let only_p: Vec<_> = unions[1].difference(&unions[0]).collect();
        ensure!(only_f.is_empty() && only_p.is_empty(), "{args:?}: only filter {only_f:?}, only ptrace {only_p:?}");
    }
    ensure!(trace_containers()?.is_empty(), "trace containers left behind");
    Ok(())
}

fn trace_mode_filter_without_module_fails_clearly() -> Outcome {
    struct Reload;
    impl Drop for Reload {
        fn drop(&mut self) {
            if !Path::new("/dev/speaker").exists() {
                let o = run("insmod", &["/speaker.ko"]);
                if o.code != 0 {
                    println!("  insmod /speaker.ko failed: {}", o.stderr.trim());
                }
            }
        }
    }
    let dir = workdir("nomodule");
    // The earlier scenarios' traced services were switched: speaker.ko keeps
    // their replaced programs, and stays loaded, until its sweeper has seen
    // them exit (about a second).
    let deadline = Instant::now() + Duration::from_secs(15);
    let o = loop {
        let o = run("rmmod", &["speaker"]);
        if o.code == 0 || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    ensure!(o.code == 0, "rmmod speaker failed: {}", o.stderr.trim());
    let _reload = Reload;
    let marker = dir.join("started");
    let touch = format!("touch {}", marker.display());
    let t = trace(&dir, "filter", &[], &["sh", "-c", &touch]);
    ensure!(t.code != 0, "--mode filter without module exited 0");
    let lines: Vec<&str> = t.stderr.trim().lines().collect();
    ensure!(
        lines.len() == 1
            && lines[0].starts_with("speaker-ctl: error: ")
            && lines[0].contains("--mode filter needs speaker.ko")
            && lines[0].contains("not loaded"),
        "stderr {:?} should be one error line saying speaker.ko is not loaded",
        t.stderr
    );
    ensure!(!marker.exists(), "the command ran although --mode filter failed");
    ensure!(t.profile.is_none(), "a profile was written");

    let t = trace(&dir, "auto", &["--one-shot"], &["sh", "-c", &touch]);
    ensure!(t.code == 0, "--mode auto without module: {}", t.describe());
    ensure!(
        t.stderr.contains("speaker-ctl: speaker.ko not loaded: using ptrace syscall-stops")
            && t.stderr.contains("speaker-ctl: tracing mode: ptrace"),
        "--mode auto without module: {}",
        t.stderr.trim()
    );
    ensure!(marker.exists(), "--mode auto did not run the command");
    ensure!(union(t.profile()?).contains("execve"), "--mode auto profile lacks execve");
    drop(_reload);
    ensure!(Path::new("/dev/speaker").exists(), "insmod /speaker.ko failed");
    ctl_ok(&["version"])?;
    Ok(())
}

/// Reads a child's stdout lines into a channel.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if seen.iter().any(|l| l.contains(needle)) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => return Err(format!("no line {needle:?} (got {seen:?})")),
        }
    }
}

fn wait_exit(child: &mut Child, secs: u64) -> Result<i32, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(code_of(st));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not exit within {secs}s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn trace_profile_runs_the_service_without_denials() -> Outcome {
    let dir = workdir("enforce");
    let t = trace_service(&dir, "filter", 7301, 5);
    ensure!(t.code == 0, "trace: {}", t.describe());
    let mut profile = t.profile()?.clone();
    check_service_sets("traced profile", &profile)?;
    // Denials fail with EPERM (and are noticed: the fixture dies or the
    // client gets no pong).
    profile.default_action = "SCMP_ACT_ERRNO".into();
    let path = dir.join("enforce.json");
    fs::write(&path, serde_json::to_string_pretty(&profile).unwrap()).unwrap();

    run_service_under("traced-svc", &["--profile", path.to_str().unwrap()], 7302)
}

/// Runs the fixture as container `cid` under the given profile arguments of
/// `speaker-ctl run`, switches it to running, serves 10 pings, stops it
/// (shutdown phase) and checks it exited 0 after its shutdown work.
fn run_service_under(cid: &str, profile_args: &[&str], port: u16) -> Outcome {
    let port_s = port.to_string();
    let mut child = Command::new("speaker-ctl")
        .args(["run", "--name", cid, "--volume", "/tmp"])
        .args(profile_args)
        .arg("--")
        .args([FIXTURE, "--port", &port_s])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start speaker-ctl run: {e}"))?;
    let rx = line_reader(&mut child);
    let mut lines = Vec::new();
    let started = wait_line(&rx, &format!("listening on 127.0.0.1:{port}"), &mut lines);
    if let Err(e) = started {
        let code = wait_exit(&mut child, 10);
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut err);
        }
        return Err(format!("the service never listened under its boot phase: {e}; speaker-ctl run: {code:?} {}", err.trim()));
    }
    let result = (|| -> Outcome {
        let sw = ctl_ok(&["switch", cid, "--to", "running"])?;
        ensure!(sw.contains("boot -> running"), "switch said {sw:?}");
        let st = ctl_ok(&["status", cid])?;
        ensure!(st.lines().any(|l| l.starts_with(cid) && l.contains("running")), "status after the switch: {st:?}");
        let c = run(FIXTURE, &["--client", &port_s, "--count", "10"]);
        ensure!(c.code == 0, "client under the running phase: exit {}: {}", c.code, c.stderr.trim());
        let st = ctl_ok(&["stop", cid, "--timeout", "20"])?;
        ensure!(st.contains("running -> shutdown") && st.contains("exited after SIGTERM"), "stop said {st:?}");
        Ok(())
    })();
    if result.is_err() {
        let _ = ctl(&["stop", cid, "--timeout", "2"]);
    }
    let code = wait_exit(&mut child, 30);
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut err);
    }
    if let Err(e) = result {
        // What the service printed tells how far its shutdown got.
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
            lines.push(l);
        }
        return Err(format!("{e}; service stdout: {lines:?}; service stderr: {}", err.trim()));
    }
    let code = code?;
    let _ = wait_line(&rx, "shutting down", &mut lines);
    ensure!(code == 0, "the service exited {code} (want 0); stderr: {}", err.trim());
    ensure!(lines.iter().any(|l| l.contains("fixture-service: shutting down")), "no shutdown line: {lines:?}");
    Ok(())
}

/// `profile export` of each traced phase, run with `SCMP_ACT_LOG` as the
/// default action (complain mode): the service works and the kernel log
/// shows no seccomp event (audit type 1326) at all.
fn exported_profiles_in_complain_mode_log_no_denial() -> Outcome {
    let dir = workdir("complain");
    let t = trace_service(&dir, "filter", 7303, 5);
    ensure!(t.code == 0, "trace: {}", t.describe());
    let traced = dir.join("filter.json");
    let mut args: Vec<String> = Vec::new();
    for (phase, flag) in [("boot", "--boot"), ("running", "--running"), ("shutdown", "--shutdown")] {
        let out = dir.join(format!("{phase}.oci.json"));
        ctl_ok(&["profile", "export", "--phase", phase, "--format", "oci", "-o", out.to_str().unwrap(), traced.to_str().unwrap()])?;
        let mut oci: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&out).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        oci["defaultAction"] = "SCMP_ACT_LOG".into();
        fs::write(&out, serde_json::to_string_pretty(&oci).unwrap()).map_err(|e| e.to_string())?;
        args.push(flag.to_string());
        args.push(out.display().to_string());
    }
    // Every record must reach the log for "none" to mean something.
    let _unlimited = PrintkUnlimited::new()?;
    let mut since = LogSince::now()?;
    let argv: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    run_service_under("complain-svc", &argv, 7304)?;
    let events: Vec<String> = since.messages().into_iter().filter(|l| l.contains("type=1326")).collect();
    ensure!(events.is_empty(), "seccomp logged {} event(s) in complain mode: {:?}", events.len(), &events[..events.len().min(5)]);
    Ok(())
}

fn trace_bench_runs() -> Outcome {
    let o = run("trace-bench", &["2000"]);
    ensure!(o.code == 0, "trace-bench 2000: exit {}: {} {}", o.code, o.stdout.trim(), o.stderr.trim());
    for row in ["untraced", "ptrace", "filter", "strace"] {
        ensure!(o.stdout.lines().any(|l| l.trim_start().starts_with(row)), "no {row} row in {:?}", o.stdout);
    }
    Ok(())
}

// ---------------------------------------------------------------------------

const SCENARIOS: &[Scenario] = &[
    ("filter_mode_is_reported", filter_mode_is_reported),
    ("filter_mode_matches_ptrace_mode", filter_mode_matches_ptrace_mode),
    ("filter_mode_traps_each_syscall_once_per_phase", filter_mode_traps_each_syscall_once_per_phase),
    ("filter_mode_follows_children_threads_and_i386", filter_mode_follows_children_threads_and_i386),
    ("trace_profile_runs_the_service_without_denials", trace_profile_runs_the_service_without_denials),
    ("trace_mode_filter_without_module_fails_clearly", trace_mode_filter_without_module_fails_clearly),
    ("exported_profiles_in_complain_mode_log_no_denial", exported_profiles_in_complain_mode_log_no_denial),
    ("trace_bench_runs", trace_bench_runs),
    ("trace_records_reload_phase", trace_records_reload_phase),
    ("fixture_profile_is_traced_for_a_merge", cross_arch::fixture_profile_is_traced_for_a_merge),
    ("merged_profile_of_both_arches_is_enforced", cross_arch::merged_profile_of_both_arches_is_enforced),
    ("shared_merged_profile_is_enforced", cross_arch::shared_merged_profile_is_enforced),
];

/// `--reload-signal HUP`: after the running phase the tracer sends SIGHUP,
/// records what the service does until it is quiet again as the `reload`
/// phase, then shuts it down; the profile says which signal reloads.
fn trace_records_reload_phase() -> Outcome {
    let dir = workdir("reload");
    let mark = dir.join("hup");
    // A service whose reload does something nothing else does: mkdir.
    let script = format!("trap 'mkdir {}' HUP; trap 'exit 0' TERM; while :; do sleep 0.2; done", mark.display());
    let t = trace(&dir, "filter", &["--ready", "auto", "--running-for", "1s", "--reload-signal", "HUP"], &["sh", "-c", &script]);
    ensure!(t.code == 0, "trace: {}", t.describe());
    ensure!(mark.is_dir(), "the service never got SIGHUP ({} missing): {}", mark.display(), t.describe());
    let p = t.profile()?;
    let r = p.reload.as_ref().ok_or("the profile has no 'reload' entry")?;
    ensure!(r.signals == ["SIGHUP"] && r.ready.is_none(), "reload entry: {r:?}");
    let s = sets(p);
    let reload = s.get(&Phase::Reload).ok_or_else(|| format!("no reload phase in the profile: {:?}", s.keys()))?;
    let mkdir = |set: &BTreeSet<String>| set.contains("mkdir") || set.contains("mkdirat");
    ensure!(mkdir(reload), "the reload phase lacks mkdir: {reload:?}");
    for ph in [Phase::Boot, Phase::Running, Phase::Shutdown] {
        let set = s.get(&ph).ok_or_else(|| format!("no {ph} phase"))?;
        ensure!(!mkdir(set), "mkdir (done only on SIGHUP) is in the {ph} phase too");
    }
    ensure!(t.stderr.contains(": SIGHUP, reload") && t.stderr.contains("reload over"), "trace output: {}", t.stderr);
    ensure!(summary(&t.stderr).contains_key("reload"), "no reload line in the summary: {}", t.stderr);
    Ok(())
}

/// Scenarios that run only when named: they read what the host shares
/// from another boot (tests/tests/arm64_trace.rs), or print for it.
const ON_REQUEST: [&str; 3] =
    ["fixture_profile_is_traced_for_a_merge", "merged_profile_of_both_arches_is_enforced", "shared_merged_profile_is_enforced"];

fn main() {
    if std::env::args().len() == 1 {
        let all: Vec<String> = SCENARIOS.iter().map(|(n, _)| n.to_string()).filter(|n| !ON_REQUEST.contains(&n.as_str())).collect();
        run_selected(SCENARIOS, &all)
    }
    run_scenarios(SCENARIOS)
}
