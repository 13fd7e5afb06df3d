//! Shared pieces of speaker's VM tests.
//!
//! * [`guest`]: what the scenario runners inside the VM (`vm-scenarios`,
//!   `vm-trace`) share: running commands, reading the kernel log, and the
//!   output protocol (`SCENARIO <name> PASS|FAIL: why`, then
//!   `SCENARIOS DONE pass=N fail=M`).
//! * [`host`]: what the host-side tests share: booting the VM once per test
//!   binary and asserting one scenario per `#[test]` ([`vm_tests!`]).
//! * [`tap`]: parsing the TAP output of the kernel's kselftests.
//! * [`abi`]: speaker.ko's ioctl ABI (`speaker-kmod/abi.rs`, included as is).

#[path = "../../speaker-kmod/abi.rs"]
pub mod abi;

/// Returns `Err(format!(...))` from the enclosing scenario unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

pub mod guest {
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
        log.lines().filter(|l| BAD.iter().any(|b| l.contains(b)) || slub(l)).map(|l| l.to_string()).collect()
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

    /// Where kmemleak is controlled and read (debugfs, mounted by qemu/run).
    pub const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

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
        pub fn start() -> Result<KernelLog, String> {
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

    /// Runs the scenarios named on the command line (all by default; `--list`
    /// lists them), prints one line per scenario and the summary, reports
    /// kernel log trouble and new kmemleak suspects, and exits non-zero if
    /// one failed.
    pub fn run_scenarios(scenarios: &[Scenario]) -> ! {
        let wanted: Vec<String> = std::env::args().skip(1).collect();
        if wanted.iter().any(|w| w == "--list") {
            for (n, _) in scenarios {
                println!("{n}");
            }
            std::process::exit(0);
        }
        run_selected(scenarios, &wanted)
    }

    /// [`run_scenarios`] for runners with options of their own: runs the
    /// scenarios in `wanted` (all if empty).  kmemleak is baselined before
    /// the first scenario and scanned after the last; a new suspect, or a
    /// kmemleak that cannot be used, is reported as kernel log trouble.
    pub fn run_selected(scenarios: &[Scenario], wanted: &[String]) -> ! {
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
        let mut trouble = kernel_trouble(&dmesg());
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
        }
        println!("SCENARIOS DONE pass={pass} fail={fail}");
        std::process::exit(if fail == 0 { 0 } else { 1 });
    }
}

pub mod host {
    use std::path::PathBuf;
    use std::process::Command;

    /// The repository root.
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// One boot of the VM running a scenario runner.
    pub struct VmRun {
        pub log: String,
        pub status: Option<i32>,
        pub log_path: PathBuf,
    }

    /// Boots the VM with `qemu/run --timeout SECS --mem 1024 -- RUNNER` and
    /// keeps its output (also written to `target/RUNNER.log`).
    pub fn boot(runner: &str, timeout_secs: u32) -> VmRun {
        boot_with(runner, timeout_secs, &["--mem".to_string(), "1024".to_string()])
    }

    /// [`boot`] with other `qemu/run` options (e.g. `--rootfs full`).
    pub fn boot_with(runner: &str, timeout_secs: u32, qemu_args: &[String]) -> VmRun {
        boot_logged(&[runner.to_string()], runner, timeout_secs, qemu_args)
    }

    /// [`boot_with`] for a runner with arguments (`cmd`: the runner and its
    /// arguments) or booted more than once per test binary (e.g. with and
    /// without the module): the log goes to `target/LOG_NAME.log`.
    pub fn boot_logged(cmd: &[String], log_name: &str, timeout_secs: u32, qemu_args: &[String]) -> VmRun {
        let root = root();
        let started = std::time::Instant::now();
        let out = Command::new(root.join("qemu/run"))
            .args(["--timeout", &timeout_secs.to_string()])
            .args(qemu_args)
            .arg("--")
            .args(cmd)
            .output()
            .expect("cannot start qemu/run");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("VM run {log_name}: {:.0} s", started.elapsed().as_secs_f64());
        let log_path = root.join(format!("target/{log_name}.log"));
        let _ = std::fs::write(&log_path, &log);
        eprintln!("VM log: {}", log_path.display());
        VmRun { log, status: out.status.code(), log_path }
    }

