//! What the scenario runners inside the VM share: running commands, reading
//! the kernel log (and kmemleak), and the output protocol
//! (`SCENARIO <name> PASS|FAIL: why`, then `SCENARIOS DONE pass=N fail=M`).

use std::process::{Command, Stdio};
use std::time::Instant;

/// What a scenario returns: `Err(why)` on failure.
pub type Outcome = Result<(), String>;
/// A scenario: its name (the behaviour it proves) and its function.
pub type Scenario = (&'static str, fn() -> Outcome);

/// A finished command.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Exit code, or 128 + signal.
pub fn code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs `cmd args...` with stdin from /dev/null and collects its output.
pub fn run(cmd: &str, args: &[&str]) -> Out {
    match Command::new(cmd).args(args).stdin(Stdio::null()).output() {
        Ok(o) => Out {
            code: code_of(o.status),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Out { code: -1, stdout: String::new(), stderr: format!("cannot run {cmd}: {e}") },
    }
}

/// The kernel log.
pub fn dmesg() -> String {
    run("dmesg", &[]).stdout
}

/// printk's rate limit, off while this lives.  Without an audit daemon
/// the kernel prints audit records (seccomp's `SCMP_ACT_LOG`, and the
/// denials of filters installed with `SECCOMP_FILTER_FLAG_LOG`) through
/// `printk_ratelimit()`: 10 per 5 s, system-wide, so other records can
/// crowd out the one a scenario looks for, or hide one it must not
/// find.  An interval of 0 (`kernel.printk_ratelimit`) means no limit;
/// the previous interval is restored on drop (a syscall storm's logged
/// denials must not flood the kernel log the runners check at the end).
pub struct PrintkUnlimited {
    old: String,
}

impl PrintkUnlimited {
    const SYSCTL: &'static str = "/proc/sys/kernel/printk_ratelimit";

    pub fn new() -> Result<PrintkUnlimited, String> {
        let old = std::fs::read_to_string(Self::SYSCTL).map_err(|e| format!("{}: {e}", Self::SYSCTL))?;
        std::fs::write(Self::SYSCTL, "0").map_err(|e| format!("cannot turn printk's rate limit off: {}: {e}", Self::SYSCTL))?;
        Ok(PrintkUnlimited { old: old.trim().to_string() })
    }
}

impl Drop for PrintkUnlimited {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::SYSCTL, &self.old);
    }
}

/// The kernel log from a point on: `/dev/kmsg` opened and sought to its
/// end, so [`LogSince::messages`] returns only records logged after
/// [`LogSince::now`].  (Counting `dmesg` lines does not work once the
/// ring buffer, 128 KiB, has wrapped: old lines drop out as new ones come.)
pub struct LogSince {
    file: std::fs::File,
}

impl LogSince {
    /// Starts at the end of the kernel log.
    pub fn now() -> Result<LogSince, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|e| format!("/dev/kmsg: {e}"))?;
        // SAFETY: lseek on the descriptor `file` owns.
        let r = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        if r < 0 {
            return Err(format!("lseek /dev/kmsg: {}", std::io::Error::last_os_error()));
        }
        Ok(LogSince { file })
    }

    /// The messages logged since [`LogSince::now`] and not returned by
    /// an earlier call (each record's text, without its
    /// `PRIO,SEQ,US,FLAGS;` prefix).
    pub fn messages(&mut self) -> Vec<String> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let first = text.lines().next().unwrap_or("");
                    out.push(first.split_once(';').map(|(_, m)| m).unwrap_or(first).to_string());
                }
                // EPIPE: records were overwritten before we read them;
                // the next read gives the oldest one left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) || e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more for now.
                Err(_) => return out,
            }
        }
    }
}

/// Kernel log lines that mean something went wrong in the kernel: oopses,
/// `BUG:`/`WARNING:` splats (KASAN's `BUG: KASAN: ...` and lockdep's
/// `WARNING: possible ... locking` among them), lockdep and RCU reports,
/// SLUB debugging's `BUG <cache> (Not tainted): ...` reports, page
/// allocation failure splats and kmemleak's own failures.  (kmemleak's
/// leak reports are judged by [`KernelLog`], against a baseline.)
pub fn kernel_trouble(log: &str) -> Vec<String> {
    log.lines().filter(|l| is_trouble(l)).map(str::to_string).collect()
}

