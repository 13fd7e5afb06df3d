//! The VM scenarios of `speaker-ctl trace`'s filter mode (as in vm_trace.rs)
//! on Debian's own kernel: boots the Debian 13 guest once (`qemu/run
//! --kernel debian -- vm-trace`) with the speaker.ko built for it
//! (`scripts/build-module --kernel debian`), then each test asserts that its
//! scenario ran inside the VM and passed.
speaker_tests::vm_tests!(
    runner: "vm-trace",
    timeout: 900,
    qemu_args: vec!["--kernel".to_string(), "debian".to_string(), "--mem".to_string(), "1024".to_string()],
    complete: every_vm_trace_scenario_has_a_test_on_debians_kernel_and_its_log_is_clean,
    scenarios: [
        filter_mode_is_reported,
        filter_mode_matches_ptrace_mode,
        filter_mode_traps_each_syscall_once_per_phase,
        filter_mode_follows_children_threads_and_i386,
        trace_profile_runs_the_service_without_denials,
        trace_mode_filter_without_module_fails_clearly,
        exported_profiles_in_complain_mode_log_no_denial,
        trace_bench_runs,
        trace_records_reload_phase,
    ]
);