    impl VmRun {
        /// Panics unless scenario `name` ran and passed.
        pub fn check(&self, name: &str) {
            let pass = format!("SCENARIO {name} PASS");
            let fail = format!("SCENARIO {name} FAIL");
            if self.log.lines().any(|l| l.starts_with(&pass)) {
                return;
            }
            let why = self.log.lines().find(|l| l.starts_with(&fail)).map(str::to_string).unwrap_or_else(|| {
                let tail: Vec<&str> = self.log.lines().rev().take(30).collect();
                format!(
                    "scenario did not run (qemu/run exit {:?}); last lines:\n{}",
                    self.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            });
            panic!("{why}\n(full VM log: {})", self.log_path.display());
        }

        /// What the runner printed while scenario `name` ran: the lines
        /// after the previous scenario's result line, up to its own.
        pub fn output_of(&self, name: &str) -> Vec<&str> {
            let mut block = Vec::new();
            for l in self.log.lines() {
                if let Some(rest) = l.strip_prefix("SCENARIO ") {
                    if rest.split_whitespace().next() == Some(name) {
                        return block;
                    }
                    block.clear();
                } else {
                    block.push(l);
                }
            }
            Vec::new()
        }

        /// Panics unless the runner used action-cache view `view` (its
        /// `ACTION-CACHE <view>:` header) and every scenario of
        /// [`ACTION_CACHE_SCENARIOS`] looked the cache up that way (at least
        /// once), and never another way.
        pub fn check_action_cache_view(&self, view: &str) {
            let header = format!("ACTION-CACHE {view}:");
            assert!(self.log.lines().any(|l| l.starts_with(&header)), "no '{header}' line (log: {})", self.log_path.display());
            let lookup = format!("  ACTION-CACHE {view} ");
            for name in ACTION_CACHE_SCENARIOS {
                let out = self.output_of(name);
                let n = out.iter().filter(|l| l.starts_with(&lookup)).count();
                let other: Vec<&&str> = out.iter().filter(|l| l.starts_with("  ACTION-CACHE ") && !l.starts_with(&lookup)).collect();
                assert!(
                    n >= 1 && other.is_empty(),
                    "{name}: {n} '{view}' cache lookups, others {other:?} (log: {})",
                    self.log_path.display()
                );
            }
        }

        /// Panics if a scenario ran that has no host test, if the runner did
        /// not finish, or if the kernel log showed trouble.
        pub fn check_complete(&self, names: &[&str]) {
            let ran: Vec<&str> =
                self.log.lines().filter_map(|l| l.strip_prefix("SCENARIO ")).filter_map(|l| l.split_whitespace().next()).collect();
            for n in &ran {
                assert!(names.contains(n), "VM scenario {n} has no host test");
            }
            for n in names {
                assert!(ran.contains(n), "VM scenario {n} did not run (log: {})", self.log_path.display());
            }
            assert!(self.log.contains("SCENARIOS DONE"), "the scenario runner did not finish (log: {})", self.log_path.display());
            let trouble: Vec<&str> = self.log.lines().filter(|l| l.starts_with("KERNEL-LOG-TROUBLE")).collect();
            assert!(trouble.is_empty(), "kernel log: {trouble:?}");
        }
    }

    /// The `vm-scenarios` runner's scenarios, one list for every kernel it
    /// runs on (tests/tests/vm.rs, debian_vm.rs): `vm_scenarios_tests!(runner:
    /// ..., complete: NAME,)` is [`vm_tests!`] with `scenarios: [...]` added.
    #[macro_export]
    macro_rules! vm_scenarios_tests {
        ($($head:tt)*) => {
            $crate::vm_tests!($($head)* scenarios: [
                module_loads_and_creates_device,
                device_is_root_only,
                version_ioctl_reports_abi,
                unknown_ioctl_returns_enotty,
                boot_phase_allows_boot_syscalls,
                running_phase_denies_boot_only_syscall,
                running_phase_allows_running_syscalls,
                shutdown_phase_applies_after_stop,
                switch_covers_all_threads,
                switch_covers_all_processes,
                children_forked_after_switch_inherit_running_filter,
                cached_allow_is_revoked_after_switch,
                app_stacked_filter_still_applies_after_switch,
                host_filter_below_container_is_untouched,
                switch_leaves_other_containers_alone,
                switch_leaves_host_alone,
                kill_process_action_kills_on_denied_syscall,
                log_action_allows_in_complain_mode,
                switch_by_unprivileged_caller_is_refused,
                bad_user_pointer_returns_efault,
                malformed_program_returns_einval,
                oversized_program_is_refused,
                unknown_container_returns_esrch,
                ctl_reports_bad_input_clearly,
                exited_container_is_forgotten,
                switch_under_syscall_storm_is_safe,
                rmmod_with_live_container_is_safe,
                switch_from_inside_container_is_refused,
                run_container_gets_no_keys,
                get_filter_during_switch_is_safe,
                register_of_shared_filter_is_refused,
                status_requires_cap_sys_admin,
                layout_is_checked_against_a_live_filter_at_load,
                switch_beyond_max_insns_per_path_is_refused,
                rmmod_after_deferred_switches_is_safe,
                compat_cached_allow_is_revoked_after_switch,
                tsync_stacking_during_switch_is_safe,
                module_unloads_cleanly,
            ]);
        };
    }