/// Is this kernel log line the start of a report [`kernel_trouble`] fails on?
fn is_trouble(line: &str) -> bool {
    const BAD: [&str; 25] = [
        "BUG:",
        "WARNING:",
        "Oops",
        "general protection fault",
        "refcount_t:",
        "possible circular locking",
        "inconsistent lock state",
        "suspicious RCU usage",
        "detected stalls",
        "INFO: task",
        "UBSAN:",
        "list_add corruption",
        "list_del corruption",
        "kernel BUG",
        "possible recursive locking",
        "KASAN",
        "DEBUG_LOCKS_WARN_ON",
        "turning off the locking correctness validator",
        "lockdep:",
        "page allocation failure",
        "Kernel memory leak detector disabled",
        "Cannot allocate a kmemleak_object",
        "Memory pool empty",
        "unable to handle",
        "stack-protector",
    ];
    let slub = |l: &str| l.contains("BUG ") && (l.contains("(Not tainted)") || l.contains("(Tainted: "));
    // `traps: COMM[PID] general protection fault ... in LIB`: a user-space
    // process crashed (a service under a too-strict profile may), which the
    // kernel only reports; the kernel's own faults do not say `traps:`.
    let user_trap = |l: &str| l.contains(" traps: ");
    !user_trap(line) && (BAD.iter().any(|b| line.contains(b)) || slub(line))
}

