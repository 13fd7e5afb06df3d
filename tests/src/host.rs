//! What the host-side tests share: booting the VM once per test binary and
//! asserting one scenario per `#[test]` (the `vm_tests!` macro family).

use std::path::PathBuf;
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// qemu/run's arguments for the vm-oci runner in the bookworm guest:
/// `extra`, then a fresh share `target/NAME` with examples/services.sh and
/// the bookworm guest's committed profiles (examples/profiles).
pub fn vm_oci_share_args(name: &str, extra: &[&str]) -> Vec<String> {
    let root = root();
    let share = root.join("target").join(name);
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("profiles")).unwrap();
    std::fs::copy(root.join("examples/services.sh"), share.join("services.sh")).unwrap();
    for s in ["nginx", "redis", "postgres", "mariadb"] {
        std::fs::copy(root.join(format!("examples/profiles/{s}.json")), share.join(format!("profiles/{s}.json"))).unwrap();
    }
    extra.iter().map(|s| s.to_string()).chain(["--share".to_string(), share.to_str().unwrap().to_string()]).collect()
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

/// Printed by a boot that runs several runners one after another, before
/// each: `SPEAKER-PART <name>` (see [`VmRun::part`]).
pub const PART_MARK: &str = "SPEAKER-PART ";

impl VmRun {
    /// What runner `name` printed in a boot that ran several, each after
    /// its `SPEAKER-PART <name>` line: its lines up to the next part's
    /// mark, as a run of its own (same status and log file), so that
    /// [`VmRun::check_complete`] judges that runner alone.  Empty if the
    /// part never started.
    pub fn part(&self, name: &str) -> VmRun {
        let mut log = String::new();
        let mut on = false;
        for l in self.log.lines() {
            if let Some(p) = l.strip_prefix(PART_MARK) {
                on = p.trim() == name;
                continue;
            }
            if on {
                log.push_str(l);
                log.push('\n');
            }
        }
        VmRun { log, status: self.status, log_path: self.log_path.clone() }
    }

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
            assert!(n >= 1 && other.is_empty(), "{name}: {n} '{view}' cache lookups, others {other:?} (log: {})", self.log_path.display());
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
        assert!(
            trouble.is_empty(),
            "kernel log: {trouble:?} (each report whole: the KERNEL-LOG-REPORT lines of {})",
            self.log_path.display()
        );
    }
}

/// The `vm-scenarios` runner's scenarios, one list for every kernel it
/// runs on (tests/tests/vm.rs, debian_vm.rs): `vm_scenarios_tests!(complete:
/// NAME, also: [...], BOOT...)` is [`vm_tests!`] (BOOT: its `runner: ...,
/// timeout: ...` or `run: ...`) with these scenarios and those of `also`
/// (the debug kernel's own) added.
#[macro_export]
macro_rules! vm_scenarios_tests {
    (complete: $complete:ident, also: [$($also:ident),* $(,)?], $($boot:ident: $val:expr),* $(,)?) => {
        $crate::vm_tests!($($boot: $val,)* complete: $complete, scenarios: [
            $($also,)*
            module_loads_and_creates_device,
            device_is_root_only,
            version_ioctl_reports_abi,
            unknown_ioctl_returns_enotty,
            boot_phase_allows_boot_syscalls,
            running_phase_denies_boot_only_syscall,
            running_phase_allows_running_syscalls,
            shutdown_phase_applies_after_stop,
            stop_kills_a_service_that_ignores_sigterm,
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
            run_container_cannot_write_host_files_or_make_devices,
            get_filter_during_switch_is_safe,
            register_of_shared_filter_is_refused,
            status_requires_cap_sys_admin,
            layout_is_checked_against_a_live_filter_at_load,
            switch_beyond_max_insns_per_path_is_refused,
            rmmod_after_deferred_switches_is_safe,
            compat_cached_allow_is_revoked_after_switch,
            tsync_stacking_during_switch_is_safe,
            switch_of_one_container_does_not_wait_for_another,
            register_of_a_host_sandbox_is_refused,
            module_unloads_cleanly,
        ]);
    };
    (complete: $complete:ident, $($boot:ident: $val:expr),* $(,)?) => {
        $crate::vm_scenarios_tests!(complete: $complete, also: [], $($boot: $val),*);
    };
}