    /// The scenarios that check the seccomp action cache: each prints an
    /// `  ACTION-CACHE <view> ...` line per lookup (the runner's
    /// tests/src/bin/vm-scenarios/cache.rs: `debug-file` where
    /// `/proc/PID/seccomp_cache` exists, else `derived`).
    pub const ACTION_CACHE_SCENARIOS: [&str; 4] = [
        "cached_allow_is_revoked_after_switch",
        "app_stacked_filter_still_applies_after_switch",
        "switch_leaves_other_containers_alone",
        "compat_cached_allow_is_revoked_after_switch",
    ];

    /// The `vm-trace` runner's scenarios, one list for every kernel
    /// (tests/tests/vm_trace.rs, debian_vm_trace.rs), as [`vm_scenarios_tests!`].
    #[macro_export]
    macro_rules! vm_trace_tests {
        ($($head:tt)*) => {
            $crate::vm_tests!($($head)* scenarios: [
                filter_mode_is_reported,
                filter_mode_matches_ptrace_mode,
                filter_mode_traps_each_syscall_once_per_phase,
                filter_mode_follows_children_threads_and_i386,
                trace_profile_runs_the_service_without_denials,
                trace_mode_filter_without_module_fails_clearly,
                exported_profiles_in_complain_mode_log_no_denial,
                trace_bench_runs,
                trace_records_reload_phase,
            ]);
        };
    }

    /// The `vm-oci` runner's scenarios, one list for every guest
    /// (tests/tests/vm_oci.rs, debian_oci.rs): `vm_oci_tests!(runner: ...,
    /// timeout: ..., qemu_args: ..., complete: NAME, also: [...])` is
    /// [`vm_tests!`] with these scenarios and those of `also` (scenarios of
    /// one guest only, e.g. the data stores that only the Debian 12 guest
    /// has); the runner is asked for exactly those.
    #[macro_export]
    macro_rules! vm_oci_tests {
        (runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident,
         also: [$($also:ident),* $(,)?] $(,)?) => {
            $crate::vm_oci_tests!(@all runner: $runner, timeout: $timeout, qemu_args: $args, complete: $complete, scenarios: [
                oci_container_without_annotation_is_untouched,
                nginx_serves_after_automatic_switch,
                redis_serves_after_automatic_switch,
                running_container_denies_boot_only_syscall,
                exec_into_running_container_gets_running_filter,
                ctl_switch_and_status_work_on_runtime_ids,
                foreground_run_forwards_sigterm_and_cleans_up,
                redis_saves_dump_in_shutdown_phase,
                runtime_passes_through_unknown_commands,
                runtime_rejects_missing_profile,
                runtime_rejects_profile_for_other_arch,
                runtime_reports_missing_crun,
                denial_is_reported_with_container_and_phase,
                complain_mode_logs_and_allows_then_enforce_denies,
                learn_adds_logged_syscall_to_the_right_phase,
                nginx_reload_keeps_serving,
                ctl_run_nginx_reload_keeps_serving,
                foreground_runs_send_reload_signals_through_the_reload_phase,
                every_demo_workload_runs_after_the_switch,
                speaker_runtime_refuses_unparsed_flags_on_annotated_bundles,
                annotated_run_keeps_the_container_with_keep,
                $($also,)*
            ]);
        };
        (@all runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident,
         scenarios: [$($name:ident),* $(,)?]) => {
            $crate::vm_tests!(runner: $runner, runner_args: vec![$(stringify!($name).to_string()),*], timeout: $timeout,
                              qemu_args: $args, complete: $complete, scenarios: [$($name),*]);
        };
    }

