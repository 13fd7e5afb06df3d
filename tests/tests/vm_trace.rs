//! VM scenarios of `speaker-ctl trace`'s filter mode: boots speaker's kernel
//! once (`qemu/run -- vm-trace`), then each test asserts that its scenario
//! ran inside the VM and passed.  Every scenario runs, always (TCG, no KVM needed): `qemu/run` builds
//! whatever is missing (kernel, module, guest binaries) before booting.
speaker_tests::vm_tests!(
    runner: "vm-trace",
    timeout: 900,
    complete: every_vm_trace_scenario_has_a_test_and_the_kernel_log_is_clean,
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
