//! VM scenarios of speaker-runtime with real OCI containers (crun, nginx,
//! redis, PostgreSQL, MariaDB): boots the full Debian guest once (`qemu/run --rootfs full --
//! vm-oci`), then each test asserts that its scenario ran and passed.
//! Every scenario runs, always (TCG, no KVM needed): `qemu/run` builds whatever is missing (kernel,
//! module, guest binaries, the guest's root filesystem) before booting.

/// The share: examples/services.sh and the committed profiles.
fn qemu_args() -> Vec<String> {
    let root = speaker_tests::host::root();
    let share = root.join("target/vm-oci-share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(share.join("profiles")).unwrap();
    std::fs::copy(root.join("examples/services.sh"), share.join("services.sh")).unwrap();
    for s in ["nginx", "redis", "postgres", "mariadb"] {
        std::fs::copy(root.join(format!("examples/profiles/{s}.json")), share.join(format!("profiles/{s}.json"))).unwrap();
    }
    ["--rootfs", "full", "--share", share.to_str().unwrap()].iter().map(|s| s.to_string()).collect()
}

speaker_tests::vm_tests!(
    runner: "vm-oci",
    timeout: 2400,
    qemu_args: qemu_args(),
    complete: every_vm_oci_scenario_has_a_test_and_the_kernel_log_is_clean,
    scenarios: [
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
        postgres_and_mariadb_keep_their_data_across_restart,
    ]
);