    /// One `#[test]` per VM scenario, all sharing one boot of `$runner`, plus
    /// `$complete`, which checks that every scenario that ran has a test and
    /// that the kernel log stayed clean.
    #[macro_export]
    macro_rules! vm_tests {
        (runner: $runner:literal, timeout: $timeout:literal, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
            $crate::vm_tests!(runner: $runner, timeout: $timeout, qemu_args: vec!["--mem".to_string(), "1024".to_string()],
                              complete: $complete, scenarios: [$($name),*]);
        };
        (runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
            $crate::vm_tests!(runner: $runner, runner_args: Vec::<String>::new(), timeout: $timeout, qemu_args: $args,
                              complete: $complete, scenarios: [$($name),*]);
        };
        (runner: $runner:literal, runner_args: $rargs:expr, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident,
         scenarios: [$($name:ident),* $(,)?]) => {
            fn vm() -> &'static $crate::host::VmRun {
                static RUN: std::sync::OnceLock<$crate::host::VmRun> = std::sync::OnceLock::new();
                RUN.get_or_init(|| {
                    let mut cmd = vec![$runner.to_string()];
                    cmd.extend($rargs);
                    $crate::host::boot_logged(&cmd, $runner, $timeout, &$args)
                })
            }
            $(
                #[test]
                fn $name() {
                    vm().check(stringify!($name));
                }
            )*
            #[test]
            fn $complete() {
                vm().check_complete(&[$(stringify!($name)),*]);
            }
        };
    }
}

pub mod tap {
    //! The TAP output of kselftests (`tools/testing/selftests/kselftest_harness.h`):
    //! `ok N name`, `not ok N name`, either with a `# SKIP why` (or
    //! `# XFAIL why`) directive.

    use std::collections::BTreeMap;

    /// The outcome of one test.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Outcome {
        Pass,
        Fail,
        Skip,
    }

    impl Outcome {
        pub fn as_str(self) -> &'static str {
            match self {
                Outcome::Pass => "pass",
                Outcome::Fail => "fail",
                Outcome::Skip => "skip",
            }
        }

        pub fn parse(s: &str) -> Option<Outcome> {
            match s {
                "pass" => Some(Outcome::Pass),
                "fail" => Some(Outcome::Fail),
                "skip" => Some(Outcome::Skip),
                _ => None,
            }
        }
    }

    /// One parsed run: outcome per test name, and the planned test count.
    #[derive(Debug, Default, Clone)]
    pub struct Results {
        pub tests: BTreeMap<String, Outcome>,
        pub planned: Option<usize>,
    }

    impl Results {
        pub fn count(&self, o: Outcome) -> usize {
            self.tests.values().filter(|&&v| v == o).count()
        }

        /// Whether every planned test reported a result.
        pub fn complete(&self) -> bool {
            self.planned.is_some_and(|p| p > 0 && p == self.tests.len())
        }

        /// `pass=N fail=N skip=N of planned`.
        pub fn summary(&self) -> String {
            format!(
                "pass={} fail={} skip={} of {}",
                self.count(Outcome::Pass),
                self.count(Outcome::Fail),
                self.count(Outcome::Skip),
                self.planned.map(|p| p.to_string()).unwrap_or("?".into())
            )
        }
    }

    /// One TAP result line, if `line` is one: (name, outcome).
    pub fn parse_line(line: &str) -> Option<(String, Outcome)> {
        let line = line.trim_end();
        let (ok, rest) = if let Some(r) = line.strip_prefix("ok ") { (true, r) } else { (false, line.strip_prefix("not ok ")?) };
        let (num, rest) = rest.split_once(' ')?;
        num.parse::<usize>().ok()?;
        let (name, directive) = match rest.split_once(" # ") {
            Some((n, d)) => (n.trim(), d.trim()),
            None => (rest.trim(), ""),
        };
        let upper = directive.to_ascii_uppercase();
        let outcome = if upper.starts_with("SKIP") {
            Outcome::Skip
        } else if ok || upper.starts_with("XFAIL") {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        Some((name.to_string(), outcome))
    }

    /// Parses a whole TAP stream (other lines are ignored; the plan is `1..N`).
    pub fn parse(text: &str) -> Results {
        let mut r = Results::default();
        for l in text.lines() {
            if let Some(n) = l.trim().strip_prefix("1..").and_then(|n| n.parse().ok()) {
                r.planned.get_or_insert(n);
            } else if let Some((name, o)) = parse_line(l) {
                r.tests.insert(name, o);
            }
        }
        r
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_kselftest_harness_output() {
            let out = "TAP version 13\n1..4\n# Starting 4 tests from 2 test cases.\n#  RUN  global.kcmp ...\n\
                       #            OK  global.kcmp\nok 1 global.kcmp\nnot ok 2 TRAP.dfl\n\
                       ok 3 global.user_notification_addfd # SKIP Kernel does not support\n\
                       ok 4 global.x # XFAIL expected\n# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:1 error:0\n";
            let r = parse(out);
            assert_eq!(r.planned, Some(4));
            assert!(r.complete());
            assert_eq!(r.tests["global.kcmp"], Outcome::Pass);
            assert_eq!(r.tests["TRAP.dfl"], Outcome::Fail);
            assert_eq!(r.tests["global.user_notification_addfd"], Outcome::Skip);
            assert_eq!(r.tests["global.x"], Outcome::Pass);
            assert_eq!(r.summary(), "pass=2 fail=1 skip=1 of 4");
        }

        #[test]
        fn ignores_non_result_lines_and_detects_incomplete_runs() {
            let r = parse("1..3\n# ok 1 not.a.result\nok x bad\nok 1 a\n");
            assert_eq!(r.tests.len(), 1);
            assert!(!r.complete());
            assert_eq!(parse_line("not ok 7 fixture.variant.test # SKIP no"), Some(("fixture.variant.test".into(), Outcome::Skip)));
        }
    }
}

