//! Real container engines driving speaker-runtime on Debian's own kernel:
//! boots the Debian 13 guest once (`qemu/run --kernel debian -- vm-engines`,
//! scripts/build-guest-rootfs-debian has docker.io, podman and containerd
//! with speaker-runtime registered), then each test asserts that its
//! scenario ran inside the VM and passed.
speaker_tests::vm_tests!(
    runner: "vm-engines",
    timeout: 1500,
    qemu_args: vec!["--kernel".to_string(), "debian".to_string(), "--mem".to_string(), "1536".to_string()],
    complete: every_vm_engines_scenario_has_a_test_on_debians_kernel_and_its_log_is_clean,
    scenarios: [
        missing_module_fails_the_container,
        docker_run_switches_to_running,
        docker_exec_gets_running_filter,
        docker_stop_goes_through_shutdown,
        docker_rm_leaves_nothing,
        docker_applies_the_amd64_half_of_a_two_arch_export,
        podman_run_switches_to_running,
        podman_exec_gets_running_filter,
        podman_stop_goes_through_shutdown,
        podman_rm_leaves_nothing,
        containerd_cri_config_has_speaker_runtime,
        containerd_run_switches_to_running,
        containerd_exec_gets_running_filter,
        containerd_kill_goes_through_shutdown,
        containerd_delete_leaves_nothing,
        docker_redis_saves_dump_in_shutdown_phase,
        podman_redis_saves_dump_in_shutdown_phase,
        containerd_redis_saves_dump_in_shutdown_phase,
        docker_nginx_serves_after_automatic_switch,
        podman_nginx_serves_after_automatic_switch,
        containerd_nginx_serves_after_automatic_switch,
    ]
);