/// `ioctl(fd, cmd, arg)` as the kernel answered it: `Ok(return value)`
/// or `Err(errno)`.  `arg` may be any address, valid or not: the callers
/// test how the kernel copes with it.
pub fn raw_ioctl(fd: i32, cmd: u32, arg: u64) -> Result<i64, i32> {
    // SAFETY: the kernel validates `arg` against our address space; a bad
    // address makes the call fail with EFAULT, it is never dereferenced here.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd as libc::c_long, cmd as libc::c_ulong, arg) };
    if r == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// Opens `/dev/speaker` read-write, close-on-exec.
pub fn open_speaker() -> Result<i32, String> {
    // SAFETY: plain open of a NUL-terminated path literal.
    let fd = unsafe { libc::open(c"/dev/speaker".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("cannot open /dev/speaker: {}", std::io::Error::last_os_error()));
    }
    Ok(fd)
}

/// The `Seccomp_filters` count of task `pid` (what `SPEAKER_IOC_REGISTER` wants).
pub fn seccomp_filters(pid: i32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    st.lines().find_map(|l| l.strip_prefix("Seccomp_filters:")).and_then(|v| v.trim().parse().ok())
}

/// A container id for the ABI (NUL-padded; longer ids are cut at 63 bytes).
pub fn cid_bytes(cid: &str) -> [u8; crate::abi::CID_LEN] {
    let mut out = [0u8; crate::abi::CID_LEN];
    let n = cid.len().min(crate::abi::CID_LEN - 1);
    out[..n].copy_from_slice(&cid.as_bytes()[..n]);
    out
}

/// The phase speaker-ctl reports for container `id` (`speaker-ctl status
/// ID --json`), if it knows the container.
pub fn phase_of(id: &str) -> Option<String> {
    let o = run("speaker-ctl", &["status", id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    v.get(0)?.get("phase")?.as_str().map(str::to_string)
}

/// Waits up to `secs` seconds, looking every `poll`, for container `id` to
/// be in `phase`; the error says the phase it is in and quotes its monitor
/// log (/run/speaker/ID/monitor.log).
pub fn wait_phase_polling(id: &str, phase: &str, secs: u64, poll: std::time::Duration) -> Outcome {
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    while Instant::now() < deadline {
        if phase_of(id).as_deref() == Some(phase) {
            return Ok(());
        }
        std::thread::sleep(poll);
    }
    let log = std::fs::read_to_string(format!("/run/speaker/{id}/monitor.log")).unwrap_or_default();
    Err(format!("container {id} not in phase {phase} after {secs}s (now {:?}); monitor log: {log}", phase_of(id)))
}

/// Where kmemleak is controlled and read (debugfs, mounted by qemu/run).
pub const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// Left by a runner's closing kmemleak check, taken by the next runner of
/// the same boot as its baseline ([`KernelLog::start`]).
const CHECKED: &str = "/run/speaker-kmemleak-checked";

/// kmemleak, scanned on demand (the debug kernel has no automatic scan):
/// [`KernelLog::start`] reports what is already suspected (boot-time
/// allocations, often false positives) and clears it; [`KernelLog::new_leaks`]
/// reports only what leaked since.  Following
/// Documentation/dev-tools/kmemleak.rst: an object is reported only once
/// it is older than 5 s and unchanged between two scans, so each check
/// waits 5 s and scans twice.
pub struct KernelLog {
    _baselined: (),
}

impl KernelLog {
    fn kmemleak(cmd: &str) -> Result<(), String> {
        std::fs::write(KMEMLEAK, cmd).map_err(|e| format!("kmemleak unavailable: echo {cmd} > {KMEMLEAK}: {e}"))
    }

    /// Scans twice and returns the suspected leaks not cleared before.
    fn scan() -> Result<String, String> {
        Self::kmemleak("scan")?;
        Self::kmemleak("scan")?;
        std::fs::read_to_string(KMEMLEAK).map_err(|e| format!("kmemleak unavailable: cannot read {KMEMLEAK}: {e}"))
    }

    /// Baselines kmemleak: what is suspected now is not this run's doing.
    /// Right after another runner's closing check in the same boot
    /// ([`CHECKED`]: `vm` runs three runners one after another), that
    /// check's two scans are the baseline: what they found was that
    /// runner's to report, and is cleared without scanning again.
    pub fn start() -> Result<KernelLog, String> {
        if std::fs::remove_file(CHECKED).is_ok() {
            Self::kmemleak("clear")?;
            println!("KMEMLEAK baseline: the previous runner's closing scans, cleared");
            return Ok(KernelLog { _baselined: () });
        }
        let old = Self::scan()?;
        Self::kmemleak("clear")?;
        let n = old.lines().filter(|l| l.starts_with("unreferenced object")).count();
        println!("KMEMLEAK baseline: {n} object(s) suspected before the run, cleared");
        Ok(KernelLog { _baselined: () })
    }

    /// The leaks kmemleak suspects since [`KernelLog::start`]: one entry
    /// per object (its report joined with " | ").
    pub fn new_leaks(&self) -> Result<Vec<String>, String> {
        std::thread::sleep(std::time::Duration::from_millis(5500));
        let report = Self::scan()?;
        // (/run is the boot's own tmpfs: a later boot never sees it.)
        let _ = std::fs::write(CHECKED, "");
        let mut leaks: Vec<String> = Vec::new();
        for l in report.lines() {
            if l.starts_with("unreferenced object") {
                leaks.push(l.trim().to_string());
            } else if let Some(last) = leaks.last_mut() {
                if !l.trim().is_empty() && last.len() < 2000 {
                    last.push_str(" | ");
                    last.push_str(l.trim());
                }
            }
        }
        Ok(leaks)
    }
}

/// The whole report of each trouble line of `log`: the line and what
/// follows it up to the report's end marker (KASAN's and lockdep's
/// `=====` rule, `---[ end trace`) or the next trouble line, at most
/// [`REPORT_LINES`] lines.  A report's first line says what broke; its
/// stack says where, and the runners print it so that a report seen once
/// can be read afterwards (the console log keeps it, prefixed
/// `KERNEL-LOG-REPORT`).
pub fn trouble_reports(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_trouble(lines[i]) {
            i += 1;
            continue;
        }
        out.push(lines[i].to_string());
        let mut j = i + 1;
        while j < lines.len() && j - i < REPORT_LINES && !is_trouble(lines[j]) {
            out.push(lines[j].to_string());
            let msg = lines[j].split_once("] ").map(|(_, m)| m).unwrap_or(lines[j]);
            let end = msg.starts_with("=====") || msg.contains("---[ end trace");
            j += 1;
            if end {
                break;
            }
        }
        i = j;
    }
    out
}

/// The most lines of one report [`trouble_reports`] keeps.
pub const REPORT_LINES: usize = 80;

/// Runs the scenarios named on the command line (all by default; `--list`
/// lists them), prints one line per scenario and the summary, reports
/// kernel log trouble and new kmemleak suspects, and exits non-zero if
/// one failed.
pub fn run_scenarios(scenarios: &[Scenario]) -> ! {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    run_selected(scenarios, &wanted)
}

/// [`run_scenarios`] for runners with options of their own: runs the
/// scenarios in `wanted` (all if empty; `--list` among them lists them).  kmemleak is baselined before
/// the first scenario and scanned after the last; a new suspect, or a
/// kmemleak that cannot be used, is reported as kernel log trouble.
pub fn run_selected(scenarios: &[Scenario], wanted: &[String]) -> ! {
    if wanted.iter().any(|w| w == "--list") {
        for (n, _) in scenarios {
            println!("{n}");
        }
        std::process::exit(0);
    }
    // qemu/run boots speaker's debug kernel (KASAN, kmemleak) with
    // slub_debug; Debian's kernel, the non-debug platform, has no kmemleak.
    let debug_kernel = std::fs::read_to_string("/proc/cmdline").map(|c| c.contains("slub_debug")).unwrap_or(true);
    let klog = if debug_kernel { Some(KernelLog::start()) } else { None };
    if !debug_kernel {
        println!("KMEMLEAK not built into this (non-debug) kernel: no leak scan");
    }
    let (mut pass, mut fail) = (0, 0);
    for (name, f) in scenarios {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let start = Instant::now();
        match std::panic::catch_unwind(f).unwrap_or_else(|_| Err("panicked".into())) {
            Ok(()) => {
                pass += 1;
                println!("SCENARIO {name} PASS ({:.1}s)", start.elapsed().as_secs_f64());
            }
            Err(why) => {
                fail += 1;
                println!("SCENARIO {name} FAIL: {}", why.replace('\n', " | "));
            }
        }
    }
    let log = dmesg();
    let mut trouble = kernel_trouble(&log);
    match klog.map(|k| k.and_then(|k| k.new_leaks())).unwrap_or(Ok(Vec::new())) {
        Ok(leaks) => {
            for l in &leaks {
                println!("KMEMLEAK {l}");
            }
            trouble.extend(leaks.iter().map(|l| format!("kmemleak: {}", l.split(" | ").next().unwrap_or(l))));
        }
        Err(e) => trouble.push(e),
    }
    if !trouble.is_empty() {
        println!("KERNEL-LOG-TROUBLE {}", trouble.join(" | "));
        for l in trouble_reports(&log) {
            println!("KERNEL-LOG-REPORT {l}");
        }
    }
    println!("SCENARIOS DONE pass={pass} fail={fail}");
    std::process::exit(if fail == 0 { 0 } else { 1 });
}

#[cfg(test)]
mod trouble_tests {
    use super::{kernel_trouble, trouble_reports};

    #[test]
    fn a_user_space_crash_is_not_kernel_trouble_but_a_kernel_fault_is() {
        let user = "[  328.494572] traps: postgres[2427] general protection fault ip:7fa40564650f sp:7fff4350ff90 error:0 in libc.so.6[7fa405646000+156000]";
        let kernel =
            "[   12.000000] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP KASAN";
        assert!(kernel_trouble(user).is_empty());
        assert_eq!(kernel_trouble(&format!("{user}\n{kernel}")), vec![kernel.to_string()]);
    }

    #[test]
    fn a_report_is_kept_whole_up_to_its_end_marker() {
        let log = "[    0.010000] x86: Booting SMP configuration:
[    0.013751] ==================================================================
[    0.013751] BUG: KASAN: wild-memory-access in do_raw_spin_lock+0xbc/0x1d0
[    0.013751] Read of size 4 at addr 1fffffff8 by task swapper/0/1
[    0.013751] Call Trace:
[    0.013751]  do_raw_spin_lock+0xbc/0x1d0
[    0.013751] ==================================================================
[    0.020000] smp: Brought up 1 node, 2 CPUs";
        let r = trouble_reports(log);
        assert_eq!(r.len(), 5, "{r:#?}");
        assert!(r[0].contains("BUG: KASAN") && r[2].contains("Call Trace:") && r[4].ends_with("====="), "{r:#?}");
        assert!(trouble_reports("[    1.0] all is well").is_empty());
    }
}
