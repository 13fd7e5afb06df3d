//! VM scenarios: boots speaker's kernel once (`qemu/run -- vm-scenarios`),
//! then each test asserts that its scenario ran inside the VM and passed.
//! Nothing here is skipped: `qemu/run` builds whatever is missing (kernel,
//! module, guest binaries) before booting.
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

struct VmRun {
    log: String,
    status: Option<i32>,
    log_path: PathBuf,
}

fn vm() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let root = root();
        let out = Command::new(root.join("qemu/run"))
            .args(["--timeout", "1500", "--mem", "1024", "--", "vm-scenarios"])
            .output()
            .expect("cannot start qemu/run");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let log_path = root.join("target/vm-scenarios.log");
        let _ = std::fs::write(&log_path, &log);
        eprintln!("VM log: {}", log_path.display());
        VmRun { log, status: out.status.code(), log_path }
    })
}

fn check(name: &str) {
    let run = vm();
    let pass = format!("SCENARIO {name} PASS");
    let fail = format!("SCENARIO {name} FAIL");
    if run.log.lines().any(|l| l.starts_with(&pass)) {
        return;
    }
    let why = run.log.lines().find(|l| l.starts_with(&fail)).map(str::to_string).unwrap_or_else(|| {
        format!(
            "scenario did not run (qemu/run exit {:?}); last lines:\n{}",
            run.status,
            run.log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    });
    panic!("{why}\n(full VM log: {})", run.log_path.display());
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios!(
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
    module_unloads_cleanly,
);

#[test]
fn every_vm_scenario_has_a_test_and_the_kernel_log_is_clean() {
    let run = vm();
    let ran: Vec<&str> = run
        .log
        .lines()
        .filter_map(|l| l.strip_prefix("SCENARIO "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "DONE")
        .collect();
    for n in &ran {
        assert!(NAMES.contains(n), "VM scenario {n} has no host test");
    }
    assert!(run.log.contains("SCENARIOS DONE"), "the scenario runner did not finish (log: {})", run.log_path.display());
    let trouble: Vec<&str> = run.log.lines().filter(|l| l.starts_with("KERNEL-LOG-TROUBLE")).collect();
    assert!(trouble.is_empty(), "kernel log: {trouble:?}");
}
