//! speaker.ko under a real service on speaker's debug kernel (KASAN,
//! lockdep, kmemleak, slub_debug): nginx reloaded under load (switches
//! running → reload → running while clients keep requesting) and
//! speaker-runtime's fail-closed scenario (issue 18: it must hold on the
//! debug kernel), in the bookworm guest (`qemu/run --rootfs full -- vm-oci
//! NAME...`, one boot).  Every vm-oci scenario also runs on Debian's kernel
//! (vm_oci.rs in the bookworm guest, debian_oci.rs in trixie); these are the
//! ones whose kernel side the debug kernel must see.

speaker_tests::vm_tests!(
    runner: "vm-oci",
    runner_args: [
        "nginx_reload_keeps_serving",
        "speaker_runtime_refuses_unparsed_flags_on_annotated_bundles",
        "exec_during_boot_is_tightened_by_the_switch",
        "exec_process_cannot_switch_its_container",
        "status_counts_exec_processes",
    ]
    .map(String::from),
    timeout: 1500,
    qemu_args: speaker_tests::host::vm_oci_share_args("vm-oci-soak-share", &["--rootfs", "full"]),
    complete: every_soak_scenario_has_a_test_and_the_debug_kernel_log_is_clean,
    scenarios: [
        nginx_reload_keeps_serving,
        speaker_runtime_refuses_unparsed_flags_on_annotated_bundles,
        exec_during_boot_is_tightened_by_the_switch,
        exec_process_cannot_switch_its_container,
        status_counts_exec_processes
    ]
);
