//! speaker.ko under real services on speaker's debug kernel (KASAN,
//! lockdep, kmemleak, slub_debug): the vm-oci scenarios that switch
//! containers under load and those of speaker-runtime's trust model, in
//! the bookworm guest (`qemu/run --rootfs full -- vm-oci NAME...`, one
//! boot).  Every vm-oci scenario also runs on Debian's kernel (vm_oci.rs,
//! debian_oci.rs); these are the ones whose kernel side the debug kernel
//! must see.

speaker_tests::vm_tests!(
    runner: "vm-oci",
    runner_args: [
        "running_container_denies_boot_only_syscall",
        "exec_into_running_container_gets_running_filter",
        "nginx_reload_keeps_serving",
        "redis_saves_dump_in_shutdown_phase",
        "speaker_runtime_refuses_unparsed_flags_on_annotated_bundles",
    ]
    .map(String::from),
    timeout: 1500,
    qemu_args: speaker_tests::host::vm_oci_share_args("vm-oci-soak-share", &["--rootfs", "full"]),
    complete: every_soak_scenario_has_a_test_and_the_debug_kernel_log_is_clean,
    scenarios: [
        running_container_denies_boot_only_syscall,
        exec_into_running_container_gets_running_filter,
        nginx_reload_keeps_serving,
        redis_saves_dump_in_shutdown_phase,
        speaker_runtime_refuses_unparsed_flags_on_annotated_bundles,
    ]
);