/// `examples/services.sh`'s held-out workloads (issue 23), checked on the
/// host: defined, parseable by sh, never among the traced workloads.
#[cfg(test)]
mod heldout_tests {
    fn var(name: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/services.sh");
        let o = std::process::Command::new("bash").args(["-c", &format!(". {script} && printf %s \"${name}\"")]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    #[test]
    fn every_service_has_held_out_workloads_that_are_never_traced() {
        let services = var("services");
        assert_eq!(services.split_whitespace().count(), 4, "{services}");
        for svc in services.split_whitespace() {
            let traced = var(&format!("{svc}_workloads"));
            let heldout = var(&format!("{svc}_heldout"));
            let operator = var(&format!("{svc}_heldout_operator"));
            assert!(heldout.split_whitespace().count() >= 4, "{svc}: {heldout:?}");
            assert!(!var(&format!("{svc}_fatal")).is_empty(), "{svc}_fatal");
            for w in heldout.split_whitespace().chain(operator.split_whitespace()) {
                assert!(!traced.split_whitespace().any(|t| t == w), "{svc}: '{w}' is both traced and held out");
                let cmd = var(&format!("{svc}_heldout_{w}"));
                assert!(!cmd.is_empty(), "{svc}_heldout_{w} is not defined");
                let o = std::process::Command::new("sh").args(["-n", "-c", &cmd]).output().unwrap();
                assert!(o.status.success(), "{svc}_heldout_{w}: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
        for (svc, w) in
            [("postgres", "vacuum_truncate"), ("postgres", "plpgsql"), ("mariadb", "kill"), ("nginx", "largefile"), ("redis", "clientkill")]
        {
            assert!(var(&format!("{svc}_heldout")).split_whitespace().any(|x| x == w), "{svc}: {w}");
        }
        assert!(var("postgres_heldout_vacuum_truncate").contains("VACUUM"));
        assert!(var("postgres_heldout_plpgsql").contains("$$ BEGIN"), "the dollar quotes survive sourcing");
    }

    /// The demo traces `<svc>_workloads` only.
    #[test]
    fn the_demo_traces_only_the_traced_workloads() {
        let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../qemu/demo/oci-demo.sh")).unwrap();
        let traces: Vec<&str> = demo.lines().filter(|l| l.contains("speaker-ctl trace")).collect();
        assert!(!traces.is_empty());
        assert!(traces.iter().all(|l| !l.contains("heldout")), "{traces:?}");
        assert!(demo.contains("is also held out"));
    }
}
