//! speaker-runtime's scenarios under the notify engine (seccomp user
//! notification, no speaker.ko) on Debian 12's own stock kernel (bookworm's
//! linux-image 6.1: no Rust, no module), booted with the bookworm guest
//! (`qemu/run --kernel debian12 -- env VM_OCI_ENGINE=notify vm-oci ...`,
//! one boot): the four services switch automatically and serve every
//! workload of examples/services.sh after the switch, nginx reloads through
//! its reload phase, a boot-only syscall is denied after the switch and
//! reported by `speaker-ctl denials`, redis and the data stores stop through
//! their shutdown phase with their data kept; plus the notify engine's own
//! scenarios (a killed supervisor fails closed, arguments in memory cannot
//! change a decision, `auto` picks notify without the module,
//! `speaker-ctl run --engine notify`), and the held-out workloads under
//! `strict`, reported (balanced's, asserted, run in vm_oci.rs under
//! speaker.ko: this lane is the shorter one).
//!
//! The profiles are the committed examples/profiles/ (the bookworm guest's).

/// One boot, the scenarios named once.
macro_rules! notify_suite {
    ($($name:ident),* $(,)?) => {
        speaker_tests::vm_tests!(
            runner: "env",
            runner_args: ["VM_OCI_ENGINE=notify", "vm-oci", $(stringify!($name)),*].iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            timeout: 1500,
            qemu_args: speaker_tests::host::vm_oci_share_args("debian12-oci-share", &["--kernel", "debian12"]),
            complete: every_notify_scenario_has_a_test_on_debian12s_kernel_and_its_log_is_clean,
            scenarios: [$($name),*]
        );
    };
}

notify_suite!(
    nginx_serves_after_automatic_switch,
    redis_serves_after_automatic_switch,
    running_container_denies_boot_only_syscall,
    redis_saves_dump_in_shutdown_phase,
    denial_is_reported_with_container_and_phase,
    complain_mode_logs_and_allows_then_enforce_denies,
    nginx_reload_keeps_serving,
    every_demo_workload_runs_after_the_switch,
    postgres_and_mariadb_keep_their_data_across_restart,
    notify_engine_survives_a_supervisor_kill,
    notify_engine_ignores_arguments,
    auto_engine_picks_notify_without_module,
    ctl_run_under_the_notify_engine_switches_and_records_denials,
    exec_denials_are_attributed_under_notify,
    held_out_workloads_under_strict_are_reported,
);