/// The `speaker-fuzz` runner's verdicts, one list for every architecture
/// (tests/tests/vm.rs, arm64_fuzz.rs), as [`vm_scenarios_tests!`]:
/// `vm_fuzz_tests!(complete: NAME, BOOT...)`.
#[macro_export]
macro_rules! vm_fuzz_tests {
    (complete: $complete:ident, $($boot:ident: $val:expr),* $(,)?) => {
        $crate::vm_tests!($($boot: $val,)* complete: $complete, scenarios: [
            fuzz_run_completes,
            fuzzed_ioctls_get_sane_answers,
            fuzzing_races_register_switch_and_exits,
            rmmod_is_refused_while_fds_are_open,
            module_reloads_once_fds_close_and_no_container_is_left,
            fuzzing_leaves_the_kernel_log_clean,
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
            exec_during_boot_is_tightened_by_the_switch,
            exec_process_cannot_switch_its_container,
            status_counts_exec_processes,
            exec_of_processes_that_exit_at_once_never_fails,
            ctl_run_under_the_notify_engine_switches_and_records_denials,
            $($also,)*
        ]);
    };
    (@all runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident,
     scenarios: [$($name:ident),* $(,)?]) => {
        $crate::vm_tests!(runner: $runner, runner_args: vec![$(stringify!($name).to_string()),*], timeout: $timeout,
                          qemu_args: $args, complete: $complete, scenarios: [$($name),*]);
    };
}

/// [`vm_tests!`] for a runner asked for exactly `scenarios` (the runner's
/// arguments are their names): a suite that runs part of a runner's list
/// (tests/tests/arm64_vm.rs).
#[macro_export]
macro_rules! vm_selected_tests {
    (runner: $runner:literal, timeout: $timeout:literal, qemu_args: $args:expr, complete: $complete:ident,
     scenarios: [$($name:ident),* $(,)?] $(,)?) => {
        $crate::vm_tests!(runner: $runner, runner_args: vec![$(stringify!($name).to_string()),*], timeout: $timeout,
                          qemu_args: $args, complete: $complete, scenarios: [$($name),*]);
    };
}

/// One `#[test]` per VM scenario, all sharing one boot of `$runner`, plus
/// `$complete`, which checks that every scenario that ran has a test and
/// that the kernel log stayed clean.  With `run: EXPR` instead of a runner,
/// the tests check that [`VmRun`] (a `&'static`, e.g. one runner's
/// [`VmRun::part`] of a boot that ran several).
#[macro_export]
macro_rules! vm_tests {
    (run: $run:expr, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?] $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run.check(stringify!($name));
            }
        )*
        #[test]
        fn $complete() {
            $run.check_complete(&[$(stringify!($name)),*]);
        }
    };
    (runner: $runner:expr, timeout: $timeout:expr, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
        $crate::vm_tests!(runner: $runner, timeout: $timeout, qemu_args: vec!["--mem".to_string(), "1024".to_string()],
                          complete: $complete, scenarios: [$($name),*]);
    };
    (runner: $runner:expr, timeout: $timeout:expr, qemu_args: $args:expr, complete: $complete:ident, scenarios: [$($name:ident),* $(,)?]) => {
        $crate::vm_tests!(runner: $runner, runner_args: Vec::<String>::new(), timeout: $timeout, qemu_args: $args,
                          complete: $complete, scenarios: [$($name),*]);
    };
    (runner: $runner:expr, runner_args: $rargs:expr, timeout: $timeout:expr, qemu_args: $args:expr, complete: $complete:ident,
     scenarios: [$($name:ident),* $(,)?]) => {
        fn vm() -> &'static $crate::host::VmRun {
            static RUN: std::sync::OnceLock<$crate::host::VmRun> = std::sync::OnceLock::new();
            RUN.get_or_init(|| {
                let mut cmd = vec![$runner.to_string()];
                cmd.extend($rargs);
                // The log is named after the suite (two suites may boot
                // the same runner at once: vm_oci and debian_oci).
                $crate::host::boot_logged(&cmd, env!("CARGO_CRATE_NAME"), $timeout, &$args)
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

/// speaker-fuzz's arguments for a run of `calls` calls, with the seed of
/// `SPEAKER_FUZZ_SEED` when it is set (to rerun one).
pub fn fuzz_args(calls: u32) -> Vec<String> {
    let mut args = vec!["--calls".to_string(), calls.to_string()];
    if let Ok(seed) = std::env::var("SPEAKER_FUZZ_SEED") {
        args.extend(["--seed".to_string(), seed]);
    }
    args
}
